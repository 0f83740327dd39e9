"""The evaluator registry in the admin: versions are immutable; only their state changes, through the service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from evaluators.models import Evaluator, EvaluatorVersion
from evaluators.services import PublishError, evaluator_version_set_state
from vigilo_project.admin_base import ReadOnlyAdmin

if TYPE_CHECKING:
    # The inlines are generic (child model, parent model) only in django-stubs; at runtime they cannot be subscripted.
    _VersionInlineBase = admin.TabularInline[EvaluatorVersion, Evaluator]
else:
    _VersionInlineBase = admin.TabularInline


class VersionInline(_VersionInlineBase):
    model = EvaluatorVersion
    extra = 0
    can_delete = False
    fields = readonly_fields = ("version", "state", "digest", "capabilities", "world", "size", "created_at")

    def has_add_permission(self, request: HttpRequest, obj: Evaluator | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Evaluator | None = None) -> bool:
        return False


@admin.register(Evaluator)
class EvaluatorAdmin(ReadOnlyAdmin):
    list_display = ["full_name", "version_count", "created_at"]
    search_fields = ["namespace", "name"]
    inlines = [VersionInline]

    @admin.display(description="versions")
    def version_count(self, evaluator: Evaluator) -> int:
        return evaluator.versions.count()


def _set_state(
    modeladmin: admin.ModelAdmin[Any], request: HttpRequest, queryset: QuerySet[EvaluatorVersion], state: str
) -> None:
    changed, refused = 0, []
    for version in queryset.select_related("evaluator"):
        try:
            evaluator_version_set_state(version=version, state=state)
            changed += 1
        except PublishError as exc:
            refused.append(str(exc))
    if changed:
        modeladmin.message_user(request, f"{changed} version(s) now {state}", messages.SUCCESS)
    for message in refused:
        modeladmin.message_user(request, message, messages.WARNING)


@admin.register(EvaluatorVersion)
class EvaluatorVersionAdmin(ReadOnlyAdmin):
    list_display = ["reference", "state", "short_digest", "capabilities", "world", "pure", "size", "created_at"]
    list_filter = ["state", "world", "pure", "evaluator"]
    search_fields = ["evaluator__namespace", "evaluator__name", "version", "digest"]
    list_select_related = ["evaluator"]
    readonly_fields = (
        "evaluator",
        "version",
        "state",
        "digest",
        "size",
        "contract_version",
        "world",
        "capabilities",
        "pure",
        "imports",
        "description",
        "config_schema",
        "info",
        "created_at",
    )
    fields = readonly_fields
    actions = ["make_active", "make_deprecated", "make_yanked", "make_disabled"]

    @admin.display(description="digest")
    def short_digest(self, version: EvaluatorVersion) -> str:
        return f"sha256:{version.digest[:16]}…"

    @admin.action(description="Activate selected versions")
    def make_active(self, request: HttpRequest, queryset: QuerySet[EvaluatorVersion]) -> None:
        _set_state(self, request, queryset, "active")

    @admin.action(description="Deprecate selected versions")
    def make_deprecated(self, request: HttpRequest, queryset: QuerySet[EvaluatorVersion]) -> None:
        _set_state(self, request, queryset, "deprecated")

    @admin.action(description="Yank selected versions (pinned runs keep working)")
    def make_yanked(self, request: HttpRequest, queryset: QuerySet[EvaluatorVersion]) -> None:
        _set_state(self, request, queryset, "yanked")

    @admin.action(description="Disable selected versions")
    def make_disabled(self, request: HttpRequest, queryset: QuerySet[EvaluatorVersion]) -> None:
        _set_state(self, request, queryset, "disabled")
