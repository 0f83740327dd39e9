"""Live evaluation in the admin: monitored agents (their counts, recent events and corrections, the audit, a chart
of violations per hour, the resume of a halted agent with a reason, the few settings an operator may tune), and
read-only events, corrections, audit entries and webhook deliveries (with a retry of dead ones).

Writes go through the services: a settings change is `agent_apply` (audited, as `vigilo_agents apply` does), a
resume is `agent_resume`, a retry `webhooks_retry_dead`. An agent's state is never a form field, and its webhook
secret is never shown or editable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from online.errors import EventInvalid, StateConflict
from online.models import (
    EVENT_TYPES,
    SEVERITIES,
    AgentAudit,
    CorrectionSignal,
    EvalEvent,
    MonitoredAgent,
    OnlineProfile,
    OnlineResult,
    WebhookDelivery,
)
from online.selectors import agents_with_counts, violations_by_hour
from online.services import AgentSpec, agent_apply, agent_resume
from online.webhooks import webhooks_retry_dead
from vigilo_project.admin_base import ReadOnlyAdmin

STATE_COLORS: dict[str, str] = {MonitoredAgent.State.ACTIVE: "#1a7f37", MonitoredAgent.State.HALTED: "#cf222e"}
SEVERITY_COLORS = {"nudge": "#bf8700", "redirect": "#d15704", "halt": "#cf222e"}
DELIVERY_COLORS = {"pending": "#6e7781", "delivered": "#1a7f37", "dead": "#cf222e"}
CHART_WINDOWS = {"24h": 24, "7d": 24 * 7}  # hours shown, one bar an hour
RECENT = 50
_REFUSED = "_vigilo_agent_refused"  # set on a request whose settings change the service refused

if TYPE_CHECKING:
    # Generic (model, or child and parent model) only in django-stubs; at runtime they cannot be subscripted.
    _AgentAdminBase = admin.ModelAdmin[MonitoredAgent]
    _AgentFormBase = forms.ModelForm[MonitoredAgent]
    _ResultInlineBase = admin.TabularInline[OnlineResult, EvalEvent]
else:
    _AgentAdminBase = admin.ModelAdmin
    _AgentFormBase = forms.ModelForm
    _ResultInlineBase = admin.TabularInline


def badge(text: str, color: str) -> str:
    return format_html(
        '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;font-weight:600">{}</span>',
        color,
        text,
    )


def actor_of(request: HttpRequest) -> str:
    return f"admin:{request.user.get_username()}"


# -- the chart of violations -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HourBar:
    """One hour of an agent's violations: severity -> corrections created in it (dropped ones included)."""

    hour: datetime
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def violation_bars(*, agent: MonitoredAgent, hours: int, now: datetime) -> list[HourBar]:
    """The last `hours` hours in UTC, the current one last, each with its corrections by severity."""
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=hours - 1)
    counts = violations_by_hour(agent=agent, since=start)
    return [
        HourBar(hour=hour, counts={s: counts.get((hour, s), 0) for s in SEVERITIES})
        for hour in (start + timedelta(hours=i) for i in range(hours))
    ]


def violations_svg(bars: list[HourBar], *, width: int = 720, height: int = 160) -> SafeString:
    """A server-rendered stacked bar chart, one bar an hour (nudge at the bottom, halt on top); no JavaScript.
    Each hour is a `<g class="vg-hour">` carrying its counts as data attributes and a tooltip."""
    plot = height - 18  # the bottom strip holds the time labels
    top = max((b.total for b in bars), default=0) or 1
    step = width / max(len(bars), 1)
    label_every = 6 if len(bars) <= 48 else 24
    parts: list[str] = []
    for i, bar in enumerate(bars):
        x = i * step
        y = float(plot)
        rects: list[str] = []
        for severity in SEVERITIES:
            n = bar.counts[severity]
            if not n:
                continue
            h = n / top * (plot - 12)
            y -= h
            rects.append(
                format_html(
                    '<rect class="vg-bar-{}" x="{}" y="{}" width="{}" height="{}" fill="{}"/>',
                    severity,
                    f"{x + 0.5:.1f}",
                    f"{y:.1f}",
                    f"{max(step - 1, 1):.1f}",
                    f"{h:.1f}",
                    SEVERITY_COLORS[severity],
                )
            )
        summary = ", ".join(f"{bar.counts[s]} {s}" for s in SEVERITIES)
        parts.append(
            format_html(
                '<g class="vg-hour" data-hour="{}" data-nudge="{}" data-redirect="{}" data-halt="{}">'
                "<title>{} UTC: {}</title>{}</g>",
                bar.hour.strftime("%Y-%m-%dT%H:00Z"),
                bar.counts["nudge"],
                bar.counts["redirect"],
                bar.counts["halt"],
                bar.hour.strftime("%Y-%m-%d %H:00"),
                summary,
                mark_safe("".join(rects)),  # each rect was built by format_html
            )
        )
        if i % label_every == 0:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" font-size="10" fill="#666">{}</text>',
                    f"{x:.1f}",
                    height - 4,
                    bar.hour.strftime("%H:00" if label_every == 6 else "%m-%d"),
                )
            )
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" role="img" aria-label="violations per hour">'
        '<text x="0" y="10" font-size="10" fill="#666">{} / hour</text>{}'
        '<line x1="0" y1="{}" x2="{}" y2="{}" stroke="#999"/></svg>',
        width,
        height,
        top,
        mark_safe("".join(parts)),  # every part was built by format_html
        plot,
        width,
        plot,
    )


