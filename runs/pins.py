"""Checking a profile against the evaluator registry: every binding's evaluator resolves, its config fits the
version's schema, its capabilities are granted; the result pins each binding to one version by digest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jsonschema

from evaluators.models import EvaluatorVersion
from evaluators.selectors import ResolveError, evaluator_version_resolve
from gating.profile import ProfileError, ProfileSpec, profile_parse
from runs.errors import ValidationFailed


@dataclass(frozen=True)
class Pin:
    binding_id: str
    reference: str
    version_id: int
    digest: str
    pure: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "version_id": self.version_id, "digest": self.digest, "pure": self.pure}


def profile_check(*, document: Any) -> tuple[ProfileSpec, dict[str, Pin]]:
    """Parse the profile and check every binding against the registry. Returns the profile and the pins."""
    try:
        profile = profile_parse(data=document)
    except ProfileError as exc:
        raise ValidationFailed("profile", list(exc.errors)) from None
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
        raise ValidationFailed("profile", errors)
    return profile, pins
