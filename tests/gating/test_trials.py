"""Trials (pure): pass@k and pass^k estimates, per-case statuses, the verdict's trials section and its gate rules,
and the profile keys that set them."""

from __future__ import annotations

import math

import pytest

from gating.profile import ProfileError, profile_parse
from gating.trials import TrialOutcome, cases_trials, pass_at_k, pass_hat_k, run_trials
from gating.verdict import ExecutionSummary, Operational, verdict_compute
from tests.gating.factories import completed, results_aggregate

PROFILE = {
    "name": "trials",
    "min_execution_score": 0.5,
    "dimensions": {"correctness": {"weight": 1.0}},
    "bindings": [{"id": "answer", "evaluator": "vigilo/check@1.0.0", "dimension": "correctness"}],
}


def profile(run_gate: dict | None = None, trials: int | None = None):
    data = dict(PROFILE)
    if run_gate is not None:
        data["run_gate"] = run_gate
    if trials is not None:
        data["options"] = {"trials": trials}
    return profile_parse(data=data)


def executions(spec, scores: dict[str, list[float]]) -> list[ExecutionSummary]:
    """One execution per (case, trial), with the answer binding's score (>= 0.5 passes)."""
    out, n = [], 0
    for case_id, trial_scores in scores.items():
        for score in trial_scores:
            n += 1
            aggregate = results_aggregate(profile=spec, results={"answer": completed(score)})
            out.append(ExecutionSummary(execution_id=str(n), case_id=case_id, tags=(), aggregate=aggregate))
    return out


@pytest.mark.parametrize(("n", "c", "k"), [(5, 0, 1), (5, 2, 1), (5, 2, 3), (10, 3, 5), (3, 3, 3), (4, 1, 4)])
def test_the_estimates_are_the_combinatorial_ones(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k))
    assert pass_hat_k(n, c, k) == pytest.approx(math.comb(c, k) / math.comb(n, k))
    if k == 1:
        assert pass_at_k(n, c, k) == pytest.approx(c / n) == pytest.approx(pass_hat_k(n, c, k))


def test_with_as_many_trials_as_k_pass_at_k_is_any_and_pass_hat_k_is_all():
    for c in range(4):
        assert pass_at_k(3, c, 3) == (1.0 if c else 0.0)
        assert pass_hat_k(3, c, 3) == (1.0 if c == 3 else 0.0)
    assert pass_at_k(2, 1, 5) == 1.0 and pass_hat_k(2, 1, 5) == 0.0  # k capped at the trials there are


def test_each_case_gets_its_counts_status_mean_and_spread():
    outcomes = [
        TrialOutcome("a", "passed", 1.0),
        TrialOutcome("b", "failed", 0.2),
        TrialOutcome("a", "passed", 0.8),
        TrialOutcome("b", "passed", 0.6),
        TrialOutcome("c", "error", None),
        TrialOutcome("c", "failed", 0.0),
    ]
    a, b, c = cases_trials(outcomes, k=2)
    assert (a.case_id, a.passed, a.trials, a.status, a.mean) == ("a", 2, 2, "passed", pytest.approx(0.9))
    assert a.spread == pytest.approx(0.1)
    assert (b.status, b.pass_at_k, b.pass_hat_k, b.mean, b.spread) == ("flaky", 1.0, 0.0, 0.4, pytest.approx(0.2))
    assert (c.status, c.passed, c.mean, c.spread) == ("failed", 0, 0.0, 0.0)  # the error counts as not passed
    run = run_trials(outcomes, k=2)
    assert (run.pass_at_k, run.pass_hat_k, run.pass_at_1) == (pytest.approx(2 / 3), pytest.approx(1 / 3), 0.5)
    assert [case.case_id for case in run.by_status("flaky")] == ["b"]


def test_the_verdict_reports_trials_and_the_default_rule_still_wants_every_trial_to_pass():
    spec = profile()
    verdict = verdict_compute(
        profile=spec,
        executions=executions(spec, {"a": [1.0, 1.0, 1.0], "b": [1.0, 0.0, 1.0]}),
        operational=Operational(expected_executions=6),
        trials=3,
    )
    assert verdict["gate"] == "fail"
    assert [r["code"] for r in verdict["reasons"]] == ["executions_failed"]
    trials = verdict["trials"]
    assert (trials["k"], trials["cases"], trials["flaky_cases"], trials["flaky"]) == (3, 2, 1, ["b"])
    assert (trials["pass_at_k"], trials["pass_hat_k"]) == (1.0, 0.5)
    assert trials["pass_at_1"] == pytest.approx(5 / 6)


def test_pass_at_k_and_pass_hat_k_rules_replace_the_default_and_fail_naming_the_cases():
    spec = profile(run_gate={"min_pass_at_k": 1.0, "min_pass_hat_k": 0.5})
    scores = {"a": [1.0, 1.0, 1.0], "b": [1.0, 0.0, 1.0], "c": [0.0, 0.0, 1.0]}
    passing = verdict_compute(
        profile=spec, executions=executions(spec, scores), operational=Operational(expected_executions=9), trials=3
    )
    assert passing["gate"] == "fail"  # pass^3 is 1/3 < 0.5
    (reason,) = passing["reasons"]
    assert reason["code"] == "trials_failed"
    assert reason["message"] == "pass^3 is 0.333 over 3 cases, below min_pass_hat_k 0.5"
    assert reason["cases"] == ["b", "c"] and reason["count"] == 2
    assert [(r["rule"], r["holds"]) for r in passing["trials"]["rules"]] == [
        ("min_pass_at_k", True),
        ("min_pass_hat_k", False),
    ]
    lenient = profile(run_gate={"min_pass_at_k": 1.0})
    verdict = verdict_compute(
        profile=lenient,
        executions=executions(lenient, scores),
        operational=Operational(expected_executions=9),
        trials=3,
    )
    assert (verdict["gate"], verdict["reasons"]) == ("pass", [])  # a flaky case passes at pass@3


def test_a_single_trial_run_has_no_trials_section():
    spec = profile()
    verdict = verdict_compute(
        profile=spec, executions=executions(spec, {"a": [1.0]}), operational=Operational(expected_executions=1)
    )
    assert "trials" not in verdict and verdict["gate"] == "pass"


def test_the_profile_reads_trials_and_the_rules_and_names_bad_values():
    spec = profile(run_gate={"min_pass_hat_k": 0.9}, trials=5)
    assert (spec.trials, spec.trial_rules) == (5, {"min_pass_hat_k": 0.9})
    assert spec.scorecard == ()
    with pytest.raises(ProfileError) as bad:
        profile(run_gate={"min_pass_at_k": 1.5}, trials=0)
    assert set(bad.value.errors) >= {
        ("run_gate.min_pass_at_k", "must be between 0 and 1"),
        ("options.trials", "must be between 1 and 100"),
    }
    with pytest.raises(ProfileError) as empty:
        profile(run_gate={})
    assert ("run_gate.scorecard", "is required (or one of min_pass_at_k, min_pass_hat_k)") in empty.value.errors
