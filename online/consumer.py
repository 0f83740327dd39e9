"""The AMQP path of live evaluation (docs/live-amqp.md): events that high-volume emitters publish to the durable
topic exchange `vigilo.online`, routing key = the agent's name, consumed in batches from the durable queue
`vigilo.online.events` (bound with `#`).

A batch is what arrived within VIGILO_ONLINE_CONSUME_WAIT_S of its first message, at most
VIGILO_ONLINE_CONSUME_BATCH (also the channel's prefetch). Each agent's events are stored by `events_accept`
in one transaction, and the batch's messages are acked only after those commits: a crash, a lost connection or
a broker restart before the ack makes RabbitMQ redeliver them, and the (agent, message_id) key makes the
redelivery change nothing. Exactly once in effect, at least once on the wire.

A message that can never become an event (no token, a wrong one, another agent's, not JSON, an invalid event,
an unknown or halted agent) is acked and dropped, counted and logged at WARNING with its routing key, message
id and reason (never its token): requeued, it would fail the same way forever.

Tokens belong to the api layer, which online does not import: whoever runs the consumer passes
`authenticate(secret) -> agent id or None` (`api/management/commands/online_consume.py`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import amqp.exceptions
import kombu.exceptions
from django.db import InterfaceError, OperationalError
from django.db import connection as db
from kombu import Connection, Consumer, Exchange, Queue

from online.errors import AgentHalted, EventInvalid
from online.ingest import EventIn, body_decode, event_parse
from online.messages import EVENTS_EXCHANGE
from online.models import EvalEvent, MonitoredAgent
from online.services import events_accept

log = logging.getLogger(__name__)

QUEUE = "vigilo.online.events"
Authenticate = Callable[[str], int | None]  # a token's secret -> the id of the agent it belongs to, or None

SECRET_MAX = 200  # as the HTTP path's bearer authentication
IDLE_WAIT_S = 1.0  # the longest a drain waits while nothing is gathered: how soon a stop is noticed
HEARTBEAT_S = 60
CONNECT_TIMEOUT_S = 4.0
BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 15.0
REASON_MAX = 500

# A broker that went away or closed the channel for a passing reason: reconnect. (kombu reraises a refused
# connection as its OperationalError; a channel closed for good, e.g. the queue declared with other arguments,
# ends the run: reconnecting would not change it.)
_BROKER_ERRORS: tuple[type[BaseException], ...] = (
    amqp.exceptions.ConnectionError,
    amqp.exceptions.RecoverableChannelError,
    kombu.exceptions.OperationalError,
    OSError,
)
# A database that went away: the batch is not acked (RabbitMQ redelivers it), reconnect after a backoff.
_DB_ERRORS = (OperationalError, InterfaceError)


@dataclass
class ConsumeCounts:
    """What the consumer did since it started: events stored, resends recognised, messages dropped by reason."""

    accepted: int = 0
    duplicates: int = 0
    dropped: Counter[str] = field(default_factory=Counter)


class _Dropped(Exception):
    """A message that cannot become an event: `kind` counts it, `reason` is logged."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind, self.reason = kind, reason


@dataclass
class _Batch:
    """One batch's lookups (a token or an agent is looked up once per batch) and its events per agent."""

    agent_of_secret: dict[str, int | None] = field(default_factory=dict)
    agents: dict[str, MonitoredAgent | None] = field(default_factory=dict)
    groups: dict[int, tuple[MonitoredAgent, list[tuple[Any, EventIn]]]] = field(default_factory=dict)
    seen: set[tuple[int, str]] = field(default_factory=set)


