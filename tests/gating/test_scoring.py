import json

import pytest

from gating.profile import Binding, Normalization, ProfileError, ProfileSpec, profile_parse
from gating.scoring import (
    AggregateScore,
    BindingOutcome,
    BindingScore,
    ExecutionSummary,
    MeasurementKind,
    NormalizationError,
    Operational,
    binding_score,
    execution_aggregate,
    measurement_normalize,
    verdict_compute,
)

BINARY = Normalization(kind="binary", true_score=0.9, false_score=0.1)
LINEAR_UP = Normalization(kind="linear", min_value=0.0, max_value=10.0, direction="higher")
LINEAR_DOWN = Normalization(kind="linear", min_value=0.0, max_value=10.0, direction="lower")
LINEAR_NEGATIVE = Normalization(kind="linear", min_value=-1.0, max_value=1.0, direction="higher")
THRESHOLDS = Normalization(
    kind="thresholds", cutpoints=(1.0, 5.0), scores=(1.0, 0.5, 0.0), min_value=0.0, max_value=60.0
)
OPEN_THRESHOLDS = Normalization(kind="thresholds", cutpoints=(0.0,), scores=(0.0, 1.0))
ORDINAL = Normalization(kind="ordinal", labels={"safe": 1.0, "borderline": 0.5, "unsafe": 0.0})
DEFAULT = Normalization(kind="default")


def completed(value: bool | float | str) -> BindingOutcome:
    kind: MeasurementKind = "binary" if isinstance(value, bool) else "ordinal" if isinstance(value, str) else "numeric"
    return BindingOutcome(outcome="completed", kind=kind, value=value)


ABSTAINED = BindingOutcome(outcome="abstained", error_code="no_reference", error_message="case has no expected")
ERRORED = BindingOutcome(outcome="error", error_code="timeout", error_message="wall clock limit of 5s exceeded")


def make_profile(
    *,
    dimensions: dict,
    bindings: list[dict],
    min_execution_score: float = 0.0,
    fail_on_any_blocking_failure: bool = True,
    scorecard: list[dict] | None = None,
) -> ProfileSpec:
    data: dict = {
        "name": "test",
        "min_execution_score": min_execution_score,
        "fail_on_any_blocking_failure": fail_on_any_blocking_failure,
        "dimensions": dimensions,
        "bindings": [{"evaluator": "vigilo/check@1.0.0", **binding} for binding in bindings],
    }
    if scorecard is not None:
        data["run_gate"] = {"scorecard": scorecard}
    return profile_parse(data=data)


# --- measurement_normalize ---


@pytest.mark.parametrize(
    ("kind", "value", "normalization", "expected"),
    [
        ("binary", True, BINARY, 0.9),
        ("binary", False, BINARY, 0.1),
        ("binary", True, DEFAULT, 1.0),
        ("binary", False, DEFAULT, 0.0),
        ("numeric", 0.0, LINEAR_UP, 0.0),
        ("numeric", 10.0, LINEAR_UP, 1.0),
        ("numeric", 2.5, LINEAR_UP, 0.25),
        ("numeric", 10, LINEAR_UP, 1.0),
        ("numeric", 0.0, LINEAR_DOWN, 1.0),
        ("numeric", 10.0, LINEAR_DOWN, 0.0),
        ("numeric", 2.5, LINEAR_DOWN, 0.75),
        ("numeric", 0.0, LINEAR_NEGATIVE, 0.5),
        ("numeric", -1.0, LINEAR_NEGATIVE, 0.0),
        ("numeric", 0.0, THRESHOLDS, 1.0),
        ("numeric", 0.99, THRESHOLDS, 1.0),
        ("numeric", 1.0, THRESHOLDS, 0.5),
        ("numeric", 4.99, THRESHOLDS, 0.5),
        ("numeric", 5.0, THRESHOLDS, 0.0),
        ("numeric", 60.0, THRESHOLDS, 0.0),
        ("numeric", -1000.0, OPEN_THRESHOLDS, 0.0),
        ("numeric", 0.0, OPEN_THRESHOLDS, 1.0),
        ("numeric", 1e300, OPEN_THRESHOLDS, 1.0),
        ("numeric", 0.0, DEFAULT, 0.0),
        ("numeric", 1, DEFAULT, 1.0),
        ("numeric", 0.42, DEFAULT, 0.42),
        ("ordinal", "safe", ORDINAL, 1.0),
        ("ordinal", "borderline", ORDINAL, 0.5),
        ("ordinal", "unsafe", ORDINAL, 0.0),
    ],
)
def test_measurement_normalize_scores_in_domain_values(kind, value, normalization, expected):
    score = measurement_normalize(kind=kind, value=value, normalization=normalization)

    assert score == expected
    assert type(score) is float


@pytest.mark.parametrize(
    ("kind", "value", "normalization", "message"),
    [
        ("numeric", -0.5, LINEAR_UP, "numeric measurement -0.5 is outside the linear domain [0, 10]"),
        ("numeric", 10.001, LINEAR_DOWN, "numeric measurement 10.001 is outside the linear domain [0, 10]"),
        ("numeric", -0.1, THRESHOLDS, "numeric measurement -0.1 is outside the thresholds domain [0, 60]"),
        ("numeric", 61, THRESHOLDS, "numeric measurement 61 is outside the thresholds domain [0, 60]"),
        (
            "numeric",
            1.2,
            DEFAULT,
            "numeric measurement 1.2 is outside [0, 1]; declare a linear or thresholds normalization to score it",
        ),
        (
            "numeric",
            -0.0001,
            DEFAULT,
            "numeric measurement -0.0001 is outside [0, 1]; declare a linear or thresholds normalization to score it",
        ),
        ("numeric", float("nan"), LINEAR_UP, "numeric measurement nan is not a finite number"),
        ("numeric", float("nan"), DEFAULT, "numeric measurement nan is not a finite number"),
        ("numeric", float("inf"), OPEN_THRESHOLDS, "numeric measurement inf is not a finite number"),
        ("numeric", float("-inf"), LINEAR_UP, "numeric measurement -inf is not a finite number"),
        (
            "numeric",
            10**400,
            OPEN_THRESHOLDS,
            "numeric measurement is too large to be represented as a float",
        ),
        ("ordinal", "meh", ORDINAL, "unknown ordinal label 'meh' (known: 'safe', 'borderline', 'unsafe')"),
        ("ordinal", "Safe", ORDINAL, "unknown ordinal label 'Safe' (known: 'safe', 'borderline', 'unsafe')"),
        ("ordinal", "safe", LINEAR_UP, "an ordinal measurement cannot be scored by a linear normalization"),
        ("ordinal", "safe", DEFAULT, "an ordinal measurement needs an explicit ordinal normalization"),
        ("binary", True, ORDINAL, "a binary measurement cannot be scored by an ordinal normalization"),
        ("binary", True, LINEAR_UP, "a binary measurement cannot be scored by a linear normalization"),
        ("numeric", 1.0, BINARY, "a numeric measurement cannot be scored by a binary normalization"),
        ("numeric", 1.0, ORDINAL, "a numeric measurement cannot be scored by an ordinal normalization"),
        ("binary", 1, BINARY, "a binary measurement must be a boolean, got int"),
        ("numeric", True, DEFAULT, "a numeric measurement must be a number, got bool"),
        ("numeric", "0.5", DEFAULT, "a numeric measurement must be a number, got str"),
        ("ordinal", 1.0, ORDINAL, "an ordinal measurement must be a string label, got float"),
        ("text", "hello", DEFAULT, "unknown measurement kind 'text' (expected binary, numeric or ordinal)"),
    ],
)
def test_measurement_normalize_rejects_what_it_cannot_score_without_clamping(kind, value, normalization, message):
    with pytest.raises(NormalizationError) as raised:
        measurement_normalize(kind=kind, value=value, normalization=normalization)

    assert str(raised.value) == message


