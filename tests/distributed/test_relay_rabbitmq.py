"""The relay against a real RabbitMQ: confirmed publishes, message ids, and bounded failure when it is away."""

from __future__ import annotations

import select
import socket
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import pytest
from kombu import Connection, Exchange, Queue

from outbox.models import OutboxEvent
from outbox.relay import relay_once
from outbox.services import Message, outbox_write
from outbox.transport.rabbitmq import EVENTS_EXCHANGE, CeleryTransport
from tests.support.distributed import rabbitmqctl

pytestmark = [pytest.mark.distributed, pytest.mark.django_db(transaction=True)]


def _bind_queue(url: str, name: str, exchange: Exchange, routing_key: str) -> Queue:
    """A queue of the test's own bound to `exchange`, declared and emptied."""
    queue = Queue(name, exchange, routing_key=routing_key, auto_delete=False)
    with Connection(url) as conn:
        queue(conn.channel()).declare()
        queue(conn.channel()).purge()
    return queue


def _bind_events_queue(url: str) -> Queue:
    return _bind_queue(url, "test-events", Exchange(EVENTS_EXCHANGE, type="topic", durable=True), "#")


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


def _queue_depth(url: str, name: str) -> int:
    with Connection(url) as conn:
        channel = conn.channel()
        try:
            return channel.queue_declare(name, passive=True).message_count
        finally:
            channel.close()


def _comparable(message) -> tuple:
    """A task message without what differs between two sends of the same call (the id and what echoes it)."""
    headers = {k: v for k, v in message.headers.items() if k not in ("id", "root_id")}
    properties = {
        k: v
        for k, v in message.properties.items()
        if k not in ("correlation_id", "delivery_tag", "application_headers")
    }
    return headers, properties, message.delivery_info["exchange"], message.delivery_info["routing_key"], message.body


@pytest.fixture
def sent_events(request):
    """Celery's `task_send_sent_event` (Flower's task-sent events) set to the test's parameter, then restored."""
    from vigilo_project.celery import app

    before = app.conf.task_send_sent_event
    app.conf.task_send_sent_event = request.param
    yield request.param
    app.conf.task_send_sent_event = before


