"""Run inspection in the admin: read-only rows, a cancel action, the verdict with a score histogram per dimension."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from typing_extensions import override

from runs.errors import TransitionError
from runs.models import Case, Dataset, DatasetVersion, EvaluatorResult, Execution, Profile, ProfileVersion, Run
from runs.selectors import run_progress
from runs.services import run_cancel
from vigilo_project.admin_base import ReadOnlyAdmin

GATE_COLORS = {"pass": "#1a7f37", "fail": "#cf222e", "pending": "#6e7781"}
STATUS_COLORS = {"passed": "#1a7f37", "failed": "#cf222e", "error": "#bf8700"}
BINS = 10

if TYPE_CHECKING:
    # The inlines are generic (child model, parent model) only in django-stubs; at runtime they cannot be subscripted.
    _ResultInlineBase = admin.StackedInline[EvaluatorResult, Execution]
    _DatasetVersionInlineBase = admin.TabularInline[DatasetVersion, Dataset]
    _ProfileVersionInlineBase = admin.TabularInline[ProfileVersion, Profile]
else:
    _ResultInlineBase = admin.StackedInline
    _DatasetVersionInlineBase = _ProfileVersionInlineBase = admin.TabularInline


def badge(text: str, color: str) -> str:
    return format_html(
        '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;font-weight:600">{}</span>',
        color,
        text,
    )


def histogram_svg(values: list[float], *, width: int = 240, height: int = 60) -> str:
    """A server-rendered bar chart of scores in [0, 1] in ten bins; no JavaScript."""
    counts = [0] * BINS
    for v in values:
        counts[min(int(max(v, 0.0) * BINS), BINS - 1)] += 1
    top = max(counts) or 1
    bar = width / BINS
    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}-{}: {}</title></rect>',
        (
            (
                f"{i * bar + 1:.1f}",
                f"{height - 14 - (c / top) * (height - 18):.1f}",
                f"{bar - 2:.1f}",
                f"{(c / top) * (height - 18):.1f}",
                "#cf222e" if i < BINS // 2 else "#1a7f37",
                f"{i / BINS:.1f}",
                f"{(i + 1) / BINS:.1f}",
                c,
            )
            for i, c in enumerate(counts)
        ),
    )
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" role="img" aria-label="score histogram">'
        '{}<line x1="0" y1="{}" x2="{}" y2="{}" stroke="#999"/>'
        '<text x="0" y="{}" font-size="10" fill="#666">0</text>'
        '<text x="{}" y="{}" font-size="10" fill="#666" text-anchor="end">1</text></svg>',
        width,
        height,
        bars,
        height - 14,
        width,
        height - 14,
        height - 2,
        width,
        height - 2,
    )


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "state", "gate_badge", "progress", "duration", "created_at"]
    list_filter = ["state", "gate", "profile_version__profile"]
    search_fields = ["id", "name"]
    date_hierarchy = "created_at"
    actions = ["cancel_runs"]
    list_select_related = ["profile_version__profile"]
    readonly_fields = (
        "id",
        "name",
        "state",
        "gate_badge",
        "dataset_version",
        "profile_version",
        "pins",
        "options",
        "failure_reason",
        "expected_executions",
        "chunk_count",
        "idempotency_key",
        "created_at",
        "started_at",
        "finished_at",
        "executions_link",
    )
    fields = readonly_fields

    @admin.display(description="gate", ordering="gate")
    def gate_badge(self, run: Run) -> str:
        return badge(run.gate, GATE_COLORS.get(run.gate, "#6e7781"))

    @admin.display(description="progress")
    def progress(self, run: Run) -> str:
        done = EvaluatorResult.objects.filter(run=run).count()
        expected = max(run.expected_results, 1)
        pct = min(100, round(100 * done / expected))
        return format_html(
            '<div style="width:120px;background:#eee;border-radius:3px" title="{} of {} results">'
            '<div style="width:{}%;background:#0969da;height:10px;border-radius:3px"></div></div>{} / {}',
            done,
            expected,
            pct,
            done,
            expected,
        )

    @admin.display(description="duration")
    def duration(self, run: Run) -> str:
        if not run.started_at:
            return "-"
        end = run.finished_at
        if end is None:
            return "running"
        return f"{(end - run.started_at).total_seconds():.1f} s"

    @admin.display(description="executions")
    def executions_link(self, run: Run) -> str:
        url = reverse("admin:runs_execution_changelist") + f"?run__id__exact={run.id}"
        return format_html('<a href="{}">{} executions</a>', url, run.expected_executions)

    @admin.action(description="Cancel selected runs")
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet[Run]) -> None:
        done, refused = 0, []
        for run in queryset:
            try:
                run_cancel(run_id=run.id, reason=f"cancelled in the admin by {request.user}")
                done += 1
            except TransitionError:
                refused.append(f"{run.id} ({run.state})")
        if done:
            self.message_user(request, f"cancelled {done} run(s)", messages.SUCCESS)
        if refused:
            self.message_user(request, f"not cancellable: {', '.join(refused)}", messages.WARNING)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        run = Run.objects.filter(pk=object_id).first() if _is_uuid(object_id) else None
        if run is not None:
            extra_context = {**(extra_context or {}), **self.verdict_context(run)}
        return super().change_view(request, object_id, form_url, extra_context)

    def verdict_context(self, run: Run) -> dict[str, Any]:
        verdict = run.verdict or {}
        scores: dict[str, list[float]] = {}
        for dims in run.aggregates.values_list("dimension_scores", flat=True).iterator(chunk_size=2000):
            for name, value in (dims or {}).items():
                if isinstance(value, int | float):
                    scores.setdefault(name, []).append(float(value))
        dimensions = []
        for name in sorted(set(scores) | set(verdict.get("dimensions", {}))):
            d = verdict.get("dimensions", {}).get(name, {})
            values = scores.get(name, [])
            dimensions.append(
                {
                    "name": name,
                    "mean": d.get("mean", sum(values) / len(values) if values else None),
                    "pass_rate": d.get("pass_rate"),
                    "error_rate": d.get("error_rate"),
                    "count": len(values),
                    "chart": histogram_svg(values),
                }
            )
        reasons = [r for r in verdict.get("reasons") or [] if isinstance(r, dict)]
        warnings = [w for w in verdict.get("warnings") or [] if isinstance(w, dict)]
        cases = example_cases(run=run, entries=[*reasons, *warnings])
        return {
            "vigilo_run": run,
            "vigilo_gate": badge(run.gate, GATE_COLORS.get(run.gate, "#6e7781")),
            "vigilo_verdict": verdict,
            "vigilo_reasons": [with_case_links(r, cases=cases) for r in reasons],
            "vigilo_warnings": [with_case_links(w, cases=cases) for w in warnings],
            "vigilo_scorecard": verdict.get("scorecard", []),
            "vigilo_counts": verdict.get("counts", {}),
            "vigilo_dimensions": dimensions,
            "vigilo_progress": run_progress(run=run),
        }


def example_cases(*, run: Run, entries: list[dict[str, Any]]) -> dict[str, str]:
    """The case id of every example execution of these reasons (or warnings), by execution id as the verdict
    stores it, in one query. Looked up rather than read from the entries, so verdicts stored before they named
    their cases show case ids too; only this run's executions count."""
    ids = {str(example) for entry in entries for example in entry.get("examples") or []}
    pks = [int(i) for i in ids if i.isascii() and i.isdigit() and len(i) <= 18]
    if not pks:
        return {}
    rows = Execution.objects.filter(run=run, pk__in=pks).values_list("pk", "case_id")
    return {str(pk): case_id for pk, case_id in rows}