# -- monitored agents --------------------------------------------------------------------------------------------


class AgentForm(_AgentFormBase):
    """What an operator may tune; the rest comes from agents.yaml (`vigilo_agents apply` sets it again)."""

    sample_rate = forms.FloatField(min_value=0.0, max_value=1.0, help_text="share of events evaluated, in [0, 1]")
    event_types = forms.MultipleChoiceField(
        choices=[(t, t) for t in EVENT_TYPES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="the event types evaluated; none ticked: all",
    )
    max_corrections_per_window = forms.IntegerField(
        min_value=0, max_value=10**7, help_text="nudges and redirects delivered per window (a halt always is)"
    )
    window_seconds = forms.IntegerField(min_value=1, max_value=10**7)
    sync_deadline_ms = forms.IntegerField(
        min_value=1, max_value=10**7, help_text="a sync event still being evaluated after this long goes async"
    )

    class Meta:
        model = MonitoredAgent
        fields = [
            "sample_rate",
            "event_types",
            "sync_deadline_ms",
            "max_corrections_per_window",
            "window_seconds",
            "delivery",
            "webhook_url",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        url = (data.get("webhook_url") or "").strip()
        data["webhook_url"] = url
        if url and not re.match(r"https?://[^/\s]+", url):
            self.add_error("webhook_url", "an http(s) URL")
        elif data.get("delivery") == MonitoredAgent.Delivery.WEBHOOK and not url:
            self.add_error("webhook_url", "required with webhook delivery")
        return data


class ResumeActionForm(helpers.ActionForm):
    reason = forms.CharField(
        required=False,  # the action says what is missing, and changes nothing
        max_length=2000,
        label="Reason",
        widget=forms.TextInput(attrs={"size": 40, "placeholder": "why the agent may go on (to resume)"}),
    )


@admin.register(MonitoredAgent)
class MonitoredAgentAdmin(_AgentAdminBase):
    form = AgentForm
    action_form = ResumeActionForm
    actions = ["resume_agents"]
    list_display = [
        "name",
        "state_badge",
        "profile_name",
        "delivery_kind",
        "sample_rate",
        "rate_limit",
        "events_n",
        "nudges_n",
        "redirects_n",
        "halts_n",
        "dropped_n",
        "unacked_n",
    ]
    list_filter = ["state", "delivery"]
    search_fields = ["name"]
    list_select_related = ["profile"]
    exclude = ["webhook_secret", "state"]
    readonly_fields = (
        "name",
        "state_badge",
        "profile",
        "halted_at",
        "halted_reason",
        "halt_correction_link",
        "secret_status",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("name", "state_badge", "profile", "created_at", "updated_at")}),
        ("Halt", {"fields": ("halted_at", "halted_reason", "halt_correction_link")}),
        ("Evaluation", {"fields": ("sample_rate", "event_types", "sync_deadline_ms")}),
        ("Rate limit", {"fields": ("max_corrections_per_window", "window_seconds")}),
        ("Delivery", {"fields": ("delivery", "webhook_url", "secret_status")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[MonitoredAgent]:
        return agents_with_counts(agents=super().get_queryset(request))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # agents are declared in agents.yaml, with their profile (`vigilo_agents apply`)

    def has_delete_permission(self, request: HttpRequest, obj: MonitoredAgent | None = None) -> bool:
        return False

    # -- columns and read-only fields

    @admin.display(description="state", ordering="state")
    def state_badge(self, agent: MonitoredAgent) -> str:
        return badge(agent.state, STATE_COLORS.get(agent.state, "#6e7781"))

    @admin.display(description="profile", ordering="profile__name")
    def profile_name(self, agent: MonitoredAgent) -> str:
        return agent.profile.name

    @admin.display(description="delivery", ordering="delivery")
    def delivery_kind(self, agent: MonitoredAgent) -> str:
        return agent.delivery

    @admin.display(description="rate limit")
    def rate_limit(self, agent: MonitoredAgent) -> str:
        return f"{agent.max_corrections_per_window} / {agent.window_seconds} s"

    @admin.display(description="events", ordering="events_n")
    def events_n(self, agent: MonitoredAgent) -> int:
        return int(getattr(agent, "events_n", 0))

    @admin.display(description="nudges", ordering="nudges_n")
    def nudges_n(self, agent: MonitoredAgent) -> int:
        return int(getattr(agent, "nudges_n", 0))

    @admin.display(description="redirects", ordering="redirects_n")
    def redirects_n(self, agent: MonitoredAgent) -> int:
        return int(getattr(agent, "redirects_n", 0))

    @admin.display(description="halts", ordering="halts_n")
    def halts_n(self, agent: MonitoredAgent) -> int:
        return int(getattr(agent, "halts_n", 0))

    @admin.display(description="dropped", ordering="dropped_n")
    def dropped_n(self, agent: MonitoredAgent) -> int:
        return int(getattr(agent, "dropped_n", 0))

    @admin.display(description="unacked", ordering="unacked_n")
    def unacked_n(self, agent: MonitoredAgent) -> int:
        return int(getattr(agent, "unacked_n", 0))

    @admin.display(description="halted by")
    def halt_correction_link(self, agent: MonitoredAgent) -> str:
        if agent.halt_correction_id is None:
            return "-"
        url = reverse("admin:online_correctionsignal_change", args=[agent.halt_correction_id])
        return format_html('<a href="{}">correction {}</a>', url, agent.halt_correction_id)

    @admin.display(description="webhook secret")
    def secret_status(self, agent: MonitoredAgent) -> str:
        return "set (never shown)" if agent.webhook_secret else "none"

    # -- settings: through agent_apply, as agents.yaml would

    def save_model(self, request: HttpRequest, obj: MonitoredAgent, form: Any, change: bool) -> None:
        spec = AgentSpec(
            name=obj.name,
            profile_document=obj.profile.document,
            sample_rate=obj.sample_rate,
            event_types=tuple(obj.event_types),
            max_corrections_per_window=obj.max_corrections_per_window,
            window_seconds=obj.window_seconds,
            delivery=obj.delivery,
            webhook_url=obj.webhook_url,
            sync_deadline_ms=obj.sync_deadline_ms,
        )
        try:
            agent_apply(spec=spec, actor=actor_of(request))
        except EventInvalid as exc:
            setattr(request, _REFUSED, True)
            self.message_user(request, f"Nothing changed: {exc}", messages.ERROR)

    def log_change(self, request: HttpRequest, obj: MonitoredAgent, message: Any) -> Any:
        if getattr(request, _REFUSED, False):
            return None
        return super().log_change(request, obj, message)

    def response_change(self, request: HttpRequest, obj: MonitoredAgent) -> HttpResponse:
        if getattr(request, _REFUSED, False):
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    # -- resume: the changelist action and the change page's form

    @admin.action(description="Resume selected halted agents (with the reason given)", permissions=["change"])
    def resume_agents(self, request: HttpRequest, queryset: QuerySet[MonitoredAgent]) -> None:
        self.resume(request, names=list(queryset.values_list("name", flat=True)), reason=request.POST.get("reason"))

    def resume(self, request: HttpRequest, *, names: list[str], reason: str | None) -> None:
        """Resume each named agent with the reason, audited as `admin:<user>`; an error message, and nothing
        changed, for a missing reason or an agent that is not halted."""
        reason = (reason or "").strip()
        if not reason:
            self.message_user(
                request, "Nothing resumed: a reason is required (say why the agent may go on).", messages.ERROR
            )
            return
        resumed, refused = [], []
        for name in names:
            try:
                agent_resume(agent_name=name, actor=actor_of(request), reason=reason)
            except StateConflict as exc:
                refused.append(str(exc))
            else:
                resumed.append(name)
        if resumed:
            self.message_user(request, f"Resumed {', '.join(resumed)}: {reason}", messages.SUCCESS)
        if refused:
            self.message_user(request, f"Not resumed, nothing changed: {'; '.join(refused)}", messages.ERROR)

    def resume_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        agent = get_object_or_404(MonitoredAgent, pk=object_id)
        if not self.has_change_permission(request, agent):
            raise PermissionDenied
        self.resume(request, names=[agent.name], reason=request.POST.get("reason"))
        return HttpResponseRedirect(reverse("admin:online_monitoredagent_change", args=[agent.pk]))

    def get_urls(self) -> list[URLPattern]:
        resume = path(
            "<int:object_id>/resume/",
            self.admin_site.admin_view(self.resume_view),
            name="online_monitoredagent_resume",
        )
        return [resume, *super().get_urls()]

    # -- the change page: halt, chart, recent events and corrections, audit

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        agent = MonitoredAgent.objects.filter(pk=object_id).first() if object_id.isdigit() else None
        if agent is not None:
            window = request.GET.get("window", "24h")
            context = agent_context(agent=agent, window=window if window in CHART_WINDOWS else "24h")
            context["vigilo_can_resume"] = self.has_change_permission(request, agent)
            extra_context = {**(extra_context or {}), **context}
        return super().change_view(request, object_id, form_url, extra_context)


def agent_context(*, agent: MonitoredAgent, window: str) -> dict[str, Any]:
    """What the agent's page shows under its settings: a query each."""
    bars = violation_bars(agent=agent, hours=CHART_WINDOWS[window], now=timezone.now())
    events = (
        EvalEvent.objects.filter(agent=agent)
        .order_by("-id")
        .values("id", "message_id", "event_type", "status", "path", "received_at", "correction__severity")[:RECENT]
    )
    corrections = (
        CorrectionSignal.objects.filter(agent=agent)
        .order_by("-id")
        .values("id", "severity", "reason", "dropped", "acked_at", "created_at", "event__message_id")[:RECENT]
    )
    audit = (
        AgentAudit.objects.filter(agent=agent)
        .order_by("-id")
        .values("id", "action", "actor", "reason", "created_at", "correction_id")[:RECENT]
    )
    return {
        "vigilo_agent": agent,
        "vigilo_state": badge(agent.state, STATE_COLORS.get(agent.state, "#6e7781")),
        "vigilo_window": window,
        "vigilo_windows": list(CHART_WINDOWS),
        "vigilo_chart": violations_svg(bars),
        "vigilo_chart_totals": [(s, sum(b.counts[s] for b in bars), SEVERITY_COLORS[s]) for s in SEVERITIES],
        "vigilo_events": [{**e, "severity": e["correction__severity"]} for e in events],
        "vigilo_corrections": list(corrections),
        "vigilo_audit": list(audit),
        "vigilo_events_url": reverse("admin:online_evalevent_changelist") + f"?agent__id__exact={agent.pk}",
        "vigilo_corrections_url": reverse("admin:online_correctionsignal_changelist") + f"?agent__id__exact={agent.pk}",
    }


# -- events, corrections, audit, webhooks: read-only ------------------------------------------------------------


class OnlineResultInline(_ResultInlineBase):
    model = OnlineResult
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "binding_id",
        "evaluator_version",
        "outcome",
        "judgment",
        "score",
        "measurement",
        "findings",
        "explanation",
        "error_code",
        "error_message",
        "duration_ms",
    )

    def has_add_permission(self, request: HttpRequest, obj: EvalEvent | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: EvalEvent | None = None) -> bool:
        return False


@admin.register(EvalEvent)
class EvalEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "agent", "message_id", "event_type", "status", "path", "severity", "received_at"]
    list_filter = ["agent", "event_type", "status", "path"]
    search_fields = ["message_id", "trace_id"]
    list_select_related = ["agent", "correction"]
    show_full_result_count = False  # a count of every event on each page is the slow part of a big table
    readonly_fields = (
        "agent",
        "message_id",
        "event_type",
        "status",
        "path",
        "correction_link",
        "deferred",
        "payload",
        "trace_id",
        "span_id",
        "timestamp",
        "received_at",
        "evaluated_at",
        "profile",
    )
    fields = readonly_fields
    inlines = [OnlineResultInline]

    @admin.display(description="correction")
    def severity(self, event: EvalEvent) -> str:
        correction = getattr(event, "correction", None)  # none: no correction (the reverse one-to-one raises)
        if correction is None:
            return "-"
        return badge(correction.severity, SEVERITY_COLORS.get(correction.severity, "#6e7781"))

    @admin.display(description="correction")
    def correction_link(self, event: EvalEvent) -> str:
        correction = getattr(event, "correction", None)
        if correction is None:
            return "-"
        url = reverse("admin:online_correctionsignal_change", args=[correction.pk])
        return format_html('<a href="{}">{}</a> {}', url, correction.severity, correction.reason)


class AckFilter(admin.SimpleListFilter):
    title = "ack"
    parameter_name = "ack"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("unacked", "delivered, not acked"), ("acked", "acked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "unacked":
            return queryset.filter(dropped=False, acked_at__isnull=True)
        if self.value() == "acked":
            return queryset.filter(acked_at__isnull=False)
        return queryset


@admin.register(CorrectionSignal)
class CorrectionSignalAdmin(ReadOnlyAdmin):
    list_display = ["id", "agent", "severity_badge", "short_reason", "dropped", "acked", "event", "created_at"]
    list_filter = ["severity", "dropped", AckFilter, "agent"]
    search_fields = ["reason", "delivery_id", "event__message_id"]
    list_select_related = ["agent", "event"]
    show_full_result_count = False
    readonly_fields = (
        "agent",
        "event",
        "severity_badge",
        "reason",
        "dropped",
        "acked_at",
        "delivery_id",
        "payload",
        "created_at",
    )
    fields = readonly_fields

    @admin.display(description="severity", ordering="severity")
    def severity_badge(self, correction: CorrectionSignal) -> str:
        return badge(correction.severity, SEVERITY_COLORS.get(correction.severity, "#6e7781"))

    @admin.display(description="reason")
    def short_reason(self, correction: CorrectionSignal) -> str:
        return correction.reason[:100]

    @admin.display(description="acked", boolean=True)
    def acked(self, correction: CorrectionSignal) -> bool | None:
        if correction.dropped:
            return None  # never delivered: nothing to ack
        return correction.acked_at is not None


@admin.register(AgentAudit)
class AgentAuditAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "agent", "action", "actor", "reason", "correction"]
    list_filter = ["action", "agent"]
    search_fields = ["actor", "reason"]
    list_select_related = ["agent", "correction"]
    readonly_fields = ("agent", "action", "actor", "reason", "correction", "created_at")
    fields = readonly_fields


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "agent",
        "correction",
        "status_badge",
        "attempts",
        "last_status",
        "short_error",
        "created_at",
        "delivered_at",
    ]
    list_filter = ["status"]  # status = dead: the deliveries that need a person
    list_select_related = ["correction__agent"]
    readonly_fields = (
        "correction",
        "status_badge",
        "attempts",
        "last_status",
        "last_error",
        "created_at",
        "delivered_at",
    )
    fields = readonly_fields
    actions = ["retry_dead"]

    @admin.display(description="agent")
    def agent(self, delivery: WebhookDelivery) -> str:
        return delivery.correction.agent.name

    @admin.display(description="status", ordering="status")
    def status_badge(self, delivery: WebhookDelivery) -> str:
        return badge(delivery.status, DELIVERY_COLORS.get(delivery.status, "#6e7781"))

    @admin.display(description="last error")
    def short_error(self, delivery: WebhookDelivery) -> str:
        return delivery.last_error[:80]

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("online.change_webhookdelivery")

    @admin.action(description="Retry dead deliveries", permissions=["retry"])
    def retry_dead(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        ids = list(queryset.filter(status=WebhookDelivery.Status.DEAD).values_list("id", flat=True))
        count = webhooks_retry_dead(ids=ids)
        self.message_user(request, f"{count} dead deliver{'y' if count == 1 else 'ies'} queued again", messages.SUCCESS)


@admin.register(OnlineProfile)
class OnlineProfileAdmin(ReadOnlyAdmin):
    list_display = ["name", "content_hash", "created_at"]
    search_fields = ["name", "content_hash"]
    readonly_fields = ("name", "content_hash", "document", "pins", "created_at")
    fields = readonly_fields
