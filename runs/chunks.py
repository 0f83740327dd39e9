"""Chunk lease writes: claim, record results under the lease, complete with the aggregates, release; the lease
keeper that renews a lease while its chunk is worked on.

A chunk is claimed by a guarded update that sets a fresh lease token and bumps its attempt. Results are written in
batches, each batch guarded by the lease (it also renews it); the unique key (execution, attempt, binding) makes a
repeated write a no-op. Completion, by token, writes the aggregates in the same transaction.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from gating.profile import ProfileSpec
from gating.scoring import AggregateScore, BindingScore, execution_aggregate
from outbox.services import outbox_write
from runs.errors import TransitionError
from runs.exports import chunk_export
from runs.messages import chunk_ready_message
from runs.models import Chunk, EvaluatorResult, Execution, ExecutionAggregate
from runs.transitions import transition
from vigilo_project.bulk import bulk_insert

log = logging.getLogger(__name__)

# The binding scores of a chunk's executions: execution id -> binding id -> score.
ChunkScores = Mapping[int, Mapping[str, BindingScore]]


class LeaseLost(RuntimeError):
    """The chunk's lease was taken over, expired or cancelled: stop without writing more."""


@dataclass(frozen=True)
class Claim:
    chunk_id: int
    run_id: uuid.UUID
    token: uuid.UUID
    attempt: int


def lease_until() -> datetime:
    return timezone.now() + timedelta(seconds=settings.VIGILO_LEASE_SECONDS)


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


def chunk_renew(*, claim: Claim) -> None:
    """Extend the lease; raise LeaseLost when this claim no longer holds it."""
    updated = Chunk.objects.filter(pk=claim.chunk_id, state=Chunk.State.LEASED, lease_token=claim.token).update(
        leased_until=lease_until(), heartbeat_at=timezone.now()
    )
    if updated != 1:
        raise LeaseLost(f"chunk {claim.chunk_id} is no longer leased by this worker")


def chunk_record_results(*, claim: Claim, results: list[EvaluatorResult]) -> None:
    """Write a batch of results while holding the lease (renewing it); duplicates are ignored."""
    with transaction.atomic():
        chunk_renew(claim=claim)
        bulk_insert(results)


def execution_record_agent_call(*, claim: Claim, execution: Execution) -> None:
    """Write what the run target answered for an execution (its output in the snapshot, and the call) while
    holding the lease, so a later attempt of the chunk reuses the answer instead of asking the agent again."""
    with transaction.atomic():
        chunk_renew(claim=claim)
        Execution.objects.filter(pk=execution.id, chunk_id=claim.chunk_id).update(
            snapshot=execution.snapshot, agent_call=execution.agent_call
        )


def chunk_complete(
    *,
    claim: Claim,
    profile: ProfileSpec,
    pins: Mapping[str, Any],
    scores: ChunkScores | None = None,
    results: list[EvaluatorResult] | None = None,
) -> None:
    """Write the last `results`, aggregate the chunk's executions from the current attempt's scores and complete
    the chunk by token, in one transaction.

    `scores` are what this attempt scored (every execution of the chunk), so they need not be read back; without
    them the scores stored with the attempt's results are read (never scored again). The chunk's export batches
    (runs.exports) are written in the same transaction, so they exist exactly when the results do.
    """
    with transaction.atomic():
        chunk_renew(claim=claim)
        bulk_insert(results or [])
        executions = list(Execution.objects.filter(chunk_id=claim.chunk_id).only("id", "run_id", "shard", "tags"))
        if scores is None or set(scores) != {e.id for e in executions}:
            scores = _stored_scores(claim=claim, execution_ids=[e.id for e in executions])
        rows = []
        for e in executions:
            agg = execution_aggregate(profile=profile, scores=scores[e.id], tags=e.tags)
            rows.append(_aggregate_row(execution=e, attempt=claim.attempt, agg=agg))
        bulk_insert(rows)
        chunk_export(chunk_id=claim.chunk_id, run_id=claim.run_id, attempt=claim.attempt, profile=profile, pins=pins)
        transition(
            model=Chunk,
            pk=claim.chunk_id,
            to=Chunk.State.COMPLETED,
            guard={"lease_token": claim.token},
            lease_token=None,
            leased_until=None,
            completed_at=timezone.now(),
        )


def _stored_scores(*, claim: Claim, execution_ids: list[int]) -> dict[int, dict[str, BindingScore]]:
    out: dict[int, dict[str, BindingScore]] = {execution_id: {} for execution_id in execution_ids}
    rows = EvaluatorResult.objects.filter(execution__chunk_id=claim.chunk_id, attempt=claim.attempt).values_list(
        "execution_id", "binding_id", "outcome", "score", "judgment", "error_code", "error_message"
    )
    for execution_id, binding_id, outcome, score, judgment, error_code, error_message in rows:
        out[execution_id][binding_id] = BindingScore.stored(
            binding_id=binding_id,
            outcome=outcome,
            score=score,
            judgment=judgment,
            error_code=error_code,
            error_message=error_message,
        )
    return out


def _aggregate_row(*, execution: Execution, attempt: int, agg: AggregateScore) -> ExecutionAggregate:
    return ExecutionAggregate(
        execution_id=execution.id,
        run_id=execution.run_id,
        shard=execution.shard,
        attempt=attempt,
        status=agg.status,
        aggregate_score=agg.aggregate_score,
        dimension_scores=agg.dimension_scores,
        binding_scores={
            k: {
                "outcome": v.outcome,
                "score": v.score,
                "passed": v.passed,
                "error_code": v.error_code,
                "error_message": v.error_message,
            }
            for k, v in agg.binding_scores.items()
        },
        blocking_failures=list(agg.blocking_failures),
        reasons=list(agg.reasons),
    )


def chunk_release(*, claim: Claim) -> None:
    """Give a leased chunk back (graceful shutdown) so another worker can take it at once."""
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


class LeaseKeeper:
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

    def __enter__(self) -> LeaseKeeper:
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
                    chunk_renew(claim=self.claim)
                except LeaseLost:
                    self.lost.set()
                    return
                except DatabaseError as exc:  # transient: the batch writes retry too, the lease has slack
                    log.warning("chunk %s heartbeat failed: %s", self.claim.chunk_id, exc)
                    connection.close()
        finally:
            connection.close()
