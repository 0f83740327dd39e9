"""Importing datasets (JSONL) and profiles (YAML): validation that names the line and field, then one write.

Nothing is written when validation fails. Both are content-hashed: importing the same content again
returns the existing version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import jsonschema
import yaml
from django.db import transaction

from evaluators.models import EvaluatorVersion
from evaluators.selectors import ResolveError, evaluator_version_resolve
from gating.profile import ProfileError, ProfileSpec, profile_parse
from runs.models import Case, Dataset, DatasetVersion, Profile, ProfileVersion
from vigilo_project.bulk import bulk_insert
from vigilo_project.gcpause import gc_paused

MAX_ERRORS = 50
CASE_KEYS = {"id", "input", "expected", "context", "output", "tags", "metadata"}
OUTPUT_KEYS = {"text", "structured", "tool_calls", "trace", "metadata"}


class ValidationFailed(ValueError):
    """Input was refused. `errors` is a list of (where, message); str() is readable on its own."""

    def __init__(self, what: str, errors: list[tuple[str, str]]) -> None:
        self.what = what
        self.errors = errors[:MAX_ERRORS]
        more = f" (and {len(errors) - MAX_ERRORS} more)" if len(errors) > MAX_ERRORS else ""
        lines = "\n".join(f"  {where}: {message}" for where, message in self.errors)
        super().__init__(f"{what} is invalid:\n{lines}{more}")


# -- datasets ----------------------------------------------------------------------------------------------


def _check_case(obj: Any, where: str) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    errors: list[tuple[str, str]] = []
    if not isinstance(obj, dict):
        return None, [(where, f"a case must be a JSON object, not {type(obj).__name__}")]
    for key in sorted(set(obj) - CASE_KEYS):
        errors.append((f"{where} field {key!r}", "unknown field"))
    cid = obj.get("id")
    if not isinstance(cid, str) or not cid.strip() or len(cid) > 200:
        errors.append((f"{where} field 'id'", "required: a non-empty string of at most 200 characters"))
    if "input" not in obj:
        errors.append((f"{where} field 'input'", "required (any JSON value)"))
    tags = obj.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        errors.append((f"{where} field 'tags'", "must be a list of strings"))
    if not isinstance(obj.get("metadata", {}), dict):
        errors.append((f"{where} field 'metadata'", "must be an object"))
    output = obj.get("output")
    if output is not None:
        if not isinstance(output, dict):
            errors.append((f"{where} field 'output'", "must be an object or null"))
        else:
            errors += output_problems(output, f"{where} field 'output")
    if errors:
        return None, errors
    case = {
        "id": cid,
        "input": obj.get("input"),
        "expected": obj.get("expected"),
        "context": obj.get("context"),
        "output": None if output is None else output_normalized(output),
        "tags": list(tags),
        "metadata": obj.get("metadata", {}),
    }
    return case, []


def output_problems(output: dict[str, Any], where: str) -> list[tuple[str, str]]:
    """What is wrong with an agent output (a case's, or an agent endpoint's answer).

    `where` names the object and ends inside a quote (`line 3 field 'output`); each problem appends its field.
    """
    errors = [(f"{where}.{key}'", "unknown field") for key in sorted(set(output) - OUTPUT_KEYS)]
    if output.get("text") is not None and not isinstance(output["text"], str):
        errors.append((f"{where}.text'", "must be a string or null"))
    calls = output.get("tool_calls", [])
    if not isinstance(calls, list):
        errors.append((f"{where}.tool_calls'", "must be a list"))
    else:
        for i, call in enumerate(calls):
            if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]:
                errors.append((f"{where}.tool_calls[{i}]'", "must be an object with a non-empty string 'name'"))
            elif set(call) - {"name", "arguments", "result"}:
                errors.append((f"{where}.tool_calls[{i}]'", "only name, arguments and result are allowed"))
    trace = output.get("trace", [])
    if not isinstance(trace, list):
        errors.append((f"{where}.trace'", "must be a list"))
    else:
        for i, ev in enumerate(trace):
            if not isinstance(ev, dict) or not isinstance(ev.get("kind"), str):
                errors.append((f"{where}.trace[{i}]'", "must be an object with a string 'kind'"))
            elif ev.get("name") is not None and not isinstance(ev["name"], str):
                errors.append((f"{where}.trace[{i}].name'", "must be a string or null"))
    if not isinstance(output.get("metadata", {}), dict):
        errors.append((f"{where}.metadata'", "must be an object"))
    return errors


def output_normalized(output: dict[str, Any]) -> dict[str, Any]:
    """A checked output with every field present, as evaluators receive it."""
    return {
        "text": output.get("text"),
        "structured": output.get("structured"),
        "tool_calls": [
            {"name": c["name"], "arguments": c.get("arguments"), "result": c.get("result")}
            for c in output.get("tool_calls", [])
        ],
        "trace": [
            {"kind": e["kind"], "name": e.get("name"), "payload": e.get("payload")} for e in output.get("trace", [])
        ],
        "metadata": output.get("metadata", {}),
    }


def dataset_parse(*, text: str) -> list[dict[str, Any]]:
    """Parse and validate JSONL; raises ValidationFailed naming each bad line and field."""
    cases: list[dict[str, Any]] = []
    errors: list[tuple[str, str]] = []
    first_line: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {lineno}"
        try:
            obj = json.loads(line)
        except ValueError as exc:
            errors.append((where, f"not valid JSON: {exc}"))
            continue
        case, problems = _check_case(obj, where)
        errors += problems
        if case is None:
            continue
        if case["id"] in first_line:
            errors.append(
                (f"{where} field 'id'", f"duplicate case id {case['id']!r} (first on line {first_line[case['id']]})")
            )
            continue
        first_line[case["id"]] = lineno
        cases.append(case)
    if not cases and not errors:
        errors.append(("file", "no cases: the dataset is empty"))
    if errors:
        raise ValidationFailed("dataset", errors)
    return cases


@gc_paused()  # every case and row lives until the insert: see vigilo_project/gcpause.py
def dataset_import(*, name: str, text: str) -> tuple[DatasetVersion, bool]:
    """Create (or find) the dataset version for this content. Returns (version, created)."""
    if not name or len(name) > 200:
        raise ValidationFailed("dataset", [("name", "required, at most 200 characters")])
    cases = dataset_parse(text=text)
    canonical = "\n".join(json.dumps(c, sort_keys=True, separators=(",", ":")) for c in cases)
    content_hash = hashlib.sha256(canonical.encode()).hexdigest()
    with transaction.atomic():
        dataset, _ = Dataset.objects.get_or_create(name=name)
        existing = DatasetVersion.objects.filter(dataset=dataset, content_hash=content_hash).first()
        if existing is not None:
            return existing, False
        version = DatasetVersion.objects.create(dataset=dataset, content_hash=content_hash, case_count=len(cases))
        bulk_insert(
            [Case(dataset_version=version, ordinal=i, case_id=c["id"], data=c) for i, c in enumerate(cases)],
            ignore_conflicts=False,  # case ids were checked unique; a conflict would be a bug, not a retry
            batch_size=2000,
        )
    return version, True


# -- profiles ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pin:
    binding_id: str
    reference: str
    version_id: int
    digest: str
    pure: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "version_id": self.version_id, "digest": self.digest, "pure": self.pure}


def profile_load_yaml(*, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "file"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValidationFailed("profile", [(where, f"not valid YAML: {problem}")]) from None


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


def profile_import(*, text: str) -> tuple[ProfileVersion, bool]:
    """Validate a YAML profile (structure and registry) and store it. Returns (version, created)."""
    document = profile_load_yaml(text=text)
    profile, _ = profile_check(document=document)
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    content_hash = hashlib.sha256(canonical.encode()).hexdigest()
    with transaction.atomic():
        row, _ = Profile.objects.get_or_create(name=profile.name)
        existing = ProfileVersion.objects.filter(profile=row, content_hash=content_hash).first()
        if existing is not None:
            return existing, False
        version = ProfileVersion.objects.create(
            profile=row, content_hash=content_hash, source=text, document=json.loads(canonical)
        )
    return version, True
