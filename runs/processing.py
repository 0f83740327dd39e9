"""Chunk processing and run finalization: the same code under the embedded pool and under Celery workers.

A chunk is claimed by a guarded update that sets a fresh lease token and bumps its attempt. Results are
written in batches, each batch guarded by the lease (it also renews it); the unique key
(execution, attempt, binding) makes a repeated write a no-op. Completion, by token, writes the aggregates in
the same transaction. The last chunk to finish finalizes the run; exactly one finalizer wins.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Count, F
from django.db.models.functions import JSONArray
from django.utils import timezone

from evaluators.components import component_load, default_limits, sandbox_host
from evaluators.model_broker import broker_for_binding, usage_summary
from evaluators.sandbox import Invocation
from evaluators.sandbox.abi import CaseInput
from gating.profile import ProfileSpec, profile_parse
from gating.scoring import (
    BindingOutcome,
    ExecutionSummary,
    Operational,
    binding_score,
    execution_aggregate,
    verdict_compute,
)
from outbox.services import outbox_write
from runs.models import Chunk, EvaluatorResult, Execution, ExecutionAggregate, Run
from runs.services import lease_until, run_event, run_mark_running
from runs.shutdown import release_due
from runs.targets import AGENT_ERROR, Target, output_fetch, target_client, target_parse
from runs.transitions import TransitionError, transition
from vigilo_project.bulk import bulk_insert
from vigilo_project.gcpause import gc_paused
from vigilo_project.httpjson import CallFailed

log = logging.getLogger(__name__)
# Results are written while a chunk runs at least every RESULT_FLUSH_S seconds or RESULT_BATCH executions, so a
# slow chunk (model calls) shows progress and a crash loses little; a fast chunk writes its results once, in the
# same transaction that completes it.
RESULT_BATCH = 100
RESULT_FLUSH_S = 1.0
DB_RETRIES = 4  # attempts of one idempotent database step after a dropped connection
T = TypeVar("T")


class LeaseLost(RuntimeError):
    """The chunk's lease was taken over, expired or cancelled: stop without writing more."""


@dataclass(frozen=True)
class Claim:
    chunk_id: int
    run_id: uuid.UUID
    token: uuid.UUID
    attempt: int


def chunk_claim(*, chunk_id: int) -> Claim | None:
    """pending -> leased with a new token and attempt. None when someone else has it or it is finished."""
    token = uuid.uuid4()
    with transaction.atomic():
        chunk = Chunk.objects.filter(pk=chunk_id).values("run_id", "attempt", "state").first()
        if chunk is None or chunk["state"] != Chunk.State.PENDING:
            return None
        attempt = chunk["attempt"] + 1
        try:
            transition(
                model=Chunk,
                pk=chunk_id,
                to=Chunk.State.LEASED,
                guard={"attempt": chunk["attempt"]},
                attempt=attempt,
                lease_token=token,
                leased_until=lease_until(),
                heartbeat_at=timezone.now(),
            )
        except TransitionError:
            return None
        Execution.objects.filter(chunk_id=chunk_id).update(attempt=attempt)
    return Claim(chunk_id=chunk_id, run_id=chunk["run_id"], token=token, attempt=attempt)


def _renew(claim: Claim) -> None:
    updated = Chunk.objects.filter(pk=claim.chunk_id, state=Chunk.State.LEASED, lease_token=claim.token).update(
        leased_until=lease_until(), heartbeat_at=timezone.now()
    )
    if updated != 1:
        raise LeaseLost(f"chunk {claim.chunk_id} is no longer leased by this worker")


def chunk_record_results(*, claim: Claim, results: list[EvaluatorResult]) -> None:
    """Write a batch of results while holding the lease (renewing it); duplicates are ignored."""
    with transaction.atomic():
        _renew(claim)
        bulk_insert(results)


def execution_record_agent_call(*, claim: Claim, execution: Execution) -> None:
    """Write what the run target answered for an execution (its output in the snapshot, and the call) while
    holding the lease, so a later attempt of the chunk reuses the answer instead of asking the agent again."""
    with transaction.atomic():
        _renew(claim)
        Execution.objects.filter(pk=execution.id, chunk_id=claim.chunk_id).update(
            snapshot=execution.snapshot, agent_call=execution.agent_call
        )


