"""Every allowed and every forbidden state pair, for runs and chunks: a forbidden one writes nothing."""

from __future__ import annotations

import itertools

import pytest

from runs.errors import TransitionError
from runs.models import Chunk, Run
from runs.transitions import CHUNK_TRANSITIONS, RUN_TRANSITIONS, transition
from tests.runs.factories import make_run

RUN_PAIRS = list(itertools.product(Run.State.values, repeat=2))
CHUNK_PAIRS = list(itertools.product(Chunk.State.values, repeat=2))


@pytest.mark.django_db
@pytest.mark.parametrize(("source", "target"), RUN_PAIRS)
def test_run_transition(source, target):
    run = make_run(cases=1)
    Run.objects.filter(pk=run.pk).update(state=source)
    if (source, target) in RUN_TRANSITIONS:
        transition(model=Run, pk=run.pk, to=target)
        assert Run.objects.get(pk=run.pk).state == target
    else:
        with pytest.raises(TransitionError):
            transition(model=Run, pk=run.pk, to=target)
        assert Run.objects.get(pk=run.pk).state == source


@pytest.mark.django_db
@pytest.mark.parametrize(("source", "target"), CHUNK_PAIRS)
def test_chunk_transition(source, target):
    run = make_run(cases=1)
    chunk = run.chunks.get()
    Chunk.objects.filter(pk=chunk.pk).update(state=source)
    if (source, target) in CHUNK_TRANSITIONS:
        transition(model=Chunk, pk=chunk.pk, to=target)
        assert Chunk.objects.get(pk=chunk.pk).state == target
    else:
        with pytest.raises(TransitionError):
            transition(model=Chunk, pk=chunk.pk, to=target)
        assert Chunk.objects.get(pk=chunk.pk).state == source


@pytest.mark.django_db
def test_a_failed_guard_writes_nothing():
    run = make_run(cases=1)
    chunk = run.chunks.get()
    Chunk.objects.filter(pk=chunk.pk).update(state="leased", lease_token="00000000-0000-0000-0000-000000000001")
    with pytest.raises(TransitionError):
        transition(
            model=Chunk, pk=chunk.pk, to="completed", guard={"lease_token": "00000000-0000-0000-0000-000000000002"}
        )
    assert Chunk.objects.get(pk=chunk.pk).state == "leased"


def test_every_state_is_reachable_or_initial():
    reached = {dst for _, dst in RUN_TRANSITIONS} | {"pending"}
    assert reached == set(Run.State.values)
    reached = {dst for _, dst in CHUNK_TRANSITIONS} | {"pending"}
    assert reached == set(Chunk.State.values)
