"""Live evaluation's reads: an agent's corrections after a cursor (the long-poll), its state, and the counts the
metrics and the admin show."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce, TruncHour

from online.messages import correction_body
from online.models import CorrectionSignal, EvalEvent, MonitoredAgent, WebhookDelivery

CORRECTIONS_PAGE = 100


def corrections_after(
    *, agent: MonitoredAgent, after: int, unacked: bool = False, limit: int = CORRECTIONS_PAGE
) -> list[dict[str, Any]]:
    """The agent's delivered corrections with a cursor above `after`, oldest first (dropped ones never show)."""
    rows = CorrectionSignal.objects.filter(agent=agent, dropped=False, id__gt=after).select_related("event")
    if unacked:
        rows = rows.filter(acked_at__isnull=True)
    return [correction_body(c, agent=agent, event=c.event) for c in rows.order_by("id")[:limit]]


def agent_view(agent: MonitoredAgent) -> dict[str, Any]:
    """An agent as the API shows it (no secret)."""
    halt = agent.halt_correction
    return {
        "name": agent.name,
        "state": agent.state,
        "halted_at": agent.halted_at.isoformat() if agent.halted_at else None,
        "halted_reason": agent.halted_reason,
        "halt_id": str(halt.delivery_id) if halt else None,
        "profile": {"name": agent.profile.name, "content_hash": agent.profile.content_hash},
        "sample_rate": agent.sample_rate,
        "event_types": agent.event_types,
        "rate_limit": {
            "max_corrections_per_window": agent.max_corrections_per_window,
            "window_seconds": agent.window_seconds,
        },
        "delivery": agent.delivery,
        "sync_deadline_ms": agent.sync_deadline_ms,
    }


def event_counts() -> dict[tuple[str, str], int]:
    """(agent name, status) -> events."""
    rows = EvalEvent.objects.order_by().values_list("agent__name", "status").annotate(n=Count("id"))
    return {(name, status): n for name, status, n in rows}


def correction_counts() -> dict[tuple[str, str, bool], int]:
    """(agent name, severity, dropped) -> corrections."""
    rows = CorrectionSignal.objects.order_by().values_list("agent__name", "severity", "dropped").annotate(n=Count("id"))
    return {(name, severity, dropped): n for name, severity, dropped, n in rows}


def unacked_counts() -> dict[str, int]:
    """agent name -> delivered corrections not acked."""
    rows = (
        CorrectionSignal.objects.filter(dropped=False, acked_at__isnull=True)
        .order_by()
        .values_list("agent__name")
        .annotate(n=Count("id"))
    )
    return dict(rows)


def agent_state_counts() -> dict[str, int]:
    """state -> agents."""
    rows = MonitoredAgent.objects.order_by().values_list("state").annotate(n=Count("id"))
    return dict(rows)


def agent_names() -> list[str]:
    return list(MonitoredAgent.objects.order_by("name").values_list("name", flat=True))


def webhook_delivery_counts() -> dict[str, int]:
    """status -> webhook deliveries."""
    rows = WebhookDelivery.objects.order_by().values_list("status").annotate(n=Count("id"))
    return dict(rows)


def _per_agent(rows: QuerySet[Any]) -> Coalesce:
    """The number of `rows` of each agent, as a correlated subquery: one query for a page of agents."""
    counted = rows.filter(agent=OuterRef("pk")).order_by().values("agent").annotate(n=Count("id")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def agents_with_counts(*, agents: QuerySet[MonitoredAgent] | None = None) -> QuerySet[MonitoredAgent]:
    """Agents annotated with their counts: events, corrections by severity (dropped ones included), dropped, and
    delivered corrections not acked."""
    rows = agents if agents is not None else MonitoredAgent.objects.all()
    corrections = CorrectionSignal.objects.all()
    return rows.annotate(
        events_n=_per_agent(EvalEvent.objects.all()),
        nudges_n=_per_agent(corrections.filter(severity=CorrectionSignal.Severity.NUDGE)),
        redirects_n=_per_agent(corrections.filter(severity=CorrectionSignal.Severity.REDIRECT)),
        halts_n=_per_agent(corrections.filter(severity=CorrectionSignal.Severity.HALT)),
        dropped_n=_per_agent(corrections.filter(dropped=True)),
        unacked_n=_per_agent(corrections.filter(dropped=False, acked_at__isnull=True)),
    )


def violations_by_hour(*, agent: MonitoredAgent, since: datetime) -> dict[tuple[datetime, str], int]:
    """(hour in UTC, severity) -> the agent's corrections created in that hour since `since`, dropped included:
    a violation counts whether or not the rate limit let it through."""
    rows = (
        CorrectionSignal.objects.filter(agent=agent, created_at__gte=since)
        .annotate(hour=TruncHour("created_at", tzinfo=UTC))
        .order_by()
        .values_list("hour", "severity")
        .annotate(n=Count("id"))
    )
    return {(hour, severity): n for hour, severity, n in rows}
