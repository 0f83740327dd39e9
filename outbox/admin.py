"""The outbox ledger in the admin: read-only, with a dead-row filter and a retry action."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from outbox.models import OutboxEvent
from outbox.services import outbox_retry_dead
from vigilo_project.admin_base import ReadOnlyAdmin


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "topic", "dedupe_key", "status", "attempts", "available_at", "short_error"]
    list_filter = ["status", "topic"]  # status = dead: the rows that need a person
    search_fields = ["dedupe_key", "topic"]
    readonly_fields = (
        "topic",
        "dedupe_key",
        "payload",
        "shard",
        "status",
        "attempts",
        "available_at",
        "claim_token",
        "claimed_until",
        "last_error",
        "created_at",
        "published_at",
    )
    fields = readonly_fields
    actions = ["retry_dead"]

    @admin.display(description="last error")
    def short_error(self, event: OutboxEvent) -> str:
        return event.last_error[:80]

    @admin.action(description="Retry selected dead rows")
    def retry_dead(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> None:
        ids = list(queryset.filter(status=OutboxEvent.Status.DEAD).values_list("id", flat=True))
        count = outbox_retry_dead(ids=ids)
        self.message_user(request, f"{count} dead row(s) queued for delivery again", messages.SUCCESS)
