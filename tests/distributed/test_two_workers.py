"""A 2,000-case run over two real worker processes gives exactly the embedded mode's verdict, exactly once."""

from __future__ import annotations

import time

import pytest

from outbox.embedded import EmbeddedRuntime
from outbox.models import OutboxEvent
from runs.models import Run
from runs.reaper import periodic_reap
from runs.services import run_create
from tests.support.distributed import assert_exactly_once, comparable_verdict, import_inputs, wait_terminal

pytestmark = [pytest.mark.distributed, pytest.mark.django_db(transaction=True)]
CASES = 2000


def _embedded_run(dataset, profile) -> Run:
    with EmbeddedRuntime(workers=2, reap=periodic_reap):
        run, _ = run_create(dataset_version=dataset, profile_version=profile, name="embedded")
        deadline = time.monotonic() + 240
        while not Run.objects.get(pk=run.id).is_terminal:
            assert time.monotonic() < deadline, "embedded run did not finish"
            time.sleep(0.2)
        while OutboxEvent.objects.filter(status="pending").exists():  # its final events, before workers start
            assert time.monotonic() < deadline, "embedded relay did not drain"
            time.sleep(0.1)
    return Run.objects.get(pk=run.id)


def test_two_workers_complete_2000_cases_with_the_embedded_verdict(cluster):
    dataset, profile = import_inputs(n=CASES, tag="two-workers")
    embedded = _embedded_run(dataset, profile)
    assert embedded.state == Run.State.COMPLETED

    workers = [cluster.worker("w1"), cluster.worker("w2")]
    cluster.beat()
    run, _ = run_create(dataset_version=dataset, profile_version=profile, name="distributed")
    run = wait_terminal(cluster, run.id, timeout_s=240)

    assert run.state == Run.State.COMPLETED, cluster.logs()
    assert run.expected_executions == CASES
    assert_exactly_once(run)
    assert comparable_verdict(run.verdict) == comparable_verdict(embedded.verdict)
    assert run.verdict["counts"]["failed"] == 200  # the generator's 10% failing cases
    assert run.gate == embedded.gate
    for w in workers:  # both processes took a share of the chunks
        assert "runs.process_chunk" in w.text() and "succeeded" in w.text(), cluster.logs()
