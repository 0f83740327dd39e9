"""The relay as a Celery task: beat sends `outbox.relay` every second, commits kick it in between."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from outbox.relay import relay_drain
from outbox.transport.rabbitmq import CeleryTransport
from vigilo_project.celery import app

log = logging.getLogger(__name__)


@shared_task(name="outbox.relay", ignore_result=True)
def relay() -> int:
    with CeleryTransport() as transport:  # one broker connection for the whole drain
        return relay_drain(transport=transport)


def relay_kick() -> None:
    """Send a relay task after a commit in the distributed mode (an `outbox.hooks` hook, see `OutboxConfig`).

    Best effort and bounded: a lost kick only costs latency (beat runs the relay every second), so it never
    waits for a broker that is down (one short connect attempt, no publish retries). The mode is read at each
    call, not at registration: settings overridden later (tests) are honoured.
    """
    if settings.VIGILO_EMBEDDED or not settings.CELERY_BROKER_URL:
        return
    timeout = min(settings.VIGILO_PUBLISH_TIMEOUT_S, 2.0)
    try:
        with app.connection_for_write(connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)  # type: ignore[arg-type]  # seconds, a float
            # connection, timeout and confirm_timeout reach kombu's publish through **options (not in the stub).
            relay.apply_async(  # type: ignore[call-arg]
                connection=conn, retry=False, expires=10, timeout=timeout, confirm_timeout=timeout
            )
    except Exception as exc:  # boundary: see above
        log.info("relay kick not sent: %s", exc)
