"""Export writes: batches stored with the results they carry, claimed and settled by the relay, retried from admin.

`exports_write` runs inside the caller's transaction (a chunk's completion, a verdict, a live settlement): the
batches exist exactly when the results do. After the commit a best-effort kick wakes a relay (`hooks`); the
relay also polls, so a lost kick costs latency only.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from exporters.hooks import EXPORT_KICKS
from exporters.models import ExportBatch
from exporters.records import EvalRecord

# What the relay reads from a claimed batch; the others stay deferred.
CLAIM_FIELDS = ("id", "destination", "source_key", "records", "count", "delivered", "attempts", "claim_token")


def exports_write(*, records: Sequence[EvalRecord], destinations: Sequence[str], source_key: str) -> int:
    """Store one batch of `records` per destination, keyed by `source_key` (a second write of the same source is
    a no-op: the first one's batch stands). Returns the batches written. Call inside the results' transaction."""
    if not records or not destinations:
        return 0
    stored = [record.as_dict() for record in records]
    now = timezone.now()
    rows = [
        ExportBatch(destination=name, source_key=source_key, records=stored, count=len(stored), available_at=now)
        for name in destinations
    ]
    ExportBatch.objects.bulk_create(rows, ignore_conflicts=True)
    transaction.on_commit(EXPORT_KICKS.run)
    return len(rows)


def exports_claim(*, destination: str, limit: int) -> tuple[uuid.UUID, list[ExportBatch]]:
    """Claim up to `limit` due batches of one destination with a fresh token, oldest first (others' claims are
    skipped). A claim lasts VIGILO_EXPORT_CLAIM_SECONDS: a relay that died with it gives the batches back then."""
    token = uuid.uuid4()
    now = timezone.now()
    until = now + timedelta(seconds=settings.VIGILO_EXPORT_CLAIM_SECONDS)
    with transaction.atomic():
        due = ExportBatch.objects.filter(
            destination=destination, status=ExportBatch.Status.PENDING, available_at__lte=now
        ).exclude(claimed_until__gt=now)
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.order_by("id").values_list("id", flat=True)[:limit])
        if ids:
            ExportBatch.objects.filter(id__in=ids).update(claim_token=token, claimed_until=until)
    batches = ExportBatch.objects.filter(id__in=ids, claim_token=token).order_by("id").only(*CLAIM_FIELDS)
    return token, list(batches)


def exports_delivered(*, batches: Sequence[ExportBatch], token: uuid.UUID) -> int:
    """Settle claimed batches whose every record was accepted, in one statement (the common case of a pass);
    only those whose claim still holds. Returns how many were settled."""
    if not batches:
        return 0
    return ExportBatch.objects.filter(
        id__in=[batch.id for batch in batches], claim_token=token, status=ExportBatch.Status.PENDING
    ).update(
        status=ExportBatch.Status.DELIVERED,
        delivered=F("count"),
        delivered_at=timezone.now(),
        claim_token=None,
        claimed_until=None,
        last_status=None,
        last_error="",
    )


def export_settle(
    *,
    batch: ExportBatch,
    token: uuid.UUID,
    delivered: int,
    status: int | None = None,
    error: str = "",
    outcome: str,
) -> int:
    """Record what one attempt did to a claimed batch that is not all delivered (`exports_delivered` settles
    those), only while the claim holds (returns 0 when it was lost).

    `delivered`: the records accepted so far (monotonic). `outcome`: "retry" (a refusal that may pass later:
    counts an attempt, dead past VIGILO_EXPORT_MAX_ATTEMPTS), "unreachable" (the receiver is down: retried later,
    never counted towards dead), "dead" (refused for good) or "release" (not attempted in this pass: given back
    as it was).
    """
    fields: dict[str, object] = {
        "delivered": max(batch.delivered, min(delivered, batch.count)),
        "claim_token": None,
        "claimed_until": None,
        "last_status": status,
        "last_error": error[:2000],
    }
    now = timezone.now()
    if outcome == "dead":
        fields.update(status=ExportBatch.Status.DEAD, attempts=batch.attempts + 1)
    elif outcome == "retry":
        attempts = batch.attempts + 1
        dead = attempts >= settings.VIGILO_EXPORT_MAX_ATTEMPTS
        fields.update(
            attempts=attempts,
            status=ExportBatch.Status.DEAD if dead else ExportBatch.Status.PENDING,
            available_at=now + timedelta(seconds=backoff_seconds(attempts)),
        )
    elif outcome == "unreachable":
        fields["available_at"] = now + timedelta(seconds=backoff_seconds(batch.attempts + 1))
    elif outcome == "release":  # not attempted: back as it was
        del fields["last_status"], fields["last_error"]
    else:
        raise ValueError(f"unknown outcome {outcome!r}")
    return ExportBatch.objects.filter(id=batch.id, claim_token=token, status=ExportBatch.Status.PENDING).update(
        **fields
    )


def backoff_seconds(attempts: int) -> float:
    """Exponential backoff with full jitter: uniform in [0, base * 2^attempts], capped."""
    cap = min(settings.VIGILO_EXPORT_BACKOFF_MAX_S, settings.VIGILO_EXPORT_BACKOFF_BASE_S * 2 ** min(attempts, 30))
    return random.uniform(cap / 2, cap)


def exports_retry_dead(*, ids: Sequence[int]) -> int:
    """Give dead batches another round of attempts (the admin's action): pending again, attempts from zero, due
    now. What was delivered stays delivered: the round resumes after it."""
    moved = ExportBatch.objects.filter(id__in=list(ids), status=ExportBatch.Status.DEAD).update(
        status=ExportBatch.Status.PENDING, attempts=0, available_at=timezone.now(), last_error=""
    )
    if moved:
        transaction.on_commit(EXPORT_KICKS.run)
    return moved
