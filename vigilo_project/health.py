"""Operational endpoints, no authentication: `/healthz` (is this deployment able to work?) and `/metrics`.

`/healthz` checks the database, the broker and that at least one worker answers a ping; it answers 200 when
all pass and 503 otherwise, with one entry per check. In the embedded mode there is no broker or separate
worker, so only the database is checked. `/metrics` is the Prometheus text format, computed from the database
at scrape time (any web process can serve it; nothing is kept in memory between scrapes).
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Count, Min, Q, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from exporters.selectors import export_backlog
from online.models import CorrectionSignal, EvalEvent, MonitoredAgent, WebhookDelivery
from online.selectors import (
    agent_names,
    agent_state_counts,
    correction_counts,
    event_counts,
    unacked_counts,
    webhook_delivery_counts,
)
from outbox.models import OutboxEvent
from runs.models import Chunk, EvaluatorResult, ExecutionAggregate, Run
from vigilo_project.celery import app


def _check_database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True}


def _check_broker() -> dict[str, Any]:
    timeout = settings.VIGILO_HEALTH_PING_TIMEOUT_S
    with app.connection_for_write(connect_timeout=timeout) as conn:
        conn.ensure_connection(max_retries=1, timeout=timeout)  # type: ignore[arg-type]  # stubs: int; kombu takes float s
    return {"ok": True}


def _check_workers() -> dict[str, Any]:
    # None only without reply=True, which ping always passes
    replies = app.control.ping(timeout=settings.VIGILO_HEALTH_PING_TIMEOUT_S, limit=1) or []
    names = sorted(name for reply in replies for name in reply)
    if not names:
        return {"ok": False, "error": "no worker answered a ping"}
    return {"ok": True, "seen": names}


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, Any] = {}
    probes = [("database", _check_database)]
    if not settings.VIGILO_EMBEDDED:
        probes += [("broker", _check_broker), ("workers", _check_workers)]
    for name, probe in probes:
        started = time.monotonic()
        try:
            result = probe()
        except Exception as exc:  # boundary: a failing dependency is reported, never a 500
            result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
        result["ms"] = round((time.monotonic() - started) * 1000, 1)
        checks[name] = result
        if name == "broker" and not result["ok"]:
            checks["workers"] = {"ok": False, "error": "broker unreachable"}
            break
    ok = all(c["ok"] for c in checks.values())
    body = {"status": "ok" if ok else "fail", "mode": "embedded" if settings.VIGILO_EMBEDDED else "distributed"}
    return JsonResponse({**body, "checks": checks}, status=200 if ok else 503)


def _collect() -> list[Any]:
    runs = GaugeMetricFamily("vigilo_runs", "Runs by state.", labels=["state"])
    by_state = dict(Run.objects.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
    for state in Run.State.values:
        runs.add_metric([state], by_state.get(state, 0))

    chunks = GaugeMetricFamily("vigilo_chunks", "Chunks by state.", labels=["state"])
    by_state = dict(Chunk.objects.values_list("state").annotate(n=Count("id")).values_list("state", "n"))
    for state in Chunk.State.values:
        chunks.add_metric([state], by_state.get(state, 0))

    evaluated = CounterMetricFamily(
        "vigilo_executions_evaluated", "Executions evaluated (aggregated), by status.", labels=["status"]
    )
    by_status = dict(
        ExecutionAggregate.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    for status in ExecutionAggregate.Status.values:
        evaluated.add_metric([status], by_status.get(status, 0))

    errors = CounterMetricFamily(
        "vigilo_evaluator_errors", "Evaluator results with an error, by code.", labels=["code"]
    )
    for code, n in (
        EvaluatorResult.objects.filter(outcome=EvaluatorResult.Outcome.ERROR)
        .values_list("error_code")
        .annotate(n=Count("id"))
        .values_list("error_code", "n")
    ):
        errors.add_metric([code or "unknown"], n)

    now = timezone.now()
    outbox = OutboxEvent.objects.aggregate(
        pending=Count("id", filter=Q(status=OutboxEvent.Status.PENDING)),
        dead=Count("id", filter=Q(status=OutboxEvent.Status.DEAD)),
        oldest_due=Min("available_at", filter=Q(status=OutboxEvent.Status.PENDING, available_at__lte=now)),
    )
    outbox_rows = GaugeMetricFamily(
        "vigilo_outbox_events", "Outbox rows not yet published, by status.", labels=["status"]
    )
    outbox_rows.add_metric(["pending"], outbox["pending"])
    outbox_rows.add_metric(["dead"], outbox["dead"])
    lag = GaugeMetricFamily("vigilo_outbox_relay_lag_seconds", "Age of the oldest due pending outbox row (0: none).")
    lag.add_metric([], (now - outbox["oldest_due"]).total_seconds() if outbox["oldest_due"] else 0.0)

    recoveries = CounterMetricFamily(
        "vigilo_chunk_lease_recoveries", "Expired chunk leases returned to pending (summed over chunks)."
    )
    recoveries.add_metric([], Chunk.objects.aggregate(n=Sum("recovery_count"))["n"] or 0)
    failed_chunks = Chunk.objects.filter(state=Chunk.State.FAILED).count()
    lost = GaugeMetricFamily("vigilo_chunks_failed_after_recovery_limit", "Chunks failed past the recovery limit.")
    lost.add_metric([], failed_chunks)
    return [
        runs,
        chunks,
        evaluated,
        errors,
        outbox_rows,
        lag,
        recoveries,
        lost,
        *_collect_online(),
        *_collect_exports(),
    ]


def _collect_online() -> list[Any]:
    """Live evaluation, one GROUP BY a family (and the agents' names): every agent gets every series, zeros
    included, so a rate over a new agent's first correction is not lost."""
    names = agent_names()
    # A counter's series never go down, so it counts events by the status they keep (evaluated, unsampled,
    # filtered); the pending ones, which move on, are a gauge.
    events = CounterMetricFamily(
        "vigilo_online_events", "Events agents emitted and settled, by agent and status.", labels=["agent", "status"]
    )
    pending = GaugeMetricFamily(
        "vigilo_online_events_pending", "Events waiting for a worker's evaluation, by agent.", labels=["agent"]
    )
    by_key = event_counts()
    for name in names:
        for status in EvalEvent.Status.values:
            if status == EvalEvent.Status.PENDING:
                pending.add_metric([name], by_key.get((name, status), 0))
            else:
                events.add_metric([name, status], by_key.get((name, status), 0))

    corrections = CounterMetricFamily(
        "vigilo_online_corrections",
        "Corrections issued, by agent, severity and outcome (delivered, or dropped by the rate limit).",
        labels=["agent", "severity", "outcome"],
    )
    by_correction = correction_counts()
    for name in names:
        for severity in CorrectionSignal.Severity.values:
            for outcome, dropped in (("delivered", False), ("dropped", True)):
                corrections.add_metric([name, severity, outcome], by_correction.get((name, severity, dropped), 0))

    unacked = GaugeMetricFamily(
        "vigilo_online_corrections_unacked", "Delivered corrections the agent has not acked.", labels=["agent"]
    )
    by_agent = unacked_counts()
    for name in names:
        unacked.add_metric([name], by_agent.get(name, 0))

    agents = GaugeMetricFamily("vigilo_online_agents", "Monitored agents, by state.", labels=["state"])
    by_state = agent_state_counts()
    for state in MonitoredAgent.State.values:
        agents.add_metric([state], by_state.get(state, 0))

    webhooks = GaugeMetricFamily(
        "vigilo_online_webhook_deliveries", "Webhook deliveries of corrections, by status.", labels=["status"]
    )
    by_status = webhook_delivery_counts()
    for status in WebhookDelivery.Status.values:
        webhooks.add_metric([status], by_status.get(status, 0))
    return [events, pending, corrections, unacked, agents, webhooks]


def _collect_exports() -> list[Any]:
    """Per destination: what it still owes, what is dead, and the lag (age of the oldest pending batch)."""
    backlog = export_backlog(destinations=sorted(settings.VIGILO_EXPORT_DESTINATIONS))
    pending = GaugeMetricFamily(
        "vigilo_export_pending_records", "Records not yet accepted by a destination.", labels=["destination"]
    )
    dead = GaugeMetricFamily(
        "vigilo_export_dead_records", "Records of dead export batches (retry them in admin).", labels=["destination"]
    )
    delivered = CounterMetricFamily(
        "vigilo_export_delivered_records", "Records a destination accepted.", labels=["destination"]
    )
    lag = GaugeMetricFamily(
        "vigilo_export_lag_seconds", "Age of the oldest pending export batch (0: none).", labels=["destination"]
    )
    now = timezone.now()
    for name, row in sorted(backlog.items()):
        pending.add_metric([name], row["pending_records"])
        dead.add_metric([name], row["dead_records"])
        delivered.add_metric([name], row["delivered_records"])
        oldest = row["oldest_pending"]
        lag.add_metric([name], (now - oldest).total_seconds() if oldest else 0.0)
    return [pending, dead, delivered, lag]


class _DatabaseCollector:
    def collect(self) -> Any:
        yield from _collect()


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_DatabaseCollector())
    try:
        body = generate_latest(registry)
    except DatabaseError as exc:
        return HttpResponse(f"# database unavailable: {type(exc).__name__}\n", status=503, content_type="text/plain")
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
