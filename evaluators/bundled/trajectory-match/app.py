"""vigilo/trajectory-match: the agent's tool-call trajectory against the expected one.

Trajectory modes (calls are matched one-to-one, so a call counts once):
- strict: the same calls in the same order;
- unordered: the same calls in any order (same multiset);
- subset: every actual call is one of the expected calls (the agent did nothing outside the plan);
- superset: every expected call appears among the actual calls (extra calls allowed).
Argument modes, per call and overridable per tool with `tool_args`: exact, ignore, subset (actual arguments
hold only keys/values of the expected ones), superset (actual arguments hold every expected key/value).
An expected call without "arguments" matches that tool with any arguments.
"""

from __future__ import annotations

from vigilo_common import EXPECTED_PATH_SCHEMA, bad_expected, canonical, clip, evidence_value, resolve_expected
from vigilo_sdk import Evaluator, binary, finding, numeric

ARG_MODES = ["exact", "ignore", "subset", "superset"]
MAX_FINDINGS = 20

evaluator = Evaluator(
    name="vigilo/trajectory-match",
    version="1.0.0",
    description=(
        "Compares the agent's tool calls (names and arguments) with the expected trajectory: strict, unordered, "
        "subset or superset; arguments exact, ignored, subset or superset, per tool."
    ),
    config_schema={
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "value": {
                "type": "array",
                "description": "The expected trajectory, [{name, arguments?}] (else from the case).",
            },
            "expected_path": EXPECTED_PATH_SCHEMA,
            "mode": {"enum": ["strict", "unordered", "subset", "superset"], "default": "strict"},
            "args": {"enum": ARG_MODES, "default": "exact", "description": "How arguments are compared."},
            "tool_args": {
                "type": "object",
                "additionalProperties": {"enum": ARG_MODES},
                "default": {},
                "description": 'Per-tool argument mode, e.g. {"search": "ignore"}.',
            },
            "score": {
                "enum": ["binary", "fraction"],
                "default": "binary",
                "description": "binary pass/fail, or the fraction of calls matched (numeric).",
            },
        },
        "additionalProperties": False,
    },
)


