"""The reaper re-dispatches a chunk whose message was lost, not one that is still waiting in a long queue."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from outbox.models import OutboxEvent
from runs.models import Chunk, Run
from runs.reaper import chunks_redispatch_stale
from tests.runs.factories import make_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def chunks(settings):
    settings.VIGILO_STALE_DISPATCH_SECONDS = 600
    run = make_run(cases=3, chunk_size=1)
    Run.objects.filter(pk=run.pk).update(state=Run.State.RUNNING)
    return list(run.chunks.order_by("index"))


def set_chunk(chunk: Chunk, *, state: str, dispatched_ago: float, completed_ago: float | None = None) -> None:
    now = timezone.now()
    Chunk.objects.filter(pk=chunk.pk).update(
        state=state,
        dispatched_at=now - timedelta(seconds=dispatched_ago),
        completed_at=None if completed_ago is None else now - timedelta(seconds=completed_ago),
    )


def redispatched() -> list[str]:
    return sorted(OutboxEvent.objects.filter(dedupe_key__contains="stale").values_list("dedupe_key", flat=True))


def test_a_chunk_overtaken_by_a_later_dispatch_is_redispatched_once(chunks):
    first, second, third = chunks
    set_chunk(first, state=Chunk.State.PENDING, dispatched_ago=900)  # its message was lost
    set_chunk(second, state=Chunk.State.COMPLETED, dispatched_ago=800, completed_ago=10)  # dispatched later, done
    set_chunk(third, state=Chunk.State.LEASED, dispatched_ago=800)
    assert chunks_redispatch_stale(now=timezone.now()) == 1
    assert redispatched() == [f"chunk.ready:{first.pk}:stale-1"]
    assert chunks_redispatch_stale(now=timezone.now()) == 0  # its new dispatch is recent


def test_a_chunk_still_waiting_behind_busy_workers_is_left_alone(chunks):
    first, second, third = chunks
    set_chunk(first, state=Chunk.State.LEASED, dispatched_ago=950)  # dispatched earlier, in progress
    set_chunk(second, state=Chunk.State.PENDING, dispatched_ago=900)  # queued behind it: not lost
    set_chunk(third, state=Chunk.State.PENDING, dispatched_ago=900)
    assert chunks_redispatch_stale(now=timezone.now()) == 0
    assert redispatched() == []


def test_when_nothing_is_in_progress_every_old_pending_chunk_is_redispatched(chunks):
    first, second, third = chunks
    set_chunk(first, state=Chunk.State.COMPLETED, dispatched_ago=2000, completed_ago=1500)
    set_chunk(second, state=Chunk.State.PENDING, dispatched_ago=900)
    set_chunk(third, state=Chunk.State.PENDING, dispatched_ago=900)
    assert chunks_redispatch_stale(now=timezone.now()) == 2
    assert redispatched() == sorted([f"chunk.ready:{second.pk}:stale-1", f"chunk.ready:{third.pk}:stale-1"])
