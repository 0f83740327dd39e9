"""The collector pause of bulk steps: restored as it was, and in force where the bulk steps build their objects."""

from __future__ import annotations

import gc
import json

import pytest

import runs.selectors
from runs.ingest import dataset_parse
from runs.services import dataset_import
from vigilo_project.gcpause import gc_paused


@pytest.fixture(autouse=True)
def _collector_enabled():
    assert gc.isenabled()
    yield
    gc.enable()


@pytest.fixture
def collections():
    """Counts the collector's runs while the test records (`collections["on"] = True`)."""
    seen = {"on": False, "runs": 0}

    def count(phase, info):
        if phase == "start" and seen["on"]:
            seen["runs"] += 1

    gc.callbacks.append(count)
    yield seen
    gc.callbacks.remove(count)


def test_the_collector_is_paused_inside_and_enabled_again_after():
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_exception_still_enables_the_collector_again():
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("inside the pause")
    assert gc.isenabled()


def test_a_nested_pause_leaves_the_outer_one_in_force():
    with gc_paused():
        with gc_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_disabled_by_someone_else_stays_disabled():
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


PROFILE = """
name: gc
min_execution_score: 0
dimensions:
  correctness: {weight: 1.0}
bindings:
  - id: mentions
    evaluator: vigilo/contains@^1.0
    dimension: correctness
    config: {value: "x"}
"""


def _cases(n: int) -> str:
    return "\n".join(
        json.dumps({"id": f"c{i}", "input": {"q": i, "tags": ["a", "b"]}, "output": {"text": "x" * 20}})
        for i in range(n)
    )


@pytest.mark.django_db
def test_importing_a_dataset_runs_no_collection(collections):
    text = _cases(3000)
    collections["on"] = True
    dataset_parse(text=text)  # the same parse outside the pause: the collector runs
    unpaused = collections["runs"]
    collections["runs"] = 0
    version, created = dataset_import(name="gc", text=text)
    collections["on"] = False

    assert unpaused > 0
    assert created and version.case_count == 3000
    assert collections["runs"] == 0
    assert gc.isenabled()


@pytest.mark.django_db
def test_the_verdict_is_computed_with_the_collector_paused(published, monkeypatch):
    from runs.engine import chunk_evaluate
    from runs.models import Run
    from runs.services import profile_import, run_create

    dataset, _ = dataset_import(name="gc-verdict", text=_cases(4))
    profile, _ = profile_import(text=PROFILE)
    run, _ = run_create(dataset_version=dataset, profile_version=profile, name="gc")
    states = []
    compute = runs.selectors.verdict_compute
    monkeypatch.setattr(runs.selectors, "verdict_compute", lambda **kw: states.append(gc.isenabled()) or compute(**kw))

    for chunk in run.chunks.all():
        chunk_evaluate(chunk_id=chunk.id)

    run = Run.objects.get(pk=run.id)
    assert run.state == "completed" and run.verdict["counts"]["passed"] == 4
    assert states == [False]
    assert gc.isenabled()