def _outcome_of(result: EvaluatorResult) -> BindingOutcome:
    return BindingOutcome(
        outcome=result.outcome,
        kind=result.kind or None,
        value=result.measurement,
        error_code=result.error_code or None,
        error_message=result.error_message or None,
    )


def chunk_complete(
    *,
    claim: Claim,
    profile: ProfileSpec,
    outcomes: dict[int, dict[str, BindingOutcome]] | None = None,
    results: list[EvaluatorResult] | None = None,
) -> None:
    """Write the last `results`, aggregate the chunk's executions from the current attempt's results and
    complete the chunk by token, in one transaction.

    `outcomes` are the results this attempt produced (every execution of the chunk, every binding), so they
    need not be read back; without them the results are read from the database.
    """
    with transaction.atomic():
        _renew(claim)
        bulk_insert(results or [])
        executions = list(Execution.objects.filter(chunk_id=claim.chunk_id).only("id", "run_id", "shard", "tags"))
        by_execution: dict[int, dict[str, BindingOutcome]]
        if outcomes is not None and set(outcomes) == {e.id for e in executions}:
            by_execution = outcomes
        else:
            by_execution = {e.id: {} for e in executions}
            for result in EvaluatorResult.objects.filter(
                execution__chunk_id=claim.chunk_id, attempt=claim.attempt
            ).only("execution_id", "binding_id", "outcome", "kind", "measurement", "error_code", "error_message"):
                by_execution[result.execution_id][result.binding_id] = _outcome_of(result)
        rows = []
        for e in executions:
            agg = execution_aggregate(profile=profile, results=by_execution[e.id], tags=e.tags)
            rows.append(
                ExecutionAggregate(
                    execution_id=e.id,
                    run_id=e.run_id,
                    shard=e.shard,
                    attempt=claim.attempt,
                    status=agg.status,
                    aggregate_score=agg.aggregate_score,
                    dimension_scores=agg.dimension_scores,
                    binding_scores={k: _score_dict(v) for k, v in agg.binding_scores.items()},
                    blocking_failures=list(agg.blocking_failures),
                    reasons=list(agg.reasons),
                )
            )
        bulk_insert(rows)
        transition(
            model=Chunk,
            pk=claim.chunk_id,
            to=Chunk.State.COMPLETED,
            guard={"lease_token": claim.token},
            lease_token=None,
            leased_until=None,
            completed_at=timezone.now(),
        )


def _score_dict(score: Any) -> dict[str, Any]:
    return {
        "outcome": score.outcome,
        "score": score.score,
        "passed": score.passed,
        "error_code": score.error_code,
        "error_message": score.error_message,
    }


def _result_row(
    *, execution: Execution, claim: Claim, run: Run, binding: Any, version_id: int, inv: Invocation, blocking: bool
) -> EvaluatorResult:
    outcome = BindingOutcome(
        outcome=inv.outcome,
        kind=inv.kind,
        value=inv.measurement,
        error_code=inv.error_code,
        error_message=inv.error_message,
    )
    scored = binding_score(binding=binding, result=outcome)
    judgment = "" if scored.passed is None else ("passed" if scored.passed else "failed")
    return EvaluatorResult(
        execution_id=execution.id,
        run_id=run.id,
        shard=run.shard,
        attempt=claim.attempt,
        binding_id=binding.id,
        evaluator_version_id=version_id,
        outcome=inv.outcome,
        kind=inv.kind or "",
        measurement=inv.measurement,
        abstention=inv.abstention,
        score=scored.score,
        judgment=judgment,
        blocking=blocking,
        error_code=inv.error_code or (scored.error_code if scored.outcome == "error" else "") or "",
        error_message=inv.error_message or (scored.error_message if scored.outcome == "error" else "") or "",
        findings=inv.findings,
        explanation=inv.explanation or "",
        logs=inv.logs,
        logs_truncated=inv.logs_truncated,
        duration_ms=inv.duration_ms,
        fuel_used=inv.fuel_used,
        model_usage=inv.model_usage,
    )


