from __future__ import annotations

from django.db import models


class OutboxEvent(models.Model):
    """A message to deliver after the transaction that wrote it commits (work dispatch or a domain event)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        PUBLISHED = "published"
        DEAD = "dead"

    topic = models.CharField(max_length=64)
    dedupe_key = models.CharField(max_length=200, unique=True)
    payload = models.JSONField(default=dict)
    shard = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    available_at = models.DateTimeField()
    claim_token = models.UUIDField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # Pending rows in id order: the relay's claim walks them oldest first and stops at its batch. (An
            # index on status and available_at made it fetch and sort every pending row for each batch, which
            # is quadratic in a backlog.) Published rows leave it (at the next vacuum): it stays the size of the
            # backlog.
            models.Index(fields=["id"], condition=models.Q(status="pending"), name="outbox_pending"),
        ]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.topic} {self.dedupe_key} ({self.status})"
