import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gating.profile import Binding, Normalization
from gating.scoring import (
    AggregateScore,
    BindingScore,
    StoredColumns,
    binding_score,
    execution_aggregate,
    stored_columns,
)
from tests.gating.factories import (
    ABSTAINED,
    DEFAULT,
    ERRORED,
    LINEAR_UP,
    ORDINAL,
    THRESHOLDS,
    WHEN_PROFILE,
    Report,
    completed,
    make_profile,
    results_aggregate,
)

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
            Report(outcome="completed"),
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
            Report(outcome="skipped"),
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

    aggregate = results_aggregate(profile=profile, results=results)

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

    aggregate = results_aggregate(profile=profile, results=results)

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

    aggregate = results_aggregate(profile=profile, results={"q": completed(value)})

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

    aggregate = results_aggregate(profile=profile, results={"q": completed(0.5)})

    assert aggregate.aggregate_score == 0.37499999999999994
    assert aggregate.status == "passed"


def test_no_aggregate_means_min_execution_score_is_not_applied():
    profile = make_profile(
        dimensions={"quality": {"weight": 0}},
        bindings=[{"id": "q", "dimension": "quality", "pass_threshold": 0.0}],
        min_execution_score=0.9,
    )

    aggregate = results_aggregate(profile=profile, results={"q": completed(0.1)})

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

    aggregate = results_aggregate(profile=profile, results=results)

    assert aggregate.status == status
    assert aggregate.reasons == reasons
    assert aggregate.dimension_scores == {"quality": dimension_score}
    assert aggregate.aggregate_score == dimension_score


def test_scores_for_undeclared_bindings_are_ignored():
    profile = make_profile(dimensions={"quality": {}}, bindings=[{"id": "q", "dimension": "quality"}])
    q = BindingScore(binding_id="q", outcome="completed", score=1.0, passed=True)
    stale = BindingScore(binding_id="stale", outcome="error", error_code="timeout")

    aggregate = execution_aggregate(profile=profile, scores={"q": q, "stale": stale})

    assert aggregate == AggregateScore(
        status="passed",
        aggregate_score=1.0,
        dimension_scores={"quality": 1.0},
        binding_scores={"q": q},
        blocking_failures=(),
        reasons=(),
    )


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
    results = {key: value if isinstance(value, Report) else completed(float(value)) for key, value in values.items()}

    aggregate = results_aggregate(profile=profile, results=results)

    assert aggregate.status == status
    assert aggregate.blocking_failures == blocking_failures
    assert aggregate.reasons == reasons


def test_an_incomplete_execution_is_not_judged_on_its_partial_aggregate():
    profile = make_profile(
        dimensions={"quality": {}},
        bindings=[{"id": "a", "dimension": "quality"}, {"id": "b", "dimension": "quality"}],
        min_execution_score=0.9,
    )

    aggregate = results_aggregate(profile=profile, results={"a": completed(0.0), "b": ERRORED})

    assert aggregate.status == "error"
    assert aggregate.aggregate_score == 0.0
    assert aggregate.reasons == ("required binding 'b' errored (timeout: wall clock limit of 5s exceeded)",)


# --- bindings with `when` ---


def test_a_binding_with_when_is_neither_scored_nor_required_for_other_cases():
    profile = make_profile(**WHEN_PROFILE)

    other = results_aggregate(profile=profile, results={"answer": completed(1.0)}, tags=("billing",))
    refund = results_aggregate(profile=profile, results={"answer": completed(1.0)}, tags=("refund",))

    assert other.status == "passed" and other.aggregate_score == 1.0
    assert set(other.binding_scores) == {"answer"} and other.dimension_scores == {"correctness": 1.0}
    assert refund.status == "error"  # it applies to a refund: its result is required
    assert refund.reasons == (
        "required binding 'amount' errored (missing_result: no result was recorded for binding 'amount')",
    )


def test_a_binding_with_when_counts_in_the_aggregate_of_the_cases_it_applies_to():
    profile = make_profile(**WHEN_PROFILE)

    agg = results_aggregate(
        profile=profile, results={"answer": completed(1.0), "amount": completed(0.0)}, tags=("chargeback", "x")
    )

    assert agg.dimension_scores == {"correctness": 1.0, "refunds": 0.0}
    assert agg.aggregate_score == 0.5 and agg.status == "failed"


