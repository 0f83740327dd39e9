"""The instance reuse policy: which sandbox instance evaluates a binding's case, fresh or reused, and the checks
that keep a reused instance honest."""

from __future__ import annotations

import logging
from typing import Any

from evaluators.sandbox import Invocation, Limits, LoadedComponent, ModelBroker, ReusedInstance, SandboxHost
from evaluators.sandbox.abi import CaseInput
from runs.models import EvaluatorResult
from vigilo_project.sampling import sampled

log = logging.getLogger(__name__)
Isolation = EvaluatorResult.Isolation


class BindingRunner:
    """Evaluates one binding's cases: each in a fresh instance (the default), or on one reused instance.

    Reuse needs both the profile's `options.instance_reuse` and an evaluator published as pure. Then:
    - a reused call that ends in an error is evaluated again in a fresh instance, whose result is kept: an error
      must never come from what an earlier case left behind;
    - a deterministic sample of the cases (`reuse_recheck_rate`, keyed by execution and binding, so a retried
      chunk re-checks the same cases) is also evaluated in a fresh instance; when the two differ, the fresh
      result is kept, the result is marked `mismatch` (the verdict reports it) and this binding goes back to
      fresh instances for the rest of the chunk.
    """

    def __init__(
        self, *, host: SandboxHost, loaded: LoadedComponent, limits: Limits, reuse: bool, recheck_rate: float
    ) -> None:
        self.host = host
        self.loaded = loaded
        self.limits = limits
        self.recheck_rate = recheck_rate
        self.reused: ReusedInstance | None = host.reusable(loaded, limits=limits) if reuse else None

    def evaluate(
        self, *, case: CaseInput, config: Any, model: ModelBroker | None, sample_key: str
    ) -> tuple[Invocation, str]:
        """The result for one case, and how it was isolated (an `EvaluatorResult.Isolation` value)."""
        if self.reused is None:
            inv = self.host.evaluate(self.loaded, case=case, config=config, limits=self.limits, model=model)
            return inv, Isolation.FRESH
        inv = self.reused.evaluate(case=case, config=config)
        if self.reused.calls == 1:  # the first call on a new instance is a fresh evaluation
            return inv, Isolation.FRESH
        if inv.outcome == "error":
            return self.host.evaluate(self.loaded, case=case, config=config, limits=self.limits), Isolation.FRESH
        if not sampled(sample_key, self.recheck_rate):
            return inv, Isolation.REUSED
        fresh = self.host.evaluate(self.loaded, case=case, config=config, limits=self.limits)
        if _same_result(inv, fresh):
            return inv, Isolation.RECHECKED
        log.warning("instance reuse changed a result (%s): fresh instances for the rest of the chunk", sample_key)
        self.close()
        return fresh, Isolation.MISMATCH

    def close(self) -> None:
        if self.reused is not None:
            self.reused.close()
            self.reused = None


def _same_result(a: Invocation, b: Invocation) -> bool:
    """Everything an evaluation reports, not how long it took or the fuel it burned."""

    def fields(inv: Invocation) -> tuple[Any, ...]:
        return (
            inv.outcome,
            inv.kind,
            inv.measurement,
            inv.abstention,
            inv.findings,
            inv.explanation,
            inv.error_code,
            inv.error_message,
            inv.logs,
            inv.logs_truncated,
        )

    return fields(a) == fields(b)
