"""Vigilo's own spans, for results that judge no span of the agent's (an offline case without trace ids).

`spans_body` encodes them as an OTLP ExportTraceServiceRequest (protobuf): one span per run in the batch
(`vigilo.run <run id>`, the root, from the earliest start to the latest end of the batch's records of that run) and
one per execution under it (`vigilo.execution <case id>`). Their ids come from the records (exporters.records
`own_trace_id`/`own_span_id`), so a resend carries the same spans and each result's `gen_ai.evaluation.result`
event finds its parent; a run-level record (the verdict) sits on the run span itself.

The messages are built directly with the opentelemetry-proto classes, field for field what the OpenTelemetry SDK's
OTLP encoder (`opentelemetry.exporter.otlp.proto.common.trace_encoder.encode_spans`) makes of the same spans
(tests/exporters/test_otlp.py holds them equal), at a fraction of its cost. `key_values_add` and `resource_set`
are shared with the OTLP logs encoder (exporters.platforms.otlp). Plain Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, SpanFlags

from exporters.records import EvalRecord, own_span_id

SCOPE_NAME = "vigilo"
AttributeValue = str | bool | int | float

_INTERNAL = Span.SpanKind.SPAN_KIND_INTERNAL
_LOCAL_PARENT = SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK  # the parent is known and not remote


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
    request = ExportTraceServiceRequest()
    runs, executions = _spans_of(records)
    if not runs:
        return bytes(request.SerializeToString())
    resource_spans = request.resource_spans.add()
    resource_set(resource_spans.resource, service_name=service_name, extra=resource_attributes)
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = SCOPE_NAME
    add = scope_spans.spans.add
    for run_id, run in runs.items():
        _span_fill(
            add(),
            trace_id=run.trace_id,
            span_id=own_span_id(run_id),
            parent_id="",
            name=f"vigilo.run {run_id}",
            start=run.start,
            end=run.end,
            attributes={"vigilo.run.id": run_id},
        )
    for record in executions:
        _span_fill(
            add(),
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
    return bytes(request.SerializeToString())


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


def _span_fill(
    span: Any,
    *,
    trace_id: str,
    span_id: str,
    parent_id: str,
    name: str,
    start: int,
    end: int,
    attributes: Mapping[str, AttributeValue],
) -> None:
    span.trace_id = bytes.fromhex(trace_id)
    span.span_id = bytes.fromhex(span_id)
    if parent_id:
        span.parent_span_id = bytes.fromhex(parent_id)
    span.name = name
    span.kind = _INTERNAL
    span.start_time_unix_nano = start
    span.end_time_unix_nano = end
    span.status.SetInParent()  # unset, as the SDK sends it
    span.flags = _LOCAL_PARENT
    key_values_add(span.attributes, attributes)


def resource_set(resource: Any, *, service_name: str, extra: Mapping[str, str] | None = None) -> None:
    """Fill an OTLP Resource message: `service.name`, then the `extra` attributes."""
    key_values_add(resource.attributes, {"service.name": service_name, **(extra or {})})


def key_values_add(target: Any, attributes: Mapping[str, AttributeValue]) -> None:
    """Append `attributes` to a repeated KeyValue field, each value in its OTLP AnyValue slot."""
    add = target.add
    for key, value in attributes.items():
        slot = add(key=key).value
        if isinstance(value, bool):
            slot.bool_value = value
        elif isinstance(value, int):
            slot.int_value = value
        elif isinstance(value, float):
            slot.double_value = value
        else:
            slot.string_value = value
