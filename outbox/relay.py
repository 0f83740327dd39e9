"""The outbox relay: claim due rows, hand them to a transport, mark them published while holding the claim.

Work messages (payload with "task") become Celery task messages; other rows are domain events for the
`vigilo.events` topic exchange. The embedded mode swaps the transport for an in-process thread pool.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from django.conf import settings

from outbox.models import OutboxEvent
from outbox.services import outbox_claim, outbox_mark_failed, outbox_mark_published, outbox_release

log = logging.getLogger(__name__)


class Transport(Protocol):
    def batch(self) -> AbstractContextManager[Callable[[OutboxEvent], None]]:
        """Open one delivery session; the callable delivers one message or raises (see outbox.transport)."""
        ...


BROKER_DOWN_DELAY_S = 2.0


def relay_once(*, transport: Transport, limit: int | None = None) -> int:
    """One pass of the relay: claim a batch, publish it over one session, mark what the broker confirmed.

    A refused message is rescheduled with backoff (dead past the attempt limit). When the broker is unreachable
    the failing row and the rest of the batch are given back without counting an attempt. Returns how many
    rows were marked published.
    """
    from outbox.transport import BrokerUnavailable

    token, events = outbox_claim(limit=limit or settings.VIGILO_OUTBOX_BATCH)
    if not events:
        return 0
    delivered: list[int] = []
    done = 0
    try:
        with transport.batch() as deliver:
            for event in events:
                try:
                    deliver(event)
                except BrokerUnavailable:
                    raise
                except Exception as exc:  # boundary: a refused message is recorded on its row and retried
                    log.warning("outbox %s delivery failed: %s", event.dedupe_key, exc)
                    outbox_mark_failed(event=event, token=token, error=f"{type(exc).__name__}: {exc}")
                else:
                    delivered.append(event.id)
                done += 1
    except BrokerUnavailable as exc:
        log.warning("outbox relay: broker unavailable, %d row(s) given back: %s", len(events) - done, exc)
        rest = [e.id for e in events[done:]]
        outbox_release(ids=rest, token=token, error=f"broker unavailable: {exc}", delay_s=BROKER_DOWN_DELAY_S)
    finally:
        # Whatever the broker confirmed is marked, even when the batch ended early.
        published = outbox_mark_published(ids=delivered, token=token) if delivered else 0
    return published


def relay_drain(*, transport: Transport, max_seconds: float | None = None) -> int:
    """Relay batch after batch until no full batch is due or the time budget is spent."""
    budget = settings.VIGILO_RELAY_MAX_SECONDS if max_seconds is None else max_seconds
    deadline = time.monotonic() + budget
    total = 0
    while True:
        n = relay_once(transport=transport)
        total += n
        if n < settings.VIGILO_OUTBOX_BATCH or time.monotonic() >= deadline:
            return total


_kick_hooks: list[threading.Event] = []


def relay_kick() -> None:
    """Wake the relay after a commit: the embedded relay thread, or a Celery relay task in distributed mode.

    Best effort and bounded: a lost kick only costs latency (beat runs the relay every second), so it never
    waits for a broker that is down (one short connect attempt, no publish retries).
    """
    for event in list(_kick_hooks):
        event.set()
    if not settings.VIGILO_EMBEDDED and settings.CELERY_BROKER_URL:
        from outbox.tasks import relay
        from vigilo_project.celery import app

        timeout = min(settings.VIGILO_PUBLISH_TIMEOUT_S, 2.0)
        try:
            with app.connection_for_write(connect_timeout=timeout) as conn:
                conn.ensure_connection(max_retries=1, timeout=timeout)
                relay.apply_async(connection=conn, retry=False, expires=10, timeout=timeout, confirm_timeout=timeout)
        except Exception as exc:  # boundary: see above
            log.info("relay kick not sent: %s", exc)


def register_kick(event: threading.Event) -> None:
    _kick_hooks.append(event)


def unregister_kick(event: threading.Event) -> None:
    if event in _kick_hooks:
        _kick_hooks.remove(event)