def test_a_score_for_a_binding_that_does_not_apply_is_ignored():
    profile = make_profile(**WHEN_PROFILE)
    answer = BindingScore(binding_id="answer", outcome="completed", score=1.0, passed=True)
    amount = BindingScore(binding_id="amount", outcome="completed", score=0.0, passed=False)

    aggregate = execution_aggregate(profile=profile, scores={"answer": answer, "amount": amount}, tags=("billing",))

    assert aggregate.status == "passed"
    assert aggregate.binding_scores == {"answer": answer}
    assert aggregate.dimension_scores == {"correctness": 1.0}


# --- reports shaped like a stored row ---


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (
            Report(outcome="abstained", kind="", error_code="", error_message=""),
            BindingScore(binding_id="check", outcome="abstained"),
        ),
        (
            Report(outcome="error", kind="", error_code="timeout", error_message=""),
            BindingScore(binding_id="check", outcome="error", error_code="timeout"),
        ),
        (
            Report(outcome="completed", kind="", measurement=0.5, error_code="", error_message=""),
            BindingScore(
                binding_id="check",
                outcome="error",
                error_code="normalization_error",
                error_message="a completed result carries no measurement",
            ),
        ),
        (
            Report(outcome="completed", kind="numeric", measurement=0.5, error_code="", error_message=""),
            BindingScore(binding_id="check", outcome="completed", score=0.5, passed=True),
        ),
    ],
)
def test_an_empty_kind_or_error_is_none(result, expected):
    scored = binding_score(binding=make_binding(DEFAULT, 0.5), result=result)

    assert scored == expected


# --- the columns a result row stores, and the BindingScore rebuilt from them ---


