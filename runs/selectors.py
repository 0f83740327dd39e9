"""Reads of runs: the verdict assembled from the stored aggregates, progress, the API's filters, dimension
failures, run comparison, the current results of executions."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Count, F, QuerySet
from django.db.models.functions import JSONArray

from evaluators.model_broker import usage_summary
from gating.profile import ProfileSpec, profile_parse
from gating.scoring import AggregateScore, BindingScore
from gating.verdict import ExecutionSummary, Operational, verdict_compute
from runs.models import Chunk, EvaluatorResult, Execution, ExecutionAggregate, Run
from vigilo_project.gcpause import gc_paused

EXECUTION_STATUSES = ("passed", "failed", "error")


def run_profile(*, run: Run) -> ProfileSpec:
    """The run's pinned profile. It was checked when it was stored, under the rules of that day: read it as it
    was accepted (a profile stored before a pass rule was required still has its runs finish)."""
    return profile_parse(data=run.profile_version.document, require_pass_rule=False)


def run_summaries(*, run: Run) -> list[ExecutionSummary]:
    """Every aggregated execution of the run, for the verdict: plain column values, no model instances.

    The JSON columns of a row come as one JSON array, decoded once: decoding them one by one was half the time
    of finalizing a run of 10,000 cases.
    """
    out = []
    packed = JSONArray("execution__tags", "dimension_scores", "binding_scores", "blocking_failures", "reasons")
    rows = (
        ExecutionAggregate.objects.filter(run=run)
        .order_by("execution__ordinal")
        .values_list("execution_id", "execution__case_id", "status", "aggregate_score", packed)
    )
    for execution_id, case_id, status, score, packed_values in rows.iterator(chunk_size=5000):
        # SQLite's json_array() keeps JSON held in TEXT columns as strings; every packed value is a list or object.
        tags, dimensions, bindings, blocking, reasons = (
            json.loads(v) if isinstance(v, str) else v for v in packed_values
        )
        agg = AggregateScore(
            status=status,
            aggregate_score=score,
            dimension_scores=dimensions,
            binding_scores={k: BindingScore(binding_id=k, **v) for k, v in bindings.items()},
            blocking_failures=tuple(blocking),
            reasons=tuple(reasons),
        )
        out.append(ExecutionSummary(execution_id=str(execution_id), case_id=case_id, tags=tuple(tags), aggregate=agg))
    return out


@gc_paused()  # a summary per execution, all alive until the verdict is computed: see vigilo_project/gcpause.py
def run_verdict(*, run: Run) -> dict[str, Any]:
    profile = run_profile(run=run)
    failed_chunks = Chunk.objects.filter(run=run, state=Chunk.State.FAILED)
    reasons = sorted(set(failed_chunks.values_list("failure_reason", flat=True)))
    operational = Operational(
        expected_executions=run.expected_executions,
        failed_chunks=failed_chunks.count(),
        cancelled=run.state == Run.State.CANCELLED,
        failure_reason="; ".join(r for r in [run.failure_reason, *reasons] if r) or None,
    )
    verdict = verdict_compute(profile=profile, executions=run_summaries(run=run), operational=operational)
    usage = [
        u
        for current in EvaluatorResult.objects.filter(run=run, attempt=F("execution__attempt"))
        .exclude(model_usage=[])
        .values_list("model_usage", flat=True)
        .iterator(chunk_size=2000)
        for u in current
    ]
    verdict["model_usage"] = usage_summary(usage)
    verdict["isolation"] = _isolation_summary(run=run, profile=profile)
    if run.options.get("target"):
        verdict["agent"] = _agent_summary(run=run)
    return verdict


def _agent_summary(*, run: Run) -> dict[str, Any]:
    """What the run target produced: outputs from the agent, and cases it gave none for (each an error)."""
    target = run.options["target"]
    calls = Execution.objects.filter(run=run)
    return {
        "url": target["url"],
        "protocol": target["protocol"],
        "outputs": calls.filter(agent_call__status="ok").count(),
        "failed": calls.filter(agent_call__status="error").count(),
    }


def _isolation_summary(*, run: Run, profile: ProfileSpec) -> dict[str, Any]:
    """How the current results were isolated; a non-zero `mismatch` means reuse changed at least one result."""
    rows = (
        EvaluatorResult.objects.filter(run=run, attempt=F("execution__attempt"))
        .values_list("isolation")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = {choice: 0 for choice in EvaluatorResult.Isolation.values}
    counts.update(dict(rows))
    return {"instance_reuse": profile.instance_reuse, "reuse_recheck_rate": profile.reuse_recheck_rate, **counts}


def runs_filter(
    *,
    queryset: QuerySet[Run],
    state: str | None = None,
    gate: str | None = None,
    profile: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> QuerySet[Run]:
    """Runs in a state, with a gate, of a profile (by name), created in a window (bounds excluded)."""
    if state is not None:
        queryset = queryset.filter(state=state)
    if gate is not None:
        queryset = queryset.filter(gate=gate)
    if profile is not None:
        queryset = queryset.filter(profile_version__profile__name=profile)
    if created_after is not None:
        queryset = queryset.filter(created_at__gt=created_after)
    if created_before is not None:
        queryset = queryset.filter(created_at__lt=created_before)
    return queryset


def executions_filter(
    *,
    run: Run,
    queryset: QuerySet[Execution],
    status: str | None = None,
    failed_dimension: str | None = None,
    tag: str | None = None,
) -> QuerySet[Execution]:
    """A run's executions by aggregate status ("pending": not aggregated yet), by a dimension with a binding that
    failed or did not complete, and by case tag."""
    if status == "pending":
        queryset = queryset.filter(aggregate__isnull=True)
    elif status is not None:
        queryset = queryset.filter(aggregate__status=status)
    if failed_dimension is not None:
        queryset = queryset.filter(id__in=run_executions_failing_dimension(run=run, dimension=failed_dimension))
    if tag is not None:
        queryset = _with_tag(queryset, tag)
    return queryset


def _with_tag(queryset: QuerySet[Execution], tag: str) -> QuerySet[Execution]:
    if connection.vendor == "postgresql":
        return queryset.filter(tags__contains=[tag])
    # SQLite has no JSON containment lookup in Django; its json_each() does the same inside the database.
    table = connection.ops.quote_name(Execution._meta.db_table)
    return queryset.extra(where=[f"EXISTS (SELECT 1 FROM json_each({table}.tags) WHERE value = %s)"], params=[tag])


def run_progress(*, run: Run) -> dict[str, Any]:
    """Results written / expected, executions by aggregate status (plus pending), chunks by state."""
    by_status = dict(
        ExecutionAggregate.objects.filter(run=run).values_list("status").annotate(n=Count("id")).order_by()
    )
    executions = {s: by_status.get(s, 0) for s in EXECUTION_STATUSES}
    executions["pending"] = max(run.expected_executions - sum(executions.values()), 0)
    chunks = dict(Chunk.objects.filter(run=run).values_list("state").annotate(n=Count("id")).order_by())
    return {
        "results_written": EvaluatorResult.objects.filter(run=run).count(),
        "results_expected": run.expected_results,
        "executions_expected": run.expected_executions,
        "executions": executions,
        "chunks": {s: chunks.get(s, 0) for s in Chunk.State.values},
    }


def run_binding_dimensions(*, run: Run) -> dict[str, str]:
    """binding id -> dimension, from the run's pinned profile document."""
    bindings = (run.profile_version.document or {}).get("bindings") or []
    return {
        str(b.get("id")): str(b.get("dimension"))
        for b in bindings
        if isinstance(b, dict) and isinstance(b.get("id"), str) and isinstance(b.get("dimension"), str)
    }