# --- binding_score ---


def make_binding(normalization: Normalization, pass_threshold: float) -> Binding:
    return Binding(
        id="check",
        evaluator="vigilo/check@1.0.0",
        dimension="quality",
        normalization=normalization,
        pass_threshold=pass_threshold,
    )


@pytest.mark.parametrize(
    ("normalization", "pass_threshold", "result", "expected"),
    [
        # a score equal to the threshold passes
        (
            THRESHOLDS,
            0.5,
            completed(3.0),
            BindingScore(binding_id="check", outcome="completed", score=0.5, passed=True),
        ),
        (
            DEFAULT,
            0.5,
            completed(0.49),
            BindingScore(binding_id="check", outcome="completed", score=0.49, passed=False),
        ),
        (
            DEFAULT,
            1.0,
            completed(True),
            BindingScore(binding_id="check", outcome="completed", score=1.0, passed=True),
        ),
        (
            DEFAULT,
            1.0,
            completed(False),
            BindingScore(binding_id="check", outcome="completed", score=0.0, passed=False),
        ),
        (
            DEFAULT,
            0.0,
            completed(0.0),
            BindingScore(binding_id="check", outcome="completed", score=0.0, passed=True),
        ),
        # (0.3 - 0.1) / (1.1 - 0.1) is 0.19999999999999998 in floating point: still equal to 0.2
        (
            Normalization(kind="linear", min_value=0.1, max_value=1.1),
            0.2,
            completed(0.3),
            BindingScore(binding_id="check", outcome="completed", score=0.19999999999999998, passed=True),
        ),
        (
            ORDINAL,
            1.0,
            completed("borderline"),
            BindingScore(binding_id="check", outcome="completed", score=0.5, passed=False),
        ),
        (
            DEFAULT,
            1.0,
            ABSTAINED,
            BindingScore(
                binding_id="check",
                outcome="abstained",
                error_code="no_reference",
                error_message="case has no expected",
            ),
        ),
        (
            DEFAULT,
            1.0,
            ERRORED,
            BindingScore(
                binding_id="check",
                outcome="error",
                error_code="timeout",
                error_message="wall clock limit of 5s exceeded",
            ),
        ),
        (
            DEFAULT,
            1.0,
            None,
            BindingScore(
                binding_id="check",
                outcome="error",
                error_code="missing_result",
                error_message="no result was recorded for binding 'check'",
            ),
        ),
        (
            LINEAR_UP,
            0.5,
            completed(11.0),
            BindingScore(
                binding_id="check",
                outcome="error",
                error_code="normalization_error",
                error_message="numeric measurement 11 is outside the linear domain [0, 10]",
            ),
        ),
        (
            DEFAULT,
            1.0,
            BindingOutcome(outcome="completed"),
            BindingScore(
                binding_id="check",
                outcome="error",
                error_code="normalization_error",
                error_message="a completed result carries no measurement",
            ),
        ),
        (
            DEFAULT,
            1.0,
            BindingOutcome(outcome="skipped"),  # type: ignore[arg-type]
            BindingScore(
                binding_id="check",
                outcome="error",
                error_code="invalid_outcome",
                error_message="unknown outcome 'skipped'",
            ),
        ),
    ],
)
def test_binding_score_judges_one_result(normalization, pass_threshold, result, expected):
    binding = make_binding(normalization, pass_threshold)

    scored = binding_score(binding=binding, result=result)

    assert scored == expected


# --- execution_aggregate ---

TWO_DIMENSIONS = {
    "correctness": {"weight": 3.0, "aggregation": "weighted_mean"},
    "safety": {"weight": 1.0, "aggregation": "min_score"},
}
TWO_DIMENSION_BINDINGS = [
    {"id": "exact", "dimension": "correctness", "pass_threshold": 1.0, "weight": 1.0},
    {"id": "fuzzy", "dimension": "correctness", "pass_threshold": 0.5, "weight": 3.0},
    {"id": "toxicity", "dimension": "safety", "pass_threshold": 0.5, "weight": 5.0},
    {"id": "pii", "dimension": "safety", "pass_threshold": 0.5, "weight": 1.0},
    {"id": "probe", "dimension": "safety", "required": False},
]


def test_weighted_mean_and_min_score_dimensions_feed_the_weighted_aggregate():
    profile = make_profile(dimensions=TWO_DIMENSIONS, bindings=TWO_DIMENSION_BINDINGS)
    results = {
        "exact": completed(False),
        "fuzzy": completed(0.5),
        "toxicity": completed(1.0),
        "pii": completed(0.75),
        "probe": completed(0.0),
    }

    aggregate = execution_aggregate(profile=profile, results=results)

    # correctness = (1*0 + 3*0.5) / 4 = 0.375; safety = min(1.0, 0.75) = 0.75 (weights and the diagnostic
    # probe are ignored); aggregate = (3*0.375 + 1*0.75) / 4 = 0.46875
    assert aggregate == AggregateScore(
        status="passed",
        aggregate_score=0.46875,
        dimension_scores={"correctness": 0.375, "safety": 0.75},
        binding_scores={
            "exact": BindingScore(binding_id="exact", outcome="completed", score=0.0, passed=False),
            "fuzzy": BindingScore(binding_id="fuzzy", outcome="completed", score=0.5, passed=True),
            "toxicity": BindingScore(binding_id="toxicity", outcome="completed", score=1.0, passed=True),
            "pii": BindingScore(binding_id="pii", outcome="completed", score=0.75, passed=True),
            "probe": BindingScore(binding_id="probe", outcome="completed", score=0.0, passed=False),
        },
        blocking_failures=(),
        reasons=(),
    )


