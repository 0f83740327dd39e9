"""The outbox relay: claim due rows, hand them to a transport, mark them published while holding the claim.

Work messages (payload with "task") become Celery task messages; other rows are domain events for the
`vigilo.events` topic exchange. The embedded mode swaps the transport for an in-process thread pool.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from django.conf import settings

from outbox.models import OutboxEvent
from outbox.services import outbox_claim, outbox_mark_failed, outbox_mark_published

log = logging.getLogger(__name__)


class Transport(Protocol):
    def deliver(self, event: OutboxEvent) -> None:
        """Deliver one message; raise to have it retried with backoff."""
        ...


def relay_once(*, transport: Transport, limit: int | None = None) -> int:
    """One pass of the relay. Returns how many rows were published."""
    token, events = outbox_claim(limit=limit or settings.VIGILO_OUTBOX_BATCH)
    delivered: list[int] = []
    for event in events:
        try:
            transport.deliver(event)
        except Exception as exc:  # boundary: any delivery failure is recorded on the row and retried
            log.warning("outbox %s delivery failed: %s", event.dedupe_key, exc)
            outbox_mark_failed(event=event, token=token, error=f"{type(exc).__name__}: {exc}")
            continue
        delivered.append(event.id)
    return outbox_mark_published(ids=delivered, token=token) if delivered else 0


_kick_hooks: list[threading.Event] = []


def relay_kick() -> None:
    """Wake the relay after a commit: the embedded relay thread, or a Celery relay task in distributed mode."""
    for event in list(_kick_hooks):
        event.set()
    if not settings.VIGILO_EMBEDDED and settings.CELERY_BROKER_URL:
        from outbox.tasks import relay

        try:
            relay.apply_async(queue="outbox", retry=False)
        except Exception as exc:  # a lost kick only costs latency: beat runs the relay every second
            log.info("relay kick not sent: %s", exc)


def register_kick(event: threading.Event) -> None:
    _kick_hooks.append(event)


def unregister_kick(event: threading.Event) -> None:
    if event in _kick_hooks:
        _kick_hooks.remove(event)
