"""Where relayed messages go: RabbitMQ through Celery/kombu (distributed), or a thread pool (embedded)."""

from __future__ import annotations

import importlib
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import close_old_connections, connection

from outbox.models import OutboxEvent

log = logging.getLogger(__name__)
EVENTS_EXCHANGE = "vigilo.events"


def _task(name: str) -> Any:
    """The registered Celery task `name` ("<app>.<task>"), importing `<app>.tasks` first."""
    from vigilo_project.celery import app

    importlib.import_module(f"{name.split('.', maxsplit=1)[0]}.tasks")
    return app.tasks[name]


class CeleryTransport:
    """Task messages via Celery (publisher confirms from broker_transport_options), events to a topic exchange."""

    def __init__(self) -> None:
        from kombu import Exchange

        from vigilo_project.celery import app

        self.app = app
        self.exchange = Exchange(EVENTS_EXCHANGE, type="topic", durable=True)

    def deliver(self, event: OutboxEvent) -> None:
        task = event.payload.get("task")
        if task:
            # The dedupe key as task id: a redelivered message is recognisable in Flower and logs.
            _task(task).apply_async(args=event.payload.get("args", []), task_id=event.dedupe_key, retry=False)
            return
        with self.app.producer_or_acquire() as producer:
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
            )


class EmbeddedTransport:
    """Runs task messages on an in-process pool through the same task functions; events are only logged."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool

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
