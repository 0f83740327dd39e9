"""The AMQP path's test helpers (tests/distributed/test_online_*.py): the consumer as a real process, an emitter
that publishes events to `vigilo.online` with publisher confirms (and publishes again, under the same message
id, what a dropped connection left unconfirmed), queues bound to `vigilo.corrections`, event streams with known
outcomes, and the exactly-once checks on an agent's events. Every wait is bounded (Cluster.wait_for)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import amqp.exceptions
import kombu.exceptions
from kombu import Connection, Exchange, Producer, Queue

from tests.support.distributed import Cluster, Proc
from tests.support.online import event, leaking, off_topic, unreferenced

EVENTS = Exchange("vigilo.online", type="topic", durable=True)
CORRECTIONS = Exchange("vigilo.corrections", type="topic", durable=True)
CONSUMER_QUEUE = Queue("vigilo.online.events", EVENTS, routing_key="#", durable=True)
READY = "online_consume: ready"

# What each kind of event is judged with under the live profile (tests/support/online.py): how many bindings
# judge it, and the correction it gets.
KINDS: dict[str, tuple[int, str | None]] = {"pass": (2, None), "nudge": (2, "nudge"), "redirect": (1, "redirect")}
KINDS["halt"] = (2, "halt")  # a card number, with a policy reference: only the halt fails
_MAKERS = {"pass": event, "nudge": unreferenced, "redirect": off_topic, "halt": leaking}

_PUBLISH_ERRORS = (
    OSError,
    amqp.exceptions.ConnectionError,
    amqp.exceptions.ChannelError,
    amqp.exceptions.MessageNacked,
    kombu.exceptions.OperationalError,
)


def consumer_start(cluster: Cluster, *, name: str = "consumer", env: dict[str, str] | None = None) -> Proc:
    """`manage.py online_consume` as a process of the cluster, once it logged that it consumes."""
    argv = [sys.executable, "manage.py", "online_consume"]
    proc = Proc(name, argv, {**cluster.env, **(env or {})}, cluster.workdir / f"{name}.log")
    cluster.procs.append(proc)
    cluster.wait_for(lambda: READY in proc.text(), timeout_s=60, what=f"{name} ready")
    return proc


def consumer_queue_reset(url: str) -> None:
    """The consumer's queue declared (as it declares it) and emptied: no message of an earlier test is left."""
    with Connection(url, connect_timeout=5) as conn:
        channel = conn.channel()
        CONSUMER_QUEUE(channel).declare()
        CONSUMER_QUEUE(channel).purge()


def queue_ready(url: str, queue: Queue) -> int:
    """The messages waiting in `queue` (not counting those delivered and not yet acked)."""
    with Connection(url, connect_timeout=5) as conn:
        _, ready, _ = conn.channel().queue_declare(queue=queue.name, passive=True)
        return int(ready)


def corrections_queue(url: str, name: str, agent_name: str) -> Queue:
    """A durable queue of the test's bound to `vigilo.corrections` with the agent's name, declared and emptied."""
    queue = Queue(name, CORRECTIONS, routing_key=agent_name, durable=True)
    with Connection(url, connect_timeout=5) as conn:
        channel = conn.channel()
        queue(channel).declare()
        queue(channel).purge()
    return queue


