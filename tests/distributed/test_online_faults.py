"""Faults live evaluation survives, with real RabbitMQ, PostgreSQL, Celery workers and `manage.py online_consume`:
a broker restart during AMQP ingestion, a consumer killed -9 mid-stream or losing its database connections, a
worker killed -9 while it evaluates events, evaluate messages lost on the broker, and the rate limit held by two
worker processes evaluating one agent's events at once. Each event is stored and evaluated once in effect, each
correction written once and none lost, a halt never lost."""

from __future__ import annotations

import re
import signal
import threading
import time

import pytest
from kombu import Connection, Exchange, Queue

from online.ingest import event_parse
from online.models import AgentAudit, CorrectionSignal, EvalEvent, MonitoredAgent
from online.services import events_accept
from outbox.models import OutboxEvent
from outbox.relay import relay_once
from outbox.transport.rabbitmq import CeleryTransport
from tests.support.distributed import rabbitmq_wait_up, rabbitmqctl
from tests.support.online import agent_make, leaking, unreferenced
from tests.support.online_amqp import (
    READY,
    Emitter,
    assert_exactly_once,
    consumer_queue_reset,
    consumer_start,
    corrections_queue,
    delivered_bodies,
    drain,
    relayed,
    settled,
    stored,
    stream,
    wait_settled,
)

pytestmark = [pytest.mark.distributed, pytest.mark.django_db(transaction=True)]

TASK = re.compile(r"Task online\.evaluate_events\[([^\]]+)\] (received|succeeded)")


def _accept(agent, bodies, *, per_message: int) -> None:
    """Accept events as the HTTP async path does, `per_message` events per `online.evaluate_events` message."""
    for i in range(0, len(bodies), per_message):
        fresh = MonitoredAgent.objects.get(pk=agent.pk)
        events_accept(agent=fresh, events=[event_parse(b) for b in bodies[i : i + per_message]], path="http")


def _in_flight(log: str) -> set[str]:
    """Evaluate messages a worker received and did not finish (unacked: acks_late)."""
    received, succeeded = set(), set()
    for task_id, what in TASK.findall(log):
        (received if what == "received" else succeeded).add(task_id)
    return received - succeeded


def _just_received(log: str) -> bool:
    """The worker's last evaluate message is received and not finished."""
    tasks = TASK.findall(log)
    return bool(tasks) and tasks[-1][1] == "received"


def _assert_halted_once(agent_name: str, message_id: str) -> None:
    agent = MonitoredAgent.objects.get(name=agent_name)
    assert agent.state == MonitoredAgent.State.HALTED
    assert agent.halt_correction is not None
    assert (agent.halt_correction.severity, agent.halt_correction.event.message_id) == ("halt", message_id)
    assert AgentAudit.objects.filter(agent=agent, action=AgentAudit.Action.HALT).count() == 1
    assert OutboxEvent.objects.filter(topic="agent.halted", payload__agent=agent_name).count() == 1


def test_rabbitmq_restart_during_amqp_ingestion_stores_and_evaluates_every_event_once(cluster):
    url = cluster.env["CELERY_BROKER_URL"]
    consumer_queue_reset(url)
    bot, token = agent_make("stream-bot", delivery="amqp", max_corrections_per_window=10_000)
    leaker, leaker_token = agent_make("stream-leaker", delivery="amqp")
    bots_queue = corrections_queue(url, "test-corrections-stream-bot", bot.name)
    leakers_queue = corrections_queue(url, "test-corrections-stream-leaker", leaker.name)
    cluster.worker("w1")
    cluster.beat()
    consumer = consumer_start(cluster)
    bots = stream(300, prefix="s")
    leak = leaking(message_id="leak-halt")
    emitter = Emitter(url)
    failure: list[BaseException] = []

    def emit() -> None:
        try:
            for i, body in enumerate(bots):
                emitter.event(bot.name, token, body)
                if i == 100:
                    emitter.event(leaker.name, leaker_token, leak)
                time.sleep(0.02)  # a steady stream (6 s at least), still going when the broker goes away
        except BaseException as exc:
            failure.append(exc)
        finally:
            emitter.close()

    publisher = threading.Thread(target=emit, daemon=True)
    publisher.start()
    cluster.wait_for(
        lambda: (emitter.confirmed >= 80 and stored(bot.name) >= 40) or failure,
        timeout_s=60,
        what="the stream under way",
    )
    confirmed_before = emitter.confirmed
    try:
        rabbitmqctl("stop_app")
        time.sleep(3)
    finally:
        rabbitmqctl("start_app")
        rabbitmq_wait_up()
    publisher.join(timeout=150)
    assert not publisher.is_alive() and not failure, failure
    wait_settled(cluster, bot.name, 300, timeout_s=150)
    wait_settled(cluster, leaker.name, 1, timeout_s=30)

    # The broker went away in the middle of the stream: the emitter published again what it left unconfirmed,
    # and the consumer reconnected.
    assert 0 < confirmed_before < 300
    assert emitter.resent > 0
    assert emitter.confirmed == 301
    cluster.wait_for(lambda: consumer.text().count(READY) >= 2, timeout_s=30, what="the consumer reconnected")
    assert_exactly_once(bot.name, bots)
    assert_exactly_once(leaker.name, [leak])
    _assert_halted_once(leaker.name, "leak-halt")
    # No correction lost on the way out either (at least once on the wire: a resend may show twice).
    cluster.wait_for(lambda: relayed("correction.issued"), timeout_s=60, what="every correction relayed")
    for agent, queue in ((bot, bots_queue), (leaker, leakers_queue)):
        expected = delivered_bodies(agent.name)
        assert len(expected) == (200 if agent == bot else 1)
        got = drain(url, queue, expected=len(expected), timeout_s=60)
        assert {m.decode()["delivery_id"] for m in got} == set(expected), cluster.logs()