class _BindingRunner:
    """Evaluates one binding's cases: each in a fresh instance (the default), or on one reused instance.

    Reuse needs both the profile's `options.instance_reuse` and an evaluator published as pure. Then:
    - a reused call that ends in an error is evaluated again in a fresh instance, whose result is kept: an error
      must never come from what an earlier case left behind;
    - a deterministic sample of the cases (`reuse_recheck_rate`, keyed by execution and binding, so a retried
      chunk re-checks the same cases) is also evaluated in a fresh instance; when the two differ, the fresh
      result is kept, the result is marked `mismatch` (the verdict reports it) and this binding goes back to
      fresh instances for the rest of the chunk.
    """

    def __init__(self, *, host: Any, loaded: Any, limits: Any, reuse: bool, recheck_rate: float) -> None:
        self.host = host
        self.loaded = loaded
        self.limits = limits
        self.recheck_rate = recheck_rate
        self.reused = host.reusable(loaded, limits=limits) if reuse else None

    def evaluate(self, *, case: CaseInput, config: Any, model: Any, sample_key: str) -> tuple[Invocation, str]:
        Isolation = EvaluatorResult.Isolation
        if self.reused is None:
            inv = self.host.evaluate(self.loaded, case=case, config=config, limits=self.limits, model=model)
            return inv, Isolation.FRESH
        inv = self.reused.evaluate(case=case, config=config)
        if self.reused.calls == 1:  # the first call on a new instance is a fresh evaluation
            return inv, Isolation.FRESH
        if inv.outcome == "error":
            return self.host.evaluate(self.loaded, case=case, config=config, limits=self.limits), Isolation.FRESH
        if not _sampled(sample_key, self.recheck_rate):
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


def _sampled(key: str, rate: float) -> bool:
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") < rate * 2**64


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


class _LeaseKeeper:
    """Renews the lease on a timer while the chunk is worked on, so one slow evaluation cannot let it expire.

    The batch writes renew it too; this covers the time between them. It runs on its own thread (hence its own
    database connection) and survives a dropped connection: the next tick reconnects.
    """

    def __init__(self, claim: Claim) -> None:
        self.claim = claim
        self.every_s = max(1.0, settings.VIGILO_LEASE_SECONDS / 3)
        self.stopping = threading.Event()
        self.lost = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"lease-{claim.chunk_id}", daemon=True)

    def __enter__(self) -> _LeaseKeeper:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.thread.join(timeout=self.every_s + 5)

    def check(self) -> None:
        if self.lost.is_set():
            raise LeaseLost(f"chunk {self.claim.chunk_id} lease was lost (heartbeat)")

    def _loop(self) -> None:
        try:
            while not self.stopping.wait(self.every_s):
                try:
                    _renew(self.claim)
                except LeaseLost:
                    self.lost.set()
                    return
                except DatabaseError as exc:  # transient: the batch writes retry too, the lease has slack
                    log.warning("chunk %s heartbeat failed: %s", self.claim.chunk_id, exc)
                    connection.close()
        finally:
            connection.close()


def _db_retry(fn: Callable[[], T], *, what: str) -> T:
    """Run an idempotent database step, reconnecting after a dropped connection (bounded, with jitter)."""
    for attempt in range(DB_RETRIES):
        try:
            return fn()
        except (OperationalError, InterfaceError) as exc:
            if attempt == DB_RETRIES - 1 or connection.in_atomic_block:
                raise
            log.warning("%s: database error, reconnecting (%s/%s): %s", what, attempt + 1, DB_RETRIES, exc)
            connection.close()
            time.sleep(random.uniform(0.5, 1.0) * 2**attempt * 0.25)
    raise AssertionError("unreachable")


def chunk_process(*, chunk_id: int) -> str:
    """Evaluate every case of the chunk with every binding. Safe to call twice, concurrently: one effect.

    Returns "completed", "skipped" (someone else has or had the chunk), "lease_lost" or "released" (the worker
    is shutting down and gave the chunk back).
    """
    claim = chunk_claim(chunk_id=chunk_id)
    if claim is None:
        # A redelivered message for a chunk that is already done: make sure its run was finalized (the first
        # delivery may have died between completing the chunk and finalizing).
        run_id = Chunk.objects.filter(pk=chunk_id).values_list("run_id", flat=True).first()
        if run_id is not None:
            _db_retry(lambda: run_finalize_if_done(run_id=run_id), what=f"chunk {chunk_id} finalize")
        return "skipped"
    with _LeaseKeeper(claim) as keeper:
        try:
            outcome = _chunk_work(claim=claim, keeper=keeper)
        except (LeaseLost, TransitionError) as exc:
            log.info("chunk %s attempt %s stopped: %s", chunk_id, claim.attempt, exc)
            outcome = "lease_lost"
    if outcome == "released":
        _db_retry(lambda: chunk_release(claim=claim), what=f"chunk {chunk_id} release")
        return outcome
    _db_retry(lambda: run_finalize_if_done(run_id=claim.run_id), what=f"chunk {chunk_id} finalize")
    return outcome


