"""Checking a parsed profile against the evaluator registry: every binding's evaluator resolves, its config fits
the version's schema, its capabilities are granted. The result pins each binding to one version by digest.

Both kinds of profile use it: a run's (runs/pins.py) and a monitored agent's (online/profile.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jsonschema

from evaluators.models import EvaluatorVersion
from evaluators.selectors import ResolveError, evaluator_version_resolve
from gating.profile import ProfileSpec


class PinsInvalid(ValueError):
    """Bindings the registry cannot satisfy: (path, message) for each problem."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{path}: {message}" for path, message in errors))
        self.errors = errors


@dataclass(frozen=True)
class Pin:
    binding_id: str
    reference: str
    version_id: int
    digest: str
    pure: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "version_id": self.version_id, "digest": self.digest, "pure": self.pure}


def profile_pins(*, profile: ProfileSpec) -> dict[str, Pin]:
    """Resolve every binding of `profile` to a published version; PinsInvalid names every problem."""
    errors: list[tuple[str, str]] = []
    pins: dict[str, Pin] = {}
    for i, binding in enumerate(profile.bindings):
        where = f"bindings[{i}] ({binding.id})"
        try:
            version: EvaluatorVersion = evaluator_version_resolve(reference=binding.evaluator)
        except ResolveError as exc:
            errors.append((f"{where}.evaluator", str(exc)))
            continue
        if version.config_schema is not None:
            validator = jsonschema.Draft202012Validator(version.config_schema)
            for err in sorted(validator.iter_errors(binding.config), key=lambda e: list(e.absolute_path)):
                path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
                errors.append((f"{where}.config{path}", f"{err.message} (config schema of {version.reference})"))
        if "model" in version.capabilities and "model" not in binding.grants:
            errors.append(
                (
                    f"{where}.grants",
                    f"{version.reference} uses the `model` capability; grant it with "
                    "grants: {model: {models: [...]}} or use another evaluator",
                )
            )
        pins[binding.id] = Pin(binding.id, version.reference, version.id, version.digest, version.pure)
    if errors:
        raise PinsInvalid(errors)
    return pins
