"""Reads about exports for the operator: what each destination still owes, what is dead, how far behind it is."""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from django.db.models import Count, Min, Q, Sum

from exporters.models import ExportBatch


class DestinationBacklog(TypedDict):
    pending_batches: int
    pending_records: int  # records of pending batches not yet accepted
    dead_batches: int
    dead_records: int
    delivered_records: int
    oldest_pending: datetime | None  # created_at of the oldest pending batch: the lag's start


def export_backlog(*, destinations: list[str]) -> dict[str, DestinationBacklog]:
    """Per destination (every one named, zeros included), in one GROUP BY."""
    pending, dead = ExportBatch.Status.PENDING, ExportBatch.Status.DEAD
    rows = ExportBatch.objects.values("destination").annotate(
        pending_batches=Count("id", filter=Q(status=pending)),
        pending_total=Sum("count", filter=Q(status=pending)),
        pending_done=Sum("delivered", filter=Q(status=pending)),
        dead_batches=Count("id", filter=Q(status=dead)),
        dead_total=Sum("count", filter=Q(status=dead)),
        dead_done=Sum("delivered", filter=Q(status=dead)),
        delivered_records=Sum("delivered", filter=~Q(status=pending)),
        oldest_pending=Min("created_at", filter=Q(status=pending)),
    )
    out: dict[str, DestinationBacklog] = {
        name: DestinationBacklog(
            pending_batches=0,
            pending_records=0,
            dead_batches=0,
            dead_records=0,
            delivered_records=0,
            oldest_pending=None,
        )
        for name in destinations
    }
    for row in rows:
        out[row["destination"]] = DestinationBacklog(
            pending_batches=row["pending_batches"],
            pending_records=(row["pending_total"] or 0) - (row["pending_done"] or 0),
            dead_batches=row["dead_batches"],
            dead_records=(row["dead_total"] or 0) - (row["dead_done"] or 0),
            delivered_records=(row["delivered_records"] or 0) + (row["pending_done"] or 0),
            oldest_pending=row["oldest_pending"],
        )
    return out