def _chunk_work(*, claim: Claim, keeper: _LeaseKeeper) -> str:
    chunk_id = claim.chunk_id
    run = _db_retry(
        lambda: Run.objects.select_related("profile_version").get(pk=claim.run_id), what=f"chunk {chunk_id} load"
    )
    _db_retry(lambda: run_mark_running(run_id=run.id), what=f"chunk {chunk_id} start")
    profile = profile_parse(data=run.profile_version.document)
    host = sandbox_host()
    base_limits = default_limits()
    model_cache = bool(run.options.get("model_cache", True))  # off for repeat trials of a judge
    target = target_parse(run.options["target"]) if run.options.get("target") else None
    bindings = []
    for binding in profile.bindings:
        pin = run.pins[binding.id]
        dimension = profile.dimensions[binding.dimension]
        limits = base_limits.override(binding.limits)
        loaded = component_load(digest=pin["digest"])
        reuse = profile.instance_reuse and bool(pin.get("pure"))
        runner = _BindingRunner(
            host=host, loaded=loaded, limits=limits, reuse=reuse, recheck_rate=profile.reuse_recheck_rate
        )
        bindings.append((binding, pin, runner, binding.blocking or dimension.blocking))
    try:
        return _evaluate_chunk(
            claim=claim, keeper=keeper, run=run, profile=profile, bindings=bindings, cache=model_cache, target=target
        )
    finally:
        for _binding, _pin, runner, _blocking in bindings:
            runner.close()  # reused instances live for one chunk


def _evaluate_chunk(
    *,
    claim: Claim,
    keeper: _LeaseKeeper,
    run: Run,
    profile: ProfileSpec,
    bindings: list[Any],
    cache: bool,
    target: Target | None,
) -> str:
    chunk_id = claim.chunk_id
    pending: list[EvaluatorResult] = []
    pending_since = time.monotonic()
    outcomes: dict[int, dict[str, BindingOutcome]] = {}  # this attempt's results, for the aggregates
    executions = _db_retry(
        lambda: list(Execution.objects.filter(chunk_id=chunk_id).order_by("ordinal")), what=f"chunk {chunk_id} load"
    )
    no_output: dict[int, str] = {}  # execution id -> why the target gave no output
    if target is not None:
        fetched = _outputs_fetch(claim=claim, keeper=keeper, run=run, target=target, executions=executions)
        if fetched is None:
            return "released"
        no_output = fetched
    for i, execution in enumerate(executions, start=1):
        if release_due():
            return "released"
        keeper.check()
        snapshot = execution.snapshot
        data = {
            "run_id": str(run.id),
            "execution_id": str(execution.id),
            "attempt": claim.attempt,
            "case": snapshot,
            "output": snapshot.get("output"),
        }
        outcomes[execution.id] = {}
        with CaseInput(data) as case:  # lowered once, for every binding
            for binding, pin, runner, blocking in bindings:
                if not binding.applies_to(execution.tags):
                    continue  # its `when` leaves this case out
                if execution.id in no_output:
                    inv = Invocation(outcome="error", error_code=AGENT_ERROR, error_message=no_output[execution.id])
                    isolation = EvaluatorResult.Isolation.FRESH
                else:
                    broker = broker_for_binding(
                        grant=binding.grants.get("model"), evaluator_digest=pin["digest"], cache=cache
                    )
                    inv, isolation = runner.evaluate(
                        case=case, config=binding.config, model=broker, sample_key=f"{execution.id}:{binding.id}"
                    )
                row = _result_row(
                    execution=execution,
                    claim=claim,
                    run=run,
                    binding=binding,
                    version_id=pin["version_id"],
                    inv=inv,
                    blocking=blocking,
                )
                row.isolation = isolation
                pending.append(row)
                outcomes[execution.id][binding.id] = _outcome_of(row)
        if i < len(executions) and (
            len(pending) >= RESULT_BATCH * len(bindings) or time.monotonic() - pending_since >= RESULT_FLUSH_S
        ):
            batch, pending, pending_since = pending, [], time.monotonic()
            _db_retry(lambda b=batch: chunk_record_results(claim=claim, results=b), what=f"chunk {chunk_id} results")
    if release_due():
        return "released"
    _db_retry(
        lambda: chunk_complete(claim=claim, profile=profile, outcomes=outcomes, results=pending),
        what=f"chunk {chunk_id} complete",
    )
    return "completed"


