"""The export relay as a Celery task: beat sends `exporters.deliver` every second, commits kick it in between."""

from __future__ import annotations

import logging
import threading
import time

from celery import shared_task
from django.conf import settings

from exporters.relay import deliver_due
from vigilo_project.celery import app

log = logging.getLogger(__name__)

# A process kicks at most this often: the live path commits many small batches a second, and one delivery task
# drains them all (beat covers what a skipped kick would have started).
KICK_INTERVAL_S = 0.25
_kick_lock = threading.Lock()
_last_kick = 0.0


@shared_task(name="exporters.deliver", ignore_result=True)
def deliver() -> int:
    return deliver_due(budget_s=settings.VIGILO_EXPORT_PASS_SECONDS)


def deliver_kick() -> None:
    """Send a delivery task after a commit that wrote export batches (distributed mode; `ExportersConfig`).

    Best effort, bounded and rate-limited per process (see KICK_INTERVAL_S): a lost kick only costs latency."""
    global _last_kick
    if settings.VIGILO_EMBEDDED or not settings.CELERY_BROKER_URL or not settings.VIGILO_EXPORT_DESTINATIONS:
        return
    with _kick_lock:
        now = time.monotonic()
        if now - _last_kick < KICK_INTERVAL_S:
            return
        _last_kick = now
    timeout = min(settings.VIGILO_PUBLISH_TIMEOUT_S, 2.0)
    try:
        with app.connection_for_write(connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)  # type: ignore[arg-type]  # seconds, a float
            deliver.apply_async(  # type: ignore[call-arg]  # connection options reach kombu (see outbox.tasks)
                connection=conn, retry=False, expires=10, timeout=timeout, confirm_timeout=timeout
            )
    except Exception as exc:  # boundary: see above
        log.info("export kick not sent: %s", exc)
