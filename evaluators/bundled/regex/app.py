"""vigilo/regex: the output matches (or, negated, does not match) a regular expression."""

from __future__ import annotations

import re

from vigilo_common import bad_expected, clip, config_schema, resolve_actual, resolve_expected
from vigilo_sdk import Evaluator, EvaluatorError, binary, finding

FLAGS = {"ignorecase": re.IGNORECASE, "multiline": re.MULTILINE, "dotall": re.DOTALL}

evaluator = Evaluator(
    name="vigilo/regex",
    version="1.0.0",
    description="Passes when the output matches the pattern (Python `re` syntax), or does not when negated.",
    config_schema=config_schema(
        {
            "value": {"type": "string", "description": "The pattern."},
            "flags": {"type": "array", "items": {"enum": sorted(FLAGS)}, "uniqueItems": True, "default": []},
            "mode": {"enum": ["search", "fullmatch"], "default": "search"},
            "negate": {
                "type": "boolean",
                "default": False,
                "description": "Pass when the output does NOT match.",
            },
        }
    ),
)


@evaluator.evaluate
def evaluate(case: dict, actual: dict, config: dict):
    pattern, source = resolve_expected(case, config)
    if not isinstance(pattern, str):
        raise bad_expected(source, "the pattern must be a string")
    flags = config.get("flags", [])
    bits = 0
    for name in flags:
        bits |= FLAGS[name]
    try:
        compiled = re.compile(pattern, bits)
    except re.error as exc:
        raise EvaluatorError("invalid_config", f"{source}: invalid pattern {pattern!r}: {exc}") from None
    output, problem = resolve_actual(actual, config)
    if problem is not None:
        return binary(False, [problem], explanation=problem.message)
    mode = config.get("mode", "search")
    match = compiled.fullmatch(output) if mode == "fullmatch" else compiled.search(output)
    negate = config.get("negate", False)
    if (match is not None) != negate:
        return binary(True)
    evidence = {"pattern": clip(pattern), "mode": mode, "flags": list(flags), "output": clip(output)}
    if negate:
        evidence.update(match=clip(match.group(0)), at=match.start())
        message = f"output matches the forbidden pattern at character {match.start()}"
        return binary(False, [finding("medium", "forbidden_pattern", message, evidence)], explanation=message)
    message = "output does not fully match the pattern" if mode == "fullmatch" else "output does not match the pattern"
    return binary(False, [finding("medium", "pattern_mismatch", message, evidence)], explanation=message)


WitWorld = evaluator.world()
