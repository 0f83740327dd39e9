"""The reaper, every few seconds (beat's `runs.reap_leases`, the embedded relay thread, `manage.py reap_leases`):
expired leases back to pending or failed past the recovery limit, lost dispatches sent again, runs whose last
chunk's worker died before finalizing finalized, expired shared model responses deleted."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from evaluators.model_broker import model_responses_expire
from outbox.services import outbox_write
from runs.errors import TransitionError
from runs.messages import chunk_ready_message
from runs.models import Chunk, Run
from runs.services import run_finalize_if_done
from runs.transitions import transition


def chunks_reap(*, now: datetime | None = None) -> dict[str, int]:
    """Return expired leases to pending (re-dispatched through the outbox), or fail chunks past the limit."""
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
                    outbox_write(messages=[chunk_ready_message(chunk=chunk, generation=str(recoveries + 1))])
                    recovered += 1
            except TransitionError:
                continue  # the worker completed or renewed it meanwhile
        if recoveries >= settings.VIGILO_MAX_RECOVERIES:
            run_finalize_if_done(run_id=run_id)
    return {"recovered": recovered, "failed": failed, "redispatched": chunks_redispatch_stale(now=now)}


def chunks_redispatch_stale(*, now: datetime) -> int:
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
    due = stale.order_by("dispatched_at").values_list("id", "redispatch_count")
    count = 0
    for chunk_id, n in list(due[:1000]):
        with transaction.atomic():
            updated = Chunk.objects.filter(
                pk=chunk_id, state=Chunk.State.PENDING, redispatch_count=n, dispatched_at__lt=cutoff
            ).update(redispatch_count=n + 1, dispatched_at=now)
            if updated:
                chunk = Chunk.objects.get(pk=chunk_id)
                outbox_write(messages=[chunk_ready_message(chunk=chunk, generation=f"stale-{n + 1}")])
                count += 1
    return count


def runs_finalize_stalled(*, limit: int = 100) -> int:
    """Finalize runs whose chunks have all ended but which were never finalized.

    The last chunk's worker finalizes its run right after completing it; a worker that dies (or loses its
    database connection) between the two leaves the run running with nothing left to do. The reaper calls this.
    """
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
    return {**chunks_reap(), "finalized": runs_finalize_stalled(), "model_responses_expired": model_responses_expire()}