def same(want, got) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1 and key order does not matter."""
    if isinstance(want, bool) or isinstance(got, bool):
        return type(want) is type(got) and want == got
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return want == got
    if isinstance(want, dict) and isinstance(got, dict):
        return want.keys() == got.keys() and all(same(v, got[k]) for k, v in want.items())
    if isinstance(want, list) and isinstance(got, list):
        return len(want) == len(got) and all(same(w, g) for w, g in zip(want, got, strict=True))
    return type(want) is type(got) and want == got


def contained(small, big) -> bool:
    """Every key of `small` is in `big` with the same value (non-objects: plain equality)."""
    if not (isinstance(small, dict) and isinstance(big, dict)):
        return same(small, big)
    return all(k in big and same(v, big[k]) for k, v in small.items())


def args_problem(mode: str, want, got) -> str | None:
    """Why the arguments do not match under `mode`, or None."""
    if mode == "ignore":
        return None
    if mode == "exact":
        return None if same(want, got) else "arguments differ"
    if mode == "superset":
        if contained(want, got):
            return None
        if isinstance(want, dict) and isinstance(got, dict):
            missing = [k for k in want if k not in got]
            differ = [k for k in want if k in got and not same(want[k], got[k])]
            return "; ".join(
                part
                for part in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"different {', '.join(differ)}" if differ else "",
                )
                if part
            )
        return "arguments differ"
    # subset: the actual arguments use only expected keys, with the expected values
    if contained(got, want):
        return None
    if isinstance(want, dict) and isinstance(got, dict):
        extra = [k for k in got if k not in want]
        differ = [k for k in got if k in want and not same(want[k], got[k])]
        return "; ".join(
            part
            for part in (
                f"unexpected {', '.join(extra)}" if extra else "",
                f"different {', '.join(differ)}" if differ else "",
            )
            if part
        )
    return "arguments differ"


class Trajectory:
    def __init__(self, config: dict) -> None:
        self.default = config.get("args", "exact")
        self.per_tool = config.get("tool_args", {})

    def mode_for(self, name: str) -> str:
        return self.per_tool.get(name, self.default)

    def problem(self, want: dict, got: dict) -> str | None:
        """Why an actual call does not match an expected one, or None when it does."""
        if want["name"] != got["name"]:
            return f"tool {got['name']!r} instead of {want['name']!r}"
        if "arguments" not in want:
            return None
        mode = self.mode_for(want["name"])
        reason = args_problem(mode, want["arguments"], got.get("arguments"))
        return None if reason is None else f"{want['name']} arguments ({mode}): {reason}"

    def pairing(self, expected: list, actual: list) -> dict[int, int]:
        """A maximum one-to-one matching, expected index -> actual index (augmenting paths)."""
        edges = [[j for j, got in enumerate(actual) if self.problem(want, got) is None] for want in expected]
        owner: dict[int, int] = {}

        def augment(i: int, seen: set) -> bool:
            for j in edges[i]:
                if j in seen:
                    continue
                seen.add(j)
                if j not in owner or augment(owner[j], seen):
                    owner[j] = i
                    return True
            return False

        for i in range(len(expected)):
            augment(i, set())
        return {i: j for j, i in owner.items()}


def show(call: dict | None):
    if call is None:
        return None
    out = {"name": call["name"]}
    if "arguments" in call:
        out["arguments"] = evidence_value(call["arguments"])
    return out


def label(call: dict) -> str:
    if "arguments" not in call:
        return call["name"]
    return f"{call['name']}({clip(canonical(call['arguments']), 60)})"


def parse_expected(value, source: str) -> list[dict]:
    if not isinstance(value, list):
        raise bad_expected(source, f"the expected trajectory must be a list of calls, not {type(value).__name__}")
    calls = []
    for index, item in enumerate(value):
        if isinstance(item, str):
            item = {"name": item}  # noqa: PLW2901  (a bare name is shorthand for {"name": ...})
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise bad_expected(source, f"call {index} must be an object with a non-empty string 'name'")
        unknown = sorted(set(item) - {"name", "arguments"})
        if unknown:
            raise bad_expected(source, f"call {index} has unknown key(s) {', '.join(unknown)}")
        calls.append(dict(item))
    return calls


def strict_findings(traj: Trajectory, expected: list, actual: list) -> tuple[int, list]:
    matched = sum(1 for want, got in zip(expected, actual, strict=False) if traj.problem(want, got) is None)
    for index in range(max(len(expected), len(actual))):
        want = expected[index] if index < len(expected) else None
        got = actual[index] if index < len(actual) else None
        if want is None:
            message = f"call {index}: unexpected extra call {label(got)}"
        elif got is None:
            message = f"call {index}: expected {label(want)}, but the trajectory ended"
        else:
            reason = traj.problem(want, got)
            if reason is None:
                continue
            message = f"call {index}: {reason}"
        evidence = {"index": index, "expected": show(want), "actual": show(got)}
        evidence.update(expected_length=len(expected), actual_length=len(actual))
        return matched, [finding("medium", "trajectory_divergence", message, evidence)]
    return matched, []


def set_findings(traj: Trajectory, mode: str, expected: list, actual: list, pairs: dict) -> list:
    used = set(pairs.values())
    findings = []
    if mode in ("unordered", "superset"):
        for i, want in enumerate(expected):
            if i in pairs:
                continue
            near = next((j for j, got in enumerate(actual) if j not in used and got["name"] == want["name"]), None)
            evidence = {"expected_index": i, "expected": show(want)}
            message = f"expected call {i} {label(want)} was not made"
            if near is not None:
                evidence.update(actual_index=near, actual=show(actual[near]))
                message += f" (closest: call {near}, {traj.problem(want, actual[near])})"
            findings.append(finding("medium", "missing_call", message, evidence))
    if mode in ("unordered", "subset"):
        for j, got in enumerate(actual):
            if j not in used:
                findings.append(
                    finding(
                        "medium",
                        "unexpected_call",
                        f"call {j} {label(got)} is not in the expected trajectory",
                        {"actual_index": j, "actual": show(got)},
                    )
                )
    return findings


@evaluator.evaluate
def evaluate(case: dict, actual: dict, config: dict):
    value, source = resolve_expected(case, config)
    expected = parse_expected(value, source)
    calls = [{"name": c["name"], "arguments": c.get("arguments")} for c in actual.get("tool_calls") or []]
    mode = config.get("mode", "strict")
    fraction = config.get("score", "binary") == "fraction"
    traj = Trajectory(config)

    if not calls and expected:
        message = f"the agent made no tool calls; {len(expected)} expected, the first {label(expected[0])}"
        problem = finding("high", "no_tool_calls", message, {"index": 0, "expected": show(expected[0]), "actual": None})
        return numeric(0.0, [problem], message) if fraction else binary(False, [problem], message)

    if mode == "strict":
        matched, findings = strict_findings(traj, expected, calls)
        total = max(len(expected), len(calls))
    else:
        pairs = traj.pairing(expected, calls)
        matched = len(pairs)
        findings = set_findings(traj, mode, expected, calls, pairs)
        total = {"unordered": max(len(expected), len(calls)), "subset": len(calls), "superset": len(expected)}[mode]
    score = matched / total if total else 1.0
    explanation = f"{mode}: {matched} of {total} calls match"
    if findings:
        explanation += f"; first divergence: {findings[0].message}"
    if len(findings) > MAX_FINDINGS:
        explanation += f" ({len(findings)} findings, the first {MAX_FINDINGS} listed)"
        findings = findings[:MAX_FINDINGS]
    if fraction:
        return numeric(score, findings, explanation)
    return binary(not findings, findings, explanation)


WitWorld = evaluator.world()