def with_case_links(entry: dict[str, Any], *, cases: dict[str, str]) -> dict[str, Any]:
    """A reason or warning with `case_links`: its examples, in order, as case ids linking to their execution's
    admin page (the template escapes both). An example whose execution is not in the run is left out."""
    links = [
        {"case_id": cases[str(e)], "url": reverse("admin:runs_execution_change", args=[str(e)])}
        for e in entry.get("examples") or []
        if str(e) in cases
    ]
    return {**entry, "case_links": links}


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


class ResultInline(_ResultInlineBase):
    model = EvaluatorResult
    extra = 0
    can_delete = False
    readonly_fields = (
        "binding_id",
        "attempt",
        "outcome",
        "measurement",
        "score",
        "judgment",
        "blocking",
        "error_code",
        "error_message",
        "findings",
        "explanation",
        "logs",
        "duration_ms",
        "fuel_used",
        "isolation",
    )
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest, obj: Execution | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Execution | None = None) -> bool:
        return False


@admin.register(Execution)
class ExecutionAdmin(ReadOnlyAdmin):
    list_display = ["case_id", "run", "status_badge", "aggregate_score", "attempt"]
    list_filter = ["aggregate__status"]
    search_fields = ["case_id", "run__id"]
    list_select_related = ["aggregate", "run"]
    readonly_fields = (
        "run",
        "case_id",
        "ordinal",
        "tags",
        "attempt",
        "status_badge",
        "reasons",
        "agent_call",
        "snapshot",
    )
    fields = readonly_fields
    inlines = [ResultInline]

    @admin.display(description="status")
    def status_badge(self, e: Execution) -> str:
        agg = getattr(e, "aggregate", None)
        if agg is None:
            return badge("pending", "#6e7781")
        return badge(agg.status, STATUS_COLORS.get(agg.status, "#6e7781"))

    @admin.display(description="score")
    def aggregate_score(self, e: Execution) -> str:
        agg = getattr(e, "aggregate", None)
        return "-" if agg is None or agg.aggregate_score is None else f"{agg.aggregate_score:.3f}"

    @admin.display(description="reasons")
    def reasons(self, e: Execution) -> str:
        agg = getattr(e, "aggregate", None)
        return "; ".join(agg.reasons) if agg else "-"

    @override  # Django's signature, positional arguments and all
    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Execution | None = None,
    ) -> HttpResponse:
        # The page is named by its case, as the run page's reasons link to it, not by the internal id.
        if obj is not None:
            context = {**context, "subtitle": f"case {obj.case_id}"}
        return super().render_change_form(request, context, add, change, form_url, obj)


