"""The run verdict (docs/architecture.md): the gate over every aggregated execution of a run, and why.

Pure functions over plain data: the executions' AggregateScores (gating.scoring), the profile's scorecard and how
the run's work went (Operational) make a JSON-serialisable verdict with stable reason and warning codes. A
reason fails the gate; a warning does not, it says the gate may be more lenient than meant. Each names its
examples twice, in the same order: `examples` by execution id (for links), `cases` by case id (for people).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from gating.normalize import EPSILON, number_show
from gating.profile import Binding, ProfileSpec, ScorecardGate
from gating.scoring import AggregateScore
from gating.trials import RunTrials, TrialOutcome, run_trials

REASON_RUN_CANCELLED = "run_cancelled"
REASON_CHUNKS_FAILED = "chunks_failed"
REASON_EXECUTIONS_MISSING = "executions_missing"
REASON_EXECUTIONS_ERRORED = "executions_errored"
REASON_EXECUTIONS_FAILED = "executions_failed"
REASON_SCORECARD_FAILED = "scorecard_failed"
REASON_SCORECARD_NO_MATCH = "scorecard_no_match"
REASON_TRIALS_FAILED = "trials_failed"
TRIAL_NAMES = {"min_pass_at_k": "pass@", "min_pass_hat_k": "pass^"}

WARNING_PASSED_WITH_FAILED_BINDINGS = "passed_with_failed_bindings"


@dataclass(frozen=True, kw_only=True)
class ExecutionSummary:
    execution_id: str
    case_id: str
    tags: tuple[str, ...]
    aggregate: AggregateScore


@dataclass(frozen=True, kw_only=True)
class Operational:
    """How the run's work went, independently of what the evaluators said."""

    expected_executions: int
    failed_chunks: int = 0
    cancelled: bool = False
    failure_reason: str | None = None


