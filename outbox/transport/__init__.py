"""Where relayed messages go, and what the relay is told back: the transport contract shared by the transports.

A transport (`outbox.transport.rabbitmq` for the distributed mode, `outbox.transport.embedded` for the embedded
one) opens a *batch*: for RabbitMQ one broker connection for a whole claimed batch of rows (kept for the next
batch while healthy), so the relay pays the connection set-up once, not once per message. The batch's session
takes the claimed events and returns a `PublishReport`: the ids the broker confirmed, the ids it refused (with
the error), and, when the broker could not be reached or stopped answering, why (every id neither confirmed nor
refused is then given back by the relay without counting an attempt). Opening a batch raises
`BrokerUnavailable` when the broker is unreachable.
"""

from __future__ import annotations

import importlib
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from outbox.models import OutboxEvent
from vigilo_project.celery import app


class BrokerUnavailable(ConnectionError):
    """The broker could not be reached or stopped answering: nothing in this batch can be published now."""


@dataclass
class PublishReport:
    """What became of a batch: confirmed ids, refused ids with their error, and why the rest was not confirmed."""

    confirmed: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)
    unavailable: str | None = None


class Session(Protocol):
    def publish(self, events: list[OutboxEvent]) -> PublishReport:
        """Publish `events` and report which the broker confirmed, refused, or could not take."""
        ...


class Transport(Protocol):
    def batch(self) -> AbstractContextManager[Session]:
        """A delivery session for one batch (for RabbitMQ, a connection, possibly kept from the last batch);
        raises `BrokerUnavailable` when the broker cannot be reached."""
        ...


def registered_task(name: str) -> Any:
    """The registered Celery task `name` ("<app>.<task>"), importing `<app>.tasks` first."""
    importlib.import_module(f"{name.split('.', maxsplit=1)[0]}.tasks")
    return app.tasks[name]


def describe(exc: BaseException) -> str:
    """An error as recorded on a row and in a report: its type and message."""
    return f"{type(exc).__name__}: {exc}"