def run_executions_failing_dimension(*, run: Run, dimension: str) -> list[int]:
    """Executions with a binding of `dimension` that failed or did not complete."""
    bindings = {b for b, d in run_binding_dimensions(run=run).items() if d == dimension}
    out = []
    rows = ExecutionAggregate.objects.filter(run=run).values_list("execution_id", "binding_scores")
    for execution_id, scores in rows.iterator(chunk_size=2000):
        for binding_id, score in (scores or {}).items():
            if binding_id in bindings and (score.get("outcome") != "completed" or score.get("passed") is False):
                out.append(execution_id)
                break
    return out


def _dimension_means(run: Run) -> tuple[dict[str, str], dict[str, float | None]]:
    statuses: dict[str, str] = {}
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    dims: set[str] = set()
    rows = ExecutionAggregate.objects.filter(run=run).values_list("execution__case_id", "status", "dimension_scores")
    for case_id, status, scores in rows.iterator(chunk_size=2000):
        statuses[case_id] = status
        for dim, value in (scores or {}).items():
            dims.add(dim)
            if isinstance(value, int | float):
                sums[dim] = sums.get(dim, 0.0) + value
                counts[dim] = counts.get(dim, 0) + 1
    means = {d: (sums[d] / counts[d] if counts.get(d) else None) for d in sorted(dims)}
    return statuses, means


def run_compare(*, run: Run, baseline: Run, max_changes: int = 1000) -> dict[str, Any]:
    """Per-case status changes and per-dimension mean deltas, from the runs' ExecutionAggregate rows."""
    current, current_means = _dimension_means(run)
    base, base_means = _dimension_means(baseline)
    changes: list[dict[str, str | None]] = []
    transitions: Counter[str] = Counter()
    for case_id in sorted(set(current) | set(base)):
        before, after = base.get(case_id), current.get(case_id)
        if before == after:
            continue
        transitions[f"{before or 'absent'}->{after or 'absent'}"] += 1
        if len(changes) < max_changes:
            changes.append({"case_id": case_id, "baseline_status": before, "status": after})
    dimensions = {}
    for dim in sorted(set(current_means) | set(base_means)):
        a, b = current_means.get(dim), base_means.get(dim)
        dimensions[dim] = {
            "baseline_mean": b,
            "mean": a,
            "delta": (a - b) if a is not None and b is not None else None,
        }
    return {
        "run": str(run.id),
        "baseline": str(baseline.id),
        "cases_compared": len(set(current) & set(base)),
        "changed": sum(transitions.values()),
        "transitions": dict(sorted(transitions.items())),
        "changes": changes,
        "changes_truncated": sum(transitions.values()) > len(changes),
        "dimensions": dimensions,
    }


def result_current(*, execution_ids: list[int]) -> dict[int, list[EvaluatorResult]]:
    """The results of each execution's current attempt (stale attempts' rows are left out)."""
    out: dict[int, list[EvaluatorResult]] = {}
    rows = (
        EvaluatorResult.objects.filter(execution_id__in=execution_ids)
        .select_related("execution", "evaluator_version__evaluator")
        .order_by("binding_id")
    )
    for r in rows:
        if r.attempt == r.execution.attempt:
            out.setdefault(r.execution_id, []).append(r)
    return out
