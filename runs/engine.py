"""The worker's evaluation loop: the same code under the embedded pool and under Celery workers.

`chunk_evaluate` claims a chunk, collects the outputs a run target has to give, evaluates every case with every
binding that applies to it (runs/reuse.py decides on which instance), scores each result once, writes the results
in batches under the lease and completes the chunk with its aggregates (runs/chunks.py). The last chunk to finish
finalizes the run; exactly one finalizer wins (runs/services.py).
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from functools import partial
from typing import Any

from evaluators.components import component_load, default_limits, sandbox_host
from evaluators.model_broker import broker_for_binding
from evaluators.sandbox import Invocation
from evaluators.sandbox.abi import CaseInput
from gating.profile import Binding, ProfileSpec
from gating.scoring import BindingScore, binding_score, stored_columns
from runs.chunks import (
    Claim,
    LeaseKeeper,
    LeaseLost,
    chunk_claim,
    chunk_complete,
    chunk_record_results,
    chunk_release,
    execution_record_agent_call,
)
from runs.errors import TransitionError
from runs.models import Chunk, EvaluatorResult, Execution, Run
from runs.reuse import BindingRunner, Isolation
from runs.selectors import run_profile
from runs.services import run_finalize_if_done, run_mark_running
from runs.shutdown import release_due
from runs.targets import AGENT_ERROR, Target, output_fetch, target_client, target_parse
from vigilo_project.dbretry import db_retry
from vigilo_project.httpjson import CallFailed

log = logging.getLogger(__name__)
# Results are written while a chunk runs at least every RESULT_FLUSH_S seconds or RESULT_BATCH executions, so a
# slow chunk (model calls) shows progress and a crash loses little; a fast chunk writes its results once, in the
# same transaction that completes it.
RESULT_BATCH = 100
RESULT_FLUSH_S = 1.0


@dataclass(frozen=True)
class BoundEvaluator:
    """One binding of the run's profile, ready to evaluate: its pinned version and the runner for its instances."""

    binding: Binding
    version_id: int
    digest: str
    blocking: bool
    runner: BindingRunner
    model_grant: dict[str, Any] | None  # the binding's grants["model"], checked by the profile parser


def chunk_evaluate(*, chunk_id: int) -> str:
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
            db_retry(lambda: run_finalize_if_done(run_id=run_id), what=f"chunk {chunk_id} finalize")
        return "skipped"
    with LeaseKeeper(claim) as keeper:
        try:
            outcome = _chunk_work(claim=claim, keeper=keeper)
        except (LeaseLost, TransitionError) as exc:
            log.info("chunk %s attempt %s stopped: %s", chunk_id, claim.attempt, exc)
            outcome = "lease_lost"
    if outcome == "released":
        db_retry(lambda: chunk_release(claim=claim), what=f"chunk {chunk_id} release")
        return outcome
    db_retry(lambda: run_finalize_if_done(run_id=claim.run_id), what=f"chunk {chunk_id} finalize")
    return outcome


def _chunk_work(*, claim: Claim, keeper: LeaseKeeper) -> str:
    chunk_id = claim.chunk_id
    run = db_retry(
        lambda: Run.objects.select_related("profile_version").get(pk=claim.run_id), what=f"chunk {chunk_id} load"
    )
    db_retry(lambda: run_mark_running(run_id=run.id), what=f"chunk {chunk_id} start")
    profile = run_profile(run=run)
    host = sandbox_host()
    base_limits = default_limits()
    bound = []
    for binding in profile.bindings:
        pin = run.pins[binding.id]
        limits = base_limits.override(binding.limits)
        runner = BindingRunner(
            host=host,
            loaded=component_load(digest=pin["digest"]),
            limits=limits,
            reuse=profile.instance_reuse and bool(pin.get("pure")),
            recheck_rate=profile.reuse_recheck_rate,
        )
        blocking = binding.blocking or profile.dimensions[binding.dimension].blocking
        grant = binding.grants.get("model")
        model_grant = grant if isinstance(grant, dict) else None
        bound.append(BoundEvaluator(binding, pin["version_id"], pin["digest"], blocking, runner, model_grant))
    try:
        return _evaluate_chunk(claim=claim, keeper=keeper, run=run, profile=profile, bound=bound)
    finally:
        for evaluator in bound:
            evaluator.runner.close()  # reused instances live for one chunk


