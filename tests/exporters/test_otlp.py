"""The OTLP exporter's encoders against the OpenTelemetry SDK's (pure unit tests, no database).

`logs_body` and `spans_body` build their protobuf messages by hand; here the same records go through the SDK's own
classes (`ReadableLogRecord`, `ReadableSpan`) and encoders (`encode_logs`, `encode_spans`) and the messages are
compared: both are equal byte for byte (the LogRecord's `body` included: the SDK sends an empty AnyValue, its
`_encode_value(None)`, and so does `logs_body`). Also: the exact attributes, severity and trace context of a live
and an offline record, deterministic bodies, `headers_parse`, the partial-success check (`accepted`) and
`OtlpExporter.requests`.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, set_span_in_context

from exporters.platforms.otlp import OTLP, attributes_of, headers_parse, logs_body
from exporters.protocol import Destination
from exporters.records import VERDICT_NAME, EvalRecord, own_span_id, own_trace_id, record_id
from exporters.spans import spans_body, spans_wanted
from tests.support.exports import record, records

T0 = 1_760_000_000_000_000_000
RUN_A = "aaaaaaaa-0000-4000-8000-000000000001"
RUN_B = "bbbbbbbb-0000-4000-8000-000000000002"
EXTRA = {"deployment.environment.name": "test", "service.version": "1.2.3"}
SCOPE = InstrumentationScope("vigilo")

ERRORED = record(
    run_id=RUN_A, execution_id="3", binding_id="safety", outcome="error", kind="", value=None, score=None,
    label="error", passed=None, explanation="ran out of fuel", error_type="fuel_exhausted",
    timestamp_ns=T0 + 900, start_ns=T0 + 700, end_ns=T0 + 800,
)  # fmt: skip
JUDGE = EvalRecord(
    id=record_id("live", "support-bot:msg-7:helpfulness"), source="live", name="helpfulness", outcome="completed",
    kind="binary", value=True, score=1.0, label="pass", passed=True, explanation="answers the question",
    evaluator="vigilo/llm-judge", evaluator_version="0.3.0", judge=True, binding_id="helpfulness",
    trace_id="0af7651916cd43dd8448eb211c80319c", span_id="b7ad6b7169203331", response_id="chatcmpl-123",
    agent="support-bot", event_type="llm_output", message_id="msg-7", operation="chat", model="gpt-4o-mini",
    timestamp_ns=T0 + 1000,
)  # fmt: skip
# A live result with no span known: only gen_ai.response.id correlates it.
NO_TRACE = replace(JUDGE, id=record_id("live", "support-bot:msg-8:tone"), name="tone", trace_id="", span_id="")
VERDICT = EvalRecord(
    id=record_id("run", f"{RUN_A}:verdict"), source="run", level="run", name=VERDICT_NAME, outcome="completed",
    score=1.0, label="pass", passed=True, trace_id=own_trace_id(RUN_A), span_id=own_span_id(RUN_A), own_span=True,
    run_id=RUN_A, timestamp_ns=T0 + 2000, start_ns=T0 + 10, end_ns=T0 + 1500,
)  # fmt: skip
ZERO = record(run_id=RUN_A, execution_id="4", score=0.0, value=0.0, label="fail", passed=False, explanation="",
              timestamp_ns=T0 + 1200, start_ns=T0 + 1150, end_ns=T0 + 1190)  # fmt: skip
A1 = record(run_id=RUN_A, execution_id="1", timestamp_ns=T0 + 300, start_ns=T0 + 100, end_ns=T0 + 200)
# A second binding on the same execution: the same span.
A1_TONE = replace(A1, id=record_id("run", f"{RUN_A}:1:tone"), name="tone", binding_id="tone")
A2 = record(run_id=RUN_A, execution_id="2", timestamp_ns=T0 + 450, start_ns=T0 + 50, end_ns=T0 + 400)
B1 = record(run_id=RUN_B, execution_id="1", timestamp_ns=T0 + 90, start_ns=T0 + 20, end_ns=T0 + 80)
MIXED = [A1, ERRORED, JUDGE, NO_TRACE, VERDICT, ZERO]


def _resource(extra: dict[str, str] | None = None) -> Resource:
    # Resource(...), not Resource.create(...): the SDK's defaults (telemetry.sdk.*) would not be the same resource.
    return Resource({"service.name": "vigilo", **(extra or {})})


def _context(trace_id: str, span_id: str, flags: int = 0) -> SpanContext:
    return SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=False, trace_flags=TraceFlags(flags))


def sdk_log(rec: EvalRecord, resource: Resource) -> ReadableLogRecord:
    """The record as the SDK's Logs pipeline hands it to an exporter, parented as an SDK user would parent it
    (through a context holding the judged span's sampled, local span context)."""
    context = None
    if rec.trace_id and rec.span_id:
        context = set_span_in_context(NonRecordingSpan(_context(rec.trace_id, rec.span_id, TraceFlags.SAMPLED)))
    error = rec.outcome == "error"
    log = LogRecord(
        timestamp=rec.timestamp_ns,
        observed_timestamp=rec.timestamp_ns,
        context=context,
        severity_number=SeverityNumber.WARN if error else SeverityNumber.INFO,
        severity_text="WARN" if error else "INFO",
        attributes=attributes_of(rec),
        event_name="gen_ai.evaluation.result",
    )
    return ReadableLogRecord(log_record=log, resource=resource, instrumentation_scope=SCOPE)


def sdk_span(name: str, context: SpanContext, parent: SpanContext | None, extent, attrs, *, resource) -> ReadableSpan:
    return ReadableSpan(name=name, context=context, parent=parent, resource=resource, attributes=attrs,
                        kind=SpanKind.INTERNAL, instrumentation_scope=SCOPE, start_time=extent[0],
                        end_time=extent[1])  # fmt: skip


def logs_of(body: bytes):
    request = ExportLogsServiceRequest.FromString(body)
    assert len(request.resource_logs) == 1 and len(request.resource_logs[0].scope_logs) == 1
    return request.resource_logs[0].scope_logs[0].log_records


def attributes(message) -> dict:
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in message.attributes}


