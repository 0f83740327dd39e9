"""The live loop's rules, through the real services, sandbox and database: what an event's evaluation decides
(correction or none, its severity and reason), sampling, filters, the rate limit, halt and resume, idempotency."""

from __future__ import annotations

import logging

import pytest

from online.engine import profile_loaded
from online.errors import AgentHalted, EventInvalid, StateConflict
from online.ingest import event_parse
from online.models import AgentAudit, CorrectionSignal, EvalEvent, MonitoredAgent, OnlineResult
from online.services import (
    agent_resume,
    correction_ack,
    event_submit_sync,
    events_accept,
    events_evaluate,
)
from outbox.models import OutboxEvent
from tests.support.online import agent_make, event, leaking, off_topic, unreferenced
from vigilo_project.sampling import sampled

pytestmark = pytest.mark.django_db


def sync(agent, body):
    return event_submit_sync(agent=MonitoredAgent.objects.get(pk=agent.pk), event=event_parse(body))


def accept(agent, *bodies):
    return events_accept(
        agent=MonitoredAgent.objects.get(pk=agent.pk), events=[event_parse(b) for b in bodies], path="http"
    )


def test_a_passing_event_gets_no_correction_and_stores_each_binding_result(published):
    agent, _ = agent_make()
    answer = sync(agent, event(message_id="ok-1"))
    assert (answer.status, answer.correction) == ("evaluated", None)
    # llm_output is judged by the card-number and policy-reference bindings, not by the tool binding
    assert sorted((r["binding"], r["judgment"]) for r in answer.results) == [
        ("card-number", "passed"),
        ("policy-reference", "passed"),
    ]
    assert OnlineResult.objects.filter(event__message_id="ok-1").count() == 2
    assert not CorrectionSignal.objects.exists()


def test_a_missing_policy_reference_nudges_with_the_rendered_reason(published):
    agent, _ = agent_make()
    answer = sync(agent, unreferenced(message_id="n-1"))
    correction = answer.correction
    assert correction is not None
    assert correction["severity"] == "nudge"
    assert correction["reason"].startswith("cite the policy you rely on (REF-nn): ")
    assert correction["payload"]["binding"] == "policy-reference"
    assert correction["payload"]["findings"][0]["category"] == "pattern_mismatch"
    assert correction["event"]["message_id"] == "n-1"
    assert MonitoredAgent.objects.get(pk=agent.pk).state == "active"


def test_an_off_topic_tool_call_redirects(published):
    agent, _ = agent_make()
    answer = sync(agent, off_topic())
    assert answer.correction is not None
    assert (answer.correction["severity"], answer.correction["payload"]["binding"]) == ("redirect", "on-topic-tools")
    assert "web_search" in answer.correction["reason"]


def test_the_most_severe_failure_answers_and_the_others_are_listed(published):
    agent, _ = agent_make()
    # a card number AND no policy reference: halt (card-number) wins over nudge (policy-reference)
    answer = sync(agent, event(payload={"text": "card 4111 1111 1111 1111 noted"}))
    assert answer.correction is not None
    assert answer.correction["severity"] == "halt"
    assert answer.correction["payload"]["also"] == [{"binding": "policy-reference", "severity": "nudge"}]
    assert CorrectionSignal.objects.count() == 1


def test_a_halt_halts_the_agent_audits_it_and_refuses_every_later_event(published):
    agent, _ = agent_make()
    answer = sync(agent, leaking(message_id="leak-1"))
    assert answer.correction is not None and answer.correction["severity"] == "halt"
    agent.refresh_from_db()
    assert agent.state == "halted"
    assert agent.halt_correction is not None
    assert str(agent.halt_correction.delivery_id) == answer.correction["delivery_id"]
    audit = AgentAudit.objects.get(agent=agent, action="halt")
    assert (audit.actor, audit.correction_id) == ("supervisor", agent.halt_correction_id)
    assert OutboxEvent.objects.filter(topic="agent.halted", payload__agent=agent.name).count() == 1
    for attempt in (lambda: sync(agent, event()), lambda: accept(agent, event())):
        with pytest.raises(AgentHalted) as info:
            attempt()
        assert info.value.halt_id == answer.correction["delivery_id"]
        assert "card number" in info.value.reason
    assert EvalEvent.objects.filter(agent=agent).count() == 1  # nothing of the refused events was stored


def test_resume_needs_a_reason_is_audited_and_lets_the_agent_go_on(published):
    agent, _ = agent_make()
    sync(agent, leaking())
    with pytest.raises(EventInvalid):
        agent_resume(agent_name=agent.name, actor="admin:ops", reason="  ")
    audit = agent_resume(agent_name=agent.name, actor="admin:ops", reason="false positive: a test card")
    agent.refresh_from_db()
    assert (agent.state, agent.halted_reason, agent.halt_correction) == ("active", "", None)
    assert (audit.action, audit.actor, audit.reason) == ("resume", "admin:ops", "false positive: a test card")
    assert OutboxEvent.objects.filter(topic="agent.resumed").count() == 1
    assert sync(agent, event()).status == "evaluated"
    with pytest.raises(StateConflict):
        agent_resume(agent_name=agent.name, actor="admin:ops", reason="again")


def test_a_resent_event_is_answered_from_what_was_stored(published):
    agent, _ = agent_make()
    first = sync(agent, unreferenced(message_id="same"))
    again = sync(agent, unreferenced(message_id="same"))
    assert again.duplicate and not first.duplicate
    assert again.correction == first.correction
    assert EvalEvent.objects.filter(message_id="same").count() == 1
    assert CorrectionSignal.objects.count() == 1


