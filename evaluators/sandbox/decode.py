"""Decoding what `evaluate` returned: the lifted `result<evaluation, evaluator-error>` (see `abi.lift`) becomes
an `Invocation`, checked field by field against the contract and the output limit."""

from __future__ import annotations

import json
import math
from typing import Any

from evaluators.sandbox.invocation import Invocation
from evaluators.sandbox.limits import ErrorCode

SEVERITIES = {"info", "low", "medium", "high", "critical"}
MEASUREMENT_KINDS: dict[str, type] = {"binary": bool, "numeric": float, "ordinal": str}


class _Invalid(ValueError):
    pass


def decode_evaluation(result: Any, max_output_bytes: int) -> Invocation:
    """Turn the lifted result of `evaluate` into an Invocation.

    Every field is checked against the contract: a component whose `evaluate` returns another shape (it can
    only if its own types differ from the contract's) ends as `invalid_output`, like an oversized output.
    """
    try:
        return _decode(result, max_output_bytes)
    except _Invalid as exc:
        return Invocation.error(ErrorCode.INVALID_OUTPUT, f"evaluate returned an invalid value: {exc}")


def _fields(value: Any, names: tuple[str, ...], what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or tuple(value) != names:
        raise _Invalid(f"{what} is not the contract's record ({', '.join(names)})")
    return value


def _case(value: Any, cases: set[str], what: str) -> tuple[str, Any]:
    if not isinstance(value, tuple) or len(value) != 2 or value[0] not in cases:
        raise _Invalid(f"{what} is not one of {', '.join(sorted(cases))}")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"{what} is not a string")
    return value


def _optional_text(value: Any, what: str) -> str | None:
    return None if value is None else _text(value, what)


def _measurement(kind: str, value: Any) -> bool | float | str:
    # The second check only tells the type checker what the first one established.
    if isinstance(value, MEASUREMENT_KINDS[kind]) and isinstance(value, bool | float | str):
        return value
    raise _Invalid(f"the {kind} measurement is a {type(value).__name__}")


def _decode(result: Any, max_output_bytes: int) -> Invocation:
    tag, payload = _case(result, {"ok", "err"}, "the result")
    if tag == "err":
        err = _fields(payload, ("code", "message"), "the evaluator-error")
        code, message = _text(err["code"], "code"), _text(err["message"], "message")
        if len(code) + len(message) > max_output_bytes:
            return Invocation.error(ErrorCode.INVALID_OUTPUT, "evaluator error larger than the output limit")
        return Invocation.error(ErrorCode.EVALUATOR_ERROR, f"{code}: {message}")

    evaluation = _fields(payload, ("outcome", "findings", "explanation"), "the evaluation")
    size = 0
    inv = Invocation(outcome="completed")
    case, value = _case(evaluation["outcome"], {"completed", "abstained"}, "the outcome")
    if case == "completed":
        kind, measured = _case(value, set(MEASUREMENT_KINDS), "the measurement")
        measurement = _measurement(kind, measured)
        if isinstance(measurement, float) and not math.isfinite(measurement):
            return Invocation.error(ErrorCode.INVALID_OUTPUT, f"numeric measurement {measurement} is not finite")
        inv.kind, inv.measurement = kind, measurement
        size += len(measurement) if isinstance(measurement, str) else 0
    else:
        abstention = _fields(value, ("category", "reason"), "the abstention")
        category = _text(abstention["category"], "category")
        reason = _optional_text(abstention["reason"], "reason")
        inv.outcome = "abstained"
        inv.abstention = {"category": category, "reason": reason}
        size += len(category) + len(reason or "")

    findings = evaluation["findings"]
    if not isinstance(findings, list):
        raise _Invalid("findings is not a list")
    for raw in findings:
        f = _fields(raw, ("severity", "category", "message", "evidence-json"), "a finding")
        severity = f["severity"]
        if severity not in SEVERITIES:
            return Invocation.error(ErrorCode.INVALID_OUTPUT, f"unknown finding severity {severity!r}")
        category, message = _text(f["category"], "category"), _text(f["message"], "message")
        evidence_raw = _optional_text(f["evidence-json"], "evidence-json")
        size += len(category) + len(message) + len(evidence_raw or "")
        evidence: Any = None
        if evidence_raw is not None:
            try:
                evidence = json.loads(evidence_raw)
            except ValueError:
                evidence = evidence_raw
        inv.findings.append({"severity": severity, "category": category, "message": message, "evidence": evidence})
    inv.explanation = _optional_text(evaluation["explanation"], "explanation")
    size += len(inv.explanation or "")
    if size > max_output_bytes:
        return Invocation.error(
            ErrorCode.INVALID_OUTPUT, f"output of {size} bytes exceeds the limit of {max_output_bytes} bytes"
        )
    return inv
