"""vigilo/tool-call: rules about the agent's tool calls: required and forbidden tools, argument schemas, call
counts and order constraints. Passes when no rule is violated; each violation is one finding."""

from __future__ import annotations

from vigilo_common import clip, evidence_value
from vigilo_sdk import Evaluator, EvaluatorError, binary, finding
from vigilo_sdk.schema import schema_check, schema_errors

NAMES = {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True}
RULES = ("required", "forbidden", "schemas", "counts", "order")

evaluator = Evaluator(
    name="vigilo/tool-call",
    version="1.0.0",
    description=(
        "Checks the agent's tool calls against rules: required and forbidden tools, a JSON Schema for each "
        "tool's arguments, call counts and order constraints. Passes when every rule holds."
    ),
    config_schema={
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "required": {**NAMES, "description": "Tools that must be called at least once."},
            "forbidden": {**NAMES, "description": "Tools that must not be called."},
            "schemas": {
                "type": "object",
                "additionalProperties": {"type": ["object", "boolean"]},
                "description": "Tool name -> JSON Schema every call's arguments must satisfy.",
            },
            "counts": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"min": {"type": "integer", "minimum": 0}, "max": {"type": "integer", "minimum": 0}},
                    "additionalProperties": False,
                    "minProperties": 1,
                },
                "description": "Tool name -> {min, max} number of calls.",
            },
            "order": {
                "type": "array",
                "items": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2},
                "description": "[[a, b], ...]: the first call of a comes before the first call of b.",
            },
        },
        "additionalProperties": False,
    },
)


def check_config(config: dict) -> None:
    if not any(config.get(rule) for rule in RULES):
        raise EvaluatorError("invalid_config", f"no rules: give at least one of {', '.join(RULES)}")
    for tool, schema in config.get("schemas", {}).items():
        problems = schema_check(schema)
        if problems:
            raise EvaluatorError("invalid_config", f"schemas.{tool}: {'; '.join(problems)}")
    for tool, bounds in config.get("counts", {}).items():
        if bounds.get("min", 0) > bounds.get("max", bounds.get("min", 0)):
            raise EvaluatorError("invalid_config", f"counts.{tool}: min is greater than max")


@evaluator.evaluate
def evaluate(case: dict, actual: dict, config: dict):
    check_config(config)
    calls = actual.get("tool_calls") or []
    names = [c["name"] for c in calls]
    positions: dict[str, list[int]] = {}
    for index, name in enumerate(names):
        positions.setdefault(name, []).append(index)
    findings = []

    for tool in config.get("required", []):
        if tool not in positions:
            findings.append(
                finding(
                    "high",
                    "required_tool_missing",
                    f"required tool {tool!r} was not called",
                    {"tool": tool, "called": sorted(positions)},
                )
            )
    for tool in config.get("forbidden", []):
        if tool in positions:
            at = positions[tool]
            findings.append(
                finding(
                    "high",
                    "forbidden_tool_called",
                    f"forbidden tool {tool!r} was called {len(at)} time(s), first as call {at[0]}",
                    {"tool": tool, "indexes": at},
                )
            )
    for tool, schema in config.get("schemas", {}).items():
        for index in positions.get(tool, []):
            arguments = calls[index].get("arguments")
            problems = schema_errors(arguments, schema)
            if problems:
                findings.append(
                    finding(
                        "medium",
                        "invalid_arguments",
                        f"call {index} {tool}: arguments do not match the schema: {clip('; '.join(problems))}",
                        {"tool": tool, "index": index, "arguments": evidence_value(arguments), "errors": problems[:10]},
                    )
                )
    for tool, bounds in config.get("counts", {}).items():
        count = len(positions.get(tool, []))
        low, high = bounds.get("min"), bounds.get("max")
        if (low is not None and count < low) or (high is not None and count > high):
            wanted = " and ".join(
                part
                for part in (
                    f"at least {low}" if low is not None else "",
                    f"at most {high}" if high is not None else "",
                )
                if part
            )
            findings.append(
                finding(
                    "medium",
                    "call_count",
                    f"tool {tool!r} was called {count} time(s); expected {wanted}",
                    {"tool": tool, "count": count, "min": low, "max": high},
                )
            )
    for first, second in config.get("order", []):
        a, b = positions.get(first), positions.get(second)
        # A constraint only speaks about calls that happened: use `required` to demand them.
        if b is not None and (a is None or a[0] > b[0]):
            message = (
                f"{second!r} (call {b[0]}) was called before {first!r} (call {a[0]})"
                if a is not None
                else f"{second!r} (call {b[0]}) was called without a preceding {first!r}"
            )
            findings.append(
                finding(
                    "medium",
                    "order_violation",
                    message,
                    {"before": first, "after": second, "first_index": a[0] if a else None, "second_index": b[0]},
                )
            )

    if not findings:
        return binary(True, explanation=f"all tool-call rules hold ({len(calls)} calls)")
    noun = "rule violation" if len(findings) == 1 else "rule violations"
    return binary(False, findings, f"{len(findings)} {noun}: {findings[0].message}")


WitWorld = evaluator.world()