def test_a_consumer_killed_mid_stream_leaves_nothing_lost_or_dispatched_twice(cluster):
    url = cluster.env["CELERY_BROKER_URL"]
    consumer_queue_reset(url)
    bot, token = agent_make("restarted-consumer-bot")
    first = consumer_start(cluster, name="first")  # no worker: what is checked is storing and dispatching
    bodies = stream(200, prefix="c")
    emitter = Emitter(url)
    publisher = threading.Thread(target=_emit_paced, args=(emitter, bot.name, token, bodies), daemon=True)
    publisher.start()
    cluster.wait_for(lambda: stored(bot.name) >= 50, timeout_s=60, what="the stream under way")

    first.signal_group(signal.SIGKILL)  # whatever it took and did not ack goes back to the queue
    first.popen.wait(timeout=10)
    at_kill = stored(bot.name)
    consumer_start(cluster, name="second")
    publisher.join(timeout=90)
    assert not publisher.is_alive() and emitter.confirmed == 200
    cluster.wait_for(lambda: stored(bot.name) == 200, timeout_s=60, what="every event stored")

    assert 0 < at_kill < 200
    events = EvalEvent.objects.filter(agent=bot)
    assert sorted(events.values_list("message_id", flat=True)) == sorted(b["message_id"] for b in bodies)
    # Each event dispatched to the workers exactly once: a redelivered message of a stored event dispatches nothing.
    dispatched = [i for row in OutboxEvent.objects.filter(topic="online.evaluate") for i in row.payload["args"][0]]
    assert sorted(dispatched) == sorted(events.values_list("id", flat=True))


def test_the_consumer_survives_its_database_connections_dropped(cluster):
    from django.db import connection

    url = cluster.env["CELERY_BROKER_URL"]
    consumer_queue_reset(url)
    bot, token = agent_make("pg-consumer-bot")
    consumer = consumer_start(cluster)  # no worker: the consumer is the only other client of the database
    bodies = stream(150, prefix="p")
    emitter = Emitter(url)
    publisher = threading.Thread(target=_emit_paced, args=(emitter, bot.name, token, bodies), daemon=True)
    publisher.start()
    terminated = 0
    for at_least in (30, 60, 90):
        cluster.wait_for(lambda n=at_least: stored(bot.name) >= n, timeout_s=60, what=f"{at_least} events stored")
        with connection.cursor() as cur:
            cur.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            terminated += cur.fetchone()[0]
    publisher.join(timeout=90)
    assert not publisher.is_alive() and emitter.confirmed == 150
    cluster.wait_for(lambda: stored(bot.name) == 150, timeout_s=60, what="every event stored")

    assert terminated > 0  # the consumer's connection, unless it was between two connections at the time
    assert "online: consumer: database OperationalError" in consumer.text()
    assert consumer.alive()
    events = EvalEvent.objects.filter(agent=bot)
    assert sorted(events.values_list("message_id", flat=True)) == sorted(b["message_id"] for b in bodies)
    dispatched = [i for row in OutboxEvent.objects.filter(topic="online.evaluate") for i in row.payload["args"][0]]
    assert sorted(dispatched) == sorted(events.values_list("id", flat=True))


def _emit_paced(emitter: Emitter, agent_name: str, token: str, bodies: list) -> None:
    with emitter:
        for body in bodies:
            emitter.event(agent_name, token, body)
            time.sleep(0.01)


