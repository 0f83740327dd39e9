"""Shared helpers for Vigilo's bundled evaluators: what is checked (`field`), where the expectation comes
from (`value` / `expected_path`), config schema fragments and evidence formatting.

Conventions:
- `field`: "text" (default), "structured" or "structured.<dotted.path>" (list indexes as numbers).
- the expectation: config `value` when given (and not null), else `expected_path`, a dotted path into
  the case's `expected` ("" = the whole of it).
"""

from __future__ import annotations

import json
import re
from typing import Any

from vigilo_sdk import EvaluatorError, Finding, finding

MISSING: Any = object()
EVIDENCE_CHARS = 200

FIELD_SCHEMA = {
    "type": "string",
    "pattern": r"^(text|structured|structured\.[^.]+(\.[^.]+)*)$",
    "default": "text",
    "description": "What is checked: 'text', 'structured' or 'structured.<dotted.path>'.",
}
EXPECTED_PATH_SCHEMA = {
    "type": "string",
    "default": "",
    "description": "Dotted path into the case's `expected` (empty: all of it); used without `value`.",
}
CASE_SENSITIVE_SCHEMA = {"type": "boolean", "default": True}


def config_schema(properties: dict[str, Any]) -> dict[str, Any]:
    """An object schema with the common `field` and `expected_path` keys; unknown keys are refused."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {"field": FIELD_SCHEMA, "expected_path": EXPECTED_PATH_SCHEMA, **properties},
        "additionalProperties": False,
    }


def canonical(value: Any) -> str:
    """Canonical JSON text (sorted keys; non-ASCII kept as is so substring checks see real characters)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def as_text(value: Any) -> str:
    """Strings as they are; any other JSON value as canonical JSON."""
    return value if isinstance(value, str) else canonical(value)


def clip(text: str, limit: int = EVIDENCE_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def evidence_value(value: Any) -> Any:
    """A JSON value small enough for evidence: kept when short, else its clipped JSON text."""
    if isinstance(value, str):
        return clip(value)
    text = canonical(value)
    return value if len(text) <= EVIDENCE_CHARS else clip(text)


def get_path(value: Any, path: str) -> Any:
    """The value at a dotted path ("" = the value itself; list indexes as numbers), or MISSING."""
    if path == "":
        return value
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and re.fullmatch(r"-?\d+", part) and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


def resolve_actual(actual: dict[str, Any], config: dict[str, Any], *, mode: str = "text") -> tuple[Any, Finding | None]:
    """What is checked, as `(value, None)`, or `(None, finding)` when there is nothing usable to judge.

    mode "text": a string (structured values as canonical JSON, strings as they are); "json": a JSON value
    (the output text is parsed); "raw": the text string or the structured value untouched.
    """
    field = config.get("field", "text")
    if field == "text":
        value = actual.get("text")
        if value is None:
            return None, finding("high", "missing_output", "the agent produced no output text", {"field": field})
        if mode == "json":
            try:
                return json.loads(value), None
            except ValueError as exc:
                return None, finding(
                    "high",
                    "invalid_json",
                    f"output is not valid JSON: {exc}",
                    {"field": field, "text": clip(value)},
                )
        return value, None
    structured = actual.get("structured")
    if structured is None:
        return None, finding("high", "missing_output", "the agent produced no structured output", {"field": field})
    path = field[len("structured.") :] if field.startswith("structured.") else ""
    value = get_path(structured, path)
    if value is MISSING:
        return None, finding(
            "high",
            "missing_output",
            f"the structured output has no value at {path!r}",
            {"field": field, "structured": evidence_value(structured)},
        )
    return (as_text(value) if mode == "text" else value), None


def resolve_expected(case: dict[str, Any], config: dict[str, Any]) -> tuple[Any, str]:
    """The expectation and a label of where it came from; EvaluatorError("missing_expected") when absent."""
    if config.get("value") is not None:
        return config["value"], "config 'value'"
    path = config.get("expected_path", "")
    expected = case.get("expected")
    where = f"expected_path {path!r}" if path else "the case's expected value"
    value = MISSING if expected is None else get_path(expected, path)
    if value is MISSING or value is None:
        if expected is None:
            detail = "the case has no expected value"
        else:
            detail = f"the case's expected value has nothing at {path!r}" if path else "expected is null"
        raise EvaluatorError(
            "missing_expected",
            f"no expectation: config has no 'value' and {detail} (case {case.get('id')!r})",
        )
    return value, where


def bad_expected(source: str, message: str) -> EvaluatorError:
    """An unusable expectation: a config problem when it came from `value`, else a case data problem."""
    code = "invalid_config" if source.startswith("config") else "invalid_expected"
    return EvaluatorError(code, f"{source}: {message}")