def _outputs_fetch(
    *, claim: Claim, keeper: _LeaseKeeper, run: Run, target: Target, executions: list[Execution]
) -> dict[int, str] | None:
    """Ask the run target for the output of every execution that needs one, `target.concurrency` at a time.

    Each answer is recorded as it arrives. An execution answered by an earlier attempt keeps its answer; one whose
    call failed is asked again. Returns why each failed call failed, by execution id; None when the worker is
    shutting down (what was recorded stays).
    """
    todo = [
        e
        for e in executions
        if (e.agent_call or {}).get("status") != "ok" and target.needs_call(output=e.snapshot.get("output"))
    ]
    failed: dict[int, str] = {}
    if not todo:
        return failed
    client = target_client(target)
    pool = ThreadPoolExecutor(max_workers=target.concurrency, thread_name_prefix=f"agent-{claim.chunk_id}")
    try:
        futures = {
            pool.submit(
                output_fetch, target=target, client=client, run_id=str(run.id), execution_id=e.id, case=e.snapshot
            ): e
            for e in todo
        }
        for future in as_completed(futures):
            execution = futures[future]
            try:
                answer = future.result()
            except CallFailed as exc:
                failed[execution.id] = str(exc)
                execution.agent_call = {"status": "error", "error": str(exc), "chunk_attempt": claim.attempt}
            else:
                execution.snapshot = {**execution.snapshot, "output": answer.output}
                execution.agent_call = {
                    "status": "ok",
                    "attempts": answer.attempts,
                    "duration_ms": answer.duration_ms,
                    "chunk_attempt": claim.attempt,
                }
            _db_retry(
                lambda e=execution: execution_record_agent_call(claim=claim, execution=e),
                what=f"chunk {claim.chunk_id} agent output",
            )
            if release_due():
                return None
            keeper.check()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return failed


def chunk_release(*, claim: Claim) -> None:
    """Give a leased chunk back (graceful shutdown) so another worker can take it at once."""
    from runs.services import chunk_ready_message

    with transaction.atomic():
        try:
            transition(
                model=Chunk,
                pk=claim.chunk_id,
                to=Chunk.State.PENDING,
                guard={"lease_token": claim.token},
                lease_token=None,
                leased_until=None,
                dispatched_at=timezone.now(),
            )
        except TransitionError:
            return
        chunk = Chunk.objects.get(pk=claim.chunk_id)
        outbox_write(messages=[chunk_ready_message(chunk=chunk, generation=f"release-{claim.attempt}")])


def run_summaries(*, run: Run) -> list[ExecutionSummary]:
    """Every aggregated execution of the run, for the verdict: plain column values, no model instances.

    The JSON columns of a row come as one JSON array, decoded once: decoding them one by one was half the time
    of finalizing a run of 10,000 cases.
    """
    from gating.scoring import AggregateScore, BindingScore

    out = []
    packed = JSONArray("execution__tags", "dimension_scores", "binding_scores", "blocking_failures", "reasons")
    rows = (
        ExecutionAggregate.objects.filter(run=run)
        .order_by("execution__ordinal")
        .values_list("execution_id", "execution__case_id", "status", "aggregate_score", packed)
    )
    for execution_id, case_id, status, score, packed_values in rows.iterator(chunk_size=5000):
        # SQLite's json_array() keeps JSON held in TEXT columns as strings; every packed value is a list or object.
        tags, dimensions, bindings, blocking, reasons = (
            json.loads(v) if isinstance(v, str) else v for v in packed_values
        )
        agg = AggregateScore(
            status=status,
            aggregate_score=score,
            dimension_scores=dimensions,
            binding_scores={k: BindingScore(binding_id=k, **v) for k, v in bindings.items()},
            blocking_failures=tuple(blocking),
            reasons=tuple(reasons),
        )
        out.append(ExecutionSummary(execution_id=str(execution_id), case_id=case_id, tags=tuple(tags), aggregate=agg))
    return out