def test_a_worker_killed_while_evaluating_events_loses_and_duplicates_nothing(cluster):
    bot, _ = agent_make("kill-bot", max_corrections_per_window=10_000)
    bodies = stream(400, prefix="k")
    bodies[250] = leaking(message_id="k-0250-halt")  # halts the agent mid-way: what was accepted is still judged
    _accept(bot, bodies, per_message=10)  # 40 evaluate messages, relayed by beat
    stale = {"VIGILO_ONLINE_STALE_SECONDS": "10"}  # online.reap dispatches again what is pending for 10 s
    doomed = cluster.worker("doomed", env=stale)
    cluster.beat(env=stale)
    # Polled often, so that the kill lands just after the worker took a message (each takes ~100 ms to judge);
    # the log is read after the count, so that a message it shows in hand was not finished when counted.
    cluster.wait_for(
        lambda: settled(bot.name) >= 40 and _just_received(doomed.text()),
        timeout_s=90,
        what="evaluation under way",
        every_s=0.01,
    )

    doomed.signal_group(signal.SIGKILL)  # the main process and its pool child, no chance to ack or clean up
    doomed.popen.wait(timeout=10)
    at_kill = settled(bot.name)
    in_flight = _in_flight(doomed.text())
    assert 0 < at_kill < 400
    assert in_flight
    survivor = cluster.worker("survivor", env=stale)
    wait_settled(cluster, bot.name, 400, timeout_s=150)

    assert_exactly_once(bot.name, bodies)
    _assert_halted_once(bot.name, "k-0250-halt")
    assert CorrectionSignal.objects.filter(agent=bot, dropped=True).count() == 0
    # The message the dead worker held unacked was delivered again, to the survivor (acks_late).
    cluster.wait_for(
        lambda: in_flight <= {t for t, what in TASK.findall(survivor.text()) if what == "received"},
        timeout_s=30,
        what=f"the survivor to receive {in_flight}",
    )


def test_evaluate_messages_lost_on_the_broker_are_dispatched_again_by_the_reaper(cluster):
    bot, _ = agent_make("lost-bot", max_corrections_per_window=10_000)
    bodies = stream(30, prefix="l")
    _accept(bot, bodies, per_message=10)
    url = cluster.env["CELERY_BROKER_URL"]
    assert relay_once(transport=CeleryTransport(broker_url=url)) >= 3
    with Connection(url, connect_timeout=5) as conn:  # the three messages lost, as if the broker lost them
        online = Queue("online", Exchange("online", type="direct", durable=True), routing_key="online", durable=True)
        assert online(conn.channel()).purge() == 3
    stale = {"VIGILO_ONLINE_STALE_SECONDS": "5"}
    cluster.worker("w1", env=stale)
    cluster.beat(env=stale)
    wait_settled(cluster, bot.name, 30, timeout_s=60)

    assert_exactly_once(bot.name, bodies)
    rounds = {row.dedupe_key.rsplit(":", 1)[1] for row in OutboxEvent.objects.filter(topic="online.evaluate")}
    assert "0" in rounds and len(rounds) > 1  # the first dispatch, and the reaper's


def test_the_rate_limit_holds_across_two_worker_processes(cluster):
    bot, _ = agent_make("limited-bot", max_corrections_per_window=10, window_seconds=60)
    w1, w2 = cluster.worker("w1"), cluster.worker("w2")
    _accept(bot, [unreferenced(message_id=f"n-{i:02d}") for i in range(50)], per_message=5)

    # Relayed from here, so that both workers are idle when the 10 messages arrive, and both take some.
    relay_once(transport=CeleryTransport(broker_url=cluster.env["CELERY_BROKER_URL"]))
    assert not OutboxEvent.objects.filter(topic="online.evaluate").exclude(status="published").exists()
    wait_settled(cluster, bot.name, 50, timeout_s=90)

    corrections = CorrectionSignal.objects.filter(agent=bot)
    assert corrections.count() == 50
    assert corrections.filter(dropped=False).count() == 10
    assert corrections.filter(dropped=True).count() == 40
    assert set(corrections.values_list("severity", flat=True)) == {"nudge"}
    dropped = "online: nudge correction for agent limited-bot dropped: rate limit of 10 per 60 s"
    cluster.wait_for(
        lambda: (w1.text() + w2.text()).count(dropped) == 40, timeout_s=15, what="40 drops logged by the workers"
    )
    for worker in (w1, w2):  # both processes evaluated and settled some of the agent's events
        settled_here = [t for t, what in TASK.findall(worker.text()) if what == "succeeded"]
        assert settled_here, worker.text()
    assert (w1.text() + w2.text()).count(dropped) == 40
