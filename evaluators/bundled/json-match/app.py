"""vigilo/json-match: how much of the expected JSON the output (JSON) matches, key by key."""

from __future__ import annotations

from vigilo_common import (
    CASE_SENSITIVE_SCHEMA,
    MISSING,
    canonical,
    clip,
    config_schema,
    evidence_value,
    get_path,
    resolve_actual,
    resolve_expected,
)
from vigilo_sdk import Evaluator, EvaluatorError, binary, finding, numeric

MAX_FINDINGS = 20
MAX_ELEMENTS = 5

evaluator = Evaluator(
    name="vigilo/json-match",
    version="1.0.0",
    description=(
        "Compares the output JSON with the expected JSON leaf key by leaf key; scores the fraction of "
        "compared keys that match (or pass/fail with score=binary)."
    ),
    config_schema=config_schema(
        {
            "value": {"description": "The expected JSON value (else from the case)."},
            "keys": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
                "description": "Dotted paths to compare, each counted once (default: all leaf keys).",
            },
            "ignore_extra_keys": {"type": "boolean", "default": True},
            "list_mode": {"enum": ["ordered", "same_elements", "subset", "superset"], "default": "ordered"},
            "numeric_tolerance": {"type": "number", "minimum": 0, "default": 0},
            "case_sensitive": CASE_SENSITIVE_SCHEMA,
            "score": {"enum": ["fraction", "binary"], "default": "fraction"},
        }
    ),
)


class Matcher:
    def __init__(self, config: dict) -> None:
        self.tolerance = config.get("numeric_tolerance", 0)
        self.case_sensitive = config.get("case_sensitive", True)
        self.ignore_extra = config.get("ignore_extra_keys", True)
        self.list_mode = config.get("list_mode", "ordered")

    def equal(self, want, got) -> bool:
        if isinstance(want, bool) or want is None:
            return type(got) is type(want) and got == want
        if isinstance(want, (int, float)):
            return isinstance(got, (int, float)) and not isinstance(got, bool) and abs(got - want) <= self.tolerance
        if isinstance(want, str):
            if not isinstance(got, str):
                return False
            return got == want if self.case_sensitive else got.casefold() == want.casefold()
        if isinstance(want, dict):
            if not isinstance(got, dict) or not all(k in got and self.equal(v, got[k]) for k, v in want.items()):
                return False
            return self.ignore_extra or all(k in want for k in got)
        if isinstance(want, list):
            return isinstance(got, list) and not self.list_problems(want, got)
        return want == got

    def unmatched(self, want: list, got: list) -> tuple[list, list]:
        """Greedy one-to-one pairing: (expected elements left unpaired, actual elements left unpaired)."""
        left = list(got)
        missing = []
        for item in want:
            index = next((i for i, other in enumerate(left) if self.equal(item, other)), None)
            if index is None:
                missing.append(item)
            else:
                left.pop(index)
        return missing, left

    def list_problems(self, want: list, got: list) -> dict:
        """Why two lists do not match under `list_mode` (empty when they match)."""
        mode = self.list_mode
        if mode == "ordered":
            if len(want) != len(got):
                return {"expected_length": len(want), "actual_length": len(got)}
            at = next((i for i, (w, g) in enumerate(zip(want, got, strict=True)) if not self.equal(w, g)), None)
            return {} if at is None else {"first_difference_at": at}
        if mode == "same_elements":
            missing, unexpected = self.unmatched(want, got)
        elif mode == "subset":
            missing, unexpected = [], [g for g in got if not any(self.equal(w, g) for w in want)]
        else:  # superset
            missing, unexpected = [w for w in want if not any(self.equal(w, g) for g in got)], []
        problems = {}
        if missing:
            problems["missing"] = [evidence_value(v) for v in missing[:MAX_ELEMENTS]]
        if unexpected:
            problems["unexpected"] = [evidence_value(v) for v in unexpected[:MAX_ELEMENTS]]
        return problems


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def show(value) -> str:
    return clip(canonical(value), 80)


def compare_leaf(matcher: Matcher, path: str, want, got, results: list) -> None:
    shown = path or "$"
    if got is MISSING:
        results.append(
            (
                False,
                f"{shown}: missing (expected {show(want)})",
                {"path": shown, "expected": evidence_value(want)},
            )
        )
        return
    if matcher.equal(want, got):
        results.append((True, None, None))
        return
    evidence = {"path": shown, "expected": evidence_value(want), "actual": evidence_value(got)}
    if isinstance(want, list) and isinstance(got, list):
        evidence["list_mode"] = matcher.list_mode
        evidence.update(matcher.list_problems(want, got))
    results.append((False, f"{shown}: expected {show(want)}, got {show(got)}", evidence))


def walk(matcher: Matcher, path: str, want, got, results: list) -> None:
    """One result per leaf key of `want` (a non-empty object is descended into; anything else is a leaf)."""
    if not (isinstance(want, dict) and want):
        compare_leaf(matcher, path, want, got, results)
        return
    if isinstance(got, dict) and not matcher.ignore_extra:
        for key, value in got.items():
            if key not in want:
                where = join(path, key)
                results.append(
                    (
                        False,
                        f"{where}: unexpected key (value {show(value)})",
                        {"path": where, "actual": evidence_value(value)},
                    )
                )
    for key, value in want.items():
        walk(
            matcher,
            join(path, key),
            value,
            got.get(key, MISSING) if isinstance(got, dict) else MISSING,
            results,
        )


@evaluator.evaluate
def evaluate(case: dict, actual: dict, config: dict):
    expected, source = resolve_expected(case, config)
    binary_score = config.get("score", "fraction") == "binary"
    output, problem = resolve_actual(actual, config, mode="json")
    if problem is not None:
        fail = binary(False, [problem], problem.message) if binary_score else numeric(0.0, [problem], problem.message)
        return fail
    matcher = Matcher(config)
    results: list = []
    if "keys" in config:
        for key in config["keys"]:
            want = get_path(expected, key)
            if want is MISSING:
                raise EvaluatorError("missing_expected", f"{source} has no value at key {key!r}")
            compare_leaf(matcher, key, want, get_path(output, key), results)
    else:
        walk(matcher, "", expected, output, results)
    matched = sum(1 for ok, _, _ in results if ok)
    failures = [(message, evidence) for ok, message, evidence in results if not ok]
    findings = [finding("medium", "mismatch", message, evidence) for message, evidence in failures[:MAX_FINDINGS]]
    explanation = f"{matched} of {len(results)} compared keys match"
    if len(failures) > MAX_FINDINGS:
        explanation += f" ({len(failures)} mismatches, the first {MAX_FINDINGS} listed)"
    if binary_score:
        return binary(not failures, findings, explanation)
    return numeric(matched / len(results), findings, explanation)


WitWorld = evaluator.world()