@pytest.mark.parametrize(
    ("normalization", "report", "columns"),
    [
        (
            DEFAULT,
            completed(0.75),
            {"outcome": "completed", "score": 0.75, "judgment": "passed", "error_code": "", "error_message": ""},
        ),
        (
            ORDINAL,
            completed("unsafe"),
            {"outcome": "completed", "score": 0.0, "judgment": "failed", "error_code": "", "error_message": ""},
        ),
        (
            DEFAULT,
            ABSTAINED,
            {
                "outcome": "abstained",
                "score": None,
                "judgment": "",
                "error_code": "no_reference",
                "error_message": "case has no expected",
            },
        ),
        (
            DEFAULT,
            ERRORED,
            {
                "outcome": "error",
                "score": None,
                "judgment": "",
                "error_code": "timeout",
                "error_message": "wall clock limit of 5s exceeded",
            },
        ),
        (
            DEFAULT,
            Report(outcome="error"),
            {"outcome": "error", "score": None, "judgment": "", "error_code": "", "error_message": ""},
        ),
        (
            LINEAR_UP,
            completed(11.0),
            {
                "outcome": "completed",
                "score": None,
                "judgment": "",
                "error_code": "normalization_error",
                "error_message": "numeric measurement 11 is outside the linear domain [0, 10]",
            },
        ),
        # when scoring failed, the row says why, whatever else the evaluator said
        (
            THRESHOLDS,
            Report(outcome="completed", kind="numeric", measurement=-1.0, error_code="stray"),
            {
                "outcome": "completed",
                "score": None,
                "judgment": "",
                "error_code": "normalization_error",
                "error_message": "numeric measurement -1 is outside the thresholds domain [0, 60]",
            },
        ),
        (
            DEFAULT,
            Report(outcome="skipped", error_code="stray", error_message="ignored"),
            {
                "outcome": "skipped",
                "score": None,
                "judgment": "",
                "error_code": "invalid_outcome",
                "error_message": "unknown outcome 'skipped'",
            },
        ),
        # a completed, scored result keeps what the evaluator said; its score has no error
        (
            DEFAULT,
            Report(outcome="completed", kind="binary", measurement=True, error_message="note"),
            {"outcome": "completed", "score": 1.0, "judgment": "passed", "error_code": "", "error_message": "note"},
        ),
    ],
)
def test_stored_columns_and_the_score_rebuilt_from_them(normalization, report, columns):
    scored = binding_score(binding=make_binding(normalization, 0.5), result=report)

    stored = stored_columns(report=report, scored=scored)

    assert stored == columns
    assert BindingScore.stored(binding_id="check", **stored) == scored


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (
            {"outcome": "completed", "score": 0.5, "judgment": "", "error_code": "", "error_message": ""},
            "binding 'check': a scored result row has judgment ''",
        ),
        (
            {"outcome": "completed", "score": None, "judgment": "", "error_code": "", "error_message": "x"},
            "binding 'check': a completed result row has neither a score nor an error",
        ),
        (
            {"outcome": "completed", "score": None, "judgment": "failed", "error_code": "x", "error_message": ""},
            "binding 'check': a result row with outcome 'completed' carries a score or a judgment",
        ),
        (
            {"outcome": "error", "score": 0.5, "judgment": "", "error_code": "x", "error_message": ""},
            "binding 'check': a result row with outcome 'error' carries a score or a judgment",
        ),
        (
            {"outcome": "abstained", "score": None, "judgment": "passed", "error_code": "", "error_message": ""},
            "binding 'check': a result row with outcome 'abstained' carries a score or a judgment",
        ),
    ],
)
def test_columns_no_score_was_stored_as_are_refused(columns, message):
    with pytest.raises(ValueError) as refused:
        BindingScore.stored(binding_id="check", **columns)

    assert str(refused.value) == message


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
unit = st.floats(min_value=0.0, max_value=1.0)
labels = st.sampled_from(["safe", "borderline", "unsafe", "other", ""])
normalizations = st.one_of(
    st.just(DEFAULT),
    st.builds(
        Normalization,
        kind=st.just("binary"),
        true_score=st.none() | unit,
        false_score=st.none() | unit,
    ),
    st.builds(
        Normalization,
        kind=st.just("linear"),
        min_value=st.none() | finite,
        max_value=st.none() | finite,
        direction=st.sampled_from(["higher", "lower"]),
    ),
    st.lists(finite, max_size=4, unique=True).flatmap(
        lambda cuts: st.builds(
            Normalization,
            kind=st.just("thresholds"),
            cutpoints=st.just(tuple(sorted(cuts))),
            scores=st.lists(unit, min_size=len(cuts) + 1, max_size=len(cuts) + 1).map(tuple),
            min_value=st.none() | finite,
            max_value=st.none() | finite,
        )
    ),
    st.builds(Normalization, kind=st.just("ordinal"), labels=st.dictionaries(labels, unit, max_size=3)),
)
bindings = st.builds(
    Binding,
    id=st.just("check"),
    evaluator=st.just("vigilo/check@1.0.0"),
    dimension=st.just("quality"),
    normalization=normalizations,
    pass_threshold=unit,
)
# A stored row says "" where the sandbox says None: reports draw both.
maybe_text = st.none() | st.just("") | st.text(max_size=12)
measurements = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | labels
measured = st.one_of(
    st.tuples(st.just("binary"), st.booleans()),
    st.tuples(st.just("numeric"), finite | st.integers(min_value=-100, max_value=100)),
    st.tuples(st.just("ordinal"), labels),
    st.tuples(st.sampled_from([None, "", "binary", "numeric", "ordinal", "text"]), measurements),
)
reports = st.builds(
    lambda outcome, kind_and_measurement, error_code, error_message: Report(
        outcome=outcome,
        kind=kind_and_measurement[0],
        measurement=kind_and_measurement[1],
        error_code=error_code,
        error_message=error_message,
    ),
    st.sampled_from(["completed", "completed", "abstained", "error", "skipped", ""]),
    measured,
    maybe_text,
    maybe_text,
)


@given(binding=bindings, report=reports)
def test_the_score_rebuilt_from_a_row_is_the_score_the_row_was_written_with(binding, report):
    scored = binding_score(binding=binding, result=report)

    columns: StoredColumns = stored_columns(report=report, scored=scored)
    rebuilt = BindingScore.stored(binding_id=binding.id, **columns)

    assert rebuilt == scored
    assert rebuilt.score is None or math.isfinite(rebuilt.score)
    assert columns["outcome"] == report.outcome
    assert isinstance(columns["error_code"], str) and isinstance(columns["error_message"], str)
