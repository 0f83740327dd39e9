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

# Bounds the bit-parallel loop well inside the sandbox's default fuel (2e9): 5000 x 5000 takes under half of it.
MAX_CHARS = 5_000

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
    """Levenshtein distance (insert, delete, substitute; cost 1 each).

    Myers' bit-parallel algorithm in Hyyro's formulation for global edit distance: one column of the DP
    matrix is held as vertical +1/-1 delta bit vectors over the longer string (Python ints of any width),
    and each character of the shorter string updates the whole column with a dozen big-int operations.
    The O(n*m) cell-by-cell loop costs too much fuel in the sandbox beyond ~900 characters.
    """
    start = 0
    while start < len(a) and start < len(b) and a[start] == b[start]:
        start += 1
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a -= 1
        end_b -= 1
    a, b = a[start:end_a], b[start:end_b]
    # The pattern (bit vectors) is the longer string, so the interpreted loop runs over the shorter one.
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    peq: dict[str, int] = {}
    for i, char in enumerate(a):
        peq[char] = peq.get(char, 0) | (1 << i)
    mask = (1 << len(a)) - 1
    last = 1 << (len(a) - 1)
    plus, minus = mask, 0  # vertical deltas of the column: all +1 (D[i][0] = i)
    score = len(a)
    for char in b:
        eq = peq.get(char, 0)
        xv = eq | minus
        xh = (((eq & plus) + plus) ^ plus) | eq
        h_plus = minus | ~(xh | plus)
        h_minus = plus & xh
        if h_plus & last:
            score += 1
        elif h_minus & last:
            score -= 1
        h_plus = (h_plus << 1) | 1  # row 0 grows by one per column: a +1 delta enters at the top
        h_minus <<= 1
        plus = (h_minus | ~(xv | h_plus)) & mask
        minus = h_plus & xv & mask
    return score


def prepare(text: str, config: dict, what: str) -> str:
    if len(text) > MAX_CHARS:
        raise EvaluatorError("input_too_large", f"{what} has {len(text)} characters; the limit is {MAX_CHARS}")
    if config.get("strip", True):
        text = text.strip()
    if not config.get("case_sensitive", True):
        text = text.casefold()
        if len(text) > MAX_CHARS:  # case folding can lengthen text ("ß" -> "ss")
            raise EvaluatorError(
                "input_too_large",
                f"{what} has {len(text)} characters after case folding; the limit is {MAX_CHARS}",
            )
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
