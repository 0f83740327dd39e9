"""Where relayed messages go: RabbitMQ through Celery/kombu (distributed), or a thread pool (embedded).

A transport opens a *batch*: one broker connection and producer for a whole claimed batch of rows, so the relay
pays the connection set-up once, not once per message. Inside a batch, `deliver(event)` publishes one message
and returns only after the broker confirmed it (publisher confirms); it raises `BrokerUnavailable` when the
broker cannot be reached (the rest of the batch is then given back) and any other exception when this one
message was refused (it alone is rescheduled with backoff).
"""

from __future__ import annotations

import importlib
import logging
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection

from outbox.models import OutboxEvent

log = logging.getLogger(__name__)
EVENTS_EXCHANGE = "vigilo.events"

Deliver = Callable[[OutboxEvent], None]


class BrokerUnavailable(ConnectionError):
    """The broker could not be reached or stopped answering: nothing in this batch can be published now."""


def _task(name: str) -> Any:
    """The registered Celery task `name` ("<app>.<task>"), importing `<app>.tasks` first."""
    from vigilo_project.celery import app

    importlib.import_module(f"{name.split('.', maxsplit=1)[0]}.tasks")
    return app.tasks[name]


def _connection_errors() -> tuple[type[BaseException], ...]:
    import amqp.exceptions
    import kombu.exceptions

    return (
        kombu.exceptions.OperationalError,  # what Celery re-raises connection errors as
        amqp.exceptions.RecoverableConnectionError,
        amqp.exceptions.ConnectionError,
        ConnectionError,
        socket.timeout,
        TimeoutError,
        OSError,
    )


class CeleryTransport:
    """Task messages via Celery's own message format, events to the durable topic exchange `vigilo.events`.

    Publishing never uses Celery's connection pool with its default retry-until-connected (celery#6046: a
    publish can then block indefinitely while the broker is down): each batch opens its own connection with
    a bounded connect timeout, publishes with `retry=False`, and bounds each confirm wait.
    """

    def __init__(self, *, broker_url: str | None = None, timeout_s: float | None = None) -> None:
        from kombu import Exchange

        from vigilo_project.celery import app

        self.app = app
        self.broker_url = broker_url or None
        self.timeout_s = timeout_s or settings.VIGILO_PUBLISH_TIMEOUT_S
        self.exchange = Exchange(EVENTS_EXCHANGE, type="topic", durable=True)

    @contextmanager
    def batch(self) -> Iterator[Deliver]:
        errors = _connection_errors()
        conn = self.app.connection_for_write(self.broker_url, connect_timeout=self.timeout_s)
        try:
            try:
                conn.ensure_connection(max_retries=1, timeout=self.timeout_s)
                producer = conn.Producer(serializer="json")
            except errors as exc:
                raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc
            state = {"producer": producer}

            def deliver(event: OutboxEvent) -> None:
                try:
                    self._publish(state["producer"], event)
                except errors as exc:
                    raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc
                except Exception:
                    # A refused message (nack, channel error) may leave the channel closed: start a fresh one.
                    try:
                        state["producer"] = conn.Producer(serializer="json")
                    except errors as exc:
                        raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc
                    raise

            yield deliver
        finally:
            try:
                conn.release()
            except Exception:  # closing a dead connection: nothing left to do with it
                pass

    def _publish(self, producer: Any, event: OutboxEvent) -> None:
        task = event.payload.get("task")
        if task:
            # The dedupe key as task id: a redelivered message is recognisable in Flower and logs.
            _task(task).apply_async(
                args=event.payload.get("args", []),
                task_id=event.dedupe_key,
                producer=producer,
                retry=False,
                timeout=self.timeout_s,
                confirm_timeout=self.timeout_s,
            )
            return
        producer.publish(
            event.payload,
            exchange=self.exchange,
            routing_key=event.topic,
            declare=[self.exchange],
            serializer="json",
            delivery_mode=2,
            message_id=event.dedupe_key,
            headers={"topic": event.topic},
            retry=False,
            timeout=self.timeout_s,
            confirm_timeout=self.timeout_s,
        )

    def deliver(self, event: OutboxEvent) -> None:
        """One message on its own connection (tools and tests; the relay uses `batch`)."""
        with self.batch() as deliver:
            deliver(event)


class EmbeddedTransport:
    """Runs task messages on an in-process pool through the same task functions; events are only logged."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool

    @contextmanager
    def batch(self) -> Iterator[Deliver]:
        yield self.deliver

    def deliver(self, event: OutboxEvent) -> None:
        task = event.payload.get("task")
        if task:
            self.pool.submit(_run_task, task, event.payload.get("args", []))
        else:
            log.info("event %s %s", event.topic, event.payload)


def _run_task(name: str, args: list[Any]) -> None:
    close_old_connections()
    try:
        _task(name)(*args)
    except Exception:  # boundary: the worker thread reports and goes on; the lease reaper recovers the chunk
        log.exception("embedded task %s%s failed", name, tuple(args))
    finally:
        connection.close()