@pytest.mark.parametrize(
    ("batch", "extra"),
    [(records(3), None), (MIXED, None), (MIXED, EXTRA), ([NO_TRACE], EXTRA)],
    ids=["helper", "mixed", "mixed-resource", "no-trace"],
)
def test_logs_body_is_encode_logs_byte_for_byte(batch, extra):
    body = logs_body(batch, service_name="vigilo", resource_attributes=extra)
    ours = ExportLogsServiceRequest.FromString(body)
    sdk = encode_logs([sdk_log(rec, _resource(extra)) for rec in batch])
    assert len(sdk.resource_logs[0].scope_logs[0].log_records) == len(logs_of(body)) == len(batch)
    assert all(
        log.HasField("body") and log.body == AnyValue() for log in ours.resource_logs[0].scope_logs[0].log_records
    )
    # Resource attributes in the same order (no normalizing needed), and so are the bytes.
    assert ours == sdk
    assert sdk.SerializeToString() == body


def test_an_empty_batch_is_what_encode_logs_makes_of_none():
    assert logs_body([], service_name="vigilo") == encode_logs([]).SerializeToString() == b""


@pytest.mark.parametrize("extra", [None, EXTRA], ids=["service-only", "resource"])
def test_spans_body_is_encode_spans_byte_for_byte(extra):
    resource = _resource(extra)
    # A root span per run over the extent of its records (run A's is the verdict's, T0+10..T0+1500), then one
    # execution span per distinct execution, in first-seen order, under its run's span. JUDGE is on a span of the
    # agent's and gets none; the verdict sits on the run span itself.
    batch = [A1, JUDGE, A1_TONE, A2, B1, VERDICT]
    run_a, run_b = (_context(own_trace_id(run), own_span_id(run)) for run in (RUN_A, RUN_B))
    expected = [
        sdk_span(f"vigilo.run {RUN_A}", run_a, None, (T0 + 10, T0 + 1500), {"vigilo.run.id": RUN_A}, resource=resource),
        sdk_span(f"vigilo.run {RUN_B}", run_b, None, (T0 + 20, T0 + 80), {"vigilo.run.id": RUN_B}, resource=resource),
    ]
    for rec, parent in ((A1, run_a), (A2, run_a), (B1, run_b)):
        attrs = {"vigilo.run.id": rec.run_id, "vigilo.execution.id": rec.execution_id, "vigilo.case.id": rec.case_id}
        context, extent = _context(rec.trace_id, rec.span_id), (rec.start_ns, rec.end_ns)
        expected.append(sdk_span(f"vigilo.execution {rec.case_id}", context, parent, extent, attrs, resource=resource))
    body = spans_body(batch, service_name="vigilo", resource_attributes=extra)
    sdk = encode_spans(expected)
    assert len(sdk.resource_spans[0].scope_spans[0].spans) == 5
    assert ExportTraceServiceRequest.FromString(body) == sdk
    assert sdk.SerializeToString() == body
    # No own span at all: no spans, as encode_spans makes of none.
    assert spans_body([JUDGE, NO_TRACE], service_name="vigilo") == encode_spans([]).SerializeToString() == b""


