"""Vigilo's own spans, for results that judge no span of the agent's (an offline case without trace ids).

`spans_body` encodes them as an OTLP ExportTraceServiceRequest (protobuf): one span per run in the batch
(`vigilo.run <run id>`, the root, from the earliest start to the latest end of the batch's records of that run) and
one per execution under it (`vigilo.execution <case id>`). Their ids come from the records (exporters.records
`own_trace_id`/`own_span_id`), so a resend carries the same spans and each result's `gen_ai.evaluation.result`
event finds its parent; a run-level record (the verdict) sits on the run span itself.

The messages are written on the wire directly (exporters.otlpwire), byte for byte what the OpenTelemetry SDK's
OTLP encoder (`opentelemetry.exporter.otlp.proto.common.trace_encoder.encode_spans`) makes of the same spans
(tests/exporters/test_otlp.py holds them equal), at a fraction of its cost. `resource_bytes` is shared with the
OTLP logs encoder (exporters.platforms.otlp). Plain Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opentelemetry.proto.trace.v1.trace_pb2 import Span, SpanFlags

from exporters import otlpwire as wire
from exporters.otlpwire import AttributeValue
from exporters.records import EvalRecord, own_span_id

SCOPE_NAME = "vigilo"

_KIND_INTERNAL = wire.varint_field(6, Span.SpanKind.SPAN_KIND_INTERNAL)
_STATUS_UNSET = wire.length_delimited(15, b"")
# the parent is known and not remote
_FLAGS_LOCAL_PARENT = wire.fixed32_field(16, SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK)
_SCOPE = wire.string_field(1, SCOPE_NAME)  # InstrumentationScope: name 1


@dataclass
class _Run:
    trace_id: str
    start: int
    end: int


def spans_wanted(records: Sequence[EvalRecord]) -> bool:
    """Whether any record sits on a span of Vigilo's own (so the spans must be sent before the results)."""
    return any(record.own_span for record in records)


def spans_body(
    records: Sequence[EvalRecord], *, service_name: str, resource_attributes: Mapping[str, str] | None = None
) -> bytes:
    """The serialized ExportTraceServiceRequest with the own spans `records` sit on (no spans when none do)."""
    runs, executions = _spans_of(records)
    if not runs:
        return b""  # what the SDK's encoder makes of no spans: an empty request
    spans = [
        _span(
            trace_id=run.trace_id,
            span_id=own_span_id(run_id),
            parent_id="",
            name=f"vigilo.run {run_id}",
            start=run.start,
            end=run.end,
            attributes={"vigilo.run.id": run_id},
        )
        for run_id, run in runs.items()
    ]
    spans += [
        _span(
            trace_id=record.trace_id,
            span_id=record.span_id,
            parent_id=own_span_id(record.run_id),
            name=f"vigilo.execution {record.case_id}",
            start=_start(record),
            end=_end(record),
            attributes={
                "vigilo.run.id": record.run_id,
                "vigilo.execution.id": record.execution_id,
                "vigilo.case.id": record.case_id,
            },
        )
        for record in executions
    ]
    scope_spans = wire.length_delimited(1, _SCOPE) + wire.messages(2, spans)
    resource_spans = wire.length_delimited(1, resource_bytes(service_name, resource_attributes))
    return wire.length_delimited(1, resource_spans + wire.length_delimited(2, scope_spans))


def _spans_of(records: Sequence[EvalRecord]) -> tuple[dict[str, _Run], list[EvalRecord]]:
    """The runs (by id, with their extent) and one record per distinct execution span, in first-seen order."""
    runs: dict[str, _Run] = {}
    executions: dict[tuple[str, str], EvalRecord] = {}
    for record in records:
        if not (record.own_span and record.run_id and record.trace_id and record.span_id):
            continue
        run = runs.get(record.run_id)
        if run is None:
            runs[record.run_id] = _Run(record.trace_id, _start(record), _end(record))
        else:
            run.start, run.end = min(run.start, _start(record)), max(run.end, _end(record))
        if record.level != "run" and record.span_id != own_span_id(record.run_id):
            executions.setdefault((record.trace_id, record.span_id), record)
    return runs, list(executions.values())


def _start(record: EvalRecord) -> int:
    return record.start_ns or record.end_ns or record.timestamp_ns


def _end(record: EvalRecord) -> int:
    return max(record.end_ns or record.timestamp_ns, _start(record))


def _span(
    *,
    trace_id: str,
    span_id: str,
    parent_id: str,
    name: str,
    start: int,
    end: int,
    attributes: Mapping[str, AttributeValue],
) -> bytes:
    """One Span (trace/v1), its fields in number order as protobuf writes them: trace_id 1, span_id 2,
    parent_span_id 4, name 5, kind 6, start 7, end 8, attributes 9, status 15 (set, unset: as the SDK sends
    it), flags 16."""
    parts = [wire.length_delimited(1, bytes.fromhex(trace_id)), wire.length_delimited(2, bytes.fromhex(span_id))]
    if parent_id:
        parts.append(wire.length_delimited(4, bytes.fromhex(parent_id)))
    parts += [
        wire.string_field(5, name),
        _KIND_INTERNAL,
        wire.fixed64_field(7, start),
        wire.fixed64_field(8, end),
        wire.key_values(9, attributes),
        _STATUS_UNSET,
        _FLAGS_LOCAL_PARENT,
    ]
    return b"".join(parts)


def resource_bytes(service_name: str, extra: Mapping[str, str] | None = None) -> bytes:
    """A Resource (resource/v1: attributes 1): `service.name`, then the `extra` attributes."""
    return wire.key_values(1, {"service.name": service_name, **(extra or {})})
