"""The live-evaluation endpoints: what an agent's token may do (only as itself), what an operator may do, bad
bodies answered 4xx naming the field, halts answered 409, the long-poll and acks."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from api.services import TokenError, token_create
from online.ingest import event_parse
from online.models import AgentAudit, CorrectionSignal, EvalEvent, MonitoredAgent
from online.services import event_submit_sync
from tests.support.online import agent_make, event, leaking, off_topic, unreferenced

pytestmark = pytest.mark.django_db
EVENTS = "/api/v1/online/events"
CORRECTIONS = "/api/v1/online/corrections"


def client(secret: str) -> APIClient:
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return c


def post(c: APIClient, body, **headers):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return c.post(EVENTS, data=raw, content_type="application/json", **headers)


def fields(response) -> dict:
    return response.json()["error"]["fields"]


def test_sync_event_answers_with_its_correction(published):
    _, secret = agent_make()
    response = post(client(secret), unreferenced(message_id="api-1"))
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["message_id"], body["duplicate"]) == ("evaluated", "api-1", False)
    assert body["correction"]["severity"] == "nudge"
    assert body["correction"]["delivery_id"] == str(CorrectionSignal.objects.get().delivery_id)


def test_async_event_and_batch_are_accepted_with_202(published):
    _, secret = agent_make()
    c = client(secret)
    one = post(c, unreferenced(message_id="as-1"), HTTP_PREFER="respond-async")
    assert one.status_code == 202, one.content
    assert one.json()["accepted"] == [{"message_id": "as-1", "status": "pending", "duplicate": False}]
    batch = post(c, {"events": [off_topic(message_id="as-2"), event(message_id="as-1")]})
    assert batch.status_code == 202
    assert [(a["message_id"], a["duplicate"]) for a in batch.json()["accepted"]] == [("as-2", False), ("as-1", True)]
    assert EvalEvent.objects.filter(status="pending").count() == 2
    assert not CorrectionSignal.objects.exists()  # the workers evaluate them


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (b"{not json", "body", "not JSON"),
        (b"[1, 2]", "event", "JSON object"),
        (
            {"event_type": "thought", "payload": {}, "message_id": "x"},
            "event.event_type",
            "unknown event type 'thought'",
        ),
        ({"event_type": "llm_output", "payload": {"text": "hi"}}, "event.message_id", "required"),
        ({"event_type": "llm_output", "payload": "hi", "message_id": "x"}, "event.payload", "a JSON object"),
        ({"event_type": "llm_output", "payload": {}, "message_id": "x", "mood": 1}, "event.mood", "unknown field"),
        ({"event_type": "llm_output", "payload": {}, "message_id": "x", "trace_id": "xyz"}, "event.trace_id", "32 hex"),
        (
            {"event_type": "llm_output", "payload": {}, "message_id": "x", "timestamp": "soon"},
            "event.timestamp",
            "RFC 3339",
        ),
        ({"events": [{"event_type": "llm_output", "payload": {}}]}, "events[0].message_id", "required"),
        ({"events": []}, "events", "1 to 500"),
    ],
)
def test_bad_event_bodies_get_400_naming_the_field(published, body, field, words):
    _, secret = agent_make()
    response = post(client(secret), body)
    assert response.status_code == 400, response.content
    assert field in fields(response), response.json()
    assert words in fields(response)[field][0]
    assert not EvalEvent.objects.exists()


@override_settings(VIGILO_ONLINE_MAX_EVENT_BYTES=1000)
def test_a_payload_over_the_size_limit_is_refused(published):
    _, secret = agent_make()
    response = post(client(secret), event(payload={"text": "x" * 2000}))
    assert response.status_code == 400
    assert "over the limit of 1000" in fields(response)["event.payload"][0]


def test_a_halted_agent_gets_409_with_the_halt(published):
    _, secret = agent_make()
    c = client(secret)
    halt = post(c, leaking()).json()["correction"]
    assert halt["severity"] == "halt"
    for response in (post(c, event()), post(c, event(), HTTP_PREFER="respond-async"), post(c, {"events": [event()]})):
        assert response.status_code == 409, response.content
        error = response.json()["error"]
        assert (error["code"], error["halt_id"], error["agent"]) == ("agent_halted", halt["delivery_id"], "support-bot")
        assert "card number" in error["reason"]


def test_an_agent_token_emits_only_as_its_own_agent(published):
    _, secret = agent_make("bot-a")
    agent_make("bot-b")
    c = client(secret)
    response = post(c, event(agent_name="bot-b"))
    assert response.status_code == 403
    assert "cannot emit as 'bot-b'" in response.json()["error"]["message"]
    response = post(c, {"events": [event(), event(agent_name="bot-b")]})
    assert response.status_code == 403
    assert not EvalEvent.objects.exists()
    assert post(c, event(agent_name="bot-a")).status_code == 200


def test_tokens_that_are_not_an_agents_cannot_emit(published):
    agent_make()
    _, writer = token_create(name="ci", scopes=["read", "write", "publish", "operate"])
    response = post(client(writer), event())
    assert response.status_code == 403
    assert "agent's token" in response.json()["error"]["message"]
    with pytest.raises(TokenError, match="emit belongs to an agent"):
        token_create(name="sneaky", scopes=["emit"])
    agent = MonitoredAgent.objects.get()
    with pytest.raises(TokenError, match="an agent's token has only emit"):
        token_create(name="agent-operator", scopes=["emit", "operate"], agent=agent)


def test_an_agent_cannot_resume_itself_and_an_operator_can_with_a_reason(published):
    agent, secret = agent_make()
    c = client(secret)
    post(c, leaking())
    url = f"/api/v1/online/agents/{agent.name}/resume"
    response = c.post(url, {"reason": "I promise"}, format="json")
    assert response.status_code == 403
    assert "cannot resume" in response.json()["error"]["message"]
    _, reader = token_create(name="reader", scopes=["read"])
    assert client(reader).post(url, {"reason": "x"}, format="json").status_code == 403
    _, ops = token_create(name="ops", scopes=["operate"])
    missing = client(ops).post(url, {}, format="json")
    assert missing.status_code == 400
    assert "reason" in fields(missing)
    response = client(ops).post(url, {"reason": "test card, not a real one"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "active"
    assert response.json()["audit"]["actor"] == "token:ops"
    assert list(AgentAudit.objects.filter(agent=agent).values_list("action", "actor")) == [
        ("resume", "token:ops"),
        ("halt", "supervisor"),
        ("apply", "test"),
    ]
    assert client(ops).post(url, {"reason": "again"}, format="json").status_code == 409
    assert post(c, event()).status_code == 200


def test_corrections_are_read_only_by_their_agent_or_a_reader(published):
    _, secret_a = agent_make("bot-a")
    _, secret_b = agent_make("bot-b")
    post(client(secret_a), unreferenced())
    mine = client(secret_a).get(CORRECTIONS)
    assert mine.status_code == 200
    assert [c["severity"] for c in mine.json()["corrections"]] == ["nudge"]
    assert client(secret_b).get(CORRECTIONS).json()["corrections"] == []
    other = client(secret_b).get(CORRECTIONS, {"agent": "bot-a"})
    assert other.status_code == 403
    assert client(secret_b).get("/api/v1/online/agents/bot-a").status_code == 403
    _, reader = token_create(name="reader", scopes=["read"])
    assert len(client(reader).get(CORRECTIONS, {"agent": "bot-a"}).json()["corrections"]) == 1
    assert client(reader).get(CORRECTIONS).status_code == 400  # a reader names the agent
    _, writer = token_create(name="writer", scopes=["write"])
    assert client(writer).get(CORRECTIONS, {"agent": "bot-a"}).status_code == 403


def test_the_cursor_acks_and_unacked_filter(published):
    _, secret = agent_make()
    c = client(secret)
    post(c, unreferenced(message_id="c-1"))
    post(c, off_topic(message_id="c-2"))
    page = c.get(CORRECTIONS, {"after": 0}).json()
    assert [x["event"]["message_id"] for x in page["corrections"]] == ["c-1", "c-2"]
    assert page["cursor"] == page["corrections"][-1]["cursor"]
    assert c.get(CORRECTIONS, {"after": page["cursor"]}).json()["corrections"] == []
    first = page["corrections"][0]["delivery_id"]
    ack = c.post(f"{CORRECTIONS}/{first}/ack")
    assert ack.status_code == 200
    unacked = c.get(CORRECTIONS, {"unacked": "1"}).json()["corrections"]
    assert [x["event"]["message_id"] for x in unacked] == ["c-2"]
    assert c.post(f"{CORRECTIONS}/00000000-0000-0000-0000-000000000000/ack").status_code == 404
    assert c.post(f"{CORRECTIONS}/not-a-uuid/ack").status_code == 404
    bad = c.get(CORRECTIONS, {"after": "x", "wait": "-1"})
    assert bad.status_code == 400
    assert {"after", "wait"} <= set(fields(bad))


@pytest.mark.django_db(transaction=True)
def test_the_long_poll_returns_when_a_correction_arrives(published):
    agent, secret = agent_make()

    def later() -> None:
        time.sleep(0.5)
        event_submit_sync(agent=MonitoredAgent.objects.get(pk=agent.pk), event=event_parse(unreferenced()))

    thread = threading.Thread(target=later)
    started = time.monotonic()
    thread.start()
    try:
        response = client(secret).get(CORRECTIONS, {"after": 0, "wait": 10})
    finally:
        thread.join()
    waited = time.monotonic() - started
    assert response.status_code == 200
    assert len(response.json()["corrections"]) == 1
    assert 0.4 < waited < 8, waited  # it waited for the correction, not for the whole 10 s
    empty_started = time.monotonic()
    cursor = response.json()["cursor"]
    assert client(secret).get(CORRECTIONS, {"after": cursor, "wait": 0.5}).json()["corrections"] == []
    assert time.monotonic() - empty_started >= 0.45