class EventConsumer:
    """Consumes `vigilo.online.events` until `stop()`; reconnects after a lost connection with bounded backoff.

    `stop()` may be called from a signal handler: the batch being gathered is stored and acked, then the
    consumer is cancelled and the connection closed (messages delivered meanwhile are redelivered to the next
    consumer).
    """

    def __init__(
        self,
        *,
        broker_url: str,
        authenticate: Authenticate,
        batch_size: int,
        wait_s: float,
        heartbeat_s: float = HEARTBEAT_S,
        on_ready: Callable[[], object] | None = None,
    ) -> None:
        self.broker_url = broker_url
        self.authenticate = authenticate
        self.batch_size = batch_size
        self.wait_s = wait_s
        self.heartbeat_s = heartbeat_s
        self.on_ready = on_ready  # called each time consuming starts (again, after a reconnection)
        self.counts = ConsumeCounts()
        self.exchange = Exchange(EVENTS_EXCHANGE, type="topic", durable=True)
        self.queue = Queue(QUEUE, self.exchange, routing_key="#", durable=True)
        self._stopping = threading.Event()
        self._pending: list[Any] = []
        self._first_at = 0.0
        # The next wait after a failure, per cause: reset by a connection (broker) or a stored batch (database).
        self._backoff_s = {"broker": BACKOFF_START_S, "database": BACKOFF_START_S}

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        """Consume until stopped. Broker and database outages are waited out; any other error ends the run."""
        while not self._stopping.is_set():
            try:
                with Connection(self.broker_url, heartbeat=self.heartbeat_s, connect_timeout=CONNECT_TIMEOUT_S) as conn:
                    conn.ensure_connection(max_retries=0)
                    self._consume(conn)
            except _DB_ERRORS as exc:
                self._pending.clear()  # unacked: redelivered once the connection closes (it just did)
                db.close()  # the next batch connects afresh
                self._wait("database", f"{type(exc).__name__}: {exc}; the batch will be delivered again")
            except _BROKER_ERRORS as exc:
                self._pending.clear()  # unacked: RabbitMQ redelivers them
                self._wait("broker", f"connection lost or refused ({type(exc).__name__}: {exc})")

    def _wait(self, cause: str, why: str) -> None:
        """Wait before reconnecting: jittered, doubling per consecutive failure of this cause, bounded."""
        delay = self._backoff_s[cause] * random.uniform(0.5, 1.0)
        self._backoff_s[cause] = min(self._backoff_s[cause] * 2, BACKOFF_MAX_S)
        log.warning("online: consumer: %s %s; reconnecting in %.1f s", cause, why, delay)
        self._stopping.wait(delay)

    def _consume(self, conn: Any) -> None:
        channel = conn.channel()
        consumer = Consumer(
            channel, queues=[self.queue], on_message=self._received, prefetch_count=self.batch_size, no_ack=False
        )
        with consumer:  # declares the exchange, the queue and its binding, then consumes
            self._backoff_s["broker"] = BACKOFF_START_S
            log.info(
                "online: consumer ready: queue %s bound to %s with #, batch %d, wait %.3f s",
                QUEUE,
                EVENTS_EXCHANGE,
                self.batch_size,
                self.wait_s,
            )
            if self.on_ready is not None:
                self.on_ready()
            while True:
                stopping = self._stopping.is_set()
                if self._pending and (
                    stopping
                    or len(self._pending) >= self.batch_size
                    or time.monotonic() >= self._first_at + self.wait_s
                ):
                    batch, self._pending = self._pending, []
                    self._process(batch)
                    self._backoff_s["database"] = BACKOFF_START_S
                if stopping:
                    return
                conn.heartbeat_check()
                if self._pending:
                    timeout = max(self._first_at + self.wait_s - time.monotonic(), 0.001)
                else:
                    timeout = min(IDLE_WAIT_S, self.heartbeat_s / 4) if self.heartbeat_s else IDLE_WAIT_S
                try:
                    conn.drain_events(timeout=timeout)
                except TimeoutError:  # socket.timeout, an OSError: nothing arrived, not a lost connection
                    pass

    def _received(self, message: Any) -> None:
        if not self._pending:
            self._first_at = time.monotonic()
        self._pending.append(message)

    # -- one batch ----------------------------------------------------------------------------------------

    def _process(self, messages: list[Any]) -> None:
        """Store the batch's events, one transaction per agent, then ack every message of the batch."""
        batch = _Batch()
        for message in messages:
            try:
                agent, event = self._admit(message, batch)
            except _Dropped as refused:
                self._drop(message, refused, message_id=_property_id(message))
                continue
            key = (agent.id, event.message_id)
            if key in batch.seen:  # the same event twice in one batch (a resend next to a redelivery)
                self.counts.duplicates += 1
                continue
            batch.seen.add(key)
            batch.groups.setdefault(agent.id, (agent, []))[1].append((message, event))
        for agent, items in batch.groups.values():
            try:
                accepted = events_accept(agent=agent, events=[e for _, e in items], path=EvalEvent.Path.AMQP)
            except AgentHalted as exc:
                halted = _Dropped("halted", f"agent {agent.name!r} is halted: {exc.reason}")
                for message, event in items:
                    self._drop(message, halted, message_id=event.message_id)
                continue
            duplicates = sum(a.duplicate for a in accepted)
            self.counts.duplicates += duplicates
            self.counts.accepted += len(accepted) - duplicates
        # Every message of the channel not yet acked is in this batch: one ack for all of them.
        messages[-1].ack(multiple=True)
        log.debug("online: consumer: batch of %d messages acked", len(messages))

    def _admit(self, message: Any, batch: _Batch) -> tuple[MonitoredAgent, EventIn]:
        """The message's agent and event, or _Dropped saying why it cannot be one."""
        routing_key = _routing_key(message)
        agent_id = self._agent_of(message, batch)
        if routing_key not in batch.agents:
            batch.agents[routing_key] = MonitoredAgent.objects.filter(name=routing_key).first()
        agent = batch.agents[routing_key]
        if agent is None:
            raise _Dropped("agent", f"no agent named {routing_key!r} (the routing key names the agent)")
        if agent.id != agent_id:
            raise _Dropped("auth", f"the token belongs to another agent than {routing_key!r}")
        body = message.body
        try:
            event = event_parse(body_decode(body.encode() if isinstance(body, str) else body))
        except EventInvalid as exc:
            kind = "json" if exc.what == "body" else "event"
            raise _Dropped(kind, "; ".join(f"{where}: {why}" for where, why in exc.errors)) from None
        if event.agent_name is not None and event.agent_name != agent.name:
            raise _Dropped(
                "auth", f"event.agent_name: {event.agent_name!r}, but the routing key and the token are {agent.name!r}"
            )
        return agent, event

    def _agent_of(self, message: Any, batch: _Batch) -> int:
        """The id of the agent whose token the message carries (`authorization: Bearer <token>`)."""
        headers = message.headers or {}
        value = next((v for k, v in headers.items() if isinstance(k, str) and k.lower() == "authorization"), None)
        if value is None:
            raise _Dropped("auth", "no authorization header (authorization: Bearer <the agent's token>)")
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        parts = value.split(None, 1) if isinstance(value, str) else []
        if len(parts) != 2 or parts[0].lower() != "bearer":
            raise _Dropped("auth", "malformed authorization header: use `Bearer <token>`")
        secret = parts[1].strip()
        if not secret or len(secret) > SECRET_MAX or "\x00" in secret:
            raise _Dropped("auth", "invalid token")
        if secret not in batch.agent_of_secret:
            batch.agent_of_secret[secret] = self.authenticate(secret)
        agent_id = batch.agent_of_secret[secret]
        if agent_id is None:
            raise _Dropped("auth", "invalid, expired or revoked token, or not an agent's")
        return agent_id

    def _drop(self, message: Any, drop: _Dropped, *, message_id: str) -> None:
        self.counts.dropped[drop.kind] += 1
        log.warning(
            "online: AMQP event dropped (routing key %r, message id %r): %s",
            _routing_key(message),
            message_id,
            drop.reason[:REASON_MAX],
        )


def _routing_key(message: Any) -> str:
    return str((message.delivery_info or {}).get("routing_key", ""))


def _property_id(message: Any) -> str:
    """The AMQP message id, else the body's `message_id` when it has one: what names a dropped message in logs."""
    value = (message.properties or {}).get("message_id")
    if value:
        return str(value)[:200]
    try:
        raw = body_decode(message.body if isinstance(message.body, bytes) else str(message.body).encode())
    except EventInvalid:
        return "-"
    found = raw.get("message_id") if isinstance(raw, dict) else None
    return str(found)[:200] if found else "-"
