"""The embedded mode's transport: task messages run on an in-process thread pool, events are only logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from django.db import close_old_connections, connection

from outbox.models import OutboxEvent
from outbox.transport import PublishReport, describe, registered_task

log = logging.getLogger(__name__)


class EmbeddedTransport:
    """Runs task messages on an in-process pool through the same task functions; events are only logged."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool

    @contextmanager
    def batch(self) -> Iterator[EmbeddedTransport]:
        yield self

    def publish(self, events: list[OutboxEvent]) -> PublishReport:
        """Every event handed to the pool (or logged) counts as confirmed; a pool that refuses it, as refused."""
        report = PublishReport()
        for event in events:
            try:
                self.deliver(event)
            except Exception as exc:  # e.g. the pool is shutting down: recorded on the row and retried
                report.refused[event.id] = describe(exc)
            else:
                report.confirmed.append(event.id)
        return report

    def deliver(self, event: OutboxEvent) -> None:
        task = event.payload.get("task")
        if task:
            self.pool.submit(_run_task, task, event.payload.get("args", []))
        else:
            log.info("event %s %s", event.topic, event.payload)


def _run_task(name: str, args: list[Any]) -> None:
    close_old_connections()
    try:
        registered_task(name)(*args)
    except Exception:  # boundary: the worker thread reports and goes on; the lease reaper recovers the chunk
        log.exception("embedded task %s%s failed", name, tuple(args))
    finally:
        connection.close()