@pytest.mark.parametrize(
    ("dimensions", "bindings", "expected_dimension_scores", "expected_aggregate"),
    [
        # a weight-0 dimension is reported but left out of the aggregate
        (
            {"quality": {"weight": 1.0}, "style": {"weight": 0}},
            [{"id": "q", "dimension": "quality"}, {"id": "s", "dimension": "style"}],
            {"quality": 0.75, "style": 0.25},
            0.75,
        ),
        # no dimension with weight > 0: no aggregate at all
        (
            {"quality": {"weight": 0}},
            [{"id": "q", "dimension": "quality"}, {"id": "s", "dimension": "quality"}],
            {"quality": 0.5},
            None,
        ),
        # required bindings of total weight 0 in a weighted_mean dimension give no dimension score
        (
            {"quality": {"weight": 1.0}, "style": {"weight": 1.0}},
            [{"id": "q", "dimension": "quality"}, {"id": "s", "dimension": "style", "weight": 0}],
            {"quality": 0.75, "style": None},
            0.75,
        ),
        # min_score ignores binding weights, including 0
        (
            {"quality": {"weight": 1.0, "aggregation": "min_score"}},
            [
                {"id": "q", "dimension": "quality", "weight": 9},
                {"id": "s", "dimension": "quality", "weight": 0},
            ],
            {"quality": 0.25},
            0.25,
        ),
    ],
)
def test_dimension_and_aggregate_weights(dimensions, bindings, expected_dimension_scores, expected_aggregate):
    profile = make_profile(dimensions=dimensions, bindings=[{"pass_threshold": 0.0, **b} for b in bindings])
    results = {"q": completed(0.75), "s": completed(0.25)}

    aggregate = execution_aggregate(profile=profile, results=results)

    assert aggregate.dimension_scores == expected_dimension_scores
    assert aggregate.aggregate_score == expected_aggregate
    assert aggregate.status == "passed"


@pytest.mark.parametrize(
    ("min_execution_score", "value", "status", "reasons"),
    [
        (0.8, 0.79, "failed", ("aggregate score 0.79 < min_execution_score 0.8",)),
        (0.8, 0.8, "passed", ()),
        (0.8, 0.81, "passed", ()),
        (0.0, 0.0, "passed", ()),
        (1.0, 1.0, "passed", ()),
    ],
)
def test_aggregate_against_min_execution_score(min_execution_score, value, status, reasons):
    profile = make_profile(
        dimensions={"quality": {}},
        bindings=[{"id": "q", "dimension": "quality", "pass_threshold": 0.0}],
        min_execution_score=min_execution_score,
    )

    aggregate = execution_aggregate(profile=profile, results={"q": completed(value)})

    assert aggregate.status == status
    assert aggregate.reasons == reasons


def test_an_aggregate_equal_to_the_minimum_up_to_float_noise_passes():
    profile = make_profile(
        dimensions={"quality": {}},
        bindings=[
            {
                "id": "q",
                "dimension": "quality",
                "pass_threshold": 0.0,
                "normalization": {"linear": {"min": 0.2, "max": 1.0}},
            }
        ],
        min_execution_score=0.375,
    )

    aggregate = execution_aggregate(profile=profile, results={"q": completed(0.5)})

    assert aggregate.aggregate_score == 0.37499999999999994
    assert aggregate.status == "passed"


def test_no_aggregate_means_min_execution_score_is_not_applied():
    profile = make_profile(
        dimensions={"quality": {"weight": 0}},
        bindings=[{"id": "q", "dimension": "quality", "pass_threshold": 0.0}],
        min_execution_score=0.9,
    )

    aggregate = execution_aggregate(profile=profile, results={"q": completed(0.1)})

    assert aggregate.aggregate_score is None
    assert aggregate.status == "passed"


COMPLETENESS_BINDINGS = [
    {"id": "main", "dimension": "quality", "pass_threshold": 0.5},
    {"id": "extra", "dimension": "quality", "pass_threshold": 0.5},
    {
        "id": "probe",
        "dimension": "quality",
        "required": False,
        "normalization": {"linear": {"min": 0, "max": 1}},
    },
]


@pytest.mark.parametrize(
    ("results", "status", "reasons", "dimension_score"),
    [
        (
            {"main": ABSTAINED, "extra": completed(1.0), "probe": completed(1.0)},
            "error",
            ("required binding 'main' abstained (no_reference: case has no expected)",),
            1.0,
        ),
        (
            {"main": ERRORED, "extra": completed(0.5), "probe": completed(1.0)},
            "error",
            ("required binding 'main' errored (timeout: wall clock limit of 5s exceeded)",),
            0.5,
        ),
        (
            {"extra": completed(0.5), "probe": completed(1.0)},
            "error",
            ("required binding 'main' errored (missing_result: no result was recorded for binding 'main')",),
            0.5,
        ),
        (
            {"main": completed(1.5), "extra": completed(0.5)},
            "error",
            (
                "required binding 'main' errored (normalization_error: "
                "numeric measurement 1.5 is outside [0, 1]; "
                "declare a linear or thresholds normalization to score it)",
            ),
            0.5,
        ),
        (
            {"main": ABSTAINED, "extra": ERRORED},
            "error",
            (
                "required binding 'main' abstained (no_reference: case has no expected)",
                "required binding 'extra' errored (timeout: wall clock limit of 5s exceeded)",
            ),
            None,
        ),
        # non-required bindings never affect status: errored, abstained, missing or out of domain
        ({"main": completed(1.0), "extra": completed(0.5), "probe": ERRORED}, "passed", (), 0.75),
        ({"main": completed(1.0), "extra": completed(0.5), "probe": ABSTAINED}, "passed", (), 0.75),
        ({"main": completed(1.0), "extra": completed(0.5)}, "passed", (), 0.75),
        ({"main": completed(1.0), "extra": completed(0.5), "probe": completed(7.0)}, "passed", (), 0.75),
    ],
)
def test_completeness_of_required_bindings(results, status, reasons, dimension_score):
    profile = make_profile(dimensions={"quality": {}}, bindings=COMPLETENESS_BINDINGS)

    aggregate = execution_aggregate(profile=profile, results=results)

    assert aggregate.status == status
    assert aggregate.reasons == reasons
    assert aggregate.dimension_scores == {"quality": dimension_score}
    assert aggregate.aggregate_score == dimension_score


