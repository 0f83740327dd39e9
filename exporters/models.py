"""Export batches: the evaluation records one destination still has to receive (docs/exporters.md).

A batch is written in the transaction that makes its results final (a chunk's completion, a run's verdict, a
live event's settlement), so a result is never stored without its exports, nor exported without being stored.
The relay (`exporters.relay`) delivers pending batches and records how far it got (`delivered`), so a batch that
failed half-way resumes after the last record the receiver accepted.
"""

from __future__ import annotations

from django.db import models


class ExportBatch(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        DEAD = "dead"

    destination = models.CharField(max_length=32, help_text="a configured destination (VIGILO_EXPORT_<KIND>_URL)")
    source_key = models.CharField(
        max_length=200, help_text="what the records come from ('chunk:<id>', 'verdict:<run>', 'event:<id>')"
    )
    records = models.JSONField(help_text="the EvalRecords (exporters.records), compact")
    count = models.PositiveIntegerField()
    delivered = models.PositiveIntegerField(default=0, help_text="records the receiver accepted so far, in order")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0, help_text="failed attempts of the current round")
    available_at = models.DateTimeField(help_text="not delivered before (backoff)")
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True, help_text="the last HTTP status")
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["destination", "source_key"], name="export_batch_once"),
        ]
        indexes = [
            # The relay walks one destination's pending batches oldest first (the index is the backlog's size).
            models.Index(
                fields=["destination", "id"], condition=models.Q(status="pending"), name="export_batch_pending"
            ),
        ]
        ordering = ["id"]
        verbose_name_plural = "export batches"

    def __str__(self) -> str:
        return f"{self.destination} {self.source_key} ({self.delivered}/{self.count} {self.status})"
