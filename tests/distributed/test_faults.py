"""Faults a distributed run survives: a worker killed mid-chunk, a broker restart while the relay publishes,
dropped database connections, a chunk message delivered twice at once, and a graceful SIGTERM."""

from __future__ import annotations

import signal
import time

import pytest
from kombu import Connection, Exchange, Queue

from outbox.models import OutboxEvent
from outbox.services import Message, outbox_write
from outbox.transport.rabbitmq import EVENTS_EXCHANGE
from runs.models import Chunk, EvaluatorResult, Run
from tests.support.distributed import assert_exactly_once, create_run, rabbitmq_wait_up, rabbitmqctl, wait_terminal

pytestmark = [pytest.mark.distributed, pytest.mark.django_db(transaction=True)]


def _chunk_in_progress(run_id) -> int | None:
    """A leased chunk of the run that has written some, not all, of its results."""
    for chunk in Chunk.objects.filter(run_id=run_id, state=Chunk.State.LEASED):
        written = EvaluatorResult.objects.filter(execution__chunk=chunk, attempt=chunk.attempt).count()
        if written:
            return chunk.id
    return None


def test_worker_killed_mid_chunk_is_recovered_without_duplicates(cluster):
    run = create_run(n=600, tag="kill9", chunk_size=200)
    doomed = cluster.worker("doomed")
    cluster.beat()
    chunk_id = cluster.wait_for(lambda: _chunk_in_progress(run.id), timeout_s=60, what="a chunk in progress")

    doomed.signal_group(signal.SIGKILL)  # the main process and its pool child, no chance to clean up
    doomed.popen.wait(timeout=10)
    assert Chunk.objects.get(pk=chunk_id).state == Chunk.State.LEASED
    cluster.worker("survivor")
    run = wait_terminal(cluster, run.id, timeout_s=120)

    assert run.state == Run.State.COMPLETED, cluster.logs()
    chunk = Chunk.objects.get(pk=chunk_id)
    assert (chunk.state, chunk.recovery_count) == (Chunk.State.COMPLETED, 1)
    assert chunk.attempt == 2
    assert OutboxEvent.objects.filter(dedupe_key=f"chunk.ready:{chunk_id}:1", status="published").exists()
    assert_exactly_once(run)


def test_broker_restart_while_relaying_loses_nothing(cluster):
    events = Queue("test-events", Exchange(EVENTS_EXCHANGE, type="topic", durable=True), routing_key="load.#")
    with Connection(cluster.env["CELERY_BROKER_URL"]) as conn:
        events(conn.channel()).declare()
        events(conn.channel()).purge()
    cluster.worker("w1")
    cluster.worker("w2")
    cluster.beat()
    load = [Message(topic="load.event", dedupe_key=f"load:{i}", payload={"i": i}) for i in range(3000)]
    outbox_write(messages=load)
    run = create_run(n=400, tag="rabbit", chunk_size=50)
    cluster.wait_for(
        lambda: OutboxEvent.objects.filter(status="published").exists(), timeout_s=30, what="the relay publishing"
    )
    try:
        rabbitmqctl("stop_app")
        time.sleep(3)
    finally:
        rabbitmqctl("start_app")
        rabbitmq_wait_up()
    run = wait_terminal(cluster, run.id, timeout_s=180)
    cluster.wait_for(
        lambda: not OutboxEvent.objects.exclude(status="published").exists(),
        timeout_s=60,
        what="every outbox row published",
    )

    assert run.state == Run.State.COMPLETED, cluster.logs()
    assert_exactly_once(run)
    rows = OutboxEvent.objects.filter(topic="load.event")
    assert rows.count() == 3000
    assert not rows.exclude(status="published").exists()
    assert not rows.filter(published_at=None).exists()
    # At-least-once on the wire: every confirmed row reached the bound queue (a row published just before the
    # connection dropped may be there twice; the ledger still says published once).
    seen: set[str] = set()
    with Connection(cluster.env["CELERY_BROKER_URL"]) as conn:
        simple = conn.SimpleQueue(events)
        deadline = time.monotonic() + 60
        while len(seen) < 3000 and time.monotonic() < deadline:
            try:
                message = simple.get(timeout=1)
            except simple.Empty:
                continue
            seen.add(message.properties["message_id"])
            message.ack()
        simple.close()
    assert seen == {m.dedupe_key for m in load}