def test_results_for_undeclared_bindings_are_ignored():
    profile = make_profile(dimensions={"quality": {}}, bindings=[{"id": "q", "dimension": "quality"}])

    aggregate = execution_aggregate(profile=profile, results={"q": completed(True), "stale": completed(False)})

    assert aggregate.status == "passed"
    assert list(aggregate.binding_scores) == ["q"]


BLOCKING_DIMENSIONS = {
    "quality": {"weight": 1.0},
    "safety": {"weight": 1.0, "blocking": True},
    "compliance": {"weight": 0, "blocking": True},
}
BLOCKING_BINDINGS = [
    {"id": "answer", "dimension": "quality", "pass_threshold": 0.5},
    {"id": "format", "dimension": "quality", "pass_threshold": 0.5, "blocking": True},
    {"id": "toxicity", "dimension": "safety", "pass_threshold": 0.5},
    {"id": "gdpr", "dimension": "compliance", "pass_threshold": 0.5},
    {
        "id": "probe",
        "dimension": "safety",
        "required": False,
        "normalization": {"linear": {"min": 0, "max": 1}},
    },
]
ALL_GOOD = {"answer": 1.0, "format": 1.0, "toxicity": 1.0, "gdpr": 1.0, "probe": 1.0}


@pytest.mark.parametrize(
    ("overrides", "fail_on_any", "status", "blocking_failures", "reasons"),
    [
        ({}, True, "passed", (), ()),
        # a failing non-blocking binding in a non-blocking dimension only lowers the score
        ({"answer": 0.0}, True, "passed", (), ()),
        (
            {"format": 0.25},
            True,
            "failed",
            ("format",),
            ("blocking binding 'format' failed: score 0.25 < pass_threshold 0.5",),
        ),
        (
            {"toxicity": 0.0},
            True,
            "failed",
            ("toxicity",),
            ("blocking binding 'toxicity' failed: score 0 < pass_threshold 0.5",),
        ),
        # a weight-0 dimension does not count in the aggregate but still blocks
        (
            {"gdpr": 0.0},
            True,
            "failed",
            ("gdpr",),
            ("blocking binding 'gdpr' failed: score 0 < pass_threshold 0.5",),
        ),
        # a non-required binding in a blocking dimension never blocks
        ({"probe": 0.0}, True, "passed", (), ()),
        # recorded, but the policy does not fail the execution on it
        ({"toxicity": 0.0, "format": 0.0}, False, "passed", ("format", "toxicity"), ()),
        # an errored blocking binding is a blocking failure, and the execution is incomplete
        (
            {"toxicity": ERRORED},
            True,
            "error",
            ("toxicity",),
            (
                "required binding 'toxicity' errored (timeout: wall clock limit of 5s exceeded)",
                "blocking binding 'toxicity' errored",
            ),
        ),
        # incomplete elsewhere: still error, and the blocking failure is still recorded
        (
            {"answer": ABSTAINED, "gdpr": 0.0},
            True,
            "error",
            ("gdpr",),
            (
                "required binding 'answer' abstained (no_reference: case has no expected)",
                "blocking binding 'gdpr' failed: score 0 < pass_threshold 0.5",
            ),
        ),
        # an abstention is incomplete, not a blocking failure
        (
            {"toxicity": ABSTAINED},
            True,
            "error",
            (),
            ("required binding 'toxicity' abstained (no_reference: case has no expected)",),
        ),
    ],
)
def test_blocking_failures(overrides, fail_on_any, status, blocking_failures, reasons):
    profile = make_profile(
        dimensions=BLOCKING_DIMENSIONS,
        bindings=BLOCKING_BINDINGS,
        min_execution_score=0.0,
        fail_on_any_blocking_failure=fail_on_any,
    )
    values = {**ALL_GOOD, **overrides}
    results = {
        key: value if isinstance(value, BindingOutcome) else completed(float(value)) for key, value in values.items()
    }

    aggregate = execution_aggregate(profile=profile, results=results)

    assert aggregate.status == status
    assert aggregate.blocking_failures == blocking_failures
    assert aggregate.reasons == reasons


def test_an_incomplete_execution_is_not_judged_on_its_partial_aggregate():
    profile = make_profile(
        dimensions={"quality": {}},
        bindings=[{"id": "a", "dimension": "quality"}, {"id": "b", "dimension": "quality"}],
        min_execution_score=0.9,
    )

    aggregate = execution_aggregate(profile=profile, results={"a": completed(0.0), "b": ERRORED})

    assert aggregate.status == "error"
    assert aggregate.aggregate_score == 0.0
    assert aggregate.reasons == ("required binding 'b' errored (timeout: wall clock limit of 5s exceeded)",)


# --- verdict_compute ---

VERDICT_DIMENSIONS = {
    "correctness": {"weight": 1.0},
    "safety": {"weight": 1.0, "aggregation": "min_score", "blocking": True},
}
VERDICT_BINDINGS = [
    {"id": "answer", "dimension": "correctness", "pass_threshold": 0.5},
    {"id": "guard", "dimension": "safety", "pass_threshold": 1.0},
]


def verdict_profile(scorecard: list[dict] | None = None, min_execution_score: float = 0.0) -> ProfileSpec:
    return make_profile(
        dimensions=VERDICT_DIMENSIONS,
        bindings=VERDICT_BINDINGS,
        scorecard=scorecard,
        min_execution_score=min_execution_score,
    )


def summary(
    profile: ProfileSpec,
    execution_id: str,
    *,
    answer: BindingOutcome | float | None = 1.0,
    guard: BindingOutcome | float | None = 1.0,
    tags: tuple[str, ...] = (),
) -> ExecutionSummary:
    results: dict[str, BindingOutcome] = {}
    for binding_id, value in (("answer", answer), ("guard", guard)):
        if isinstance(value, BindingOutcome):
            results[binding_id] = value
        elif value is not None:
            results[binding_id] = completed(float(value))
    return ExecutionSummary(
        execution_id=execution_id,
        case_id=f"case-{execution_id}",
        tags=tags,
        aggregate=execution_aggregate(profile=profile, results=results),
    )