@pytest.mark.parametrize("sent_events", [False, True], ids=["plain", "with-task-sent-events"], indirect=True)
def test_a_batch_of_task_messages_is_published_pipelined_and_every_message_is_queued(
    clean_broker, monkeypatch, sent_events
):
    import amqp.channel

    from outbox.transport.publisher import Publisher as _Publisher
    from runs.tasks import process_chunk
    from vigilo_project.celery import app

    def per_message_confirm(*args, **kwargs):
        raise AssertionError("the relay must not wait for each message's confirm")

    monkeypatch.setattr(amqp.channel.Channel, "basic_publish_confirm", per_message_confirm)
    direct = []
    send_direct = _Publisher._send_direct
    monkeypatch.setattr(_Publisher, "_send_direct", lambda self, *a: direct.append(1) or send_direct(self, *a))
    n, task = 300, "runs.process_chunk"
    outbox_write(
        messages=[
            Message(topic="chunk.ready", dedupe_key=f"chunk.ready:{i}:0", payload={"task": task, "args": [i]})
            for i in range(n)
        ]
    )
    task_sent = _bind_queue(clean_broker, "test-task-sent", Exchange("celeryev", type="topic"), "task.sent")

    with CeleryTransport(broker_url=clean_broker) as transport:
        published = relay_once(transport=transport)

    assert published == n
    assert set(OutboxEvent.objects.values_list("status", "attempts", "claim_token")) == {("published", 0, None)}
    assert _queue_depth(clean_broker, "executions") == n
    executions = Queue("executions", Exchange("executions", type="direct", durable=True), routing_key="executions")
    messages = _drain(clean_broker, executions, n)
    assert len(messages) == n
    by_id = {m.headers["id"]: m for m in messages}
    assert set(by_id) == {f"chunk.ready:{i}:0" for i in range(n)}
    for i in range(n):
        m = by_id[f"chunk.ready:{i}:0"]
        assert m.headers["task"] == "runs.process_chunk"
        assert m.properties["correlation_id"] == m.headers["id"]
        assert m.properties["delivery_mode"] == 2
        assert m.decode() == [[i], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    # The first message declares the route through Celery's send_task_message; without a task-sent event to send,
    # the others take the direct path, with one, all go through Celery.
    assert len(direct) == (0 if sent_events else n - 1)
    if sent_events:  # one per task message
        events = {e["uuid"]: e for e in (m.decode() for m in _drain(clean_broker, task_sent, n))}
        assert set(events) == set(by_id)
    else:
        assert _queue_depth(clean_broker, "test-task-sent") == 0

    # Byte for byte what Celery's own apply_async sends for the same call, apart from the task id, and the same
    # task-sent event apart from the id, the clock and the time.
    monkeypatch.undo()
    with app.connection_for_write(clean_broker) as conn:
        process_chunk.apply_async(args=[7], task_id="reference", connection=conn, retry=False)
    [reference] = _drain(clean_broker, executions, 1)
    assert reference.headers["id"] == "reference"
    assert _comparable(by_id["chunk.ready:7:0"]) == _comparable(reference)
    if sent_events:
        [reference_event] = [m.decode() for m in _drain(clean_broker, task_sent, 1)]
        varying = {"uuid", "root_id", "clock", "timestamp"}
        relayed = {k: v for k, v in events["chunk.ready:7:0"].items() if k not in varying}
        assert relayed == {k: v for k, v in reference_event.items() if k not in varying}
        assert relayed["queue"] == relayed["routing_key"] == "executions" and relayed["exchange"] == ""


@pytest.mark.parametrize("sent_events", [False], indirect=True)
def test_publish_signal_receivers_see_every_task_message(clean_broker, sent_events):
    """A receiver of Celery's publish signals (e.g. tracing instrumentation) turns the direct path off."""
    from celery import signals

    seen: list[tuple[str, str]] = []

    def before(sender=None, headers=None, **kwargs):
        seen.append(("before", headers["id"]))

    def after(sender=None, headers=None, **kwargs):
        seen.append(("after", headers["id"]))

    outbox_write(
        messages=[
            Message(topic="chunk.ready", dedupe_key=f"sig:{i}", payload={"task": "runs.process_chunk", "args": [i]})
            for i in range(5)
        ]
    )
    signals.before_task_publish.connect(before)
    signals.after_task_publish.connect(after)
    try:
        with CeleryTransport(broker_url=clean_broker) as transport:
            assert relay_once(transport=transport) == 5
    finally:
        signals.before_task_publish.disconnect(before)
        signals.after_task_publish.disconnect(after)

    assert seen == [(when, f"sig:{i}") for i in range(5) for when in ("before", "after")]
    executions = Queue("executions", Exchange("executions", type="direct", durable=True), routing_key="executions")
    assert sorted(m.headers["id"] for m in _drain(clean_broker, executions, 5)) == [f"sig:{i}" for i in range(5)]


def test_messages_the_broker_nacks_are_refused_alone(clean_broker):
    """A queue that rejects publishes past its length makes RabbitMQ nack them (real basic.nack frames)."""
    capped = Queue(
        "test-capped",
        Exchange(EVENTS_EXCHANGE, type="topic", durable=True),
        routing_key="capped.#",
        durable=True,
        queue_arguments={"x-max-length": 2, "x-overflow": "reject-publish"},
    )
    with Connection(clean_broker) as conn:
        capped(conn.channel()).declare()
    try:
        outbox_write(
            messages=[Message(topic="capped.x", dedupe_key=f"c{i}", payload={"i": i}) for i in range(5)]
            + [Message(topic="run.started", dedupe_key="free", payload={"run_id": "r"})]
        )

        with CeleryTransport(broker_url=clean_broker) as transport:
            published = relay_once(transport=transport)

        rows = {r.dedupe_key: r for r in OutboxEvent.objects.all()}
        assert published == 3
        assert [(rows[k].status, rows[k].attempts) for k in ("c0", "c1", "free")] == [("published", 0)] * 3
        for k in ("c2", "c3", "c4"):
            assert (rows[k].status, rows[k].attempts, rows[k].claim_token) == ("pending", 1, None)
            assert "nack" in rows[k].last_error
        assert _queue_depth(clean_broker, "test-capped") == 2
    finally:
        with Connection(clean_broker) as conn:
            conn.channel().queue_delete("test-capped")


def test_a_channel_error_refuses_the_message_that_caused_it_and_gives_back_the_rest(clean_broker):
    """The broker closes the channel when a route's queue cannot be declared as Celery declares it."""
    with Connection(clean_broker) as conn:
        channel = conn.channel()
        channel.queue_delete("executions")
        channel.queue_declare("executions", durable=False, auto_delete=False)  # inequivalent: Celery's is durable
    try:
        outbox_write(
            messages=[
                Message(topic="run.started", dedupe_key="before", payload={"run_id": "r"}),
                Message(topic="chunk.ready", dedupe_key="culprit", payload={"task": "runs.process_chunk", "args": [1]}),
                Message(topic="run.started", dedupe_key="after", payload={"run_id": "r"}),
            ]
        )

        relay_once(transport=CeleryTransport(broker_url=clean_broker))

        rows = {r.dedupe_key: r for r in OutboxEvent.objects.all()}
        culprit, after, before = rows["culprit"], rows["after"], rows["before"]
        assert (culprit.status, culprit.attempts, culprit.claim_token) == ("pending", 1, None)
        assert "PreconditionFailed" in culprit.last_error
        assert (after.status, after.attempts, after.claim_token) == ("pending", 0, None)
        assert after.last_error.startswith("broker unavailable: channel closed by the broker")
        # Sent before the channel closed: confirmed, or (confirm lost with the channel) given back uncounted.
        assert (before.status, before.attempts, before.claim_token) in {("published", 0, None), ("pending", 0, None)}
    finally:
        with Connection(clean_broker) as conn:
            conn.channel().queue_delete("executions")  # clean_broker declares it durable again


def _broker_connection_pid(port: int) -> str | None:
    """The broker's pid for the AMQP connection from this client port (None once it is closed)."""
    for line in rabbitmqctl("list_connections", "peer_port", "pid").stdout.splitlines():
        peer_port, _, pid = line.partition("\t")
        if peer_port == str(port):
            return pid
    return None


def test_the_connection_is_kept_between_batches_and_replaced_once_the_broker_dropped_it(clean_broker):
    events_queue = _bind_events_queue(clean_broker)

    def write(prefix: str) -> None:
        outbox_write(messages=[Message(topic="run.started", dedupe_key=f"{prefix}{i}", payload={}) for i in range(3)])

    with CeleryTransport(broker_url=clean_broker) as transport:
        write("a")
        assert relay_once(transport=transport) == 3
        first = transport._session
        write("b")
        assert relay_once(transport=transport) == 3
        assert transport._session is first  # no new connection, channel or declarations for the second batch
        sock = first.amqp_conn.transport.sock
        pid = _broker_connection_pid(sock.getsockname()[1])
        assert pid
        rabbitmqctl("close_connection", pid, "test: the broker drops the relay's connection")
        readable, _, _ = select.select([sock], [], [], 10)  # the broker's close arrived
        assert readable
        write("c")
        assert relay_once(transport=transport) == 3  # noticed before publishing: nothing given back
        assert transport._session is not first
        port = transport._session.amqp_conn.transport.sock.getsockname()[1]
        assert _broker_connection_pid(port)
    deadline = time.monotonic() + 10
    while _broker_connection_pid(port) and time.monotonic() < deadline:  # closed with the transport
        time.sleep(0.2)
    assert _broker_connection_pid(port) is None
    assert set(OutboxEvent.objects.values_list("status", "attempts")) == {("published", 0)}
    assert sorted(m.properties["message_id"] for m in _drain(clean_broker, events_queue, 9)) == sorted(
        f"{p}{i}" for p in "abc" for i in range(3)
    )


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


class _FreezingProxy:
    """A TCP proxy to the broker that, once frozen, swallows everything the broker sends: a broker that stops
    answering while the connection stays up. `freeze_after` freezes it by itself once the client has sent that
    many bytes (so, mid-batch)."""

    def __init__(self, url: str, *, freeze_after: int | None = None) -> None:
        parts = urlsplit(url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 5672)
        self.freeze_after = freeze_after
        self.sent = 0
        self.frozen = threading.Event()
        self.stopping = threading.Event()
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.server.settimeout(0.2)
        self.sockets: list[socket.socket] = [self.server]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()
        self.url = urlunsplit(
            (
                parts.scheme,
                f"{parts.username}:{parts.password}@127.0.0.1:{self.server.getsockname()[1]}",
                parts.path,
                "",
                "",
            )
        )

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                continue
            upstream = socket.create_connection(self.upstream)
            self.sockets += [client, upstream]
            for src, dst, from_client in ((client, upstream, True), (upstream, client, False)):
                t = threading.Thread(target=self._pump, args=(src, dst, from_client), daemon=True)
                self.threads.append(t)
                t.start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        src.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                data = src.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            if from_client:
                self.sent += len(data)
                if self.freeze_after is not None and self.sent >= self.freeze_after:
                    self.frozen.set()
            elif self.frozen.is_set():
                continue
            try:
                dst.sendall(data)
            except OSError:
                break
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=5)
        for sock in self.sockets:
            sock.close()


