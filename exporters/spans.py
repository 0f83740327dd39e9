"""Vigilo's own spans, for results that judge no span of the agent's (an offline case without trace ids).

`spans_body` encodes them as an OTLP ExportTraceServiceRequest with the OpenTelemetry SDK's span type and the OTLP
exporter's encoder: one span per run (`vigilo.run <id>`, the root) and one per execution under it
(`vigilo.execution <case id>`), their ids derived from the run and execution ids (exporters.records), so a resend
carries the same spans and each result's `gen_ai.evaluation.result` event finds its parent. Plain Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, TraceFlags

from exporters.records import EvalRecord, own_span_id

SCOPE = InstrumentationScope("vigilo")


def spans_wanted(records: Sequence[EvalRecord]) -> bool:
    return any(record.own_span for record in records)


def spans_body(
    records: Sequence[EvalRecord], *, service_name: str, resource_attributes: Mapping[str, str] | None = None
) -> bytes:
    """The serialized OTLP trace request with the own spans `records` sit on (empty request when none)."""
    resource = Resource.create({"service.name": service_name, **(resource_attributes or {})})
    runs: dict[str, tuple[str, int, int]] = {}  # run id -> (trace id, start, end)
    executions: dict[tuple[str, str], EvalRecord] = {}
    for record in records:
        if not record.own_span or not record.run_id:
            continue
        trace_id, start, end = runs.get(record.run_id, (record.trace_id, record.start_ns, record.end_ns))
        runs[record.run_id] = (trace_id, min(start, record.start_ns or start), max(end, record.end_ns))
        if record.level == "binding" and record.execution_id:
            executions.setdefault((record.trace_id, record.span_id), record)
    spans: list[ReadableSpan] = []
    for run_id, (trace_id, start, end) in runs.items():
        run_context = _context(trace_id, own_span_id(run_id))
        spans.append(
            ReadableSpan(
                name=f"vigilo.run {run_id}",
                context=run_context,
                resource=resource,
                attributes={"vigilo.run.id": run_id},
                start_time=start,
                end_time=max(end, start),
                instrumentation_scope=SCOPE,
            )
        )
    for (trace_id, span_id), record in executions.items():
        spans.append(
            ReadableSpan(
                name=f"vigilo.execution {record.case_id}",
                context=_context(trace_id, span_id),
                parent=_context(trace_id, own_span_id(record.run_id)),
                resource=resource,
                attributes={
                    "vigilo.run.id": record.run_id,
                    "vigilo.execution.id": record.execution_id,
                    "vigilo.case.id": record.case_id,
                },
                start_time=record.start_ns,
                end_time=max(record.end_ns, record.start_ns),
                instrumentation_scope=SCOPE,
            )
        )
    return bytes(encode_spans(spans).SerializeToString())


def _context(trace_id: str, span_id: str) -> SpanContext:
    return SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