def codes(verdict: dict) -> list[str]:
    return [reason["code"] for reason in verdict["reasons"]]


def test_a_clean_run_passes_with_the_full_verdict_shape():
    profile = verdict_profile()
    executions = [summary(profile, "e2", answer=0.5), summary(profile, "e1")]

    verdict = verdict_compute(profile=profile, executions=executions, operational=Operational(expected_executions=2))

    assert verdict == {
        "gate": "pass",
        "operational_failure": False,
        "counts": {"expected": 2, "aggregated": 2, "passed": 2, "failed": 0, "error": 0, "missing": 0},
        "dimensions": {
            "correctness": {
                "mean": 0.75,
                "pass_rate": 1.0,
                "error_rate": 0.0,
                "abstention_rate": 0.0,
                "count": 2,
            },
            "safety": {"mean": 1.0, "pass_rate": 1.0, "error_rate": 0.0, "abstention_rate": 0.0, "count": 2},
        },
        "bindings": {
            "answer": {"mean": 0.75, "pass_rate": 1.0, "error_rate": 0.0, "abstention_rate": 0.0, "count": 2},
            "guard": {"mean": 1.0, "pass_rate": 1.0, "error_rate": 0.0, "abstention_rate": 0.0, "count": 2},
        },
        "scorecard": [],
        "reasons": [],
        "worst": [
            {
                "execution_id": "e2",
                "case_id": "case-e2",
                "status": "passed",
                "aggregate_score": 0.75,
                "reasons": [],
            },
            {
                "execution_id": "e1",
                "case_id": "case-e1",
                "status": "passed",
                "aggregate_score": 1.0,
                "reasons": [],
            },
        ],
    }
    assert json.loads(json.dumps(verdict)) == verdict


def test_each_default_gate_reason_code_with_counts_and_examples():
    profile = verdict_profile()
    executions = [
        summary(profile, "e4", guard=0.0),
        summary(profile, "e3", answer=ERRORED),
        summary(profile, "e2", guard=0.0),
        summary(profile, "e1"),
    ]

    verdict = verdict_compute(profile=profile, executions=executions, operational=Operational(expected_executions=6))

    assert verdict["gate"] == "fail"
    assert verdict["operational_failure"] is False
    assert verdict["counts"] == {
        "expected": 6,
        "aggregated": 4,
        "passed": 1,
        "failed": 2,
        "error": 1,
        "missing": 2,
    }
    assert verdict["reasons"] == [
        {
            "code": "executions_missing",
            "message": "2 of 6 expected executions have no aggregate",
            "count": 2,
            "examples": [],
        },
        {
            "code": "executions_errored",
            "message": "1 of 4 executions errored (a required binding did not complete)",
            "count": 1,
            "examples": ["e3"],
        },
        {
            "code": "executions_failed",
            "message": "2 of 4 executions failed",
            "count": 2,
            "examples": ["e2", "e4"],
        },
    ]


def test_examples_are_the_first_failing_execution_ids_in_id_order():
    profile = verdict_profile()
    executions = [summary(profile, f"e{index}", guard=0.0) for index in (7, 3, 5, 1, 6, 2, 4)]

    verdict = verdict_compute(
        profile=profile, executions=executions, operational=Operational(expected_executions=7), max_examples=3
    )

    assert verdict["reasons"] == [
        {
            "code": "executions_failed",
            "message": "7 of 7 executions failed",
            "count": 7,
            "examples": ["e1", "e2", "e3"],
        }
    ]


@pytest.mark.parametrize(
    ("operational", "operational_failure", "reasons"),
    [
        (
            Operational(expected_executions=2, cancelled=True, failure_reason="cancelled by alice"),
            True,
            [
                {
                    "code": "run_cancelled",
                    "message": "the run was cancelled: cancelled by alice",
                    "count": 1,
                    "examples": [],
                }
            ],
        ),
        (
            Operational(expected_executions=2, failed_chunks=3),
            True,
            [{"code": "chunks_failed", "message": "3 chunk(s) failed", "count": 3, "examples": []}],
        ),
        (
            Operational(expected_executions=2, cancelled=True, failed_chunks=1, failure_reason="lease recovery limit"),
            True,
            [
                {
                    "code": "run_cancelled",
                    "message": "the run was cancelled: lease recovery limit",
                    "count": 1,
                    "examples": [],
                },
                {
                    "code": "chunks_failed",
                    "message": "1 chunk(s) failed: lease recovery limit",
                    "count": 1,
                    "examples": [],
                },
            ],
        ),
        (
            Operational(expected_executions=3),
            False,
            [
                {
                    "code": "executions_missing",
                    "message": "1 of 3 expected executions have no aggregate",
                    "count": 1,
                    "examples": [],
                }
            ],
        ),
        (Operational(expected_executions=2), False, []),
    ],
)
def test_operational_failures_are_distinct_from_policy_failures(operational, operational_failure, reasons):
    profile = verdict_profile()
    executions = [summary(profile, "e1"), summary(profile, "e2")]

    verdict = verdict_compute(profile=profile, executions=executions, operational=operational)

    assert verdict["gate"] == ("fail" if reasons else "pass")
    assert verdict["operational_failure"] is operational_failure
    assert verdict["reasons"] == reasons
    assert verdict["counts"]["passed"] == 2


def test_a_policy_failure_is_not_an_operational_failure():
    profile = verdict_profile()
    executions = [summary(profile, "e1", guard=0.0)]

    verdict = verdict_compute(profile=profile, executions=executions, operational=Operational(expected_executions=1))

    assert verdict["gate"] == "fail"
    assert verdict["operational_failure"] is False
    assert codes(verdict) == ["executions_failed"]


def test_a_cancelled_run_still_reports_counts_and_policy_reasons():
    profile = verdict_profile()
    executions = [summary(profile, "e1", guard=0.0)]

    verdict = verdict_compute(
        profile=profile, executions=executions, operational=Operational(expected_executions=5, cancelled=True)
    )

    assert verdict["operational_failure"] is True
    assert codes(verdict) == ["run_cancelled", "executions_missing", "executions_failed"]
    assert verdict["counts"] == {
        "expected": 5,
        "aggregated": 1,
        "passed": 0,
        "failed": 1,
        "error": 0,
        "missing": 4,
    }


