"""vigilo/contains: the output contains all / any / none of the expected substrings."""

from __future__ import annotations

from vigilo_common import (
    CASE_SENSITIVE_SCHEMA,
    bad_expected,
    clip,
    config_schema,
    resolve_actual,
    resolve_expected,
)
from vigilo_sdk import Evaluator, binary, finding

MAX_LISTED = 20

evaluator = Evaluator(
    name="vigilo/contains",
    version="1.0.0",
    description="Passes when the output contains all (or any, or none) of the expected substrings.",
    config_schema=config_schema(
        {
            "value": {
                "description": "A substring or a list of substrings.",
                "anyOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"type": "string"}, "minItems": 1},
                ],
            },
            "mode": {
                "enum": ["all", "any", "none"],
                "default": "all",
                "description": "all: every substring must appear; any: at least one; none: none may appear.",
            },
            "case_sensitive": CASE_SENSITIVE_SCHEMA,
        }
    ),
)


def needles_of(expected, source: str) -> list[str]:
    needles = [expected] if isinstance(expected, str) else expected
    if not isinstance(needles, list) or not all(isinstance(n, str) for n in needles):
        raise bad_expected(source, "must be a string or a list of strings")
    if not needles:
        raise bad_expected(source, "the list of substrings is empty")
    return needles


@evaluator.evaluate
def evaluate(case: dict, actual: dict, config: dict):
    expected, source = resolve_expected(case, config)
    needles = needles_of(expected, source)
    output, problem = resolve_actual(actual, config)
    if problem is not None:
        return binary(False, [problem], explanation=problem.message)
    mode = config.get("mode", "all")
    if config.get("case_sensitive", True):
        present = [n for n in needles if n in output]
    else:
        folded = output.casefold()
        present = [n for n in needles if n.casefold() in folded]
    missing = [n for n in needles if n not in present]

    def listed(items: list[str]) -> list[str]:
        return [clip(n) for n in items[:MAX_LISTED]]

    if mode == "all" and missing:
        message = f"output is missing {len(missing)} of {len(needles)} expected substrings"
        evidence = {"mode": mode, "missing": listed(missing), "output": clip(output)}
        return binary(False, [finding("medium", "missing_content", message, evidence)], explanation=message)
    if mode == "any" and not present:
        message = f"output contains none of the {len(needles)} expected substrings"
        evidence = {"mode": mode, "missing": listed(missing), "output": clip(output)}
        return binary(False, [finding("medium", "missing_content", message, evidence)], explanation=message)
    if mode == "none" and present:
        message = f"output contains {len(present)} forbidden substring{'s' if len(present) > 1 else ''}"
        evidence = {"mode": mode, "present": listed(present), "output": clip(output)}
        return binary(False, [finding("high", "forbidden_content", message, evidence)], explanation=message)
    return binary(True)


WitWorld = evaluator.world()