def test_sampling_is_deterministic_on_the_message_id_and_unsampled_events_are_only_counted(published):
    agent, _ = agent_make(sample_rate=0.3)
    ids = [f"s-{i}" for i in range(40)]
    accepted = accept(agent, *[unreferenced(message_id=m) for m in ids])
    expected = {m: ("pending" if sampled(m, 0.3) else "unsampled") for m in ids}
    assert {a.message_id: a.status for a in accepted} == expected
    assert 0 < list(expected.values()).count("unsampled") < 40
    pending = list(EvalEvent.objects.filter(status="pending").values_list("id", flat=True))
    events_evaluate(event_ids=pending)
    assert CorrectionSignal.objects.count() == len(pending)  # every sampled one nudged, no unsampled one
    assert not OnlineResult.objects.filter(event__status="unsampled").exists()


def test_event_types_the_agent_does_not_evaluate_are_filtered(published):
    agent, _ = agent_make(event_types=("tool_call",))
    [answer] = accept(agent, unreferenced())
    assert answer.status == "filtered"
    assert sync(agent, off_topic()).correction is not None


def test_the_async_path_evaluates_once_however_often_it_is_asked(published):
    agent, _ = agent_make()
    accept(agent, unreferenced(message_id="a-1"), off_topic(message_id="a-2"), event(message_id="a-3"))
    ids = list(EvalEvent.objects.values_list("id", flat=True))
    assert events_evaluate(event_ids=ids) == 3
    assert events_evaluate(event_ids=ids) == 0
    assert sorted(CorrectionSignal.objects.values_list("severity", flat=True)) == ["nudge", "redirect"]
    assert OnlineResult.objects.count() == 2 + 1 + 2
    # a resend of a stored event changes nothing and dispatches nothing
    before = OutboxEvent.objects.filter(topic="online.evaluate").count()
    [again] = accept(agent, unreferenced(message_id="a-1"))
    assert again.duplicate and again.status == "evaluated"
    assert OutboxEvent.objects.filter(topic="online.evaluate").count() == before


def test_the_rate_limit_drops_nudges_past_the_window_but_never_a_halt(published, caplog):
    agent, _ = agent_make(max_corrections_per_window=3, window_seconds=60)
    accept(agent, *[unreferenced(message_id=f"r-{i}") for i in range(8)])
    with caplog.at_level(logging.WARNING, logger="online.services"):
        events_evaluate(event_ids=list(EvalEvent.objects.values_list("id", flat=True)))
    assert CorrectionSignal.objects.filter(dropped=False).count() == 3
    assert CorrectionSignal.objects.filter(dropped=True).count() == 5
    assert sum("dropped: rate limit of 3 per 60 s" in r.getMessage() for r in caplog.records) == 5
    answer = sync(agent, leaking())
    assert answer.correction is not None and answer.correction["severity"] == "halt"
    assert not CorrectionSignal.objects.get(severity="halt").dropped


def test_the_window_slides(published):
    agent, _ = agent_make(max_corrections_per_window=1, window_seconds=60)
    assert sync(agent, unreferenced()).correction is not None
    assert sync(agent, unreferenced()).correction is None  # dropped
    CorrectionSignal.objects.filter(dropped=False).update(
        created_at=CorrectionSignal.objects.get(dropped=False).created_at.replace(year=2000)
    )
    assert sync(agent, unreferenced()).correction is not None


def test_a_model_binding_defers_a_sync_event_to_the_workers(published):
    profile = {
        "name": "judge-live",
        "dimensions": {"quality": {}},
        "bindings": [
            {
                "id": "policy",
                "evaluator": "vigilo/regex@^1.0",
                "dimension": "quality",
                "config": {"value": "REF-\\d+"},
            },
            {
                "id": "judge",
                "evaluator": "vigilo/llm-judge@^1.0",
                "dimension": "quality",
                "config": {"prompt": "Is this polite? {output}"},
                "grants": {"model": {"models": ["judge-default"]}},
            },
        ],
    }
    agent, _ = agent_make(profile_document=profile)
    answer = sync(agent, unreferenced(message_id="d-1"))
    assert answer.status == "pending"
    assert "calls a model" in answer.deferred
    row = EvalEvent.objects.get(message_id="d-1")
    assert list(row.results.values_list("binding_id", flat=True)) == ["policy"]  # the inline result is kept
    assert OutboxEvent.objects.filter(topic="online.evaluate", payload__args=[[row.id]]).exists()


def test_acks_are_recorded_once_and_only_for_the_agents_own_corrections(published):
    agent, _ = agent_make()
    other, _ = agent_make("other-bot")
    correction = sync(agent, unreferenced()).correction
    assert correction is not None
    assert correction_ack(agent=other, delivery_id=correction["delivery_id"]) is None
    first = correction_ack(agent=agent, delivery_id=correction["delivery_id"])
    assert first is not None and first.acked_at is not None
    again = correction_ack(agent=agent, delivery_id=correction["delivery_id"])
    assert again is not None and again.acked_at == first.acked_at


def test_a_profile_is_loaded_once_per_process(published):
    agent, _ = agent_make()
    assert profile_loaded(agent.profile) is profile_loaded(agent.profile)


def test_a_resend_after_a_halt_is_answered_from_storage_not_refused(published):
    agent, _ = agent_make()
    [stored] = accept(agent, unreferenced(message_id="before-halt"))
    halt = sync(agent, leaking(message_id="leak-again"))
    again = sync(agent, leaking(message_id="leak-again"))
    assert again.duplicate and again.correction == halt.correction
    [resent] = accept(agent, unreferenced(message_id="before-halt"))  # a batch stored before the halt
    assert resent.duplicate and resent.status == stored.status
    with pytest.raises(AgentHalted):
        accept(agent, unreferenced(message_id="before-halt"), unreferenced(message_id="new-one"))
