"""Live results as export records (exporters.records), written in the transaction that settles their events.

One batch per destination for every settle (source key "events:<first id>+<count>": each event settles exactly
once, so the key never repeats). Every result of a settled event goes, the ones a deferred sync event stored
inline included. Where they go: the agent's `export`, else its online profile's, else the destinations marked
default (exporters.config). Each record sits on the event's span (`trace_id`, `span_id`); an event without one
carries its message id as `gen_ai.response.id` for `llm_output`, the correlation OTEL defines for a response.
"""

from __future__ import annotations

from collections.abc import Sequence

from exporters.config import configured, destinations_for
from exporters.records import EvalRecord, record_id
from exporters.services import exports_write
from online.engine import BoundBinding, Judgment, LoadedProfile
from online.models import EvalEvent, MonitoredAgent, OnlineResult

# OTEL's gen_ai.operation.name of the event types that have one (docs/live.md); the others are Vigilo's own.
OPERATIONS = {"llm_output": "chat", "tool_call": "execute_tool"}
EXPLANATION_CHARS = 4000


def events_export(
    *, agent: MonitoredAgent, judgments: Sequence[Judgment], profiles: dict[int, LoadedProfile], earlier: set[int]
) -> int:
    """Write the export batches of the settled `judgments` (`earlier`: events with results stored before)."""
    if not judgments or not configured():
        return 0
    named = agent.export if agent.export is not None else profiles[judgments[0].event.profile_id].spec.spec.export
    destinations = destinations_for(named)
    if not destinations:
        return 0
    rows: list[tuple[EvalEvent, OnlineResult]] = []
    for judgment in judgments:
        rows += [(judgment.event, row) for row in judgment.rows]
    stored = [j.event for j in judgments if j.event.id in earlier]
    if stored:
        by_id = {event.id: event for event in stored}
        new = {(j.event.id, row.binding_id) for j in judgments for row in j.rows}
        for row in OnlineResult.objects.filter(event_id__in=list(by_id)).order_by("id"):
            if (row.event_id, row.binding_id) not in new:
                rows.append((by_id[row.event_id], row))
    records = [_record(agent, event, row, profiles[event.profile_id].bound.get(row.binding_id)) for event, row in rows]
    first = min(j.event.id for j in judgments)
    return exports_write(records=records, destinations=destinations, source_key=f"events:{first}+{len(judgments)}")


def _record(agent: MonitoredAgent, event: EvalEvent, row: OnlineResult, bound: BoundBinding | None) -> EvalRecord:
    payload = event.payload if isinstance(event.payload, dict) else {}
    model = payload.get("model")
    evaluator, _, number = bound.reference.rpartition("@") if bound else ("", "", "")
    timestamp = row.created_at or event.evaluated_at or event.received_at
    return EvalRecord(
        id=record_id("live", f"{agent.name}:{event.message_id}:{row.binding_id}"),
        source="live",
        name=row.binding_id,
        outcome=row.outcome,
        kind=row.kind if row.outcome == "completed" else "",
        value=row.measurement if isinstance(row.measurement, (bool, int, float, str)) else None,
        score=row.score,
        label=row.outcome if row.outcome != "completed" else {"passed": "pass", "failed": "fail"}.get(row.judgment, ""),
        passed={"passed": True, "failed": False}.get(row.judgment),
        explanation=(row.explanation or row.error_message)[:EXPLANATION_CHARS],
        error_type=row.error_code,
        evaluator=evaluator,
        evaluator_version=number,
        evaluator_digest=bound.digest if bound else "",
        judge=bound is not None and not bound.deterministic,
        trace_id=event.trace_id,
        span_id=event.span_id if event.trace_id else "",
        response_id=event.message_id if event.event_type == "llm_output" else "",
        binding_id=row.binding_id,
        agent=agent.name,
        event_type=event.event_type,
        message_id=event.message_id,
        operation=OPERATIONS.get(event.event_type, ""),
        model=model if isinstance(model, str) else "",
        timestamp_ns=int(timestamp.timestamp() * 1e9) if timestamp else 0,
    )
