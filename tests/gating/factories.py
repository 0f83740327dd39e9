"""Test inputs for the gate math: reported results, profiles, and the score-once-then-aggregate path."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gating.profile import Normalization, ProfileSpec, profile_parse
from gating.scoring import AggregateScore, binding_score, execution_aggregate

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


@dataclass(frozen=True, kw_only=True)
class Report:
    """What an evaluator reported, shaped like the sandbox's Invocation (it satisfies gating.scoring.Reported)."""

    outcome: str
    kind: str | None = None
    measurement: bool | float | str | None = None
    error_code: str | None = None
    error_message: str | None = None


def completed(value: bool | float | str) -> Report:
    kind = "binary" if isinstance(value, bool) else "ordinal" if isinstance(value, str) else "numeric"
    return Report(outcome="completed", kind=kind, measurement=value)


ABSTAINED = Report(outcome="abstained", error_code="no_reference", error_message="case has no expected")
ERRORED = Report(outcome="error", error_code="timeout", error_message="wall clock limit of 5s exceeded")

# One binding for every case, one (`when`) only for refunds and chargebacks.
WHEN_PROFILE = {
    "dimensions": {"correctness": {"weight": 1.0}, "refunds": {"weight": 1.0}},
    "bindings": [
        {"id": "answer", "dimension": "correctness"},
        {"id": "amount", "dimension": "refunds", "when": {"tags": ["refund", "chargeback"]}},
    ],
    "min_execution_score": 0.8,
}


def results_aggregate(
    *, profile: ProfileSpec, results: Mapping[str, Report], tags: Sequence[str] = ()
) -> AggregateScore:
    """What the runs app does: score each result once, as it is produced, then aggregate the scores.

    A result for a binding id the profile does not declare has nothing to be scored by and is left out."""
    scores = {}
    for binding_id, result in results.items():
        binding = profile.binding(binding_id)
        if binding is not None:
            scores[binding_id] = binding_score(binding=binding, result=result)
    return execution_aggregate(profile=profile, scores=scores, tags=tags)


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
