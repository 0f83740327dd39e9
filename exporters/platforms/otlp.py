"""OTLP/HTTP, for any OpenTelemetry backend: each result as a `gen_ai.evaluation.result` event.

The event is a LogRecord with that `event_name`, sent through the Logs data model (the Events API is
deprecated), built with the OpenTelemetry SDK's log record and encoded by the OTLP exporter's encoder into
protobuf (`POST <url>/v1/logs`, `application/x-protobuf`). It is parented to the span it judges (the record's
trace and span ids). Attributes are the GenAI semantic conventions' for the evaluation event
(`gen_ai.evaluation.name`, `gen_ai.evaluation.score.value`, `gen_ai.evaluation.score.label`,
`gen_ai.evaluation.explanation`, `gen_ai.response.id`, `error.type`), the agent's (`gen_ai.agent.name`,
`gen_ai.operation.name`, `gen_ai.request.model`) and Vigilo's own under `vigilo.*`.

With `spans` on (the default), Vigilo's own run and execution spans go first (`POST <url>/v1/traces`,
exporters.spans) for results that judge no span of the agent's. The `headers` secret is a header list as in
OTEL_EXPORTER_OTLP_HEADERS (`key=value,key2=value2`, values URL-encoded). Plain Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from google.protobuf.message import DecodeError
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from exporters.protocol import Destination, HttpRequest
from exporters.records import EvalRecord
from exporters.spans import spans_body, spans_wanted

EVENT_NAME = "gen_ai.evaluation.result"
PROTOBUF = "application/x-protobuf"
SCOPE = InstrumentationScope("vigilo")
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)

# record field -> attribute, when the field is set
_ATTRIBUTES = (
    ("name", "gen_ai.evaluation.name"),
    ("label", "gen_ai.evaluation.score.label"),
    ("explanation", "gen_ai.evaluation.explanation"),
    ("response_id", "gen_ai.response.id"),
    ("error_type", "error.type"),
    ("agent", "gen_ai.agent.name"),
    ("operation", "gen_ai.operation.name"),
    ("model", "gen_ai.request.model"),
    ("id", "vigilo.record.id"),
    ("source", "vigilo.source"),
    ("level", "vigilo.level"),
    ("outcome", "vigilo.outcome"),
    ("run_id", "vigilo.run.id"),
    ("execution_id", "vigilo.execution.id"),
    ("case_id", "vigilo.case.id"),
    ("binding_id", "vigilo.binding.id"),
    ("evaluator", "vigilo.evaluator.reference"),
    ("evaluator_version", "vigilo.evaluator.version"),
    ("evaluator_digest", "vigilo.evaluator.digest"),
    ("message_id", "vigilo.agent.message_id"),
    ("event_type", "vigilo.event.type"),
)


def headers_parse(text: str) -> dict[str, str]:
    """`key=value,key2=value2` (OTEL_EXPORTER_OTLP_HEADERS' format) as a dict; ValueError names a bad entry
    by its position, never by its content (it is a secret)."""
    out: dict[str, str] = {}
    for index, item in enumerate(part for part in text.split(",") if part.strip()):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"header {index + 1} of the headers secret is not key=value")
        out[unquote(key.strip()).lower()] = unquote(value.strip())
    return out


def attributes_of(record: EvalRecord) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for field, key in _ATTRIBUTES:
        value = getattr(record, field)
        if value:
            attributes[key] = value
    if record.score is not None:
        attributes["gen_ai.evaluation.score.value"] = float(record.score)
    if record.judge:
        attributes["vigilo.judge"] = True
    return attributes


class OtlpExporter:
    kind = "otlp"
    max_batch = 1000
    secret_names: tuple[str, ...] = ("headers",)
    option_defaults: Mapping[str, str] = {"spans": "true", "service_name": "vigilo"}

    def requests(self, records: Sequence[EvalRecord], destination: Destination) -> list[HttpRequest]:
        headers = {"Content-Type": PROTOBUF, **headers_parse(destination.secrets.get("headers", ""))}
        service = destination.options.get("service_name") or "vigilo"
        out = []
        if destination.options.get("spans", "true").lower() in ("1", "true", "yes", "on") and spans_wanted(records):
            body = spans_body(records, service_name=service)
            out.append(
                HttpRequest(method="POST", url=f"{destination.url}/v1/traces", body=body, headers=headers, records=0)
            )
        out.append(
            HttpRequest(
                method="POST",
                url=f"{destination.url}/v1/logs",
                body=logs_body(records, service_name=service),
                headers=headers,
                records=len(records),
            )
        )
        return out

    def accepted(self, status: int, body: bytes) -> str:
        """OTLP's partial success: a 2xx whose answer counts rejected records. The logs and trace answers share
        their layout (partial_success = 1: {rejected = 1, error_message = 2}), so one message reads both."""
        if not body:
            return ""
        answer = ExportLogsServiceResponse()
        try:
            answer.ParseFromString(body)
        except DecodeError:
            return ""  # not protobuf (a JSON-speaking proxy's "{}"): a 2xx took the records
        rejected = answer.partial_success.rejected_log_records
        if rejected:
            return f"partial success: {rejected} rejected: {answer.partial_success.error_message}"
        return ""


def _parent(record: EvalRecord) -> Context | None:
    """The evaluated span as the log record's context (the SDK takes its trace and span ids from it)."""
    if not (record.trace_id and record.span_id):
        return None
    span = SpanContext(int(record.trace_id, 16), int(record.span_id, 16), is_remote=True, trace_flags=_SAMPLED)
    return set_span_in_context(NonRecordingSpan(span))


def logs_body(records: Sequence[EvalRecord], *, service_name: str) -> bytes:
    """The serialized ExportLogsServiceRequest: one `gen_ai.evaluation.result` LogRecord per record."""
    resource = Resource.create({"service.name": service_name})
    logs = [
        ReadableLogRecord(
            log_record=LogRecord(
                timestamp=record.timestamp_ns,
                observed_timestamp=record.timestamp_ns,
                context=_parent(record),
                severity_text="INFO" if record.label != "error" else "WARN",
                severity_number=SeverityNumber.INFO if record.label != "error" else SeverityNumber.WARN,
                attributes=attributes_of(record),
                event_name=EVENT_NAME,
            ),
            resource=resource,
            instrumentation_scope=SCOPE,
        )
        for record in records
    ]
    return bytes(encode_logs(logs).SerializeToString())


OTLP = OtlpExporter()
