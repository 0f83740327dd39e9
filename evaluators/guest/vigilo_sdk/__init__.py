"""Guest-side SDK for Vigilo evaluators written in Python (built with componentize-py).

An evaluator module declares an :class:`Evaluator`, registers one ``evaluate(case, actual, config)``
function with it, and exports ``WitWorld = evaluator.world()``. The SDK turns the WIT records into
plain dicts (JSON fields decoded), validates the binding config against the declared JSON Schema, and
turns the returned measurement back into WIT records. The same function runs natively through
:meth:`Evaluator.run`, which is how evaluator logic is unit-tested without a build.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vigilo_sdk.schema import schema_errors

SEVERITIES = ("info", "low", "medium", "high", "critical")
LEVELS = ("debug", "info", "warn", "error")


class EvaluatorError(Exception):
    """Raise to end the evaluation with an `evaluator-error` (bad config, unusable input)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class Finding:
    severity: str
    category: str
    message: str
    evidence: Any = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")


@dataclass
class Evaluation:
    kind: str  # binary | numeric | ordinal | abstained
    value: Any
    findings: list[Finding] = field(default_factory=list)
    explanation: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"findings": [f.__dict__ for f in self.findings], "explanation": self.explanation}
        if self.kind == "abstained":
            out.update(outcome="abstained", abstention=self.value)
        else:
            out.update(outcome="completed", kind=self.kind, value=self.value)
        return out


def finding(severity: str, category: str, message: str, evidence: Any = None) -> Finding:
    return Finding(severity, category, message, evidence)


def binary(value: bool, findings: list[Finding] | None = None, explanation: str | None = None) -> Evaluation:
    return Evaluation("binary", bool(value), list(findings or []), explanation)


def numeric(value: float, findings: list[Finding] | None = None, explanation: str | None = None) -> Evaluation:
    return Evaluation("numeric", float(value), list(findings or []), explanation)


def ordinal(label: str, findings: list[Finding] | None = None, explanation: str | None = None) -> Evaluation:
    return Evaluation("ordinal", str(label), list(findings or []), explanation)


def abstain(category: str, reason: str | None = None, findings: list[Finding] | None = None) -> Evaluation:
    return Evaluation("abstained", {"category": category, "reason": reason}, list(findings or []), None)


_log_sink: Callable[[str, str], None] | None = None


def log(level: str, message: str) -> None:
    """Write a log line into the execution record (the host caps count and size)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    if _log_sink is not None:
        _log_sink(level, message)


class ModelError(Exception):
    """The host refused or failed a model call; the message says why."""


def complete(
    model: str,
    messages: list[dict[str, str]],
    *,
    response_schema: dict[str, Any] | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> dict[str, Any]:
    """Ask the host for a chat completion (needs the `model-evaluator` world and a binding grant).

    Returns {"content", "model", "input_tokens", "output_tokens", "cached"}; raises ModelError.
    """
    from componentize_py_types import Err
    from wit_world.imports import model as wit_model

    request = wit_model.CompletionRequest(
        model,
        json.dumps(messages),
        None if response_schema is None else json.dumps(response_schema),
        temperature,
        max_tokens,
    )
    try:
        done = wit_model.complete(request)
    except Err as exc:
        raise ModelError(str(exc.value)) from None
    return {
        "content": done.content,
        "model": done.model,
        "input_tokens": done.input_tokens,
        "output_tokens": done.output_tokens,
        "cached": done.cached,
    }


def _loads(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise EvaluatorError("invalid_input", f"{what} is not valid JSON: {exc}") from None


class Evaluator:
    def __init__(
        self, *, name: str, version: str, description: str, config_schema: dict[str, Any] | None = None
    ) -> None:
        self.name = name
        self.version = version
        self.description = description
        self.config_schema = config_schema
        self._fn: Callable[[dict, dict, dict], Evaluation] | None = None

    def evaluate(self, fn: Callable[[dict, dict, dict], Evaluation]) -> Callable[[dict, dict, dict], Evaluation]:
        self._fn = fn
        return fn

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "config_schema": self.config_schema,
        }

    def run(self, *, case: dict[str, Any], actual: dict[str, Any], config: Any) -> Evaluation:
        """Validate the config and call the evaluator function on plain data."""
        if self._fn is None:
            raise RuntimeError("no evaluate function registered")
        if config is None:
            config = {}
        if self.config_schema is not None:
            problems = schema_errors(config, self.config_schema)
            if problems:
                raise EvaluatorError("invalid_config", "; ".join(problems))
        result = self._fn(case, actual, config)
        if not isinstance(result, Evaluation):
            raise EvaluatorError("internal", f"evaluate returned {type(result).__name__}, not an Evaluation")
        return result

    def world(self) -> type:
        """The `WitWorld` class componentize-py exports; imports the generated bindings lazily."""
        import wit_world
        from componentize_py_types import Err
        from wit_world.imports import log as wit_log
        from wit_world.imports import types as t

        evaluator = self

        def sink(level: str, message: str) -> None:
            wit_log.write(getattr(wit_log.Level, level.upper()), message)

        def to_case(tc: Any) -> dict[str, Any]:
            return {
                "id": tc.id,
                "input": _loads(tc.input_json, "input"),
                "expected": _loads(tc.expected_json, "expected"),
                "context": _loads(tc.context_json, "context"),
                "tags": list(tc.tags),
                "metadata": _loads(tc.metadata_json, "metadata") or {},
            }

        def to_actual(ao: Any) -> dict[str, Any]:
            return {
                "text": ao.text,
                "structured": _loads(ao.structured_json, "output.structured"),
                "tool_calls": [
                    {
                        "name": c.name,
                        "arguments": _loads(c.arguments_json, f"tool call {c.name!r} arguments"),
                        "result": _loads(c.result_json, f"tool call {c.name!r} result"),
                    }
                    for c in ao.tool_calls
                ],
                "trace": [
                    {"kind": e.kind, "name": e.name, "payload": _loads(e.payload_json, "trace payload")}
                    for e in ao.trace
                ],
                "metadata": _loads(ao.metadata_json, "output.metadata") or {},
            }

        def to_wit(result: Evaluation) -> Any:
            if result.kind == "binary":
                outcome = t.Outcome_Completed(t.Measurement_Binary(result.value))
            elif result.kind == "numeric":
                outcome = t.Outcome_Completed(t.Measurement_Numeric(result.value))
            elif result.kind == "ordinal":
                outcome = t.Outcome_Completed(t.Measurement_Ordinal(result.value))
            else:
                outcome = t.Outcome_Abstained(t.Abstention(result.value["category"], result.value.get("reason")))
            findings = [
                t.Finding(
                    getattr(t.Severity, f.severity.upper()),
                    f.category,
                    f.message,
                    None if f.evidence is None else json.dumps(f.evidence, default=str),
                )
                for f in result.findings
            ]
            return t.Evaluation(outcome, findings, result.explanation)

        class WitWorld(wit_world.WitWorld):
            def describe(self) -> Any:
                schema = evaluator.config_schema
                return t.EvaluatorInfo(
                    evaluator.name,
                    evaluator.version,
                    evaluator.description,
                    None if schema is None else json.dumps(schema),
                )

            def evaluate(self, input: Any) -> Any:  # noqa: A002  (name fixed by the contract)
                global _log_sink
                _log_sink = sink
                try:
                    config = _loads(input.config_json, "config")
                    result = evaluator.run(case=to_case(input.test_case), actual=to_actual(input.actual), config=config)
                except EvaluatorError as exc:
                    raise Err(t.EvaluatorError(exc.code, exc.message)) from None
                return to_wit(result)

        return WitWorld
