"""Statistics of a run's trials (docs/trials.md): each case evaluated k times, and what its k executions say.

Per case, from n aggregated trials of which c passed (an errored trial did not pass):

* pass@k, the chance that at least one of k trials passes, estimated without bias as 1 - C(n-c, k) / C(n, k)
  (Chen et al. 2021, the estimator of HumanEval and Inspect's `pass_at`); with n = k it is 1 when any passed;
* pass^k, the chance that all k trials pass, C(c, k) / C(n, k) (tau-bench's pass^k); with n = k it is 1 only
  when every trial passed;
* the mean and the spread (population standard deviation) of the aggregate score over the trials;
* a status: passed (every trial), failed (none), flaky (some but not all).

The run's pass@k and pass^k are the means over its cases; pass@1 is the share of all trials that passed. Pure.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class TrialOutcome:
    """One execution as the trial statistics see it."""

    case_id: str
    status: str  # passed | failed | error (an execution's aggregate status)
    score: float | None  # its aggregate score


@dataclass(frozen=True, kw_only=True)
class CaseTrials:
    case_id: str
    trials: int  # aggregated trials (n)
    passed: int  # c
    pass_at_k: float
    pass_hat_k: float
    mean: float | None
    spread: float | None

    def value(self, rule: str) -> float:
        """This case's value of the statistic a gate rule (`min_pass_at_k`, `min_pass_hat_k`) is about."""
        return self.pass_at_k if rule == "min_pass_at_k" else self.pass_hat_k

    @property
    def status(self) -> str:
        if self.passed == self.trials:
            return "passed"
        return "failed" if self.passed == 0 else "flaky"

    def as_dict(self) -> dict[str, object]:
        return {
            "case_id": self.case_id,
            "trials": self.trials,
            "passed": self.passed,
            "status": self.status,
            "pass_at_k": self.pass_at_k,
            "pass_hat_k": self.pass_hat_k,
            "mean": self.mean,
            "spread": self.spread,
        }


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased estimate of pass@k from n samples of which c passed (k is capped at n)."""
    k = min(k, n)
    if n <= 0 or k <= 0:
        return 0.0
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """The estimate of pass^k (all of k trials pass) from n samples of which c passed (k is capped at n)."""
    k = min(k, n)
    if n <= 0 or k <= 0:
        return 0.0
    return math.comb(c, k) / math.comb(n, k)


def cases_trials(outcomes: Iterable[TrialOutcome], *, k: int) -> list[CaseTrials]:
    """Each case's trial statistics, in the order its first trial comes."""
    grouped: dict[str, list[TrialOutcome]] = {}
    for outcome in outcomes:
        grouped.setdefault(outcome.case_id, []).append(outcome)
    out = []
    for case_id, trials in grouped.items():
        n, c = len(trials), sum(1 for t in trials if t.status == "passed")
        scores = [t.score for t in trials if t.score is not None]
        out.append(
            CaseTrials(
                case_id=case_id,
                trials=n,
                passed=c,
                pass_at_k=pass_at_k(n, c, k),
                pass_hat_k=pass_hat_k(n, c, k),
                mean=statistics.fmean(scores) if scores else None,
                spread=statistics.pstdev(scores) if len(scores) > 1 else (0.0 if scores else None),
            )
        )
    return out


@dataclass(frozen=True, kw_only=True)
class RunTrials:
    k: int
    cases: list[CaseTrials]

    @property
    def pass_at_k(self) -> float | None:
        return statistics.fmean(c.pass_at_k for c in self.cases) if self.cases else None

    @property
    def pass_hat_k(self) -> float | None:
        return statistics.fmean(c.pass_hat_k for c in self.cases) if self.cases else None

    @property
    def pass_at_1(self) -> float | None:
        total = sum(c.trials for c in self.cases)
        return sum(c.passed for c in self.cases) / total if total else None

    def by_status(self, status: str) -> list[CaseTrials]:
        return [case for case in self.cases if case.status == status]

    def observed(self, rule: str) -> float | None:
        """The run's value a gate rule (`min_pass_at_k`, `min_pass_hat_k`) compares with its threshold."""
        return {"min_pass_at_k": self.pass_at_k, "min_pass_hat_k": self.pass_hat_k}[rule]


def run_trials(outcomes: Iterable[TrialOutcome], *, k: int) -> RunTrials:
    return RunTrials(k=k, cases=cases_trials(outcomes, k=k))
