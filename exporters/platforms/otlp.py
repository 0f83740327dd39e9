"""OTLP/HTTP, for any OpenTelemetry backend: each result as a `gen_ai.evaluation.result` event.

The event is an OTLP LogRecord with that `event_name` (the Logs data model; the Events API is deprecated),
parented to the span it judges (the record's trace and span ids), sent as protobuf (`POST <url>/v1/logs`,
`application/x-protobuf`). Its attributes are the GenAI semantic conventions' for the evaluation event
(open-telemetry/semantic-conventions-genai model/gen-ai/events.yaml: `gen_ai.evaluation.name`,
`gen_ai.evaluation.score.value`, `gen_ai.evaluation.score.label`, `gen_ai.evaluation.explanation`,
`gen_ai.response.id`, `error.type`), the agent's when known (`gen_ai.agent.name`, `gen_ai.operation.name`,
`gen_ai.request.model`) and Vigilo's own under `vigilo.*`; the id `vigilo.record.id` lets a receiver drop a resend.

With `spans` on (the default), Vigilo's own run and execution spans go first (`POST <url>/v1/traces`,
exporters.spans) for results that judge no span of the agent's. The `headers` secret is a header list as in
OTEL_EXPORTER_OTLP_HEADERS (`key=value,key2=value2`, values URL-encoded). A 2xx answer may still report a partial
success (records the backend rejected): `accepted` reads it.

The messages are written on the wire directly (exporters.otlpwire), byte for byte what the SDK's `encode_logs`
makes of the same records (tests/exporters/test_otlp.py), several times faster. Plain Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import unquote

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceResponse,
)
from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber

from exporters import otlpwire as wire
from exporters.otlpwire import AttributeValue
from exporters.protocol import Destination, HttpRequest
from exporters.records import EvalRecord
from exporters.spans import SCOPE_NAME, resource_bytes, spans_body, spans_wanted

EVENT_NAME = "gen_ai.evaluation.result"
PROTOBUF = "application/x-protobuf"
TRUE = frozenset({"1", "true", "yes", "on"})
BOOLEANS = TRUE | {"0", "false", "no", "off"}

_SAMPLED = 0x01  # W3C trace flags, as the SDK copies them from the parent span's context
# The LogRecord fields every record shares, encoded once: severity_number 2 and severity_text 3, body 5, flags 8,
# event_name 12; and the scope (InstrumentationScope name 1).
_SEVERITY_INFO = wire.varint_field(2, SeverityNumber.SEVERITY_NUMBER_INFO) + wire.string_field(3, "INFO")
_SEVERITY_WARN = wire.varint_field(2, SeverityNumber.SEVERITY_NUMBER_WARN) + wire.string_field(3, "WARN")
_EMPTY_BODY = wire.length_delimited(5, b"")
_FLAGS_SAMPLED = wire.fixed32_field(8, _SAMPLED)
_EVENT_NAME = wire.string_field(12, EVENT_NAME)
_SCOPE = wire.string_field(1, SCOPE_NAME)

# record field -> attribute, set when the field is not empty
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
    """`key=value,key2=value2` (OTEL_EXPORTER_OTLP_HEADERS' format, URL-encoded) as a dict with lower-case keys;
    ValueError names a bad entry by its position, never by its content (it is a secret)."""
    out: dict[str, str] = {}
    for index, item in enumerate(part for part in text.split(",") if part.strip()):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"header {index + 1} of the headers secret is not key=value")
        out[unquote(key.strip()).lower()] = unquote(value.strip())
    return out


def attributes_of(record: EvalRecord) -> dict[str, AttributeValue]:
    """The event's attributes: the semantic conventions' and Vigilo's, only those with a value."""
    attributes: dict[str, AttributeValue] = {}
    for field, key in _ATTRIBUTES:
        value = getattr(record, field)
        if value:
            attributes[key] = value
    if record.score is not None:
        attributes["gen_ai.evaluation.score.value"] = float(record.score)
    if record.judge:
        attributes["vigilo.judge"] = True
    return attributes


def logs_body(
    records: Sequence[EvalRecord], *, service_name: str, resource_attributes: Mapping[str, str] | None = None
) -> bytes:
    """The serialized ExportLogsServiceRequest: one `gen_ai.evaluation.result` LogRecord per record, in order
    (written on the wire directly, exporters.otlpwire: the bytes the proto classes would serialize)."""
    if not records:
        return b""  # what the SDK's encoder makes of no records: an empty request
    resource = resource_bytes(service_name, resource_attributes)
    scope_logs = wire.length_delimited(1, _SCOPE) + wire.messages(2, (_log_record(record) for record in records))
    resource_logs = wire.length_delimited(1, resource) + wire.length_delimited(2, scope_logs)
    return wire.length_delimited(1, resource_logs)


def _log_record(record: EvalRecord) -> bytes:
    """One LogRecord (logs/v1), its fields in number order as protobuf writes them."""
    parts = []
    if record.timestamp_ns:
        parts.append(wire.fixed64_field(1, record.timestamp_ns))
    parts.append(_SEVERITY_WARN if record.outcome == "error" else _SEVERITY_INFO)
    parts.append(_EMPTY_BODY)  # an empty AnyValue, as the SDK sends a record without a body
    parts.append(wire.key_values(6, attributes_of(record)))
    if record.trace_id and record.span_id:
        parts.append(_FLAGS_SAMPLED)
        parts.append(wire.length_delimited(9, bytes.fromhex(record.trace_id)))
        parts.append(wire.length_delimited(10, bytes.fromhex(record.span_id)))
    if record.timestamp_ns:
        parts.append(wire.fixed64_field(11, record.timestamp_ns))
    parts.append(_EVENT_NAME)
    return b"".join(parts)


class OtlpExporter:
    kind = "otlp"
    # ~750 bytes a record (more with long explanations): a request of ~0.4 MB, past which the per-request cost
    # is already negligible next to encoding (~30 µs a record).
    max_batch = 512
    secret_names: tuple[str, ...] = ("headers",)
    option_defaults: Mapping[str, str] = {"spans": "true", "service_name": "vigilo"}
    duplicate_statuses: frozenset[int] = frozenset()
    retry_statuses: frozenset[int] = frozenset()  # OTLP's retryable 429/502/503/504 are the relay's already

    def options_problems(self, options: Mapping[str, str]) -> list[str]:
        if options.get("spans", "true").strip().lower() not in BOOLEANS:
            return ["spans must be true or false"]
        return []

    def requests(self, records: Sequence[EvalRecord], destination: Destination) -> list[HttpRequest]:
        headers = _headers(destination)
        service = destination.options.get("service_name", "").strip() or "vigilo"
        out = []
        if _spans_on(destination) and spans_wanted(records):
            out.append(
                HttpRequest(
                    method="POST",
                    url=f"{destination.url}/v1/traces",
                    body=spans_body(records, service_name=service),
                    headers=headers,
                    records=0,
                )
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
        """OTLP's partial success: a 2xx whose answer counts rejected records. The logs and the trace answer share
        their layout (partial_success = 1: {rejected_log_records | rejected_spans = 1, error_message = 2}), so
        one message reads both."""
        if not body:
            return ""
        answer = ExportLogsServiceResponse()
        try:
            answer.ParseFromString(body)
        except DecodeError:
            return ""  # not protobuf (a proxy's "{}" or "OK"): the 2xx took the records
        rejected = answer.partial_success.rejected_log_records
        if rejected > 0:
            message = answer.partial_success.error_message or "no reason given"
            return f"OTLP partial success: {rejected} rejected: {message}"
        return ""


def _headers(destination: Destination) -> dict[str, str]:
    parsed = headers_parse(destination.secrets.get("headers", ""))
    parsed.pop("content-type", None)
    return {**parsed, "Content-Type": PROTOBUF}


def _spans_on(destination: Destination) -> bool:
    return destination.options.get("spans", "true").strip().lower() in TRUE


OTLP = OtlpExporter()
