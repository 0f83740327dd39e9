"""Gate math (DESIGN section 5): normalization, judgments, execution aggregates and the run verdict.

Pure functions over plain data. Evaluators measure; these functions score. Nothing here clamps: a measurement
outside its declared domain is an error the user has to see, not a score that quietly looks plausible.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from gating.profile import Binding, Normalization, ProfileSpec, ScorecardGate

MeasurementKind = Literal["binary", "numeric", "ordinal"]
Outcome = Literal["completed", "abstained", "error"]
ExecutionStatus = Literal["passed", "failed", "error"]

# Scores are floats computed from user numbers; 0.1 + 0.2 must still pass a 0.3 threshold.
EPSILON = 1e-9

MISSING_RESULT = "missing_result"
NORMALIZATION_ERROR = "normalization_error"
INVALID_OUTCOME = "invalid_outcome"

REASON_RUN_CANCELLED = "run_cancelled"
REASON_CHUNKS_FAILED = "chunks_failed"
REASON_EXECUTIONS_MISSING = "executions_missing"
REASON_EXECUTIONS_ERRORED = "executions_errored"
REASON_EXECUTIONS_FAILED = "executions_failed"
REASON_SCORECARD_FAILED = "scorecard_failed"
REASON_SCORECARD_NO_MATCH = "scorecard_no_match"


class NormalizationError(ValueError):
    """A measurement that cannot be scored under its binding's normalization."""


@dataclass(frozen=True, kw_only=True)
class BindingOutcome:
    """What an evaluator reported for one binding: a measurement, an abstention, or an error."""

    outcome: Outcome
    kind: MeasurementKind | None = None
    value: bool | float | str | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True, kw_only=True)
class BindingScore:
    binding_id: str
    outcome: Outcome
    score: float | None = None
    passed: bool | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True, kw_only=True)
class AggregateScore:
    status: ExecutionStatus
    aggregate_score: float | None
    dimension_scores: dict[str, float | None]
    binding_scores: dict[str, BindingScore]
    blocking_failures: tuple[str, ...]
    reasons: tuple[str, ...]


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


def measurement_normalize(*, kind: str, value: bool | float | str, normalization: Normalization) -> float:
    """Map one raw measurement to a score in [0, 1]; raise NormalizationError instead of clamping."""
    if kind == "binary":
        if not isinstance(value, bool):
            raise NormalizationError(f"a binary measurement must be a boolean, got {type(value).__name__}")
        if normalization.kind == "binary":
            score = normalization.true_score if value else normalization.false_score
            if score is None:
                raise NormalizationError(f"the binary normalization has no score for {str(value).lower()}")
            return float(score)
        if normalization.kind == "default":
            return 1.0 if value else 0.0
        raise _mismatch(kind, normalization.kind)

    if kind == "numeric":
        number = _finite(value)
        if normalization.kind == "linear":
            return _linear(number, normalization)
        if normalization.kind == "thresholds":
            return _thresholds(number, normalization)
        if normalization.kind == "default":
            if not 0.0 <= number <= 1.0:
                raise NormalizationError(
                    f"numeric measurement {_show(number)} is outside [0, 1]; "
                    "declare a linear or thresholds normalization to score it"
                )
            return number
        raise _mismatch(kind, normalization.kind)

    if kind == "ordinal":
        if not isinstance(value, str):
            raise NormalizationError(f"an ordinal measurement must be a string label, got {type(value).__name__}")
        if normalization.kind == "ordinal":
            if value not in normalization.labels:
                known = ", ".join(repr(label) for label in normalization.labels)
                raise NormalizationError(f"unknown ordinal label {value!r} (known: {known})")
            return float(normalization.labels[value])
        if normalization.kind == "default":
            raise NormalizationError("an ordinal measurement needs an explicit ordinal normalization")
        raise _mismatch(kind, normalization.kind)

    raise NormalizationError(f"unknown measurement kind {kind!r} (expected binary, numeric or ordinal)")


