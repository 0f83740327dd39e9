"""Reads of runs used by the API and the admin: progress, dimension failures, run comparison."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db.models import Count

from runs.models import Chunk, EvaluatorResult, ExecutionAggregate, Run

EXECUTION_STATUSES = ("passed", "failed", "error")


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
    return {b.get("id"): b.get("dimension") for b in bindings if isinstance(b, dict)}


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
    changes = []
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
