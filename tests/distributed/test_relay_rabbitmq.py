"""The relay against a real RabbitMQ: confirmed publishes, message ids, and bounded failure when it is away."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from kombu import Connection, Exchange, Queue

from outbox.models import OutboxEvent
from outbox.relay import relay_once
from outbox.services import Message, outbox_write
from outbox.transport import EVENTS_EXCHANGE, CeleryTransport

pytestmark = [pytest.mark.distributed, pytest.mark.django_db(transaction=True)]


def _bind_events_queue(url: str) -> Queue:
    queue = Queue(
        "test-events", Exchange(EVENTS_EXCHANGE, type="topic", durable=True), routing_key="#", auto_delete=False
    )
    with Connection(url) as conn:
        queue(conn.channel()).declare()
        queue(conn.channel()).purge()
    return queue


def _drain(url: str, queue: Queue, expected: int, timeout_s: float = 10) -> list:
    got = []
    deadline = time.monotonic() + timeout_s
    with Connection(url) as conn:
        simple = conn.SimpleQueue(queue)
        while len(got) < expected and time.monotonic() < deadline:
            try:
                message = simple.get(timeout=0.5)
            except simple.Empty:
                continue
            got.append(message)
            message.ack()
        simple.close()
    return got


def test_relay_publishes_task_messages_and_events_with_confirms(clean_broker):
    events_queue = _bind_events_queue(clean_broker)
    outbox_write(
        messages=[
            Message(
                topic="chunk.ready", dedupe_key="chunk.ready:41:0", payload={"task": "runs.process_chunk", "args": [41]}
            ),
            Message(topic="run.completed", dedupe_key="run.completed:r1", payload={"run_id": "r1", "gate": "pass"}),
        ]
    )

    published = relay_once(transport=CeleryTransport(broker_url=clean_broker))

    assert published == 2
    assert list(OutboxEvent.objects.values_list("status", "attempts", "claim_token")) == [
        ("published", 0, None),
        ("published", 0, None),
    ]
    executions = Queue("executions", Exchange("executions", type="direct", durable=True), routing_key="executions")
    [task_message] = _drain(clean_broker, executions, 1)
    assert task_message.headers["task"] == "runs.process_chunk"
    assert task_message.headers["id"] == "chunk.ready:41:0"
    assert task_message.properties["delivery_mode"] == 2
    assert task_message.decode()[0] == [41]
    [event] = _drain(clean_broker, events_queue, 1)
    assert event.properties["message_id"] == "run.completed:r1"
    assert event.delivery_info["routing_key"] == "run.completed"
    assert event.properties["delivery_mode"] == 2
    assert event.decode() == {"run_id": "r1", "gate": "pass"}


def test_a_refused_message_is_rescheduled_alone(clean_broker):
    outbox_write(
        messages=[
            Message(topic="x", dedupe_key="bad", payload={"task": "nowhere.task", "args": []}),
            Message(topic="run.started", dedupe_key="good", payload={"run_id": "r2"}),
        ]
    )

    published = relay_once(transport=CeleryTransport(broker_url=clean_broker))

    assert published == 1
    bad, good = OutboxEvent.objects.order_by("id")
    assert (bad.status, bad.attempts, bad.claim_token) == ("pending", 1, None)
    assert "ModuleNotFoundError" in bad.last_error
    assert good.status == "published"


def test_broker_refusing_connections_gives_the_batch_back_fast_without_counting_attempts(db):
    outbox_write(messages=[Message(topic="run.started", dedupe_key=f"k{i}", payload={}) for i in range(3)])
    port = _free_port()
    started = time.monotonic()

    published = relay_once(transport=CeleryTransport(broker_url=f"amqp://guest:guest@127.0.0.1:{port}//"))

    assert published == 0
    assert time.monotonic() - started < 5
    rows = list(OutboxEvent.objects.order_by("id"))
    assert [(r.status, r.attempts, r.claim_token) for r in rows] == [("pending", 0, None)] * 3
    assert all("broker unavailable" in r.last_error for r in rows)


def test_a_broker_that_never_answers_is_bounded_by_the_publish_timeout(db):
    """A listener that accepts TCP and says nothing (a hung broker): the relay gives up after its timeout."""
    outbox_write(messages=[Message(topic="run.started", dedupe_key="k", payload={})])
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        url = f"amqp://guest:guest@127.0.0.1:{server.getsockname()[1]}//"
        published = relay_once(transport=CeleryTransport(broker_url=url, timeout_s=1.0))
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join()
        for s in accepted:
            s.close()
        server.close()

    assert published == 0
    assert elapsed < 8, elapsed
    row = OutboxEvent.objects.get()
    assert (row.status, row.attempts, row.claim_token) == ("pending", 0, None)
    assert "broker unavailable" in row.last_error


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