def binding_score(*, binding: Binding, result: BindingOutcome | None) -> BindingScore:
    """Score and judge one binding's result. Every failure to score becomes an `error` outcome with a code."""
    if result is None:
        return BindingScore(
            binding_id=binding.id,
            outcome="error",
            error_code=MISSING_RESULT,
            error_message=f"no result was recorded for binding '{binding.id}'",
        )
    if result.outcome == "abstained":
        return BindingScore(
            binding_id=binding.id,
            outcome="abstained",
            error_code=result.error_code,
            error_message=result.error_message,
        )
    if result.outcome == "error":
        return BindingScore(
            binding_id=binding.id,
            outcome="error",
            error_code=result.error_code,
            error_message=result.error_message,
        )
    if result.outcome != "completed":
        return BindingScore(
            binding_id=binding.id,
            outcome="error",
            error_code=INVALID_OUTCOME,
            error_message=f"unknown outcome {result.outcome!r}",
        )
    try:
        if result.kind is None or result.value is None:
            raise NormalizationError("a completed result carries no measurement")
        score = measurement_normalize(kind=result.kind, value=result.value, normalization=binding.normalization)
    except NormalizationError as exc:
        return BindingScore(
            binding_id=binding.id, outcome="error", error_code=NORMALIZATION_ERROR, error_message=str(exc)
        )
    return BindingScore(
        binding_id=binding.id,
        outcome="completed",
        score=score,
        passed=score >= binding.pass_threshold - EPSILON,
    )


def execution_aggregate(
    *, profile: ProfileSpec, results: Mapping[str, BindingOutcome], tags: Sequence[str] = ()
) -> AggregateScore:
    """Combine one execution's binding results into dimension scores, an aggregate and a status.

    Only the bindings that apply to the case (`when`, by its `tags`) count: the others are neither scored nor
    required, and a dimension none of whose bindings applies has no score. Results for binding ids the profile
    does not declare, or that do not apply, are ignored.
    """
    conditional = profile.conditional
    applicable = [b for b in profile.bindings if b.applies_to(tags)] if conditional else profile.bindings
    scores = {binding.id: binding_score(binding=binding, result=results.get(binding.id)) for binding in applicable}
    required = [binding for binding in applicable if binding.required]

    incomplete: list[str] = []
    for binding in required:
        scored = scores[binding.id]
        if scored.outcome == "abstained":
            incomplete.append(f"required binding '{binding.id}' abstained{_detail(scored)}")
        elif scored.outcome == "error":
            incomplete.append(f"required binding '{binding.id}' errored{_detail(scored)}")

    dimension_scores: dict[str, float | None] = {}
    applicable_dimensions = {binding.dimension for binding in applicable} if conditional else profile.dimensions
    for name, dimension in profile.dimensions.items():
        if name not in applicable_dimensions and any(b.dimension == name for b in profile.bindings):
            continue  # every binding of the dimension skips this case
        members: list[tuple[float, float]] = []
        for binding in required:
            score = scores[binding.id].score
            if binding.dimension == name and score is not None:
                members.append((binding.weight, score))
        if dimension.aggregation == "min_score":
            dimension_scores[name] = min((score for _, score in members), default=None)
        else:
            dimension_scores[name] = _weighted_mean(members)

    weighted_dimensions: list[tuple[float, float]] = []
    for name, dimension in profile.dimensions.items():
        dimension_score = dimension_scores.get(name)
        if dimension.weight > 0 and dimension_score is not None:
            weighted_dimensions.append((dimension.weight, dimension_score))
    aggregate_score = _weighted_mean(weighted_dimensions)

    blocking_failures: list[str] = []
    blocking_reasons: list[str] = []
    for binding in required:
        scored = scores[binding.id]
        if not (binding.blocking or profile.dimensions[binding.dimension].blocking):
            continue
        if scored.outcome == "error":
            blocking_failures.append(binding.id)
            blocking_reasons.append(f"blocking binding '{binding.id}' errored")
        elif scored.passed is False:
            assert scored.score is not None
            blocking_failures.append(binding.id)
            blocking_reasons.append(
                f"blocking binding '{binding.id}' failed: score {_show(scored.score)} "
                f"< pass_threshold {_show(binding.pass_threshold)}"
            )

    below_minimum = aggregate_score is not None and aggregate_score < profile.min_execution_score - EPSILON
    reasons = list(incomplete)
    if profile.fail_on_any_blocking_failure:
        reasons.extend(blocking_reasons)
    # A partial aggregate says nothing about the execution, so it is only judged when every binding completed.
    if below_minimum and not incomplete:
        assert aggregate_score is not None
        reasons.append(
            f"aggregate score {_show(aggregate_score)} < min_execution_score {_show(profile.min_execution_score)}"
        )

    status: ExecutionStatus
    if incomplete:
        status = "error"
    elif (blocking_failures and profile.fail_on_any_blocking_failure) or below_minimum:
        status = "failed"
    else:
        status = "passed"
    return AggregateScore(
        status=status,
        aggregate_score=aggregate_score,
        dimension_scores=dimension_scores,
        binding_scores=scores,
        blocking_failures=tuple(blocking_failures),
        reasons=tuple(reasons),
    )