def test_with_a_scorecard_failed_executions_alone_do_not_fail_the_gate():
    profile = verdict_profile(scorecard=[{"dimension": "correctness", "min_mean_score": 0.5}])
    executions = [summary(profile, "e1", guard=0.0), summary(profile, "e2")]

    verdict = verdict_compute(profile=profile, executions=executions, operational=Operational(expected_executions=2))

    assert verdict["counts"]["failed"] == 1
    assert verdict["gate"] == "pass"
    assert verdict["reasons"] == []
    assert verdict["scorecard"] == [
        {
            "gate": "dimension=correctness",
            "holds": True,
            "matched": 2,
            "observed": {"mean_score": 1.0, "pass_rate": 1.0, "error_rate": 0.0, "abstention_rate": 0.0},
            "thresholds": {"min_mean_score": 0.5},
        }
    ]


def test_with_a_scorecard_errored_executions_still_fail_the_gate():
    profile = verdict_profile(scorecard=[{"dimension": "correctness", "min_mean_score": 0.0}])
    executions = [summary(profile, "e1", guard=ABSTAINED), summary(profile, "e2")]

    verdict = verdict_compute(profile=profile, executions=executions, operational=Operational(expected_executions=2))

    assert verdict["gate"] == "fail"
    assert codes(verdict) == ["executions_errored"]


# Six executions: e1..e3 tagged billing, e4..e6 tagged smoke.
#   e1 answer 1.0 guard 1.0 -> passed         e4 answer 1.0 guard 1.0  -> passed
#   e2 answer 0.0 guard 1.0 -> passed (0.5)   e5 answer error          -> error
#   e3 answer 1.0 guard 0.0 -> failed         e6 guard abstained       -> error
SCORECARD_EXECUTIONS = [
    ("e1", {"answer": 1.0, "guard": 1.0}, ("billing",)),
    ("e2", {"answer": 0.0, "guard": 1.0}, ("billing",)),
    ("e3", {"answer": 1.0, "guard": 0.0}, ("billing",)),
    ("e4", {"answer": 1.0, "guard": 1.0}, ("smoke",)),
    ("e5", {"answer": ERRORED, "guard": 1.0}, ("smoke",)),
    ("e6", {"answer": 1.0, "guard": ABSTAINED}, ("smoke",)),
]


@pytest.mark.parametrize(
    ("gate", "entry", "reason"),
    [
        # dimension gate, mean over the scores available (e5 has none): (1 + 0 + 1 + 1 + 1) / 5
        (
            {"dimension": "correctness", "min_mean_score": 0.8},
            {
                "gate": "dimension=correctness",
                "holds": True,
                "matched": 6,
                "observed": {
                    "mean_score": 0.8,
                    "pass_rate": 4 / 6,
                    "error_rate": 1 / 6,
                    "abstention_rate": 0.0,
                },
                "thresholds": {"min_mean_score": 0.8},
            },
            None,
        ),
        (
            {"dimension": "correctness", "min_mean_score": 0.81},
            {
                "gate": "dimension=correctness",
                "holds": False,
                "matched": 6,
                "observed": {
                    "mean_score": 0.8,
                    "pass_rate": 4 / 6,
                    "error_rate": 1 / 6,
                    "abstention_rate": 0.0,
                },
                "thresholds": {"min_mean_score": 0.81},
            },
            {
                "code": "scorecard_failed",
                "message": "scorecard gate 'dimension=correctness' does not hold: "
                "min_mean_score: observed mean_score 0.8 < 0.81",
                "count": 2,
                "examples": ["e2", "e5"],
            },
        ),
        # tag filter + pass rate on a dimension: billing has e1, e2, e3; e2 fails answer
        (
            {"dimension": "correctness", "tag": "billing", "min_pass_rate": 0.7},
            {
                "gate": "dimension=correctness tag=billing",
                "holds": False,
                "matched": 3,
                "observed": {
                    "mean_score": 2 / 3,
                    "pass_rate": 2 / 3,
                    "error_rate": 0.0,
                    "abstention_rate": 0.0,
                },
                "thresholds": {"min_pass_rate": 0.7},
            },
            {
                "code": "scorecard_failed",
                "message": "scorecard gate 'dimension=correctness tag=billing' does not hold: "
                "min_pass_rate: observed pass_rate 0.666667 < 0.7",
                "count": 1,
                "examples": ["e2"],
            },
        ),
        # binding gate: error rate of answer over smoke (e5 errored)
        (
            {"binding": "answer", "tag": "smoke", "max_error_rate": 0.0},
            {
                "gate": "binding=answer tag=smoke",
                "holds": False,
                "matched": 3,
                "observed": {
                    "mean_score": 1.0,
                    "pass_rate": 2 / 3,
                    "error_rate": 1 / 3,
                    "abstention_rate": 0.0,
                },
                "thresholds": {"max_error_rate": 0.0},
            },
            {
                "code": "scorecard_failed",
                "message": "scorecard gate 'binding=answer tag=smoke' does not hold: "
                "max_error_rate: observed error_rate 0.333333 > 0",
                "count": 1,
                "examples": ["e5"],
            },
        ),
        # binding gate: abstention rate of guard, threshold equal to the observed rate holds
        (
            {"binding": "guard", "max_abstention_rate": 1 / 6},
            {
                "gate": "binding=guard",
                "holds": True,
                "matched": 6,
                "observed": {
                    "mean_score": 0.8,
                    "pass_rate": 4 / 6,
                    "error_rate": 0.0,
                    "abstention_rate": 1 / 6,
                },
                "thresholds": {"max_abstention_rate": 1 / 6},
            },
            None,
        ),
        (
            {"binding": "guard", "max_abstention_rate": 0.1, "min_pass_rate": 0.9},
            {
                "gate": "binding=guard",
                "holds": False,
                "matched": 6,
                "observed": {
                    "mean_score": 0.8,
                    "pass_rate": 4 / 6,
                    "error_rate": 0.0,
                    "abstention_rate": 1 / 6,
                },
                "thresholds": {"min_pass_rate": 0.9, "max_abstention_rate": 0.1},
            },
            {
                "code": "scorecard_failed",
                "message": "scorecard gate 'binding=guard' does not hold: "
                "min_pass_rate: observed pass_rate 0.666667 < 0.9; "
                "max_abstention_rate: observed abstention_rate 0.166667 > 0.1",
                "count": 2,
                "examples": ["e3", "e6"],
            },
        ),
        # tag-only gate: the execution as a whole (smoke: e4 passed, e5 and e6 errored)
        (
            {"tag": "smoke", "max_error_rate": 0.5},
            {
                "gate": "tag=smoke",
                "holds": False,
                "matched": 3,
                "observed": {
                    "mean_score": 1.0,
                    "pass_rate": 1 / 3,
                    "error_rate": 2 / 3,
                    "abstention_rate": 1 / 3,
                },
                "thresholds": {"max_error_rate": 0.5},
            },
            {
                "code": "scorecard_failed",
                "message": "scorecard gate 'tag=smoke' does not hold: "
                "max_error_rate: observed error_rate 0.666667 > 0.5",
                "count": 2,
                "examples": ["e5", "e6"],
            },
        ),
        (
            {"tag": "billing", "min_pass_rate": 2 / 3, "min_mean_score": 0.5},
            {
                "gate": "tag=billing",
                "holds": True,
                "matched": 3,
                "observed": {
                    "mean_score": 2 / 3,
                    "pass_rate": 2 / 3,
                    "error_rate": 0.0,
                    "abstention_rate": 0.0,
                },
                "thresholds": {"min_mean_score": 0.5, "min_pass_rate": 2 / 3},
            },
            None,
        ),
        # a gate that matches no execution fails
        (
            {"tag": "nightly", "min_pass_rate": 0.0},
            {
                "gate": "tag=nightly",
                "holds": False,
                "matched": 0,
                "observed": {
                    "mean_score": None,
                    "pass_rate": None,
                    "error_rate": None,
                    "abstention_rate": None,
                },
                "thresholds": {"min_pass_rate": 0.0},
            },
            {
                "code": "scorecard_no_match",
                "message": "scorecard gate 'tag=nightly' matched no execution",
                "count": 0,
                "examples": [],
            },
        ),
    ],
)
def test_scorecard_gates(gate, entry, reason):
    profile = verdict_profile(scorecard=[gate])
    executions = [summary(profile, eid, tags=tags, **values) for eid, values, tags in SCORECARD_EXECUTIONS]

    verdict = verdict_compute(
        profile=profile, executions=executions, operational=Operational(expected_executions=6), max_examples=2
    )

    assert verdict["scorecard"] == [entry]
    scorecard_reasons = [r for r in verdict["reasons"] if r["code"].startswith("scorecard_")]
    assert scorecard_reasons == ([reason] if reason else [])
    # e5 and e6 errored, which fails the gate whatever the scorecard says
    assert codes(verdict)[0] == "executions_errored"
    assert verdict["gate"] == "fail"