def _evaluate_chunk(
    *, claim: Claim, keeper: LeaseKeeper, run: Run, profile: ProfileSpec, bound: list[BoundEvaluator]
) -> str:
    chunk_id = claim.chunk_id
    model_cache = bool(run.options.get("model_cache", True))  # off for repeat trials of a judge
    target = target_parse(run.options["target"]) if run.options.get("target") else None
    pending: list[EvaluatorResult] = []
    pending_since = time.monotonic()
    scores: dict[int, dict[str, BindingScore]] = {}  # this attempt's scores, for the aggregates
    executions = db_retry(
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
        scores[execution.id] = {}
        with CaseInput(data) as case:  # lowered once, for every binding
            for evaluator in bound:
                binding = evaluator.binding
                if not binding.applies_to(execution.tags):
                    continue  # its `when` leaves this case out
                if execution.id in no_output:
                    inv = Invocation(outcome="error", error_code=AGENT_ERROR, error_message=no_output[execution.id])
                    isolation: str = Isolation.FRESH
                else:
                    broker = broker_for_binding(
                        grant=evaluator.model_grant, evaluator_digest=evaluator.digest, cache=model_cache
                    )
                    inv, isolation = evaluator.runner.evaluate(
                        case=case, config=binding.config, model=broker, sample_key=f"{execution.id}:{binding.id}"
                    )
                row, scored = result_row(
                    execution=execution,
                    attempt=claim.attempt,
                    binding=binding,
                    version_id=evaluator.version_id,
                    blocking=evaluator.blocking,
                    inv=inv,
                )
                row.isolation = isolation
                pending.append(row)
                scores[execution.id][binding.id] = scored
        if i < len(executions) and (
            len(pending) >= RESULT_BATCH * len(bound) or time.monotonic() - pending_since >= RESULT_FLUSH_S
        ):
            batch, pending, pending_since = pending, [], time.monotonic()
            db_retry(partial(chunk_record_results, claim=claim, results=batch), what=f"chunk {chunk_id} results")
    if release_due():
        return "released"
    db_retry(
        lambda: chunk_complete(claim=claim, profile=profile, pins=run.pins, scores=scores, results=pending),
        what=f"chunk {chunk_id} complete",
    )
    return "completed"


def result_row(
    *, execution: Execution, attempt: int, binding: Binding, version_id: int, blocking: bool, inv: Invocation
) -> tuple[EvaluatorResult, BindingScore]:
    """The stored result of one evaluation and its score, scored here once: the row keeps the score, and the
    chunk's aggregates are computed from the same BindingScore."""
    scored = binding_score(binding=binding, result=inv)
    row = EvaluatorResult(
        execution_id=execution.id,
        run_id=execution.run_id,
        shard=execution.shard,
        attempt=attempt,
        binding_id=binding.id,
        evaluator_version_id=version_id,
        kind=inv.kind or "",
        measurement=inv.measurement,
        abstention=inv.abstention,
        blocking=blocking,
        findings=inv.findings,
        explanation=inv.explanation or "",
        logs=inv.logs,
        logs_truncated=inv.logs_truncated,
        duration_ms=inv.duration_ms,
        fuel_used=inv.fuel_used,
        model_usage=inv.model_usage,
        **stored_columns(report=inv, scored=scored),
    )
    return row, scored


def _outputs_fetch(
    *, claim: Claim, keeper: LeaseKeeper, run: Run, target: Target, executions: list[Execution]
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
            db_retry(
                partial(execution_record_agent_call, claim=claim, execution=execution),
                what=f"chunk {claim.chunk_id} agent output",
            )
            if release_due():
                return None
            keeper.check()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return failed