def drain(url: str, queue: Queue, *, expected: int, timeout_s: float = 30, linger_s: float = 1.0) -> list[Any]:
    """Every message of `queue` (acked): until `expected` arrived, then whatever follows within `linger_s`."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout_s
    with Connection(url, connect_timeout=5) as conn:
        simple = conn.SimpleQueue(queue)
        try:
            while True:
                if len(got) >= expected:
                    wait = linger_s
                elif time.monotonic() < deadline:
                    wait = 0.5
                else:
                    break
                try:
                    message = simple.get(timeout=wait)
                except simple.Empty:
                    if len(got) >= expected:
                        break
                    continue
                got.append(message)
                message.ack()
        finally:
            simple.close()
    return got


class Emitter:
    """Publishes events to `vigilo.online` as an emitter should: persistent, each confirmed by the broker before
    the next. A publish the broker did not confirm (the connection dropped, the broker is restarting) is sent
    again, with the same message id, on a new connection: the consumer's dedupe makes a resend harmless."""

    def __init__(self, url: str, *, give_up_s: float = 120) -> None:
        self.url = url
        self.give_up_s = give_up_s
        self.confirmed = 0  # publishes the broker confirmed
        self.resent = 0  # publishes sent again after a failure
        self._conn: Any = None
        self._producer: Any = None

    def __enter__(self) -> Emitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        conn, self._conn, self._producer = self._conn, None, None
        if conn is not None:
            try:
                conn.release()
            except _PUBLISH_ERRORS:
                pass

    def _connected(self) -> Any:
        if self._producer is None:
            conn = Connection(self.url, connect_timeout=2, transport_options={"confirm_publish": True})
            try:
                conn.ensure_connection(max_retries=0)
                channel = conn.channel()
                EVENTS(channel).declare()
            except BaseException:
                conn.release()
                raise
            self._conn, self._producer = conn, Producer(channel, exchange=EVENTS)
        return self._producer

    def event(self, agent_name: str, token: str | None, body: dict[str, Any]) -> None:
        """One event as the docs say: JSON body, routing key = agent, `authorization: Bearer <token>`."""
        headers = {"authorization": f"Bearer {token}"} if token is not None else {}
        self.publish(agent_name, json.dumps(body).encode(), headers=headers, message_id=body.get("message_id"))

    def publish(self, routing_key: str, raw: bytes, *, headers: dict[str, Any], message_id: Any = None) -> None:
        give_up = time.monotonic() + self.give_up_s
        while True:
            try:
                self._connected().publish(
                    raw,
                    routing_key=routing_key,
                    headers=headers,
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=2,
                    message_id=message_id,
                    retry=False,
                    timeout=5,
                    confirm_timeout=5,
                )
                self.confirmed += 1
                return
            except _PUBLISH_ERRORS:
                self.close()
                if time.monotonic() > give_up:
                    raise
                self.resent += 1
                time.sleep(0.5)


# --- streams of events and what must become of them ---------------------------------------------------------


def stream(n: int, *, prefix: str, kinds: tuple[str, ...] = ("pass", "nudge", "redirect")) -> list[dict[str, Any]]:
    """`n` events cycling through `kinds`, each with a unique message id that names its kind."""
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        out.append(_MAKERS[kind](message_id=f"{prefix}-{i:04d}-{kind}"))
    return out


def kind_of(message_id: str) -> str:
    return message_id.rsplit("-", 1)[1]


def stored(agent_name: str) -> int:
    from online.models import EvalEvent

    return EvalEvent.objects.filter(agent__name=agent_name).count()


def settled(agent_name: str) -> int:
    """The agent's events that are stored and no longer pending."""
    from online.models import EvalEvent

    return EvalEvent.objects.filter(agent__name=agent_name).exclude(status=EvalEvent.Status.PENDING).count()


def wait_settled(cluster: Cluster, agent_name: str, n: int, *, timeout_s: float) -> None:
    cluster.wait_for(lambda: settled(agent_name) >= n, timeout_s=timeout_s, what=f"{n} events of {agent_name} settled")


def assert_exactly_once(agent_name: str, bodies: list[dict[str, Any]]) -> None:
    """Each event stored once and evaluated, each binding's result once, the expected correction once per event."""
    from django.db.models import Count

    from online.models import CorrectionSignal, EvalEvent, OnlineResult

    ids = [b["message_id"] for b in bodies]
    events = EvalEvent.objects.filter(agent__name=agent_name)
    assert sorted(events.values_list("message_id", flat=True)) == sorted(ids)
    assert set(events.values_list("status", flat=True)) == {EvalEvent.Status.EVALUATED}
    results = dict(
        events.annotate(n=Count("results")).values_list("message_id", "n")
    )  # one row per (event, binding): the constraint forbids a second
    assert results == {m: KINDS[kind_of(m)][0] for m in ids}
    assert OnlineResult.objects.filter(event__agent__name=agent_name).count() == sum(results.values())
    corrections = dict(
        CorrectionSignal.objects.filter(agent__name=agent_name).values_list("event__message_id", "severity")
    )
    assert corrections == {m: KINDS[kind_of(m)][1] for m in ids if KINDS[kind_of(m)][1] is not None}


def delivered_bodies(agent_name: str) -> dict[str, dict[str, Any]]:
    """The agent's delivered corrections as every path shows them, by delivery id."""
    from online.messages import correction_body
    from online.models import CorrectionSignal

    rows = CorrectionSignal.objects.filter(agent__name=agent_name, dropped=False).select_related("agent", "event")
    return {str(c.delivery_id): correction_body(c, agent=c.agent, event=c.event) for c in rows}


def relayed(topic: str) -> bool:
    """Every outbox row of this topic published."""
    from outbox.models import OutboxEvent

    rows = OutboxEvent.objects.filter(topic=topic)
    return rows.exists() and not rows.exclude(status=OutboxEvent.Status.PUBLISHED).exists()