def verdict_compute(
    *,
    profile: ProfileSpec,
    executions: Sequence[ExecutionSummary],
    operational: Operational,
    max_examples: int = 5,
    worst: int = 10,
) -> dict[str, Any]:
    """The run gate and why: a JSON-serialisable verdict over every aggregated execution of a run."""
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
        examples = [execution.execution_id for execution in failing[:max_examples]]
        reasons.append({"code": code, "message": message, "count": count, "examples": examples})

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
    elif by_status["failed"]:
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

    worst_first = sorted(ordered, key=_badness)[: max(worst, 0)]
    return {
        "gate": "fail" if reasons else "pass",
        "operational_failure": operational.cancelled or operational.failed_chunks > 0,
        "counts": counts,
        "dimensions": dimensions,
        "bindings": bindings,
        "scorecard": scorecard,
        "reasons": reasons,
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
    }


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
            misses.append(f"{name}: no observed {metric} (threshold {_show(threshold)})")
        elif name.startswith("min_") and value < threshold - EPSILON:
            misses.append(f"{name}: observed {metric} {_show(value)} < {_show(threshold)}")
        elif name.startswith("max_") and value > threshold + EPSILON:
            misses.append(f"{name}: observed {metric} {_show(value)} > {_show(threshold)}")

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


def _weighted_mean(pairs: Sequence[tuple[float, float]]) -> float | None:
    total = math.fsum(weight for weight, _ in pairs)
    if total <= 0:
        return None
    return math.fsum(weight * score for weight, score in pairs) / total


def _finite(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise NormalizationError(f"a numeric measurement must be a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise NormalizationError("numeric measurement is too large to be represented as a float") from None
    if not math.isfinite(number):
        raise NormalizationError(f"numeric measurement {number!r} is not a finite number")
    return number


def _linear(number: float, normalization: Normalization) -> float:
    low, high = normalization.min_value, normalization.max_value
    if low is None or high is None or not low < high:
        raise NormalizationError("the linear normalization needs min < max")
    if not low <= number <= high:
        raise NormalizationError(
            f"numeric measurement {_show(number)} is outside the linear domain [{_show(low)}, {_show(high)}]"
        )
    if normalization.direction == "lower":
        return (high - number) / (high - low)
    return (number - low) / (high - low)


def _thresholds(number: float, normalization: Normalization) -> float:
    low, high = normalization.min_value, normalization.max_value
    if (low is not None and number < low) or (high is not None and number > high):
        domain = f"[{_show(low) if low is not None else '-inf'}, {_show(high) if high is not None else 'inf'}]"
        raise NormalizationError(f"numeric measurement {_show(number)} is outside the thresholds domain {domain}")
    if len(normalization.scores) != len(normalization.cutpoints) + 1:
        raise NormalizationError("the thresholds normalization needs one more score than cutpoints")
    # bisect_right counts the cutpoints <= value: a value exactly on a cutpoint belongs to the band above it.
    return float(normalization.scores[bisect.bisect_right(normalization.cutpoints, number)])


def _mismatch(kind: str, normalization_kind: str) -> NormalizationError:
    return NormalizationError(
        f"{_article(kind)} {kind} measurement cannot be scored by "
        f"{_article(normalization_kind)} {normalization_kind} normalization"
    )


def _article(word: str) -> str:
    return "an" if word[:1] in ("a", "e", "i", "o", "u") else "a"


def _detail(scored: BindingScore) -> str:
    if scored.error_code and scored.error_message:
        return f" ({scored.error_code}: {scored.error_message})"
    if scored.error_code or scored.error_message:
        return f" ({scored.error_code or scored.error_message})"
    return ""


def _show(number: float) -> str:
    return f"{number:.6g}"
