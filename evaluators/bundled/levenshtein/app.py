"""vigilo/levenshtein: similarity of the output to the expected string, 1 - distance / longer length."""

from __future__ import annotations

from vigilo_common import (
    CASE_SENSITIVE_SCHEMA,
    as_text,
    clip,
    config_schema,
    resolve_actual,
    resolve_expected,
)
from vigilo_sdk import Evaluator, EvaluatorError, finding, numeric

MAX_CHARS = 10_000

evaluator = Evaluator(
    name="vigilo/levenshtein",
    version="1.0.0",
    description=(
        "Scores 1 - levenshtein_distance / max(len(output), len(expected)) in [0, 1] "
        "(non-string expectations as canonical JSON)."
    ),
    config_schema=config_schema(
        {
            "value": {"description": "The expected value (a string, or any JSON value compared as canonical JSON)."},
            "case_sensitive": CASE_SENSITIVE_SCHEMA,
            "strip": {"type": "boolean", "default": True, "description": "Ignore surrounding whitespace."},
        }
    ),
)


def distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute; cost 1 each): O(n*m) time, two rows."""
    start = 0
    while start < len(a) and start < len(b) and a[start] == b[start]:
        start += 1
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a -= 1
        end_b -= 1
    a, b = a[start:end_a], b[start:end_b]
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    # The inner loop avoids min() and index arithmetic: every cell costs fuel in the sandbox.
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        append = current.append
        diagonal, left = i - 1, i
        for cb, up in zip(b, previous[1:], strict=True):
            if ca == cb:
                left = diagonal  # never worse than an insertion or a deletion
            else:
                if up < left:  # noqa: PLR1730  (min() costs a call per cell)
                    left = up
                if diagonal < left:  # noqa: PLR1730
                    left = diagonal
                left += 1
            append(left)
            diagonal = up
        previous = current
    return previous[-1]


def prepare(text: str, config: dict, what: str) -> str:
    if len(text) > MAX_CHARS:
        raise EvaluatorError("input_too_large", f"{what} has {len(text)} characters; the limit is {MAX_CHARS}")
    if config.get("strip", True):
        text = text.strip()
    if not config.get("case_sensitive", True):
        text = text.casefold()
    return text


@evaluator.evaluate
def evaluate(case: dict, actual: dict, config: dict):
    expected, source = resolve_expected(case, config)
    want = prepare(as_text(expected), config, source)
    output, problem = resolve_actual(actual, config)
    if problem is not None:
        return numeric(0.0, [problem], explanation=problem.message)
    got = prepare(output, config, "the output")
    longest = max(len(want), len(got))
    edits = distance(want, got)
    similarity = 1.0 if longest == 0 else 1.0 - edits / longest
    if edits == 0:
        return numeric(1.0)
    message = f"output differs from the expected value: edit distance {edits} (similarity {similarity:.3f})"
    evidence = {"distance": edits, "similarity": similarity, "expected": clip(want), "actual": clip(got)}
    return numeric(similarity, [finding("low", "difference", message, evidence)], explanation=message)


WitWorld = evaluator.world()
