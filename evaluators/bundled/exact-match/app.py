"""vigilo/exact-match: the output equals the expected string (after optional normalisation)."""

from __future__ import annotations

import re

from vigilo_common import (
    CASE_SENSITIVE_SCHEMA,
    as_text,
    clip,
    config_schema,
    resolve_actual,
    resolve_expected,
)
from vigilo_sdk import Evaluator, binary, finding

evaluator = Evaluator(
    name="vigilo/exact-match",
    version="1.0.0",
    description="Passes when the output equals the expected value (non-strings compared as canonical JSON).",
    config_schema=config_schema(
        {
            "value": {"description": "The expected value (a string, or any JSON value compared as canonical JSON)."},
            "case_sensitive": CASE_SENSITIVE_SCHEMA,
            "strip": {"type": "boolean", "default": True, "description": "Ignore surrounding whitespace."},
            "normalize_whitespace": {
                "type": "boolean",
                "default": False,
                "description": "Collapse each run of whitespace into one space.",
            },
        }
    ),
)


def normalize(text: str, config: dict) -> str:
    if config.get("normalize_whitespace", False):
        text = re.sub(r"\s+", " ", text)
    if config.get("strip", True):
        text = text.strip()
    if not config.get("case_sensitive", True):
        text = text.casefold()
    return text


@evaluator.evaluate
def evaluate(case: dict, actual: dict, config: dict):
    expected, _ = resolve_expected(case, config)
    output, problem = resolve_actual(actual, config)
    if problem is not None:
        return binary(False, [problem], explanation=problem.message)
    want, got = normalize(as_text(expected), config), normalize(output, config)
    if want == got:
        return binary(True)
    at = next((i for i, (a, b) in enumerate(zip(want, got, strict=False)) if a != b), min(len(want), len(got)))
    evidence = {"expected": clip(want), "actual": clip(got), "first_difference_at": at}
    message = f"output does not match the expected value (first difference at character {at})"
    return binary(False, [finding("medium", "mismatch", message, evidence)], explanation=message)


WitWorld = evaluator.world()