def test_a_broker_that_stops_answering_mid_batch_gets_the_unconfirmed_rows_back_uncounted(clean_broker):
    n = 300
    outbox_write(
        messages=[
            Message(topic="chunk.ready", dedupe_key=f"k{i}", payload={"task": "runs.process_chunk", "args": [i]})
            for i in range(n)
        ]
    )
    proxy = _FreezingProxy(clean_broker, freeze_after=50_000)  # past the handshake and declarations
    try:
        started = time.monotonic()
        published = relay_once(transport=CeleryTransport(broker_url=proxy.url, timeout_s=1.0))
        elapsed = time.monotonic() - started
    finally:
        proxy.close()

    assert proxy.frozen.is_set()
    assert elapsed < 6, elapsed
    rows = list(OutboxEvent.objects.all())
    given_back = [r for r in rows if r.status == "pending"]
    assert published == n - len(given_back)
    assert given_back, "the broker stopped answering before confirming the whole batch"
    assert {(r.attempts, r.claim_token) for r in given_back} == {(0, None)}
    [error] = {r.last_error for r in given_back}
    assert error.startswith(f"broker unavailable: no confirm within 1s for {len(given_back)} event(s)")
    assert {(r.status, r.attempts) for r in rows if r not in given_back} <= {("published", 0)}


def test_every_wait_of_a_session_is_bounded_when_the_broker_stops_answering_after_the_handshake(clean_broker):
    outbox_write(messages=[Message(topic="run.started", dedupe_key="k", payload={"run_id": "r"})])
    proxy = _FreezingProxy(clean_broker)
    try:
        with CeleryTransport(broker_url=proxy.url, timeout_s=1.0).batch() as session:
            proxy.frozen.set()  # opening the confirm channel now waits for a reply that never comes
            started = time.monotonic()
            report = session.publish(list(OutboxEvent.objects.all()))
            elapsed = time.monotonic() - started
    finally:
        proxy.close()

    assert elapsed < 4, elapsed
    assert (report.confirmed, report.refused) == ([], {})
    assert report.unavailable and "timed out" in report.unavailable


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
