"""Langfuse, Braintrust and LangSmith exporters against loopback servers that validate each request as the
platform's published API does: the exact fields sent, idempotent resends, and that the stand-ins refuse what the
platforms refuse (so a test that passes here is one the platform would accept)."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from exporters.platforms.braintrust import BRAINTRUST
from exporters.platforms.langfuse import LANGFUSE
from exporters.platforms.langsmith import LANGSMITH
from exporters.protocol import Destination
from exporters.records import VERDICT_NAME, record_id
from exporters.relay import _judged
from tests.support.exports import record, records, send
from tests.support.receivers.saas import BraintrustReceiver, LangfuseReceiver, LangSmithReceiver

SECRET = "sk-live-Zq81-secret"
AGENT_TRACE, AGENT_SPAN = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"


def mixed():
    """One of each: numeric, binary, ordinal, errored, judge, the verdict, a live result on the agent's span and
    one without a trace."""
    return [
        record(binding_id="relevance", kind="numeric", score=0.75, value=0.75, label="pass"),
        record(execution_id="2", binding_id="exact", kind="binary", score=0.0, value=False, label="fail", passed=False),
        record(execution_id="3", binding_id="tone", kind="ordinal", score=0.5, value="neutral", label="pass"),
        record(
            execution_id="4",
            binding_id="exact",
            outcome="error",
            kind="",
            score=None,
            value=None,
            label="error",
            passed=None,
            error_type="fuel_exhausted",
            explanation="out of fuel",
        ),
        record(execution_id="5", binding_id="judge", judge=True, score=1.0, label="pass"),
        record(
            id=record_id("run", "r:verdict"),
            level="run",
            binding_id="",
            name=VERDICT_NAME,
            kind="",
            score=0.8,
            label="fail",
            passed=False,
            execution_id="",
            case_id="",
        ),
        record(
            id=record_id("live", "bot:m1:card"),
            source="live",
            name="card",
            binding_id="card",
            kind="binary",
            score=0.0,
            label="fail",
            passed=False,
            run_id="",
            execution_id="",
            case_id="",
            own_span=False,
            trace_id=AGENT_TRACE,
            span_id=AGENT_SPAN,
            agent="bot",
            message_id="m1",
            event_type="llm_output",
        ),
        record(
            id=record_id("live", "bot:m2:card"),
            source="live",
            name="card",
            binding_id="card",
            kind="binary",
            score=1.0,
            label="pass",
            run_id="",
            execution_id="",
            case_id="",
            own_span=False,
            trace_id="",
            span_id="",
            agent="bot",
            message_id="m2",
            event_type="decision",
        ),
    ]


@pytest.fixture
def langfuse():
    server = LangfuseReceiver("pk-lf-1", SECRET)
    server.start()
    yield server
    server.stop()


def destination(kind, url, secrets, **options):
    return Destination(name=kind, kind=kind, url=url, secrets=secrets, options=options)


def ok(exporter, answers):
    return all(_judged(exporter, status, body) is None for status, body in answers)


def test_langfuse_scores_go_in_one_ingestion_batch_with_the_defined_fields(langfuse):
    target = destination(
        "langfuse", langfuse.origin, {"public_key": "pk-lf-1", "secret_key": SECRET}, api="ingestion", environment=""
    )
    sent = mixed()
    answers = send(LANGFUSE.requests(sent, target))
    assert ok(LANGFUSE, answers) and len(langfuse.requests) == 1
    assert len(langfuse.items) == len(sent)
    numeric = langfuse.items[sent[0].id]
    assert (numeric["dataType"], numeric["value"], numeric["name"]) == ("NUMERIC", 0.75, "relevance")
    assert (numeric["traceId"], numeric["observationId"]) == (sent[0].trace_id, sent[0].span_id)
    assert numeric["comment"] == "matches the expected answer"
    assert numeric["metadata"]["vigilo.evaluator.reference"] == "vigilo/exact-match"
    assert langfuse.items[sent[1].id]["dataType"] == "BOOLEAN" and langfuse.items[sent[1].id]["value"] == 0
    assert (langfuse.items[sent[2].id]["dataType"], langfuse.items[sent[2].id]["value"]) == ("CATEGORICAL", "neutral")
    errored = langfuse.items[sent[3].id]
    assert (errored["dataType"], errored["value"], errored["metadata"]["error.type"]) == (
        "CATEGORICAL",
        "error",
        "fuel_exhausted",
    )
    assert "observationId" not in langfuse.items[sent[5].id]  # the verdict is on the run's trace
    assert langfuse.items[sent[6].id]["observationId"] == AGENT_SPAN
    assert langfuse.items[sent[7].id]["sessionId"] == "vigilo:bot"


def test_langfuse_resend_updates_the_same_scores(langfuse):
    target = destination("langfuse", langfuse.origin, {"public_key": "pk-lf-1", "secret_key": SECRET})
    batch = records(50)
    send(LANGFUSE.requests(batch, target))
    send(LANGFUSE.requests(batch, target))
    assert len(langfuse.items) == 50 and langfuse.writes == 100


def test_langfuse_scores_api_sends_one_score_per_request(langfuse):
    target = destination("langfuse", langfuse.origin, {"public_key": "pk-lf-1", "secret_key": SECRET}, api="scores")
    answers = send(LANGFUSE.requests(records(3), target))
    assert [status for status, _ in answers] == [200, 200, 200] and len(langfuse.items) == 3


def test_the_langfuse_stand_in_refuses_what_langfuse_refuses(langfuse):
    good = destination("langfuse", langfuse.origin, {"public_key": "pk-lf-1", "secret_key": SECRET})
    wrong = destination("langfuse", langfuse.origin, {"public_key": "pk-lf-1", "secret_key": "nope"})
    assert send(LANGFUSE.requests(records(1), wrong))[0][0] == 401
    request = LANGFUSE.requests(records(2), good)[0]
    body = json.loads(request.body)
    body["batch"][0]["body"]["dataType"] = "PERCENT"
    del body["batch"][1]["body"]["name"]
    status, answer = send(
        [
            type(request)(
                method="POST", url=request.url, body=json.dumps(body).encode(), headers=request.headers, records=2
            )
        ]
    )[0]
    assert status == 207 and len(json.loads(answer)["errors"]) == 2
    assert "2 score(s) refused" in LANGFUSE.accepted(status, answer)


def test_braintrust_inserts_rows_with_scores_in_0_1_and_upserts_on_resend():
    server = BraintrustReceiver(SECRET, "proj-1")
    server.start()
    try:
        target = destination("braintrust", server.origin, {"api_key": SECRET}, project_id="proj-1", mode="insert")
        sent = mixed()
        assert ok(BRAINTRUST, send(BRAINTRUST.requests(sent, target)))
        assert ok(BRAINTRUST, send(BRAINTRUST.requests(sent, target)))
        assert len(server.items) == len(sent) and server.writes == 2 * len(sent)
        row = server.items[sent[0].id]
        assert row["scores"] == {"relevance": 0.75}
        assert row["metadata"]["explanation"] == "matches the expected answer"
        assert server.items[sent[3].id]["scores"] == {"exact": None}  # errored: no number
        assert server.items[sent[6].id]["span_id"] == AGENT_SPAN
        assert "span_id" not in row  # Vigilo's own span is not a Braintrust row
        feedback = destination("braintrust", server.origin, {"api_key": SECRET}, project_id="proj-1", mode="feedback")
        (request,) = BRAINTRUST.requests(sent, feedback)
        assert [item["id"] for item in json.loads(request.body)["feedback"]] == [AGENT_SPAN]
        assert ok(BRAINTRUST, send([request]))
        wrong = destination("braintrust", server.origin, {"api_key": SECRET}, project_id="other")
        assert send(BRAINTRUST.requests(records(1), wrong))[0][0] == 403
        (clamped,) = BRAINTRUST.requests([record(score=1.5)], target)
        assert json.loads(clamped.body)["events"][0]["scores"] == {"correctness": 1.0}  # normalized to 0..1
        body = json.loads(clamped.body)
        body["events"][0]["scores"]["correctness"] = 1.5
        bad = type(clamped)(
            method="POST", url=clamped.url, body=json.dumps(body).encode(), headers=clamped.headers, records=1
        )
        assert send([bad])[0][0] == 400  # what Braintrust refuses, the stand-in refuses
    finally:
        server.stop()
    assert BRAINTRUST.options_problems({"project_id": ""}) == [
        "project_id is required (the project's id in Braintrust)"
    ]


def test_langsmith_feedback_on_the_trace_with_a_deterministic_id_and_a_resend_is_taken():
    server = LangSmithReceiver(SECRET)
    server.start()
    try:
        target = destination("langsmith", server.origin, {"api_key": SECRET})
        sent = mixed()
        answers = send(LANGSMITH.requests(sent, target))
        assert ok(LANGSMITH, answers) and len(server.items) == len(sent)
        live = server.items[sent[6].id]
        assert live["trace_id"] == live["run_id"] == str(uuid.UUID(AGENT_TRACE))
        assert (live["key"], live["score"], live["value"]) == ("card", 0.0, "fail")
        assert server.items[sent[4].id]["feedback_source"]["type"] == "model"
        assert "trace_id" not in server.items[sent[7].id]
        again = send(LANGSMITH.requests(sent[:2], target))
        assert [status for status, _ in again] == [409, 409] and ok(LANGSMITH, again)  # already there: taken
        assert len(server.items) == len(sent)
        assert (
            send(LANGSMITH.requests(records(1), destination("langsmith", server.origin, {"api_key": "x"})))[0][0] == 401
        )
    finally:
        server.stop()


def test_secrets_travel_in_the_auth_header_only(langfuse):
    target = destination("langfuse", langfuse.origin, {"public_key": "pk-lf-1", "secret_key": SECRET})
    for exporter, dest in (
        (LANGFUSE, target),
        (BRAINTRUST, destination("braintrust", "http://127.0.0.1:9", {"api_key": SECRET}, project_id="p")),
        (LANGSMITH, destination("langsmith", "http://127.0.0.1:9", {"api_key": SECRET})),
    ):
        for request in exporter.requests(mixed(), dest):
            assert SECRET.encode() not in request.body
            assert (
                SECRET in " ".join(request.headers.values())
                or SECRET in base64.b64decode(request.headers["Authorization"].split()[1]).decode()
            )