def test_a_live_and_an_offline_record_carry_exactly_their_attributes():
    judge, errored = logs_of(logs_body([JUDGE, ERRORED], service_name="vigilo"))
    assert attributes(judge) == {
        "gen_ai.evaluation.name": "helpfulness",
        "gen_ai.evaluation.score.label": "pass",
        "gen_ai.evaluation.explanation": "answers the question",
        "gen_ai.response.id": "chatcmpl-123",
        "gen_ai.agent.name": "support-bot",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "vigilo.record.id": JUDGE.id,
        "vigilo.source": "live",
        "vigilo.level": "binding",
        "vigilo.outcome": "completed",
        "vigilo.binding.id": "helpfulness",
        "vigilo.evaluator.reference": "vigilo/llm-judge",
        "vigilo.evaluator.version": "0.3.0",
        "vigilo.agent.message_id": "msg-7",
        "vigilo.event.type": "llm_output",
        "gen_ai.evaluation.score.value": 1.0,
        "vigilo.judge": True,
    }
    assert attributes(errored) == {
        "gen_ai.evaluation.name": "safety",
        "gen_ai.evaluation.score.label": "error",
        "gen_ai.evaluation.explanation": "ran out of fuel",
        "error.type": "fuel_exhausted",
        "vigilo.record.id": record_id("run", f"{RUN_A}:3:safety"),
        "vigilo.source": "run",
        "vigilo.level": "binding",
        "vigilo.outcome": "error",
        "vigilo.run.id": RUN_A,
        "vigilo.execution.id": "3",
        "vigilo.case.id": "case-3",
        "vigilo.binding.id": "safety",
        "vigilo.evaluator.reference": "vigilo/exact-match",
        "vigilo.evaluator.version": "1.0.0",
        "vigilo.evaluator.digest": "ab" * 32,
    }
    kinds = {kv.key: kv.value.WhichOneof("value") for kv in judge.attributes}
    assert kinds["gen_ai.evaluation.score.value"] == "double_value" and kinds["vigilo.judge"] == "bool_value"
    assert judge.event_name == errored.event_name == "gen_ai.evaluation.result"
    assert judge.trace_id == bytes.fromhex("0af7651916cd43dd8448eb211c80319c") and judge.flags == 1
    assert judge.span_id == bytes.fromhex("b7ad6b7169203331")
    assert errored.trace_id == bytes.fromhex(own_trace_id(RUN_A)) and errored.flags == 1
    assert errored.span_id == bytes.fromhex(own_span_id(RUN_A, "3"))
    assert (judge.severity_number, judge.severity_text) == (SeverityNumber.INFO.value, "INFO")
    assert (errored.severity_number, errored.severity_text) == (SeverityNumber.WARN.value, "WARN")
    assert judge.time_unix_nano == judge.observed_time_unix_nano == T0 + 1000


def test_a_zero_score_is_sent_and_an_empty_explanation_and_an_unknown_span_are_not():
    zero, no_trace = logs_of(logs_body([ZERO, NO_TRACE], service_name="vigilo"))
    assert attributes(zero)["gen_ai.evaluation.score.value"] == 0.0
    assert "gen_ai.evaluation.explanation" not in attributes(zero)
    assert (no_trace.trace_id, no_trace.span_id, no_trace.flags) == (b"", b"", 0)
    assert attributes(no_trace)["gen_ai.response.id"] == "chatcmpl-123"