@gc_paused()  # a summary per execution, all alive until the verdict is computed: see vigilo_project/gcpause.py
def run_verdict(*, run: Run) -> dict[str, Any]:
    profile = profile_parse(data=run.profile_version.document)
    failed_chunks = Chunk.objects.filter(run=run, state=Chunk.State.FAILED)
    reasons = sorted(set(failed_chunks.values_list("failure_reason", flat=True)))
    operational = Operational(
        expected_executions=run.expected_executions,
        failed_chunks=failed_chunks.count(),
        cancelled=run.state == Run.State.CANCELLED,
        failure_reason="; ".join(r for r in [run.failure_reason, *reasons] if r) or None,
    )
    verdict = verdict_compute(profile=profile, executions=run_summaries(run=run), operational=operational)
    usage = [
        u
        for current in EvaluatorResult.objects.filter(run=run, attempt=F("execution__attempt"))
        .exclude(model_usage=[])
        .values_list("model_usage", flat=True)
        .iterator(chunk_size=2000)
        for u in current
    ]
    verdict["model_usage"] = usage_summary(usage)
    verdict["isolation"] = _isolation_summary(run=run, profile=profile)
    if run.options.get("target"):
        verdict["agent"] = _agent_summary(run=run)
    return verdict


def _agent_summary(*, run: Run) -> dict[str, Any]:
    """What the run target produced: outputs from the agent, and cases it gave none for (each an error)."""
    target = run.options["target"]
    calls = Execution.objects.filter(run=run)
    return {
        "url": target["url"],
        "protocol": target["protocol"],
        "outputs": calls.filter(agent_call__status="ok").count(),
        "failed": calls.filter(agent_call__status="error").count(),
    }


def _isolation_summary(*, run: Run, profile: ProfileSpec) -> dict[str, Any]:
    """How the current results were isolated; a non-zero `mismatch` means reuse changed at least one result."""
    rows = (
        EvaluatorResult.objects.filter(run=run, attempt=F("execution__attempt"))
        .values_list("isolation")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = {choice: 0 for choice in EvaluatorResult.Isolation.values}
    counts.update(dict(rows))
    return {"instance_reuse": profile.instance_reuse, "reuse_recheck_rate": profile.reuse_recheck_rate, **counts}


def run_finalize_if_done(*, run_id: uuid.UUID) -> bool:
    """When no chunk is pending or leased: compute the verdict and end the run, exactly once."""
    if Chunk.objects.filter(run_id=run_id, state__in=[Chunk.State.PENDING, Chunk.State.LEASED]).exists():
        return False
    with transaction.atomic():
        try:
            transition(model=Run, pk=run_id, to=Run.State.FINALIZING)
        except TransitionError:
            return False  # another finalizer won, or the run was cancelled
        run = Run.objects.select_related("profile_version").get(pk=run_id)
        verdict = run_verdict(run=run)
        failed = verdict["operational_failure"]
        final = Run.State.FAILED if failed else Run.State.COMPLETED
        gate = Run.Gate.PASS if verdict["gate"] == "pass" else Run.Gate.FAIL
        transition(
            model=Run,
            pk=run_id,
            to=final,
            gate=gate,
            verdict=verdict,
            finished_at=timezone.now(),
            failure_reason=run.failure_reason
            or ("; ".join(r["message"] for r in verdict["reasons"] if r["code"] == "chunks_failed")),
        )
        run.refresh_from_db()
        summary = {"counts": verdict["counts"]}
        outbox_write(
            messages=[
                run_event(run=run, topic="run.completed" if not failed else "run.failed", payload=summary),
                run_event(run=run, topic="gate.decided", payload=summary),
            ]
        )
    return True