def verdict_compute(
    *,
    profile: ProfileSpec,
    executions: Sequence[ExecutionSummary],
    operational: Operational,
    trials: int = 1,
    max_examples: int = 5,
    worst: int = 10,
) -> dict[str, Any]:
    """The run gate and why: a JSON-serialisable verdict over every aggregated execution of a run.

    With `trials` > 1 (each case evaluated that many times) or trial rules in the profile's run_gate, the verdict
    has a `trials` section (gating.trials) and the rules (`min_pass_at_k`, `min_pass_hat_k`) replace the
    default "every execution passes"; a scorecard still applies to every execution."""
    ordered = sorted(executions, key=lambda execution: _id_key(execution.execution_id))
    ids = [execution.execution_id for execution in ordered]
    if len(set(ids)) != len(ids):
        raise ValueError("executions contain a duplicate execution_id")

    expected = operational.expected_executions
    by_status = {
        status: [e for e in ordered if e.aggregate.status == status] for status in ("passed", "failed", "error")
    }
    missing = max(expected - len(ordered), 0)
    counts = {
        "expected": expected,
        "aggregated": len(ordered),
        "passed": len(by_status["passed"]),
        "failed": len(by_status["failed"]),
        "error": len(by_status["error"]),
        "missing": missing,
    }

    reasons: list[dict[str, Any]] = []

    def reason(code: str, message: str, count: int, failing: Sequence[ExecutionSummary] = ()) -> None:
        reasons.append(_finding(code, message, count, failing[:max_examples]))

    suffix = f": {operational.failure_reason}" if operational.failure_reason else ""
    if operational.cancelled:
        reason(REASON_RUN_CANCELLED, f"the run was cancelled{suffix}", 1)
    if operational.failed_chunks > 0:
        reason(
            REASON_CHUNKS_FAILED,
            f"{operational.failed_chunks} chunk(s) failed{suffix}",
            operational.failed_chunks,
        )
    if missing:
        reason(
            REASON_EXECUTIONS_MISSING,
            f"{missing} of {expected} expected executions have no aggregate",
            missing,
        )
    if by_status["error"]:
        errored = by_status["error"]
        reason(
            REASON_EXECUTIONS_ERRORED,
            f"{len(errored)} of {len(ordered)} executions errored (a required binding did not complete)",
            len(errored),
            errored,
        )

    scorecard: list[dict[str, Any]] = []
    if profile.scorecard:
        for gate in profile.scorecard:
            entry, gate_reason = _scorecard_check(profile, gate, ordered)
            scorecard.append(entry)
            if gate_reason is not None:
                code, message, failing = gate_reason
                reason(code, message, len(failing), failing)
    stats = None
    if trials > 1 or profile.trial_rules:
        outcomes = (TrialOutcome(e.case_id, e.aggregate.status, e.aggregate.aggregate_score) for e in ordered)
        stats = run_trials(outcomes, k=trials)
        for rule, threshold in profile.trial_rules.items():
            observed = stats.observed(rule)
            if observed is not None and observed >= threshold - EPSILON:
                continue
            short = [case.case_id for case in stats.cases if case.value(rule) < 1.0]
            reason(
                REASON_TRIALS_FAILED,
                f"{TRIAL_NAMES[rule]}{trials} is {'-' if observed is None else f'{observed:.3f}'} over "
                f"{len(stats.cases)} cases, below {rule} {number_show(threshold)}",
                len(short),
                _first_trials(ordered, short),
            )
    if not profile.scorecard and not profile.trial_rules and by_status["failed"]:
        failed = by_status["failed"]
        reason(
            REASON_EXECUTIONS_FAILED,
            f"{len(failed)} of {len(ordered)} executions failed",
            len(failed),
            failed,
        )

    dimensions = {
        name: _metrics([_observe_dimension(profile, name, e) for e in _applying_dimension(profile, name, ordered)])
        for name in profile.dimensions
    }
    bindings = {
        binding.id: _metrics([_observe_binding(binding.id, e) for e in _applying_binding(binding, ordered)])
        for binding in profile.bindings
    }

    warnings: list[dict[str, Any]] = []
    lenient = [execution for execution in by_status["passed"] if _binding_failed(profile, execution)]
    if lenient:
        warnings.append(
            _finding(
                WARNING_PASSED_WITH_FAILED_BINDINGS,
                f"{len(lenient)} execution(s) passed although a binding failed ({_leniency(profile, lenient)})",
                len(lenient),
                lenient[:max_examples],
            )
        )

    worst_first = sorted(ordered, key=_badness)[: max(worst, 0)]
    extra = {"trials": _trials_section(profile, stats, max_examples)} if stats is not None else {}
    return {
        "gate": "fail" if reasons else "pass",
        "operational_failure": operational.cancelled or operational.failed_chunks > 0,
        "counts": counts,
        "dimensions": dimensions,
        "bindings": bindings,
        "scorecard": scorecard,
        "reasons": reasons,
        "warnings": warnings,
        "worst": [
            {
                "execution_id": execution.execution_id,
                "case_id": execution.case_id,
                "status": execution.aggregate.status,
                "aggregate_score": execution.aggregate.aggregate_score,
                "reasons": list(execution.aggregate.reasons),
            }
            for execution in worst_first
        ],
        **extra,
    }


def _first_trials(ordered: Sequence[ExecutionSummary], case_ids: Sequence[str]) -> list[ExecutionSummary]:
    """One execution per case in `case_ids` (its first trial that did not pass, else its first), in that order."""
    wanted = {case_id: None for case_id in case_ids}
    picked: dict[str, ExecutionSummary] = {}
    for execution in ordered:
        if execution.case_id not in wanted:
            continue
        current = picked.get(execution.case_id)
        if current is None or (current.aggregate.status == "passed" and execution.aggregate.status != "passed"):
            picked[execution.case_id] = execution
    return [picked[case_id] for case_id in case_ids if case_id in picked]


def _trials_section(profile: ProfileSpec, stats: RunTrials, max_examples: int) -> dict[str, Any]:
    flaky = stats.by_status("flaky")
    return {
        "k": stats.k,
        "cases": len(stats.cases),
        "pass_at_1": stats.pass_at_1,
        "pass_at_k": stats.pass_at_k,
        "pass_hat_k": stats.pass_hat_k,
        "passed_cases": len(stats.by_status("passed")),
        "failed_cases": len(stats.by_status("failed")),
        "flaky_cases": len(flaky),
        "flaky": [case.case_id for case in flaky[:max_examples]],
        "rules": [
            {
                "rule": rule,
                "threshold": threshold,
                "observed": stats.observed(rule),
                "holds": (observed := stats.observed(rule)) is not None and observed >= threshold - EPSILON,
            }
            for rule, threshold in profile.trial_rules.items()
        ],
    }