def test_the_same_records_give_the_same_bytes():
    batch = [*records(4), *MIXED, A1_TONE, A2, B1]
    copies = [EvalRecord.from_dict(rec.as_dict()) for rec in batch]
    first = logs_body(batch, service_name="s", resource_attributes=EXTRA)
    assert first == logs_body(batch, service_name="s", resource_attributes=EXTRA)
    assert first == logs_body(copies, service_name="s", resource_attributes=EXTRA)
    assert spans_body(batch, service_name="s") == spans_body(copies, service_name="s") != b""


def test_headers_parse_lowercases_keys_and_unquotes_values():
    assert headers_parse("Authorization=Bearer%20abc,X-Tenant=t1") == {"authorization": "Bearer abc", "x-tenant": "t1"}
    assert headers_parse(" ,api-key = a%3Db ,") == {"api-key": "a=b"}
    for text, position in (("X-Tenant=t1,sk-live-SECRET42", 2), ("=sk-live-SECRET42", 1)):
        with pytest.raises(ValueError, match=f"header {position} ") as caught:
            headers_parse(text)
        assert "SECRET42" not in str(caught.value) and "SECRET42" not in repr(caught.value.args)


def test_accepted_reports_rejected_records_and_takes_the_rest():
    rejected = ExportLogsPartialSuccess(rejected_log_records=2, error_message="too old")
    answer = ExportLogsServiceResponse(partial_success=rejected).SerializeToString()
    assert OTLP.accepted(200, answer) == "OTLP partial success: 2 rejected: too old"
    silent = ExportLogsServiceResponse(partial_success=ExportLogsPartialSuccess(rejected_log_records=1))
    assert OTLP.accepted(200, silent.SerializeToString()) == "OTLP partial success: 1 rejected: no reason given"
    spans = ExportTraceServiceResponse(partial_success=ExportTracePartialSuccess(rejected_spans=3))
    assert OTLP.accepted(200, spans.SerializeToString()).startswith("OTLP partial success: 3 rejected")
    warning = ExportLogsServiceResponse(partial_success=ExportLogsPartialSuccess(error_message="slow down"))
    assert OTLP.accepted(200, warning.SerializeToString()) == ""  # zero rejected: a warning, every record taken
    assert OTLP.accepted(200, b"") == ""
    assert OTLP.accepted(200, ExportLogsServiceResponse().SerializeToString()) == ""


@pytest.mark.parametrize("spans", ["true", "false"])
def test_requests_send_own_spans_first_then_the_logs(spans):
    url = "http://collector.test:4318"
    secret = "Authorization=Bearer%20abc,X-Tenant=t1,content-type=text/plain"
    destination = Destination(name="otlp", kind="otlp", url=url, secrets={"headers": secret},
                              options={"spans": spans, "service_name": "svc"})  # fmt: skip
    headers = {"authorization": "Bearer abc", "x-tenant": "t1", "Content-Type": "application/x-protobuf"}
    assert spans_wanted(records(1)) and not spans_wanted([JUDGE, NO_TRACE])
    for batch, own in (([*records(3), JUDGE], True), ([JUDGE, NO_TRACE], False)):
        made = OTLP.requests(batch, destination)
        with_spans = spans == "true" and own
        assert [r.url for r in made] == [f"{url}/v1/traces"] * with_spans + [f"{url}/v1/logs"]
        assert all(r.method == "POST" and dict(r.headers) == headers for r in made)
        assert [r.records for r in made] == [0] * with_spans + [len(batch)]
        assert sum(r.records for r in made) == len(batch)
        assert made[-1].body == logs_body(batch, service_name="svc")
        assert attributes(ExportLogsServiceRequest.FromString(made[-1].body).resource_logs[0].resource) == {
            "service.name": "svc"
        }
        if with_spans:
            assert made[0].body == spans_body(batch, service_name="svc")
            assert len(ExportTraceServiceRequest.FromString(made[0].body).resource_spans[0].scope_spans[0].spans) == 4