def test_every_failing_scorecard_gate_gets_its_own_reason():
    profile = verdict_profile(
        scorecard=[
            {"dimension": "correctness", "min_mean_score": 0.5},
            {"binding": "guard", "min_pass_rate": 1.0},
            {"tag": "nightly", "min_pass_rate": 0.0},
        ]
    )
    executions = [summary(profile, "e1", answer=0.0, tags=("billing",)), summary(profile, "e2", guard=0.0)]

    verdict = verdict_compute(profile=profile, executions=executions, operational=Operational(expected_executions=2))

    assert verdict["gate"] == "fail"
    assert [entry["holds"] for entry in verdict["scorecard"]] == [True, False, False]
    assert verdict["reasons"] == [
        {
            "code": "scorecard_failed",
            "message": "scorecard gate 'binding=guard' does not hold: min_pass_rate: observed pass_rate 0.5 < 1",
            "count": 1,
            "examples": ["e2"],
        },
        {
            "code": "scorecard_no_match",
            "message": "scorecard gate 'tag=nightly' matched no execution",
            "count": 0,
            "examples": [],
        },
    ]


def test_a_scorecard_on_a_dimension_without_required_bindings_has_no_pass_rate_and_fails():
    profile = make_profile(
        dimensions={"quality": {}, "style": {"weight": 0}},
        bindings=[
            {"id": "q", "dimension": "quality"},
            {"id": "tone", "dimension": "style", "required": False, "weight": 0},
        ],
        scorecard=[{"dimension": "style", "min_pass_rate": 0.5}],
    )
    executions = [
        ExecutionSummary(
            execution_id="e1",
            case_id="c1",
            tags=(),
            aggregate=execution_aggregate(profile=profile, results={"q": completed(True), "tone": completed(True)}),
        )
    ]

    verdict = verdict_compute(profile=profile, executions=executions, operational=Operational(expected_executions=1))

    assert verdict["dimensions"]["style"] == {
        "mean": None,
        "pass_rate": None,
        "error_rate": 0.0,
        "abstention_rate": 0.0,
        "count": 1,
    }
    assert verdict["reasons"] == [
        {
            "code": "scorecard_failed",
            "message": "scorecard gate 'dimension=style' does not hold: "
            "min_pass_rate: no observed pass_rate (threshold 0.5)",
            "count": 1,
            "examples": ["e1"],
        }
    ]


def test_dimension_and_binding_statistics_cover_every_execution():
    profile = verdict_profile()
    executions = [summary(profile, eid, tags=tags, **values) for eid, values, tags in SCORECARD_EXECUTIONS]

    verdict = verdict_compute(profile=profile, executions=executions, operational=Operational(expected_executions=6))

    assert verdict["dimensions"] == {
        "correctness": {
            "mean": 0.8,
            "pass_rate": 4 / 6,
            "error_rate": 1 / 6,
            "abstention_rate": 0.0,
            "count": 6,
        },
        "safety": {"mean": 0.8, "pass_rate": 4 / 6, "error_rate": 0.0, "abstention_rate": 1 / 6, "count": 6},
    }
    assert verdict["bindings"] == {
        "answer": {"mean": 0.8, "pass_rate": 4 / 6, "error_rate": 1 / 6, "abstention_rate": 0.0, "count": 6},
        "guard": {"mean": 0.8, "pass_rate": 4 / 6, "error_rate": 0.0, "abstention_rate": 1 / 6, "count": 6},
    }


