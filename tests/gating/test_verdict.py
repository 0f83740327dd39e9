import json

import pytest

from gating.profile import ProfileSpec
from gating.verdict import ExecutionSummary, Operational, verdict_compute
from tests.gating.factories import (
    ABSTAINED,
    ERRORED,
    WHEN_PROFILE,
    Report,
    completed,
    make_profile,
    results_aggregate,
)

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
    answer: Report | float | None = 1.0,
    guard: Report | float | None = 1.0,
    tags: tuple[str, ...] = (),
) -> ExecutionSummary:
    results: dict[str, Report] = {}
    for binding_id, value in (("answer", answer), ("guard", guard)):
        if isinstance(value, Report):
            results[binding_id] = value
        elif value is not None:
            results[binding_id] = completed(float(value))
    return ExecutionSummary(
        execution_id=execution_id,
        case_id=f"case-{execution_id}",
        tags=tags,
        aggregate=results_aggregate(profile=profile, results=results),
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
        "warnings": [],
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
            "cases": [],
        },
        {
            "code": "executions_errored",
            "message": "1 of 4 executions errored (a required binding did not complete)",
            "count": 1,
            "examples": ["e3"],
            "cases": ["case-e3"],
        },
        {
            "code": "executions_failed",
            "message": "2 of 4 executions failed",
            "count": 2,
            "examples": ["e2", "e4"],
            "cases": ["case-e2", "case-e4"],
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
            "cases": ["case-e1", "case-e2", "case-e3"],
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
                    "cases": [],
                }
            ],
        ),
        (
            Operational(expected_executions=2, failed_chunks=3),
            True,
            [{"code": "chunks_failed", "message": "3 chunk(s) failed", "count": 3, "examples": [], "cases": []}],
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
                    "cases": [],
                },
                {
                    "code": "chunks_failed",
                    "message": "1 chunk(s) failed: lease recovery limit",
                    "count": 1,
                    "examples": [],
                    "cases": [],
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
                    "cases": [],
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
                "cases": ["case-e2", "case-e5"],
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
                "cases": ["case-e2"],
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
                "cases": ["case-e5"],
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
                "cases": ["case-e3", "case-e6"],
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
                "cases": ["case-e5", "case-e6"],
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
                "cases": [],
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
            "cases": ["case-e2"],
        },
        {
            "code": "scorecard_no_match",
            "message": "scorecard gate 'tag=nightly' matched no execution",
            "count": 0,
            "examples": [],
            "cases": [],
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
            aggregate=results_aggregate(profile=profile, results={"q": completed(True), "tone": completed(True)}),
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
            "cases": ["c1"],
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


def when_summary(profile: ProfileSpec, execution_id: str, tags: tuple[str, ...], **results: float) -> ExecutionSummary:
    outcomes = {binding_id: completed(value) for binding_id, value in results.items()}
    return ExecutionSummary(
        execution_id=execution_id,
        case_id=f"case-{execution_id}",
        tags=tags,
        aggregate=results_aggregate(profile=profile, results=outcomes, tags=tags),
    )


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


# --- warnings: a gate more lenient than it looks ---


def test_executions_that_passed_with_a_failed_binding_are_warned_about_by_case():
    profile = verdict_profile(min_execution_score=0.5)
    executions = [
        summary(profile, "e4", answer=0.2),  # answer fails (< 0.5), aggregate 0.6 passes
        summary(profile, "e3", guard=0.0),  # blocking guard fails: failed, not a warning
        summary(profile, "e2"),
        summary(profile, "e1", answer=0.0),  # aggregate 0.5 passes
    ]

    verdict = verdict_compute(profile=profile, executions=executions, operational=Operational(expected_executions=4))

    assert verdict["counts"]["passed"] == 3
    assert verdict["warnings"] == [
        {
            "code": "passed_with_failed_bindings",
            "message": "2 execution(s) passed although a binding failed (min_execution_score 0.5 lets them pass)",
            "count": 2,
            "examples": ["e1", "e4"],
            "cases": ["case-e1", "case-e4"],
        }
    ]
    assert codes(verdict) == ["executions_failed"]


def test_a_warning_does_not_fail_the_gate_and_keeps_at_most_max_examples():
    profile = verdict_profile()
    executions = [summary(profile, f"e{index}", answer=0.0) for index in (3, 1, 2)]

    verdict = verdict_compute(
        profile=profile, executions=executions, operational=Operational(expected_executions=3), max_examples=2
    )

    assert verdict["gate"] == "pass"
    assert verdict["reasons"] == []
    assert verdict["warnings"] == [
        {
            "code": "passed_with_failed_bindings",
            "message": "3 execution(s) passed although a binding failed (min_execution_score 0 lets them pass)",
            "count": 3,
            "examples": ["e1", "e2"],
            "cases": ["case-e1", "case-e2"],
        }
    ]


def test_a_failed_diagnostic_binding_is_no_warning():
    profile = make_profile(
        dimensions={"quality": {}, "style": {"weight": 0}},
        bindings=[{"id": "q", "dimension": "quality"}, {"id": "tone", "dimension": "style", "required": False}],
        min_execution_score=1.0,
    )
    executions = [
        ExecutionSummary(
            execution_id="e1",
            case_id="c1",
            tags=(),
            aggregate=results_aggregate(profile=profile, results={"q": completed(True), "tone": completed(False)}),
        )
    ]

    verdict = verdict_compute(profile=profile, executions=executions, operational=Operational(expected_executions=1))

    assert (verdict["gate"], verdict["warnings"]) == ("pass", [])


def test_a_blocking_failure_let_through_by_fail_on_any_blocking_failure_false_is_named_in_the_warning():
    profile = make_profile(
        dimensions=VERDICT_DIMENSIONS,
        bindings=VERDICT_BINDINGS,
        min_execution_score=0.5,
        fail_on_any_blocking_failure=False,
    )
    executions = [summary(profile, "e1", guard=0.0)]

    verdict = verdict_compute(profile=profile, executions=executions, operational=Operational(expected_executions=1))

    assert verdict["gate"] == "pass"
    assert [w["message"] for w in verdict["warnings"]] == [
        "1 execution(s) passed although a binding failed (min_execution_score 0.5 lets them pass; "
        "fail_on_any_blocking_failure is false, so blocking failures do not fail them)"
    ]


def test_a_binding_that_does_not_apply_to_a_case_is_no_warning():
    profile = make_profile(**{**WHEN_PROFILE, "min_execution_score": 0.0})
    executions = [
        when_summary(profile, "1", ("billing",), answer=1.0),
        when_summary(profile, "2", ("refund",), answer=1.0, amount=0.0),
    ]

    verdict = verdict_compute(profile=profile, executions=executions, operational=Operational(expected_executions=2))

    assert [(w["count"], w["cases"]) for w in verdict["warnings"]] == [(1, ["case-2"])]


def test_every_reason_names_its_examples_by_case_in_the_same_order():
    profile = verdict_profile(scorecard=[{"binding": "guard", "min_pass_rate": 1.0}])
    executions = [
        ExecutionSummary(
            execution_id=execution_id,
            case_id=case_id,
            tags=(),
            aggregate=results_aggregate(profile=profile, results={"answer": completed(1.0), "guard": completed(0.0)}),
        )
        for execution_id, case_id in (("281", "refund-22"), ("17", "zeta"), ("278", "refund-17"))
    ]

    verdict = verdict_compute(
        profile=profile, executions=executions, operational=Operational(expected_executions=4, failed_chunks=1)
    )

    assert [(r["code"], r["examples"], r["cases"]) for r in verdict["reasons"]] == [
        ("chunks_failed", [], []),
        ("executions_missing", [], []),
        ("scorecard_failed", ["17", "278", "281"], ["zeta", "refund-17", "refund-22"]),
    ]
