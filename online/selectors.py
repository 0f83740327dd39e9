"""Live evaluation's reads: an agent's corrections after a cursor (the long-poll), its state, and the counts the
metrics and the admin show."""

from __future__ import annotations

from typing import Any

from django.db.models import Count

from online.messages import correction_body
from online.models import CorrectionSignal, EvalEvent, MonitoredAgent

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
    rows = EvalEvent.objects.values_list("agent__name", "status").annotate(n=Count("id"))
    return {(name, status): n for name, status, n in rows}


def correction_counts() -> dict[tuple[str, str, bool], int]:
    """(agent name, severity, dropped) -> corrections."""
    rows = CorrectionSignal.objects.values_list("agent__name", "severity", "dropped").annotate(n=Count("id"))
    return {(name, severity, dropped): n for name, severity, dropped, n in rows}


def unacked_counts() -> dict[str, int]:
    rows = (
        CorrectionSignal.objects.filter(dropped=False, acked_at__isnull=True)
        .values_list("agent__name")
        .annotate(n=Count("id"))
    )
    return dict(rows)