def test_worst_lists_errors_first_then_lowest_aggregate_then_id():
    profile = verdict_profile()
    executions = [
        summary(profile, "e1", answer=1.0),
        summary(profile, "e2", answer=0.0),
        summary(profile, "e3", answer=ERRORED),
        summary(profile, "e4", answer=0.5),
        summary(profile, "e5", answer=0.0),
        summary(profile, "e0", guard=ABSTAINED),
    ]

    verdict = verdict_compute(
        profile=profile, executions=executions, operational=Operational(expected_executions=6), worst=4
    )

    assert verdict["worst"] == [
        {
            "execution_id": "e0",
            "case_id": "case-e0",
            "status": "error",
            "aggregate_score": 1.0,
            "reasons": ["required binding 'guard' abstained (no_reference: case has no expected)"],
        },
        {
            "execution_id": "e3",
            "case_id": "case-e3",
            "status": "error",
            "aggregate_score": 1.0,
            "reasons": ["required binding 'answer' errored (timeout: wall clock limit of 5s exceeded)"],
        },
        {
            "execution_id": "e2",
            "case_id": "case-e2",
            "status": "passed",
            "aggregate_score": 0.5,
            "reasons": [],
        },
        {
            "execution_id": "e5",
            "case_id": "case-e5",
            "status": "passed",
            "aggregate_score": 0.5,
            "reasons": [],
        },
    ]


def test_an_empty_run_with_no_expected_executions_passes():
    profile = verdict_profile()

    verdict = verdict_compute(profile=profile, executions=[], operational=Operational(expected_executions=0))

    assert verdict["gate"] == "pass"
    assert verdict["dimensions"]["correctness"] == {
        "mean": None,
        "pass_rate": None,
        "error_rate": None,
        "abstention_rate": None,
        "count": 0,
    }


def test_duplicate_execution_ids_are_a_programming_error():
    profile = verdict_profile()

    with pytest.raises(ValueError, match="duplicate execution_id"):
        verdict_compute(
            profile=profile,
            executions=[summary(profile, "e1"), summary(profile, "e1")],
            operational=Operational(expected_executions=2),
        )


# --- bindings with `when` ---

WHEN_PROFILE = {
    "dimensions": {"correctness": {"weight": 1.0}, "refunds": {"weight": 1.0}},
    "bindings": [
        {"id": "answer", "dimension": "correctness"},
        {"id": "amount", "dimension": "refunds", "when": {"tags": ["refund", "chargeback"]}},
    ],
    "min_execution_score": 0.8,
}


def when_summary(profile: ProfileSpec, execution_id: str, tags: tuple[str, ...], **results: float) -> ExecutionSummary:
    outcomes = {binding_id: completed(value) for binding_id, value in results.items()}
    return ExecutionSummary(
        execution_id=execution_id,
        case_id=f"case-{execution_id}",
        tags=tags,
        aggregate=execution_aggregate(profile=profile, results=outcomes, tags=tags),
    )


def test_a_binding_with_when_is_neither_scored_nor_required_for_other_cases():
    profile = make_profile(**WHEN_PROFILE)

    other = execution_aggregate(profile=profile, results={"answer": completed(1.0)}, tags=("billing",))
    refund = execution_aggregate(profile=profile, results={"answer": completed(1.0)}, tags=("refund",))

    assert other.status == "passed" and other.aggregate_score == 1.0
    assert set(other.binding_scores) == {"answer"} and other.dimension_scores == {"correctness": 1.0}
    assert refund.status == "error"  # it applies to a refund: its result is required
    assert refund.reasons == (
        "required binding 'amount' errored (missing_result: no result was recorded for binding 'amount')",
    )


def test_a_binding_with_when_counts_in_the_aggregate_of_the_cases_it_applies_to():
    profile = make_profile(**WHEN_PROFILE)

    agg = execution_aggregate(
        profile=profile, results={"answer": completed(1.0), "amount": completed(0.0)}, tags=("chargeback", "x")
    )

    assert agg.dimension_scores == {"correctness": 1.0, "refunds": 0.0}
    assert agg.aggregate_score == 0.5 and agg.status == "failed"


def test_the_verdict_observes_a_binding_and_its_dimension_only_where_it_applies():
    profile = make_profile(
        **WHEN_PROFILE,
        scorecard=[{"binding": "amount", "min_pass_rate": 1.0}, {"dimension": "refunds", "min_mean_score": 0.9}],
    )
    executions = [
        when_summary(profile, "1", ("refund",), answer=1.0, amount=1.0),
        when_summary(profile, "2", ("billing",), answer=1.0),
        when_summary(profile, "3", (), answer=1.0),
    ]

    verdict = verdict_compute(profile=profile, executions=executions, operational=Operational(expected_executions=3))

    assert verdict["bindings"]["amount"] == {
        "mean": 1.0,
        "pass_rate": 1.0,
        "error_rate": 0.0,
        "abstention_rate": 0.0,
        "count": 1,
    }
    assert verdict["bindings"]["answer"]["count"] == 3
    assert verdict["dimensions"]["refunds"]["count"] == 1
    assert [(row["gate"], row["matched"], row["holds"]) for row in verdict["scorecard"]] == [
        ("binding=amount", 1, True),
        ("dimension=refunds", 1, True),
    ]
    assert verdict["gate"] == "pass"


def test_a_scorecard_gate_on_a_binding_that_applied_to_no_case_fails():
    profile = make_profile(**WHEN_PROFILE, scorecard=[{"binding": "amount", "min_pass_rate": 1.0}])
    executions = [when_summary(profile, "1", ("billing",), answer=1.0)]

    verdict = verdict_compute(profile=profile, executions=executions, operational=Operational(expected_executions=1))

    assert verdict["scorecard"][0]["matched"] == 0 and verdict["scorecard"][0]["holds"] is False
    assert verdict["gate"] == "fail"


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ({"tags": []}, "is required: a non-empty list of tags"),
        ({"tags": "refund"}, "is required: a non-empty list of tags"),
        ({"tags": ["refund", ""]}, "is required: a non-empty list of tags"),
        ({"tag": ["refund"]}, "unknown key (allowed: tags)"),
        (["refund"], "must be a mapping"),
    ],
)
def test_a_malformed_when_is_refused_naming_it(when, message):
    data = {
        "name": "t",
        "dimensions": {"d": {}},
        "bindings": [{"id": "b", "evaluator": "vigilo/check@1.0.0", "dimension": "d", "when": when}],
    }
    with pytest.raises(ProfileError) as refused:
        profile_parse(data=data)
    where, said = refused.value.errors[0]
    assert where.startswith("bindings[0].when") and said.startswith(message)
