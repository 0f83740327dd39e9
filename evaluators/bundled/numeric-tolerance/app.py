"""vigilo/numeric-tolerance: the number in the output is within tolerance of the expected number."""

from __future__ import annotations

import math
import re

from vigilo_common import bad_expected, clip, config_schema, evidence_value, resolve_actual, resolve_expected
from vigilo_sdk import Evaluator, EvaluatorError, binary, finding

# A minus sign counts only when it is not glued to a word ("order A-1234" holds no number -1234).
NUMBER = re.compile(r"(?<![\w-])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
STRICT = re.compile(r"\s*-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\s*")

evaluator = Evaluator(
    name="vigilo/numeric-tolerance",
    version="1.0.0",
    description=(
        "Passes when the number in the output (a JSON number, or the first number in the text) is within "
        "max(abs_tol, rel_tol * |expected|) of the expected number."
    ),
    config_schema=config_schema(
        {
            "value": {"type": "number", "description": "The expected number (else from the case)."},
            "abs_tol": {"type": "number", "minimum": 0, "default": 0},
            "rel_tol": {"type": "number", "minimum": 0, "default": 0},
            "pattern": {
                "type": "string",
                "description": "Regex locating the number; its first group (else the match) is used.",
            },
        }
    ),
)


def parse_number(text: str) -> int | float | None:
    """An int or a finite float from strict decimal notation, else None."""
    if not STRICT.fullmatch(text):
        return None
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    number = float(text)
    return number if math.isfinite(number) else None


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@evaluator.evaluate
def evaluate(case: dict, actual: dict, config: dict):
    expected, source = resolve_expected(case, config)
    if isinstance(expected, str) and parse_number(expected) is not None:
        expected = parse_number(expected)
    if not is_number(expected):
        raise bad_expected(source, f"expected a number, got {clip(repr(expected), 80)}")
    locator = NUMBER
    if "pattern" in config:
        try:
            locator = re.compile(config["pattern"])
        except re.error as exc:
            raise EvaluatorError("invalid_config", f"invalid pattern {config['pattern']!r}: {exc}") from None
    output, problem = resolve_actual(actual, config, mode="raw")
    if problem is not None:
        return binary(False, [problem], explanation=problem.message)
    if is_number(output):
        got = output
    elif isinstance(output, str):
        match = locator.search(output)
        if match is None:
            message = "no number found in the output"
            evidence = {"output": clip(output), "pattern": locator.pattern}
            return binary(False, [finding("medium", "no_number", message, evidence)], explanation=message)
        captured = match.group(1) if locator.groups else match.group(0)
        got = parse_number(captured or "")
        if got is None:
            message = f"the text matched by the pattern is not a number: {clip(repr(captured), 80)}"
            evidence = {"output": clip(output), "pattern": locator.pattern, "matched": clip(captured or "")}
            return binary(False, [finding("medium", "no_number", message, evidence)], explanation=message)
    else:
        message = "the output is not a number"
        evidence = {"output": evidence_value(output)}
        return binary(False, [finding("medium", "no_number", message, evidence)], explanation=message)
    allowed = max(config.get("abs_tol", 0), config.get("rel_tol", 0) * abs(expected))
    difference = abs(got - expected)
    if difference <= allowed:
        return binary(True)
    message = f"{got} differs from the expected {expected} by {difference:g} (allowed: {allowed:g})"
    evidence = {"expected": expected, "actual": got, "difference": difference, "allowed": allowed}
    return binary(False, [finding("medium", "out_of_tolerance", message, evidence)], explanation=message)


WitWorld = evaluator.world()
