"""Scoring (docs/architecture.md): a binding's reported result becomes its BindingScore, once, and an
execution's BindingScores become its AggregateScore.

A result is scored when it is produced; the score travels with the result row (`stored_columns`) and is rebuilt
from it (`BindingScore.stored`), never scored again. Pure functions over plain data: a result is anything shaped
like `Reported` (the sandbox's Invocation, a stored result row), so this module imports neither.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypedDict

from gating.normalize import EPSILON, NormalizationError, measurement_normalize, number_show
from gating.profile import Binding, ProfileSpec

Outcome = Literal["completed", "abstained", "error"]
Judgment = Literal["passed", "failed", ""]
ExecutionStatus = Literal["passed", "failed", "error"]

MISSING_RESULT = "missing_result"
NORMALIZATION_ERROR = "normalization_error"
INVALID_OUTCOME = "invalid_outcome"


class Reported(Protocol):
    """What an evaluator reported for one binding: a measurement, an abstention, or an error.

    A stored row says "" where the sandbox says None (`kind`, `error_code`, `error_message`); both mean none.
    """

    @property
    def outcome(self) -> str: ...

    @property
    def kind(self) -> str | None: ...

    @property
    def measurement(self) -> bool | float | str | None: ...

    @property
    def error_code(self) -> str | None: ...

    @property
    def error_message(self) -> str | None: ...


class StoredColumns(TypedDict):
    """The columns of a result row that carry its BindingScore ("" = none)."""

    outcome: str  # what the evaluator reported, even an invalid outcome
    score: float | None
    judgment: Judgment
    error_code: str
    error_message: str


@dataclass(frozen=True, kw_only=True)
class BindingScore:
    binding_id: str
    outcome: Outcome
    score: float | None = None
    passed: bool | None = None
    error_code: str | None = None
    error_message: str | None = None

    @classmethod
    def stored(
        cls,
        *,
        binding_id: str,
        outcome: str,
        score: float | None,
        judgment: str,
        error_code: str | None,
        error_message: str | None,
    ) -> BindingScore:
        """The BindingScore a result row was written with, from its `stored_columns` (see there).

        Raises ValueError for columns `stored_columns` cannot have written: the row is not what it claims.
        """
        code, message = error_code or None, error_message or None
        if outcome not in ("completed", "abstained", "error"):
            return _invalid_outcome(binding_id, outcome)
        if outcome != "completed" or score is None:
            if score is not None or judgment:
                raise ValueError(
                    f"binding '{binding_id}': a result row with outcome {outcome!r} carries a score or a judgment"
                )
            if outcome == "abstained":
                return cls(binding_id=binding_id, outcome="abstained", error_code=code, error_message=message)
            if outcome == "completed" and code is None:
                raise ValueError(f"binding '{binding_id}': a completed result row has neither a score nor an error")
            # An evaluator error, or a completed measurement that could not be scored.
            return cls(binding_id=binding_id, outcome="error", error_code=code, error_message=message)
        if judgment not in ("passed", "failed"):
            raise ValueError(f"binding '{binding_id}': a scored result row has judgment {judgment!r}")
        return cls(binding_id=binding_id, outcome="completed", score=score, passed=judgment == "passed")


@dataclass(frozen=True, kw_only=True)
class AggregateScore:
    status: ExecutionStatus
    aggregate_score: float | None
    dimension_scores: dict[str, float | None]
    binding_scores: dict[str, BindingScore]
    blocking_failures: tuple[str, ...]
    reasons: tuple[str, ...]


def binding_score(*, binding: Binding, result: Reported | None) -> BindingScore:
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
            error_code=result.error_code or None,
            error_message=result.error_message or None,
        )
    if result.outcome == "error":
        return BindingScore(
            binding_id=binding.id,
            outcome="error",
            error_code=result.error_code or None,
            error_message=result.error_message or None,
        )
    if result.outcome != "completed":
        return _invalid_outcome(binding.id, result.outcome)
    try:
        if not result.kind or result.measurement is None:
            raise NormalizationError("a completed result carries no measurement")
        score = measurement_normalize(kind=result.kind, value=result.measurement, normalization=binding.normalization)
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


def stored_columns(*, report: Reported, scored: BindingScore) -> StoredColumns:
    """The columns a result row stores for `scored`, the BindingScore of `report`; `BindingScore.stored` reads
    them back.

    The error columns keep what the evaluator said, except when scoring itself failed (a measurement that could
    not be normalized, an unknown outcome): then they say why, so the row explains its error.
    """
    judgment: Judgment = "" if scored.passed is None else ("passed" if scored.passed else "failed")
    if scored.outcome == "error":
        error_code, error_message = scored.error_code, scored.error_message
    else:
        error_code, error_message = report.error_code, report.error_message
    return {
        "outcome": report.outcome,
        "score": scored.score,
        "judgment": judgment,
        "error_code": error_code or "",
        "error_message": error_message or "",
    }


def execution_aggregate(
    *, profile: ProfileSpec, scores: Mapping[str, BindingScore], tags: Sequence[str] = ()
) -> AggregateScore:
    """Combine one execution's BindingScores (by binding id) into dimension scores, an aggregate and a status.

    Only the bindings that apply to the case (`when`, by its `tags`) count: the others are neither scored nor
    required, and a dimension none of whose bindings applies has no score. A binding that applies but has no
    score is a missing result (an error); scores for binding ids the profile does not declare, or that do not
    apply, are ignored.
    """
    conditional = profile.conditional
    applicable = [b for b in profile.bindings if b.applies_to(tags)] if conditional else profile.bindings
    scored_by_id: dict[str, BindingScore] = {}
    for binding in applicable:
        given = scores.get(binding.id)
        scored_by_id[binding.id] = given if given is not None else binding_score(binding=binding, result=None)
    required = [binding for binding in applicable if binding.required]

    incomplete: list[str] = []
    for binding in required:
        scored = scored_by_id[binding.id]
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
            score = scored_by_id[binding.id].score
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
        scored = scored_by_id[binding.id]
        if not (binding.blocking or profile.dimensions[binding.dimension].blocking):
            continue
        if scored.outcome == "error":
            blocking_failures.append(binding.id)
            blocking_reasons.append(f"blocking binding '{binding.id}' errored")
        elif scored.passed is False:
            assert scored.score is not None
            blocking_failures.append(binding.id)
            blocking_reasons.append(
                f"blocking binding '{binding.id}' failed: score {number_show(scored.score)} "
                f"< pass_threshold {number_show(binding.pass_threshold)}"
            )

    below_minimum = aggregate_score is not None and aggregate_score < profile.min_execution_score - EPSILON
    reasons = list(incomplete)
    if profile.fail_on_any_blocking_failure:
        reasons.extend(blocking_reasons)
    # A partial aggregate says nothing about the execution, so it is only judged when every binding completed.
    if below_minimum and not incomplete:
        assert aggregate_score is not None
        reasons.append(
            f"aggregate score {number_show(aggregate_score)} "
            f"< min_execution_score {number_show(profile.min_execution_score)}"
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
        binding_scores=scored_by_id,
        blocking_failures=tuple(blocking_failures),
        reasons=tuple(reasons),
    )


def _invalid_outcome(binding_id: str, outcome: str) -> BindingScore:
    return BindingScore(
        binding_id=binding_id,
        outcome="error",
        error_code=INVALID_OUTCOME,
        error_message=f"unknown outcome {outcome!r}",
    )


def _weighted_mean(pairs: Sequence[tuple[float, float]]) -> float | None:
    total = math.fsum(weight for weight, _ in pairs)
    if total <= 0:
        return None
    return math.fsum(weight * score for weight, score in pairs) / total


def _detail(scored: BindingScore) -> str:
    if scored.error_code and scored.error_message:
        return f" ({scored.error_code}: {scored.error_message})"
    if scored.error_code or scored.error_message:
        return f" ({scored.error_code or scored.error_message})"
    return ""
