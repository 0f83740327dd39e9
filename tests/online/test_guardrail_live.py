"""The two-way guardrail in the live loop, against loopback engines that speak the generic protocol and Fiddler's:
a decision becomes the event's correction (rate limit, halt and delivery as a binding's), the sync path waits
only its budget and hands a late answer to the workers, and a broken guardrail never corrects or halts."""

from __future__ import annotations

import logging

import pytest

from online.ingest import event_parse
from online.models import CorrectionSignal, EvalEvent, MonitoredAgent
from online.services import event_submit_sync, events_accept, events_evaluate
from tests.support.online import agent_make, event, leaking
from tests.support.receivers.guardrail import FiddlerGuardrails, GenericGuardrail

pytestmark = pytest.mark.django_db

SECRET = "gr-live-7QmX2-token"
BLOCKED = {"text": "Refunds take 5 days, see policy REF-12. Also a forbidden remark."}


@pytest.fixture
def engine(monkeypatch):
    monkeypatch.setenv("VIGILO_GUARDRAIL_GUARD", SECRET)
    server = GenericGuardrail(token=SECRET)
    server.start()
    yield server
    server.stop()


def guarded(engine, **guardrail):
    agent, _ = agent_make(guardrail={"url": engine.url, "secret": "guard", **guardrail})
    return agent


def sync(agent, body):
    return event_submit_sync(agent=MonitoredAgent.objects.get(pk=agent.pk), event=event_parse(body))


def test_a_block_becomes_the_events_correction_with_the_engines_reason(published, engine):
    agent = guarded(engine, mapping={"block": "redirect"}, reason="guardrail: {reason} ({score})")
    answer = sync(agent, event(payload=BLOCKED, message_id="g-1", trace_id="a" * 32, span_id="b" * 16))
    assert answer.status == "evaluated"
    correction = answer.correction
    assert correction is not None
    assert (correction["severity"], correction["reason"]) == ("redirect", "guardrail: forbidden word (0.97)")
    assert correction["payload"]["binding"] == "guardrail:http"
    assert correction["payload"]["score"] == 0.97
    assert correction["payload"]["findings"][0]["category"] == "guardrail_block"
    assert correction["payload"]["findings"][0]["word"] == "forbidden"
    [request] = engine.requests
    assert request["body"]["message_id"] == "g-1"
    assert (request["body"]["trace_id"], request["body"]["span_id"]) == ("a" * 32, "b" * 16)
    assert request["body"]["payload"] == BLOCKED
    # the bindings judged the event too: they passed, so the guardrail's is the only failure
    assert sorted(r["binding"] for r in answer.results) == ["card-number", "policy-reference"]


def test_an_allowed_event_and_an_unchecked_type_get_no_correction(published, engine):
    agent = guarded(engine, event_types=["llm_output"])
    assert sync(agent, event(message_id="ok-1")).correction is None
    assert len(engine.requests) == 1
    tool = event("tool_call", {"name": "refund_lookup", "arguments": {"order": "A1"}}, message_id="t-1")
    assert sync(agent, tool).correction is None
    assert len(engine.requests) == 1  # the guardrail checks llm_output only
    assert not CorrectionSignal.objects.exists()


def test_a_guardrail_halt_halts_the_agent(published, engine):
    agent = guarded(engine, mapping={"block": "halt"})
    answer = sync(agent, event(payload=BLOCKED, message_id="h-1"))
    assert answer.correction is not None and answer.correction["severity"] == "halt"
    assert MonitoredAgent.objects.get(pk=agent.pk).state == "halted"


def test_a_binding_that_halts_already_is_not_sent_to_the_guardrail(published, engine):
    agent = guarded(engine)
    answer = sync(agent, leaking(message_id="card-1"))
    assert answer.correction is not None
    assert answer.correction["payload"]["binding"] == "card-number"
    assert engine.requests == []


def test_a_late_answer_defers_the_event_and_a_worker_corrects_it(published, engine):
    engine.delay_s = 0.4
    agent = guarded(engine, budget_ms=50, timeout_s=5)
    answer = sync(agent, event(payload=BLOCKED, message_id="late-1"))
    assert (answer.status, answer.correction) == ("pending", None)
    assert "did not answer within 50 ms" in answer.deferred
    row = EvalEvent.objects.get(message_id="late-1")
    assert row.results.count() == 2  # the bindings' inline results are kept
    assert events_evaluate(event_ids=[row.id]) == 1
    correction = CorrectionSignal.objects.get(event=row)
    assert (correction.severity, correction.payload["binding"]) == ("redirect", "guardrail:http")
    assert len(engine.requests) == 2  # asked again by the worker, which waited long enough
    assert events_evaluate(event_ids=[row.id]) == 0  # settled once


def test_the_async_path_asks_the_guardrail_on_the_worker(published, engine):
    agent = guarded(engine, thresholds=[{"min_score": 0.9, "severity": "halt"}])
    [accepted] = events_accept(
        agent=MonitoredAgent.objects.get(pk=agent.pk), events=[event_parse(event(payload=BLOCKED))], path="http"
    )
    assert engine.requests == []
    row = EvalEvent.objects.get(message_id=accepted.message_id)
    assert events_evaluate(event_ids=[row.id]) == 1
    assert CorrectionSignal.objects.get(event=row).severity == "halt"  # the score's threshold beats the mapping


@pytest.mark.parametrize("broken", ["status", "answer", "down"])
def test_a_broken_guardrail_corrects_nothing_and_logs_without_the_secret(published, engine, caplog, broken):
    agent = guarded(engine, mapping={"block": "halt"})
    if broken == "status":
        engine.fail_with(503)
    elif broken == "answer":
        engine.answer_with({"verdict": "block"})
    else:
        engine.stop()
    with caplog.at_level(logging.WARNING, logger="online.guardrail"):
        answer = sync(agent, event(payload=BLOCKED, message_id=f"b-{broken}"))
    assert (answer.status, answer.correction) == ("evaluated", None)
    assert MonitoredAgent.objects.get(pk=agent.pk).state == "active"
    assert "gave no decision on event b-" in caplog.text
    assert SECRET not in caplog.text


def test_a_wrong_token_is_refused_by_the_engine_and_corrects_nothing(published, engine, monkeypatch, caplog):
    monkeypatch.setenv("VIGILO_GUARDRAIL_GUARD", "not-the-token")
    agent = guarded(engine, mapping={"block": "halt"})
    with caplog.at_level(logging.WARNING, logger="online.guardrail"):
        assert sync(agent, event(payload=BLOCKED)).correction is None
    assert "HTTP 401" in caplog.text


def test_a_fiddler_safety_check_redirects_an_unsafe_output(published, monkeypatch):
    monkeypatch.setenv("VIGILO_GUARDRAIL_FIDDLER", SECRET)
    fiddler = FiddlerGuardrails(token=SECRET)
    fiddler.start()
    try:
        agent, _ = agent_make(guardrail={"protocol": "fiddler", "url": fiddler.origin, "secret": "fiddler"})
        answer = sync(agent, event(payload=BLOCKED, message_id="f-1"))
        assert answer.correction is not None
        assert answer.correction["payload"]["binding"] == "guardrail:fiddler"
        assert answer.correction["payload"]["score"] == 0.93
        assert answer.correction["reason"] == "guardrail block: fdl_violent 0.93"
        assert sync(agent, event(message_id="f-2")).correction is None
        assert [r["path"] for r in fiddler.requests] == [FiddlerGuardrails.SAFETY] * 2
    finally:
        fiddler.stop()
