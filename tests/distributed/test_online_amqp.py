"""The AMQP path of live evaluation against real RabbitMQ, PostgreSQL, Celery workers and `manage.py
online_consume`: events published to `vigilo.online` are stored once, evaluated, and their corrections published
to `vigilo.corrections` by agent; what cannot be an event is dropped, acked and logged; SIGTERM stops cleanly."""

from __future__ import annotations

import json
import signal

import pytest

from online.ingest import event_parse
from online.models import AgentAudit, EvalEvent, MonitoredAgent
from online.services import event_submit_sync
from tests.support.online import agent_make, event, leaking
from tests.support.online_amqp import (
    CONSUMER_QUEUE,
    Emitter,
    assert_exactly_once,
    consumer_queue_reset,
    consumer_start,
    corrections_queue,
    delivered_bodies,
    drain,
    queue_ready,
    relayed,
    settled,
    stream,
    wait_settled,
)

pytestmark = [pytest.mark.distributed, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def url(cluster) -> str:
    """The session vhost, with the consumer's queue emptied."""
    broker = cluster.env["CELERY_BROKER_URL"]
    consumer_queue_reset(broker)
    return broker


def test_events_over_amqp_are_stored_once_evaluated_and_corrected_on_the_corrections_exchange(cluster, url):
    bot, bot_token = agent_make("amqp-bot", delivery="amqp", max_corrections_per_window=1000)
    other, other_token = agent_make("amqp-other", delivery="amqp", max_corrections_per_window=1000)
    bots_queue = corrections_queue(url, "test-corrections-amqp-bot", bot.name)
    others_queue = corrections_queue(url, "test-corrections-amqp-other", other.name)
    cluster.worker("w1")
    cluster.beat()
    consumer = consumer_start(cluster)
    bots, others = stream(60, prefix="bot"), stream(9, prefix="other")

    with Emitter(url) as emit:
        for i, body in enumerate(bots):
            emit.event(bot.name, bot_token, body)
            if i % 7 == 0:  # the other agent's 9 events among the bot's
                emit.event(other.name, other_token, others[i // 7])
    wait_settled(cluster, bot.name, 60, timeout_s=90)
    wait_settled(cluster, other.name, 9, timeout_s=30)

    assert_exactly_once(bot.name, bots)
    assert_exactly_once(other.name, others)
    assert set(EvalEvent.objects.values_list("path", flat=True)) == {EvalEvent.Path.AMQP}

    # A resend under a stored message id changes nothing, even with a payload that would halt the agent.
    with Emitter(url) as emit:
        for body in bots[:10]:
            emit.event(bot.name, bot_token, leaking(message_id=body["message_id"]))
        emit.event(bot.name, bot_token, event(message_id="sentinel-pass"))
    wait_settled(cluster, bot.name, 61, timeout_s=60)  # the queue is FIFO: the resends were consumed before it
    assert_exactly_once(bot.name, [*bots, event(message_id="sentinel-pass")])  # the 60 unchanged, and one more
    assert MonitoredAgent.objects.get(pk=bot.pk).state == MonitoredAgent.State.ACTIVE
    assert not AgentAudit.objects.filter(action=AgentAudit.Action.HALT).exists()
    first = EvalEvent.objects.get(agent=bot, message_id=bots[0]["message_id"])
    assert first.payload == bots[0]["payload"]

    # Each delivered correction is published once to vigilo.corrections, routed by the agent's name.
    cluster.wait_for(lambda: relayed("correction.issued"), timeout_s=30, what="every correction relayed")
    for agent, queue in ((bot, bots_queue), (other, others_queue)):
        expected = delivered_bodies(agent.name)
        assert len(expected) == (40 if agent == bot else 6)
        got = drain(url, queue, expected=len(expected))
        assert sorted(m.decode()["delivery_id"] for m in got) == sorted(expected), cluster.logs()
        for message in got:
            body = message.decode()
            assert body == expected[body["delivery_id"]]
            assert message.delivery_info["exchange"] == "vigilo.corrections"
            assert message.delivery_info["routing_key"] == agent.name
            assert message.properties["message_id"] == f"online-correction:{body['delivery_id']}"
            assert message.properties["delivery_mode"] == 2
            assert message.headers["topic"] == "correction.issued"
    assert "dropped" not in consumer.text()


def test_messages_that_cannot_be_events_are_dropped_acked_and_logged_and_sigterm_stops_cleanly(cluster, url):
    bot, token = agent_make("drop-bot")
    other, other_token = agent_make("drop-other")
    halted, halted_token = agent_make("drop-halted")
    halt = event_submit_sync(agent=halted, event=event_parse(leaking()))
    assert halt.correction is not None and halt.correction["severity"] == "halt"
    # At WARNING, the consumer's log shows only what is logged at WARNING or above (the format has no level).
    consumer = consumer_start(cluster, env={"VIGILO_LOG_LEVEL": "WARNING"})  # no worker: storing is its part
    bearer = {"authorization": f"Bearer {token}"}
    cases = [
        # routing key, headers, body (its message id names it), what the log says
        ("drop-bot", {}, event(message_id="no-token"), "no authorization header"),
        ("drop-bot", {"authorization": "Basic abc"}, event(message_id="basic"), "malformed authorization header"),
        ("drop-bot", {"authorization": "Bearer vgt_not-a-token"}, event(message_id="bad-token"), "invalid, expired"),
        (
            "drop-bot",
            {"authorization": f"Bearer {other_token}"},
            event(message_id="others-token"),
            "the token belongs to another agent than 'drop-bot'",
        ),
        (
            "drop-bot",
            bearer,
            {**event(message_id="as-other"), "agent_name": "drop-other"},
            "event.agent_name: 'drop-other', but the routing key and the token are 'drop-bot'",
        ),
        ("nobody", bearer, event(message_id="no-agent"), "no agent named 'nobody'"),
        ("drop-bot", bearer, b'{"event_type": "llm_output", ', "body: not JSON"),
        ("drop-bot", bearer, event("telepathy", message_id="telepathy"), "event.event_type: unknown event type"),
        ("drop-bot", bearer, {"event_type": "llm_output", "message_id": "no-payload"}, "event.payload: required"),
        (
            "drop-halted",
            {"authorization": f"Bearer {halted_token}"},
            event(message_id="while-halted"),
            "agent 'drop-halted' is halted: card number",
        ),
    ]

    with Emitter(url) as emit:
        for routing_key, headers, body, _ in cases:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            emit.publish(routing_key, raw, headers=headers, message_id=_message_id(body))
        emit.event(bot.name, token, event(message_id="the-valid-one"))
    cluster.wait_for(
        lambda: EvalEvent.objects.filter(message_id="the-valid-one").exists(), timeout_s=30, what="the valid event"
    )

    assert list(EvalEvent.objects.filter(agent__in=[bot, other]).values_list("message_id", flat=True)) == [
        "the-valid-one"
    ]
    assert EvalEvent.objects.filter(agent=halted).count() == 1  # the event that halted it, before the consumer
    cluster.wait_for(
        lambda: consumer.text().count("AMQP event dropped") == len(cases), timeout_s=10, what="every drop logged"
    )
    log = consumer.text()
    for routing_key, _, body, reason in cases:
        line = f"online: AMQP event dropped (routing key {routing_key!r}, message id {_message_id(body)!r}): {reason}"
        assert any(row.startswith(line) for row in log.splitlines()), (line, log)
    for secret in (token, other_token, halted_token):
        assert secret not in log

    consumer.popen.send_signal(signal.SIGTERM)
    cluster.wait_for(lambda: not consumer.alive(), timeout_s=15, what="the consumer to stop")
    assert consumer.popen.returncode == 0, consumer.text()
    assert (
        "online_consume: stopped: 1 events accepted, 0 resends, 10 messages dropped (agent 1, auth 5, event 2, "
        "halted 1, json 1)"
    ) in consumer.text()
    # Nothing was requeued: a stopped consumer's unacked messages would be back in the queue now.
    assert queue_ready(url, CONSUMER_QUEUE) == 0
    assert settled("drop-bot") == 0  # no worker ran: the valid event waits, pending, for one


def _message_id(body: dict | bytes) -> str:
    return body["message_id"] if isinstance(body, dict) else "not-json"


def test_the_sdk_publishes_batches_over_amqp_and_they_are_evaluated_once(cluster, url):
    from tests.support.live_agent import vigilo_live

    bot, token = agent_make("sdk-amqp-bot", max_corrections_per_window=1000)
    cluster.worker("w1")
    cluster.beat()
    consumer_start(cluster)
    bodies = stream(40, prefix="sdk")
    agent = vigilo_live.LiveAgent(
        "http://127.0.0.1:9", token, mode="amqp", amqp_url=url, agent=bot.name, batch_size=15, flush_s=0.05
    )
    try:
        for body in bodies:
            answer = agent.emit_eval(body["event_type"], body["payload"], message_id=body["message_id"])
            assert answer is not None and answer.status == "queued"
        assert agent.flush(30), "the SDK did not publish its queue"
    finally:
        agent.close(timeout_s=10)
    wait_settled(cluster, bot.name, len(bodies), timeout_s=60)
    assert_exactly_once(bot.name, bodies)
    assert set(EvalEvent.objects.filter(agent=bot).values_list("path", flat=True)) == {"amqp"}