def _finding(code: str, message: str, count: int, examples: Sequence[ExecutionSummary]) -> dict[str, Any]:
    """A reason or a warning: its examples by execution id and, in the same order, by case id."""
    return {
        "code": code,
        "message": message,
        "count": count,
        "examples": [execution.execution_id for execution in examples],
        "cases": [execution.case_id for execution in examples],
    }


def _binding_failed(profile: ProfileSpec, execution: ExecutionSummary) -> bool:
    """Whether a required binding that applies to the execution judged it failed (a diagnostic one never counts)."""
    scores = execution.aggregate.binding_scores
    return any(
        binding.required
        and binding.applies_to(execution.tags)
        and binding.id in scores
        and scores[binding.id].passed is False
        for binding in profile.bindings
    )


def _leniency(profile: ProfileSpec, passed: Sequence[ExecutionSummary]) -> str:
    """Why executions with a failed binding passed: the minimum, and blocking failures that were not enforced."""
    why = f"min_execution_score {number_show(profile.min_execution_score)} lets them pass"
    if not profile.fail_on_any_blocking_failure and any(e.aggregate.blocking_failures for e in passed):
        why += "; fail_on_any_blocking_failure is false, so blocking failures do not fail them"
    return why


class _Observation(NamedTuple):
    """One execution seen through one scope (a dimension, a binding, or the execution as a whole).

    A NamedTuple rather than a frozen dataclass: a verdict makes one per execution and scope (60,000 for 10,000
    cases and three bindings), and a tuple is several times cheaper to create."""

    score: float | None
    passed: bool | None  # None when the scope has nothing to pass (a dimension without required bindings)
    errored: bool
    abstained: bool


def _observe_binding(binding_id: str, execution: ExecutionSummary) -> _Observation:
    scored = execution.aggregate.binding_scores.get(binding_id)
    if scored is None:
        return _Observation(score=None, passed=False, errored=True, abstained=False)
    return _Observation(
        score=scored.score,
        passed=scored.passed is True,
        errored=scored.outcome == "error",
        abstained=scored.outcome == "abstained",
    )


def _applying_binding(binding: Binding, executions: Sequence[ExecutionSummary]) -> Sequence[ExecutionSummary]:
    """The executions a binding applies to (its `when`)."""
    if binding.when_tags is None:
        return executions
    return [execution for execution in executions if binding.applies_to(execution.tags)]


def _applying_dimension(
    profile: ProfileSpec, name: str, executions: Sequence[ExecutionSummary]
) -> Sequence[ExecutionSummary]:
    """The executions a dimension applies to: those one of its bindings applies to (all, without bindings)."""
    members = [binding for binding in profile.bindings if binding.dimension == name]
    if not members or any(binding.when_tags is None for binding in members):
        return executions
    return [e for e in executions if any(binding.applies_to(e.tags) for binding in members)]


def _observe_dimension(profile: ProfileSpec, name: str, execution: ExecutionSummary) -> _Observation:
    members = [
        _observe_binding(binding.id, execution)
        for binding in profile.bindings
        if binding.dimension == name
        and binding.required
        and (binding.when_tags is None or binding.applies_to(execution.tags))
    ]
    return _Observation(
        score=execution.aggregate.dimension_scores.get(name),
        passed=all(member.passed for member in members) if members else None,
        errored=any(member.errored for member in members),
        abstained=any(member.abstained for member in members),
    )


def _observe_execution(profile: ProfileSpec, execution: ExecutionSummary) -> _Observation:
    required = [
        _observe_binding(binding.id, execution)
        for binding in profile.bindings
        if binding.required and (binding.when_tags is None or binding.applies_to(execution.tags))
    ]
    return _Observation(
        score=execution.aggregate.aggregate_score,
        passed=execution.aggregate.status == "passed",
        errored=execution.aggregate.status == "error",
        abstained=any(member.abstained for member in required),
    )


