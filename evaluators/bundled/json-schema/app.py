"""vigilo/json-schema: the output (JSON) conforms to a JSON Schema."""

from __future__ import annotations

from vigilo_common import bad_expected, config_schema, evidence_value, resolve_actual, resolve_expected
from vigilo_sdk import Evaluator, EvaluatorError, binary, finding
from vigilo_sdk.schema import schema_check, schema_errors

MAX_LISTED = 10

evaluator = Evaluator(
    name="vigilo/json-schema",
    version="1.0.0",
    description="Passes when the output, parsed as JSON, is valid against the JSON Schema.",
    config_schema=config_schema(
        {"value": {"type": ["object", "boolean"], "description": "The JSON Schema (else from the case)."}}
    ),
)


@evaluator.evaluate
def evaluate(case: dict, actual: dict, config: dict):
    schema, source = resolve_expected(case, config)
    if not isinstance(schema, (dict, bool)):
        raise bad_expected(source, "a JSON Schema must be an object or a boolean")
    problems = schema_check(schema)
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise EvaluatorError("invalid_config", f"{source}: invalid JSON Schema: {'; '.join(problems[:5])}{more}")
    value, problem = resolve_actual(actual, config, mode="json")
    if problem is not None:
        return binary(False, [problem], explanation=problem.message)
    errors = schema_errors(value, schema)
    if not errors:
        return binary(True)
    findings = [finding("medium", "schema_violation", error) for error in errors[:MAX_LISTED]]
    if len(errors) > MAX_LISTED:
        findings.append(finding("info", "schema_violation", f"{len(errors) - MAX_LISTED} more schema errors not shown"))
    findings[0].evidence = {"errors": len(errors), "output": evidence_value(value)}
    s = "s" if len(errors) > 1 else ""
    return binary(False, findings, explanation=f"output violates the JSON Schema ({len(errors)} error{s})")


WitWorld = evaluator.world()
