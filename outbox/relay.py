"""The outbox relay: claim due rows, hand them to a transport, mark them published while holding the claim.

Work messages (payload with "task") become Celery task messages; other rows are domain events for the
`vigilo.events` topic exchange. The embedded mode swaps the transport for an in-process thread pool.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings

from outbox.services import outbox_claim, outbox_mark_failed, outbox_mark_published, outbox_release
from outbox.transport import BrokerUnavailable, PublishReport, Transport

log = logging.getLogger(__name__)


BROKER_DOWN_DELAY_S = 2.0


def relay_once(*, transport: Transport, limit: int | None = None) -> int:
    """One pass of the relay: claim a batch, publish it over one session, mark what the broker confirmed.

    The session publishes the whole batch before waiting for the broker's confirms (pipelined). Then, under this
    pass's claim: confirmed rows are marked published; a refused row alone is rescheduled with backoff (dead past
    the attempt limit); every other row (never sent, or sent but not confirmed because the broker went away or
    stopped answering) is given back without counting an attempt. Returns how many rows were marked published.
    """
    token, events = outbox_claim(limit=limit or settings.VIGILO_OUTBOX_BATCH)
    if not events:
        return 0
    report = PublishReport()
    try:
        with transport.batch() as session:
            report = session.publish(events)
    except BrokerUnavailable as exc:
        report.unavailable = str(exc)
    finally:
        # Whatever the broker confirmed is marked first, even when the pass ended early or raised.
        published = outbox_mark_published(ids=report.confirmed, token=token) if report.confirmed else 0
        for event in events:
            if event.id in report.refused:
                log.warning("outbox %s delivery failed: %s", event.dedupe_key, report.refused[event.id])
                outbox_mark_failed(event=event, token=token, error=report.refused[event.id])
        settled = set(report.confirmed) | report.refused.keys()
        rest = [e.id for e in events if e.id not in settled]
        if rest:
            why = report.unavailable or "no confirm from the broker"
            log.warning("outbox relay: broker unavailable, %d row(s) given back: %s", len(rest), why)
            outbox_release(ids=rest, token=token, error=f"broker unavailable: {why}", delay_s=BROKER_DOWN_DELAY_S)
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