def _metrics(observations: Sequence[_Observation]) -> dict[str, Any]:
    count = len(observations)
    available = [observation.score for observation in observations if observation.score is not None]
    passes = [observation.passed for observation in observations]

    def rate(flags: Sequence[bool | None]) -> float | None:
        if not count or any(flag is None for flag in flags):
            return None
        return sum(1 for flag in flags if flag) / count

    return {
        "mean": math.fsum(available) / len(available) if available else None,
        "pass_rate": rate(passes),
        "error_rate": rate([observation.errored for observation in observations]),
        "abstention_rate": rate([observation.abstained for observation in observations]),
        "count": count,
    }


def _scorecard_check(
    profile: ProfileSpec, gate: ScorecardGate, ordered: Sequence[ExecutionSummary]
) -> tuple[dict[str, Any], tuple[str, str, list[ExecutionSummary]] | None]:
    # The executions of the gate's tag that its scope applies to: a binding's gate sees the cases it evaluated.
    matched: Sequence[ExecutionSummary] = [e for e in ordered if gate.tag is None or gate.tag in e.tags]
    scoped = profile.binding(gate.binding) if gate.binding is not None else None
    if scoped is not None:
        matched = _applying_binding(scoped, matched)
    elif gate.dimension is not None:
        matched = _applying_dimension(profile, gate.dimension, matched)
    pairs: list[tuple[ExecutionSummary, _Observation]]
    if gate.binding is not None:
        pairs = [(execution, _observe_binding(gate.binding, execution)) for execution in matched]
    elif gate.dimension is not None:
        pairs = [(execution, _observe_dimension(profile, gate.dimension, execution)) for execution in matched]
    else:
        pairs = [(execution, _observe_execution(profile, execution)) for execution in matched]
    metrics = _metrics([observation for _, observation in pairs])
    observed = {
        "mean_score": metrics["mean"],
        "pass_rate": metrics["pass_rate"],
        "error_rate": metrics["error_rate"],
        "abstention_rate": metrics["abstention_rate"],
    }
    thresholds = gate.thresholds

    misses: list[str] = []
    for name, threshold in thresholds.items():
        metric = name.removeprefix("min_").removeprefix("max_")
        value = observed[metric]
        if value is None:
            misses.append(f"{name}: no observed {metric} (threshold {number_show(threshold)})")
        elif name.startswith("min_") and value < threshold - EPSILON:
            misses.append(f"{name}: observed {metric} {number_show(value)} < {number_show(threshold)}")
        elif name.startswith("max_") and value > threshold + EPSILON:
            misses.append(f"{name}: observed {metric} {number_show(value)} > {number_show(threshold)}")

    entry = {
        "gate": gate.label,
        "holds": bool(matched) and not misses,
        "matched": len(matched),
        "observed": observed,
        "thresholds": dict(thresholds),
    }
    if not matched:
        return entry, (REASON_SCORECARD_NO_MATCH, f"scorecard gate '{gate.label}' matched no execution", [])
    if misses:
        failing = [execution for execution, observation in pairs if observation.passed is not True]
        message = f"scorecard gate '{gate.label}' does not hold: {'; '.join(misses)}"
        return entry, (REASON_SCORECARD_FAILED, message, failing)
    return entry, None


_STATUS_RANK = {"error": 0, "failed": 1, "passed": 2}


def _id_key(execution_id: str) -> tuple[int, int, str]:
    """Numeric ids in numeric order ("16" before "117"), others after them in text order."""
    return (0, int(execution_id), "") if execution_id.isdigit() else (1, 0, execution_id)


def _badness(execution: ExecutionSummary) -> tuple[int, float, tuple[int, int, str]]:
    """Errors first, then failures (a blocked execution with a high score is still a failure), then by score."""
    score = execution.aggregate.aggregate_score
    rank = _STATUS_RANK.get(execution.aggregate.status, 0)
    return (rank, -1.0 if score is None else score, _id_key(execution.execution_id))
