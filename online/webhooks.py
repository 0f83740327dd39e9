"""Signed webhook deliveries of corrections (docs/live.md).

A delivery is a POST of the correction's JSON body with three headers:

    X-Vigilo-Delivery:  the correction's delivery id (receivers dedupe on it: delivery is at least once)
    X-Vigilo-Timestamp: Unix seconds when this attempt was signed
    X-Vigilo-Signature: sha256=<hex HMAC-SHA256 over "<timestamp>.<body>" with the agent's webhook secret>

The timestamp is inside the signed bytes so a captured delivery cannot be replayed later than the receiver's
tolerance (the SDK's `verify_webhook` allows 5 minutes). Any 2xx is a delivery; anything else, or no answer, is
retried with exponential backoff by a new outbox row, until VIGILO_WEBHOOK_MAX_ATTEMPTS, then the delivery is
dead. The admin's retry of a dead delivery begins another round of as many attempts. `attempts` counts every
attempt of every round, and each attempt's outbox row is keyed by its number: a retry never collides with a row
of an earlier round. The secret never leaves the database but in the signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from online.messages import correction_body, webhook_message
from online.models import WebhookDelivery
from outbox.services import backoff_seconds, outbox_write
from vigilo_project.httpjson import CallFailed, post_once
from vigilo_project.netpolicy import policy_resolve

log = logging.getLogger(__name__)


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def webhook_deliver(*, delivery_id: int, round_start: int = 0) -> str:
    """One attempt of a pending delivery; returns its status after the attempt ("delivered", "pending", "dead",
    or "skipped" when it was not pending). `round_start`: the attempts made before this round (webhook_message)."""
    delivery = (
        WebhookDelivery.objects.select_related("correction__agent", "correction__event").filter(pk=delivery_id).first()
    )
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
        return "skipped"
    round_start = min(round_start, delivery.attempts)  # a round never outlasts the limit, whatever a message says
    correction = delivery.correction
    agent = correction.agent
    body = json.dumps(correction_body(correction, agent=agent, event=correction.event), separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "X-Vigilo-Delivery": str(correction.delivery_id),
        "X-Vigilo-Timestamp": str(timestamp),
        "X-Vigilo-Signature": signature(secret=agent.webhook_secret, timestamp=timestamp, body=body),
        "User-Agent": "vigilo-webhooks/1",
    }
    status: int | None = None
    error = ""
    try:
        policy = policy_resolve(
            settings.VIGILO_NETWORK_POLICY, source="VIGILO_NETWORK_POLICY", configured=[agent.webhook_url]
        )
        status = post_once(
            url=agent.webhook_url,
            body=body,
            headers=headers,
            timeout_s=settings.VIGILO_WEBHOOK_TIMEOUT_S,
            policy=policy,
            call=f"webhook of agent {agent.name}",
        )
        if not 200 <= status < 300:
            error = f"the receiver answered HTTP {status}"
    except CallFailed as exc:
        error = str(exc)
    with transaction.atomic():
        if not error:
            WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDelivery.Status.PENDING).update(
                status=WebhookDelivery.Status.DELIVERED,
                attempts=delivery.attempts + 1,
                last_status=status,
                last_error="",
                delivered_at=timezone.now(),
            )
            return WebhookDelivery.Status.DELIVERED
        attempts = delivery.attempts + 1
        dead = attempts - round_start >= settings.VIGILO_WEBHOOK_MAX_ATTEMPTS
        moved = WebhookDelivery.objects.filter(
            pk=delivery.pk, status=WebhookDelivery.Status.PENDING, attempts=delivery.attempts
        ).update(
            status=WebhookDelivery.Status.DEAD if dead else WebhookDelivery.Status.PENDING,
            attempts=attempts,
            last_status=status,
            last_error=error[:2000],
        )
        if moved and not dead:
            delay_s = backoff_seconds(attempts - round_start)
            outbox_write(
                messages=[webhook_message(delivery.pk, attempt=attempts, round_start=round_start, delay_s=delay_s)]
            )
    log.warning(
        "online: webhook of agent %s, delivery %s attempt %d failed: %s", agent.name, delivery.pk, attempts, error
    )
    return WebhookDelivery.Status.DEAD if dead else WebhookDelivery.Status.PENDING


def webhooks_retry_dead(*, ids: list[int]) -> int:
    """Give dead deliveries another round of attempts (the admin's action); returns how many. The round begins
    at the attempts made so far, so its first row's key (that attempt's number) is new."""
    with transaction.atomic():
        rows = list(
            WebhookDelivery.objects.select_for_update()
            .filter(pk__in=ids, status=WebhookDelivery.Status.DEAD)
            .values_list("pk", "attempts")
        )
        moved = [
            (pk, attempts)
            for pk, attempts in rows  # guarded: on SQLite, select_for_update locks nothing
            if WebhookDelivery.objects.filter(pk=pk, status=WebhookDelivery.Status.DEAD, attempts=attempts).update(
                status=WebhookDelivery.Status.PENDING, last_error=""
            )
        ]
        outbox_write(messages=[webhook_message(pk, attempt=attempts, round_start=attempts) for pk, attempts in moved])
    return len(moved)
