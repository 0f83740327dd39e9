"""Writes for runs: creation (with its dispatch rows), state transitions, cancellation, lease recovery."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from gating.profile import ProfileSpec
from outbox.services import Message, outbox_write
from runs.ingest import Pin, ValidationFailed, profile_check
from runs.models import SHARDS, Case, Chunk, DatasetVersion, Execution, ProfileVersion, Run
from runs.targets import target_parse
from runs.transitions import TransitionError, transition


class IdempotencyConflict(ValueError):
    """The idempotency key was used before with a different request."""


def shard_of(run_id: uuid.UUID) -> int:
    return int(hashlib.sha256(str(run_id).encode()).hexdigest(), 16) % SHARDS


def chunk_ready_message(*, chunk: Chunk, generation: int) -> Message:
    """The work message for a chunk; `generation` makes each (re)dispatch its own outbox row."""
    return Message(
        topic="chunk.ready",
        dedupe_key=f"chunk.ready:{chunk.id}:{generation}",
        payload={"task": "runs.process_chunk", "args": [chunk.id], "run_id": str(chunk.run_id)},
        shard=chunk.shard,
    )


def run_event(*, run: Run, topic: str, payload: dict[str, Any] | None = None) -> Message:
    body = {"run_id": str(run.id), "state": run.state, "gate": run.gate, **(payload or {})}
    return Message(topic=topic, dedupe_key=f"{topic}:{run.id}", payload=body, shard=run.shard)


def _request_hash(dataset_version: DatasetVersion, profile_version: ProfileVersion, name: str, options: dict) -> str:
    raw = json.dumps([dataset_version.id, profile_version.id, name, options], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()


def run_create(
    *,
    dataset_version: DatasetVersion,
    profile_version: ProfileVersion,
    name: str = "",
    idempotency_key: str | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[Run, bool]:
    """Create a run, its chunks, executions and `chunk.ready` outbox rows in one transaction.

    Returns (run, created). With an idempotency key, the same request returns the run it created before;
    the same key with a different request raises IdempotencyConflict. Every case needs its output unless
    `options["target"]` names an agent endpoint that produces them (runs/targets.py).
    """
    options = options or {}
    if options.get("target") is not None:  # checked, with its defaults, before it identifies the request
        options = {**options, "target": target_parse(options["target"]).as_dict()}
    request_hash = _request_hash(dataset_version, profile_version, name, options)
    if idempotency_key:
        existing = Run.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.request_hash != request_hash:
                raise IdempotencyConflict(f"idempotency key {idempotency_key!r} was used for a different request")
            return existing, False

    profile, pins = profile_check(document=profile_version.document)
    case_rows = Case.objects.filter(dataset_version=dataset_version)
    if options.get("target") is None:
        missing_output = list(
            case_rows.filter(Q(data__output__isnull=True) | Q(data__output=None))
            .order_by("ordinal")
            .values_list("case_id", flat=True)
        )
        if missing_output:
            sample = ", ".join(repr(c) for c in missing_output[:5])
            raise ValidationFailed(
                "run",
                [
                    (
                        "dataset",
                        f"{len(missing_output)} case(s) have no output ({sample}); record the agent's outputs in "
                        "the dataset, or give the run a target (an agent endpoint) that produces them",
                    )
                ],
            )
    n_cases = case_rows.count()
    expected_results = _results_expected(profile=profile, cases=case_rows, n_cases=n_cases)
    chunk_size = int(options.get("chunk_size") or profile.chunk_size or settings.VIGILO_CHUNK_SIZE)
    run_id = uuid.uuid4()
    shard = shard_of(run_id)
    n_chunks = (n_cases + chunk_size - 1) // chunk_size
    try:
        with transaction.atomic():
            run = Run.objects.create(
                id=run_id,
                name=name,
                dataset_version=dataset_version,
                profile_version=profile_version,
                shard=shard,
                pins={bid: pin.as_dict() for bid, pin in pins.items()},
                options=options,
                expected_executions=n_cases,
                expected_results=expected_results,
                chunk_count=n_chunks,
                idempotency_key=idempotency_key or None,
                request_hash=request_hash,
            )
            now = timezone.now()
            chunks = Chunk.objects.bulk_create(
                [Chunk(run=run, index=i, shard=shard, dispatched_at=now) for i in range(n_chunks)], batch_size=1000
            )
            if not all(c.pk for c in chunks):  # backends without RETURNING
                chunks = list(Chunk.objects.filter(run=run).order_by("index"))
            _executions_create(run=run, chunks=chunks, chunk_size=chunk_size, dataset_version=dataset_version)
            outbox_write(messages=[chunk_ready_message(chunk=c, generation=0) for c in chunks])
    except IntegrityError:
        if idempotency_key:  # a concurrent request with the same key won
            return run_create(
                dataset_version=dataset_version,
                profile_version=profile_version,
                name=name,
                idempotency_key=idempotency_key,
                options=options,
            )
        raise
    return run, True


def _results_expected(*, profile: ProfileSpec, cases: QuerySet[Case], n_cases: int) -> int:
    """One result per case and binding that applies to it (a binding's `when` picks cases by tag).

    Refuses a binding whose `when` matches no case, and cases that no binding applies to: the first is usually a
    misspelt tag, the second would pass without being checked.
    """
    if all(binding.when_tags is None for binding in profile.bindings):
        return n_cases * len(profile.bindings)
    total, used, unchecked = 0, set(), []
    for case_id, raw in cases.order_by("ordinal").values_list("case_id", "data__tags").iterator(chunk_size=5000):
        tags = json.loads(raw) if isinstance(raw, str) else raw or []
        applicable = [binding.id for binding in profile.bindings if binding.applies_to(tags)]
        total += len(applicable)
        used.update(applicable)
        if not applicable:
            unchecked.append(case_id)
    errors = [
        (
            f"profile binding '{binding.id}'",
            f"when.tags ({', '.join(binding.when_tags or ())}) matches no case of the dataset",
        )
        for binding in profile.bindings
        if binding.id not in used
    ]
    if unchecked:
        sample = ", ".join(repr(c) for c in unchecked[:5])
        errors.append(
            (
                "dataset",
                f"{len(unchecked)} case(s) have no binding that applies to them ({sample}): give them a tag a "
                "binding's `when` names, or add a binding without `when`",
            )
        )
    if errors:
        raise ValidationFailed("run", errors)
    return total


def _executions_create(*, run: Run, chunks: list[Chunk], chunk_size: int, dataset_version: DatasetVersion) -> None:
    """One execution per case, with the case as its frozen snapshot; case `ordinal` goes to chunk ordinal // size.

    On PostgreSQL the snapshots are copied inside the database (one INSERT ... SELECT): at 10,000 cases that
    is ~10x faster than reading every case into Python and writing it back.
    """
    if connection.vendor == "postgresql":
        sql = f"""
            INSERT INTO {Execution._meta.db_table} (run_id, chunk_id, shard, ordinal, case_id, tags, snapshot, attempt)
            SELECT %s, ch.id, %s, c.ordinal, c.case_id, COALESCE(c.data -> 'tags', '[]'::jsonb), c.data, 0
            FROM {Case._meta.db_table} c
            JOIN {Chunk._meta.db_table} ch ON ch.run_id = %s AND ch."index" = c.ordinal / %s
            WHERE c.dataset_version_id = %s
        """
        with connection.cursor() as cursor:
            cursor.execute(sql, [run.id, run.shard, run.id, chunk_size, dataset_version.id])
        return
    cases = Case.objects.filter(dataset_version=dataset_version).order_by("ordinal")
    Execution.objects.bulk_create(
        [
            Execution(
                run=run,
                chunk=chunks[ordinal // chunk_size],
                shard=run.shard,
                ordinal=ordinal,
                case_id=case_id,
                tags=data.get("tags", []),
                snapshot=data,
            )
            for ordinal, case_id, data in cases.values_list("ordinal", "case_id", "data").iterator()
        ],
        batch_size=2000,
    )


def _pins(run: Run) -> dict[str, Pin]:
    return {
        bid: Pin(bid, p["reference"], p["version_id"], p["digest"], p.get("pure", False)) for bid, p in run.pins.items()
    }


def run_mark_running(*, run_id: uuid.UUID) -> bool:
    """pending -> running, with the `run.started` event. False when the run is already past pending."""
    with transaction.atomic():
        try:
            transition(model=Run, pk=run_id, to=Run.State.RUNNING, started_at=timezone.now())
        except TransitionError:
            return False
        run = Run.objects.get(pk=run_id)
        outbox_write(messages=[run_event(run=run, topic="run.started")])
    return True


def run_cancel(*, run_id: uuid.UUID, reason: str = "cancelled by request") -> Run:
    """Cancel a pending or running run: its unfinished chunks are cancelled and workers stop at their next write."""
    from runs.processing import run_verdict

    with transaction.atomic():
        transition(
            model=Run,
            pk=run_id,
            to=Run.State.CANCELLED,
            gate=Run.Gate.FAIL,
            failure_reason=reason,
            finished_at=timezone.now(),
        )
        Chunk.objects.filter(run_id=run_id, state__in=[Chunk.State.PENDING, Chunk.State.LEASED]).update(
            state=Chunk.State.CANCELLED, lease_token=None, leased_until=None
        )
        run = Run.objects.get(pk=run_id)
        run.verdict = run_verdict(run=run)
        run.save(update_fields=["verdict"])
        outbox_write(messages=[run_event(run=run, topic="run.cancelled")])
    return run


def chunks_reap(*, now: Any = None) -> dict[str, int]:
    """Return expired leases to pending (re-dispatched through the outbox), or fail chunks past the limit."""
    from runs.processing import run_finalize_if_done

    now = now or timezone.now()
    recovered = failed = 0
    expired = Chunk.objects.filter(state=Chunk.State.LEASED, leased_until__lt=now).values_list(
        "id", "run_id", "lease_token", "recovery_count"
    )
    for chunk_id, run_id, token, recoveries in list(expired[:1000]):
        guard = {"lease_token": token, "leased_until__lt": now}
        with transaction.atomic():
            try:
                if recoveries >= settings.VIGILO_MAX_RECOVERIES:
                    transition(
                        model=Chunk,
                        pk=chunk_id,
                        to=Chunk.State.FAILED,
                        guard=guard,
                        lease_token=None,
                        failure_reason=f"lease expired {recoveries + 1} times (recovery limit "
                        f"{settings.VIGILO_MAX_RECOVERIES}): workers kept dying or stalling on this chunk",
                    )
                    failed += 1
                else:
                    transition(
                        model=Chunk,
                        pk=chunk_id,
                        to=Chunk.State.PENDING,
                        guard=guard,
                        lease_token=None,
                        leased_until=None,
                        recovery_count=recoveries + 1,
                        dispatched_at=timezone.now(),
                    )
                    chunk = Chunk.objects.get(pk=chunk_id)
                    outbox_write(messages=[chunk_ready_message(chunk=chunk, generation=recoveries + 1)])
                    recovered += 1
            except TransitionError:
                continue  # the worker completed or renewed it meanwhile
        if recoveries >= settings.VIGILO_MAX_RECOVERIES:
            run_finalize_if_done(run_id=run_id)
    return {"recovered": recovered, "failed": failed, "redispatched": chunks_redispatch_stale(now=now)}


def chunks_redispatch_stale(*, now: Any) -> int:
    """Write a new chunk.ready for pending chunks whose message was lost.

    A message can be consumed without effect (the task crashed before claiming, an embedded process exited
    with work queued): the chunk then stays pending. Claiming is guarded, so a duplicate costs nothing, but a
    chunk that merely waits in a long queue is not lost. A pending chunk dispatched before the window is
    redispatched when the queue has moved past it (the queue is first in, first out: a chunk dispatched after
    it was already claimed), or when nothing at all is in progress or finished during the window.
    """
    cutoff = now - timedelta(seconds=settings.VIGILO_STALE_DISPATCH_SECONDS)
    stale = Chunk.objects.filter(
        state=Chunk.State.PENDING, dispatched_at__lt=cutoff, run__state__in=[Run.State.PENDING, Run.State.RUNNING]
    )
    busy = Chunk.objects.filter(Q(state=Chunk.State.LEASED) | Q(completed_at__gte=cutoff)).exists()
    if busy:
        overtaken = Chunk.objects.filter(dispatched_at__gt=OuterRef("dispatched_at")).exclude(state=Chunk.State.PENDING)
        stale = stale.filter(Exists(overtaken))
    stale = stale.order_by("dispatched_at").values_list("id", "redispatch_count")
    count = 0
    for chunk_id, n in list(stale[:1000]):
        with transaction.atomic():
            updated = Chunk.objects.filter(
                pk=chunk_id, state=Chunk.State.PENDING, redispatch_count=n, dispatched_at__lt=cutoff
            ).update(redispatch_count=n + 1, dispatched_at=now)
            if updated:
                chunk = Chunk.objects.get(pk=chunk_id)
                outbox_write(messages=[chunk_ready_message(chunk=chunk, generation=f"stale-{n + 1}")])
                count += 1
    return count


def lease_until() -> Any:
    return timezone.now() + timedelta(seconds=settings.VIGILO_LEASE_SECONDS)


def runs_finalize_stalled(*, limit: int = 100) -> int:
    """Finalize runs whose chunks have all ended but which were never finalized.

    The last chunk's worker finalizes its run right after completing it; a worker that dies (or loses its
    database connection) between the two leaves the run running with nothing left to do. The reaper calls this.
    """
    from runs.processing import run_finalize_if_done

    open_chunks = Chunk.objects.filter(run_id=OuterRef("pk"), state__in=[Chunk.State.PENDING, Chunk.State.LEASED])
    stalled = (
        Run.objects.filter(state__in=[Run.State.PENDING, Run.State.RUNNING])
        .filter(~Exists(open_chunks))
        .values_list("id", flat=True)
    )
    return sum(1 for run_id in list(stalled[:limit]) if run_finalize_if_done(run_id=run_id))


def periodic_reap() -> dict[str, int]:
    """What the reaper does every few seconds (beat's `runs.reap_leases`, the embedded relay thread, and the
    `reap_leases` command): expired leases, stalled finalizations, expired shared model responses."""
    from evaluators.model_broker import model_responses_expire

    return {**chunks_reap(), "finalized": runs_finalize_stalled(), "model_responses_expired": model_responses_expire()}
