"""A run's results as export records (exporters.records), written with the results they carry.

`chunk_export` runs in `chunk_complete`'s transaction: one batch per destination with every binding result of
the chunk's counting attempt (source key "chunk:<id>", so a completion retried after a crash writes nothing
twice). `verdict_export` runs in `run_finalize_if_done`'s: the run's verdict as one run-level evaluation named
`vigilo.gate`. Neither does anything when no destination takes the run's results (`exporters.config`).

Which span a result sits on: the case's (or the agent's answer's) `metadata.trace_id` / `metadata.span_id`, else
`gen_ai.response.id` from `metadata.response_id`, else Vigilo's own span of the execution (`own_span`), which the
exporters that can send spans send first.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from evaluators.models import EvaluatorVersion
from exporters.config import configured, destinations_for
from exporters.records import VERDICT_NAME, EvalRecord, own_span_id, own_trace_id, record_id
from exporters.services import exports_write
from gating.profile import ProfileSpec
from runs.models import EvaluatorResult, Execution, Run
from runs.selectors import run_profile

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
SPAN_ID = re.compile(r"^[0-9a-f]{16}$")
EXPLANATION_CHARS = 4000
MODEL_WORLD = "model-evaluator"


def run_destinations(*, profile: ProfileSpec) -> list[str]:
    return destinations_for(profile.export)


def chunk_export(
    *, chunk_id: int, run_id: uuid.UUID, attempt: int, profile: ProfileSpec, pins: Mapping[str, Any]
) -> int:
    """Write the export batches of one completed chunk; returns the batches written (0 when none is wanted)."""
    destinations = run_destinations(profile=profile)
    if not destinations:
        return 0
    run = str(run_id)
    now = time.time_ns()
    executions = {
        row["id"]: row
        for row in Execution.objects.filter(chunk_id=chunk_id).values(
            "id", "case_id", "snapshot__metadata", "snapshot__output__metadata"
        )
    }
    pinned = _pinned(pins)
    results = (
        EvaluatorResult.objects.filter(execution__chunk_id=chunk_id, attempt=attempt)
        .values_list(
            "execution_id",
            "binding_id",
            "outcome",
            "kind",
            "measurement",
            "score",
            "judgment",
            "error_code",
            "error_message",
            "explanation",
            "duration_ms",
        )
        .order_by("execution_id", "binding_id")
    )
    durations: dict[int, float] = {}
    rows = list(results)
    for row in rows:
        durations[row[0]] = durations.get(row[0], 0.0) + row[10]
    records = []
    run_trace = own_trace_id(run)
    correlated: dict[int, tuple[str, str, str]] = {}  # execution id -> (trace id, span id, response id)
    for execution_id, binding_id, outcome, kind, measurement, score, judgment, code, message, explanation, _ in rows:
        execution = executions[execution_id]
        if execution_id not in correlated:
            trace_id, span_id, response_id = _correlation(execution)
            if not (trace_id and span_id):
                trace_id, span_id = "", own_span_id(run, str(execution_id))
            correlated[execution_id] = (trace_id, span_id, response_id)
        trace_id, span_id, response_id = correlated[execution_id]
        own = not trace_id
        reference, version, digest, judge = pinned.get(binding_id, ("", "", "", False))
        records.append(
            EvalRecord(
                id=record_id("run", f"{run}:{execution_id}:{binding_id}"),
                source="run",
                name=binding_id,
                outcome=outcome,
                kind=kind if outcome == EvaluatorResult.Outcome.COMPLETED else "",
                value=measurement if isinstance(measurement, (bool, int, float, str)) else None,
                score=score,
                label=_label(outcome, judgment),
                passed={"passed": True, "failed": False}.get(judgment),
                explanation=(explanation or message)[:EXPLANATION_CHARS],
                error_type=code,
                evaluator=reference,
                evaluator_version=version,
                evaluator_digest=digest,
                judge=judge,
                trace_id=run_trace if own else trace_id,
                span_id=span_id,
                own_span=own,
                response_id=response_id,
                run_id=run,
                execution_id=str(execution_id),
                case_id=execution["case_id"],
                binding_id=binding_id,
                timestamp_ns=now,
                start_ns=now - int(durations[execution_id] * 1_000_000),
                end_ns=now,
            )
        )
    return exports_write(records=records, destinations=destinations, source_key=f"chunk:{chunk_id}")


def verdict_export(*, run: Run, verdict: Mapping[str, Any]) -> int:
    """Write the run's verdict as a run-level evaluation (score = the pass rate, label = pass | fail)."""
    if not configured():
        return 0
    destinations = run_destinations(profile=run_profile(run=run))
    if not destinations:
        return 0
    run_id = str(run.id)
    counts = verdict.get("counts") or {}
    total = counts.get("expected") or 0
    passed = counts.get("passed") or 0
    now = time.time_ns()
    started = run.started_at or run.created_at
    reasons = [str(reason.get("message", "")) for reason in verdict.get("reasons") or []]
    gate = str(verdict.get("gate", ""))
    record = EvalRecord(
        id=record_id("run", f"{run_id}:verdict"),
        source="run",
        level="run",
        name=VERDICT_NAME,
        outcome="error" if verdict.get("operational_failure") else "completed",
        score=(passed / total) if total else None,
        label=gate,
        passed=gate == "pass",
        explanation="; ".join(reasons)[:EXPLANATION_CHARS],
        error_type="operational_failure" if verdict.get("operational_failure") else "",
        trace_id=own_trace_id(run_id),
        span_id=own_span_id(run_id),
        own_span=True,
        run_id=run_id,
        timestamp_ns=now,
        start_ns=int(started.timestamp() * 1e9) if started else now,
        end_ns=now,
    )
    return exports_write(records=[record], destinations=destinations, source_key=f"verdict:{run_id}")


def _pinned(pins: Mapping[str, Any]) -> dict[str, tuple[str, str, str, bool]]:
    """binding id -> (evaluator "ns/name", version, digest, judged by a model)."""
    worlds = dict(
        EvaluatorVersion.objects.filter(id__in=[pin["version_id"] for pin in pins.values()]).values_list("id", "world")
    )
    out = {}
    for binding_id, pin in pins.items():
        evaluator, _, version = str(pin["reference"]).rpartition("@")
        out[binding_id] = (evaluator, version, str(pin["digest"]), worlds.get(pin["version_id"]) == MODEL_WORLD)
    return out


def _correlation(execution: Mapping[str, Any]) -> tuple[str, str, str]:
    """(trace id, span id, response id) from the case's metadata, then the agent's answer's."""
    trace_id = span_id = response_id = ""
    for metadata in (execution["snapshot__metadata"], execution["snapshot__output__metadata"]):
        if not isinstance(metadata, dict):
            continue
        candidate_trace = str(metadata.get("trace_id") or "").lower()
        candidate_span = str(metadata.get("span_id") or "").lower()
        if not trace_id and TRACE_ID.match(candidate_trace) and SPAN_ID.match(candidate_span):
            trace_id, span_id = candidate_trace, candidate_span
        response_id = response_id or str(metadata.get("response_id") or "")
    return trace_id, span_id, response_id


def _label(outcome: str, judgment: str) -> str:
    if outcome != EvaluatorResult.Outcome.COMPLETED:
        return outcome  # abstained | error
    return {"passed": "pass", "failed": "fail"}.get(judgment, "")