class DatasetVersionInline(_DatasetVersionInlineBase):
    model = DatasetVersion
    extra = 0
    can_delete = False
    fields = readonly_fields = ("content_hash", "case_count", "created_at")

    def has_add_permission(self, request: HttpRequest, obj: Dataset | None = None) -> bool:
        return False


@admin.register(Dataset)
class DatasetAdmin(ReadOnlyAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]
    inlines = [DatasetVersionInline]


@admin.register(DatasetVersion)
class DatasetVersionAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "case_count", "created_at"]


@admin.register(Case)
class CaseAdmin(ReadOnlyAdmin):
    list_display = ["case_id", "dataset_version", "ordinal"]
    search_fields = ["case_id"]


class ProfileVersionInline(_ProfileVersionInlineBase):
    model = ProfileVersion
    extra = 0
    can_delete = False
    fields = readonly_fields = ("content_hash", "created_at")

    def has_add_permission(self, request: HttpRequest, obj: Profile | None = None) -> bool:
        return False


@admin.register(Profile)
class ProfileAdmin(ReadOnlyAdmin):
    list_display = ["name", "created_at"]
    inlines = [ProfileVersionInline]


@admin.register(ProfileVersion)
class ProfileVersionAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "created_at"]
    readonly_fields = ("profile", "content_hash", "source", "created_at")
    fields = readonly_fields