def test_dropped_database_connections_are_survived(cluster):
    from django.db import connection

    # Chunks that take a few seconds, so that each one writes results before it completes (RESULT_FLUSH_S).
    run = create_run(n=1200, tag="pgkill", chunk_size=200)
    cluster.worker("w1")
    cluster.worker("w2")
    cluster.beat()
    terminated = 0
    for _ in range(3):
        cluster.wait_for(lambda: _chunk_in_progress(run.id), timeout_s=60, what="a chunk in progress")
        with connection.cursor() as cur:
            cur.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            terminated += cur.fetchone()[0]
        time.sleep(1.0)
    run = wait_terminal(cluster, run.id, timeout_s=150)

    assert terminated > 0
    assert run.state == Run.State.COMPLETED, cluster.logs()
    assert_exactly_once(run)


def test_the_same_chunk_delivered_twice_at_once_has_one_effect(cluster):
    from runs.tasks import process_chunk
    from vigilo_project.celery import app

    run = create_run(n=300, tag="twice", chunk_size=300)
    [chunk] = Chunk.objects.filter(run=run)
    w1, w2 = cluster.worker("w1"), cluster.worker("w2")
    with app.connection_for_write(cluster.env["CELERY_BROKER_URL"]) as conn:
        for _ in range(2):  # no beat: these two are the only messages, with the same id, as a redelivery
            process_chunk.apply_async(args=[chunk.id], task_id=f"chunk.ready:{chunk.id}:0", connection=conn)
    run = wait_terminal(cluster, run.id, timeout_s=120)
    # Three deliveries in all: the two above, and the run's own chunk.ready row, which the relay publishes when
    # the first worker's commit kicks it.
    cluster.wait_for(
        lambda: (w1.text() + w2.text()).count("process_chunk[chunk.ready:") >= 6, timeout_s=60, what="3 deliveries"
    )

    assert run.state == Run.State.COMPLETED, cluster.logs()
    logs = w1.text() + w2.text()
    assert logs.count(": 'completed'") == 1, logs
    assert logs.count(": 'skipped'") == 2, logs
    chunk.refresh_from_db()
    assert (chunk.state, chunk.attempt) == (Chunk.State.COMPLETED, 1)
    assert EvaluatorResult.objects.filter(run=run).count() == 300 * 3
    assert_exactly_once(run)


def test_sigterm_releases_the_chunk_in_hand_after_the_grace_period(cluster):
    slow_lease = {"VIGILO_LEASE_SECONDS": "120", "VIGILO_SHUTDOWN_GRACE_S": "0"}
    run = create_run(n=400, tag="sigterm-release", chunk_size=200)
    leaving = cluster.worker("leaving", env=slow_lease)
    cluster.beat(env=slow_lease)
    chunk_id = cluster.wait_for(lambda: _chunk_in_progress(run.id), timeout_s=60, what="a chunk in progress")

    leaving.popen.send_signal(signal.SIGTERM)  # what `docker stop` sends: the main process only
    cluster.wait_for(lambda: not leaving.alive(), timeout_s=30, what="the worker to exit")
    chunk = Chunk.objects.get(pk=chunk_id)
    assert (chunk.state, chunk.attempt, chunk.recovery_count) == (Chunk.State.PENDING, 1, 0), leaving.text()
    assert OutboxEvent.objects.filter(dedupe_key=f"chunk.ready:{chunk_id}:release-1").exists()

    cluster.worker("successor", env=slow_lease)
    run = wait_terminal(cluster, run.id, timeout_s=90)  # well before a 120 s lease could have expired
    assert run.state == Run.State.COMPLETED, cluster.logs()
    chunk.refresh_from_db()
    assert (chunk.state, chunk.attempt, chunk.recovery_count) == (Chunk.State.COMPLETED, 2, 0)
    assert_exactly_once(run)


def test_sigterm_lets_the_chunk_in_hand_complete_within_the_grace_period(cluster):
    slow_lease = {"VIGILO_LEASE_SECONDS": "120", "VIGILO_SHUTDOWN_GRACE_S": "60"}
    run = create_run(n=400, tag="sigterm-finish", chunk_size=200)
    leaving = cluster.worker("leaving", env=slow_lease)
    cluster.beat(env=slow_lease)
    chunk_id = cluster.wait_for(lambda: _chunk_in_progress(run.id), timeout_s=60, what="a chunk in progress")

    leaving.popen.send_signal(signal.SIGTERM)
    cluster.wait_for(lambda: not leaving.alive(), timeout_s=60, what="the worker to exit")
    chunk = Chunk.objects.get(pk=chunk_id)
    assert (chunk.state, chunk.attempt) == (Chunk.State.COMPLETED, 1), leaving.text()
    assert not OutboxEvent.objects.filter(dedupe_key__startswith=f"chunk.ready:{chunk_id}:release").exists()

    cluster.worker("successor", env=slow_lease)
    run = wait_terminal(cluster, run.id, timeout_s=90)
    assert run.state == Run.State.COMPLETED, cluster.logs()
    assert_exactly_once(run)
