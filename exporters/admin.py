"""Export batches in the admin: read-only, filtered by destination and status (dead: the batches that need a
person), with the reason of the last refusal and a retry of dead batches (`exports_retry_dead`)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from exporters.models import ExportBatch
from exporters.services import exports_retry_dead
from vigilo_project.admin_base import ReadOnlyAdmin


@admin.register(ExportBatch)
class ExportBatchAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "destination",
        "source_key",
        "status",
        "progress",
        "attempts",
        "last_status",
        "short_error",
        "available_at",
        "created_at",
        "delivered_at",
    ]
    list_filter = ["status", "destination"]
    search_fields = ["source_key"]
    readonly_fields = (
        "destination",
        "source_key",
        "status",
        "count",
        "delivered",
        "attempts",
        "available_at",
        "claimed_until",
        "last_status",
        "last_error",
        "created_at",
        "delivered_at",
        "records",
    )
    fields = readonly_fields
    actions = ["retry_dead"]

    @admin.display(description="delivered")
    def progress(self, batch: ExportBatch) -> str:
        return f"{batch.delivered}/{batch.count}"

    @admin.display(description="last error")
    def short_error(self, batch: ExportBatch) -> str:
        return batch.last_error[:80]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ExportBatch]:
        return super().get_queryset(request).defer("records")  # the list never shows them; a batch page loads them

    @admin.action(description="Retry selected dead batches")
    def retry_dead(self, request: HttpRequest, queryset: QuerySet[ExportBatch]) -> None:
        ids = list(queryset.filter(status=ExportBatch.Status.DEAD).values_list("id", flat=True))
        count = exports_retry_dead(ids=ids)
        self.message_user(request, f"{count} dead batch(es) queued for delivery again", messages.SUCCESS)
