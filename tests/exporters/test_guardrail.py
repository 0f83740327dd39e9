"""The two-way guardrail protocol (exporters.guardrail): agents.yaml's `guardrail:` block parsed with every problem
named by its path, the requests of the generic protocol and of Fiddler Guardrails, the decisions their answers
map to, and round trips against loopback engines that refuse what the real ones would (the secret only ever in
the Authorization header)."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

import pytest

from exporters.guardrail import (
    DEFAULT_REASON,
    SEVERITIES,
    GuardrailConfig,
    GuardrailFailed,
    guardrail_config_parse,
    guardrail_decision,
    guardrail_request,
)
from online.models import EVENT_TYPES
from online.models import SEVERITIES as LIVE_SEVERITIES
from tests.support.exports import send
from tests.support.receivers.guardrail import FIDDLER_SAFETY, FiddlerGuardrails, GenericGuardrail

SECRET = "gr-Zq81-secret-token"
TRACE, SPAN = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"


def parse(value, path="agents[2].guardrail"):
    return guardrail_config_parse(value, path, event_types=EVENT_TYPES)


def config(**values) -> GuardrailConfig:
    parsed, errors = parse({"url": "https://guard.internal/check", **values})
    assert errors == []
    assert parsed is not None
    return parsed


def ask(cfg: GuardrailConfig, payload: dict, *, secret: str = SECRET, event_type: str = "llm_output"):
    return guardrail_request(
        cfg,
        agent="support-bot",
        event_type=event_type,
        payload=payload,
        message_id="m-1",
        trace_id=TRACE,
        span_id=SPAN,
        secret=secret,
    )


def answer(cfg: GuardrailConfig, body, status: int = 200):
    return guardrail_decision(cfg, status, body if isinstance(body, bytes) else json.dumps(body).encode())


@pytest.fixture(scope="module")
def engine():
    server = GenericGuardrail(token=SECRET)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fiddler():
    server = FiddlerGuardrails(token=SECRET)
    server.start()
    yield server
    server.stop()


# --- agents.yaml


def test_the_severities_are_the_live_loops():
    assert SEVERITIES == LIVE_SEVERITIES


def test_no_guardrail_is_no_config_and_no_error():
    assert parse(None) == (None, [])


def test_a_minimal_generic_config_takes_the_defaults():
    cfg = config()
    assert cfg.protocol == "http"
    assert cfg.url == "https://guard.internal/check"
    assert cfg.event_types == frozenset(EVENT_TYPES)
    assert (cfg.budget_ms, cfg.timeout_s) == (200, 10.0)
    assert dict(cfg.mapping) == {"allow": None, "block": "redirect"}
    assert cfg.thresholds == ()
    assert cfg.reason == DEFAULT_REASON
    assert cfg.secret == cfg.secret_env == ""


def test_a_full_config_is_read_as_declared():
    cfg = config(
        event_types=["llm_output", "message_sent"],
        budget_ms=80,
        timeout_s=2.5,
        mapping={"block": "halt"},
        thresholds=[{"min_score": 0.9, "severity": "halt"}, {"min_score": 0.5, "severity": "redirect"}],
        reason="{action} ({score}): {reason}",
        secret="support_guard",
    )
    assert cfg.applies("message_sent")
    assert not cfg.applies("tool_call")
    assert (cfg.budget_ms, cfg.timeout_s) == (80, 2.5)
    assert cfg.mapping["block"] == "halt"
    assert cfg.thresholds == ((0.9, "halt"), (0.5, "redirect"))
    assert cfg.secret == "SUPPORT_GUARD"
    assert cfg.secret_env == "VIGILO_GUARDRAIL_SUPPORT_GUARD"


def test_a_fiddler_config_defaults_to_the_cloud_service_and_safety():
    cfg, errors = parse({"protocol": "fiddler", "secret": "fiddler"})
    assert errors == []
    assert cfg is not None
    assert (cfg.url, cfg.check, cfg.block_at) == ("https://guardrails.cloud.fiddler.ai", "safety", 0.7)
    trailing, _ = parse(
        {"protocol": "fiddler", "secret": "f", "url": "https://acme.fiddler.ai/", "check": "faithfulness"}
    )
    assert trailing is not None
    assert (trailing.url, trailing.check) == ("https://acme.fiddler.ai", "faithfulness")


URL = {"url": "https://guard.internal/check"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://guard", [("agents[2].guardrail", "a mapping")]),
        ({**URL, "retries": 3}, [("agents[2].guardrail.retries", "unknown key")]),
        ({}, [("agents[2].guardrail.url", "required: the engine's endpoint")]),
        ({"url": "guard.internal/check"}, [("agents[2].guardrail.url", "an http(s) URL")]),
        ({**URL, "protocol": "grpc"}, [("agents[2].guardrail.protocol", "one of http, fiddler")]),
        (
            {**URL, "mapping": {"block": "stop"}},
            [("agents[2].guardrail.mapping.block", "one of nudge, redirect, halt")],
        ),
        ({**URL, "mapping": {"deny": "halt"}}, [("agents[2].guardrail.mapping.deny", "unknown decision")]),
        ({**URL, "mapping": ["block"]}, [("agents[2].guardrail.mapping", "a mapping of decision")]),
        ({**URL, "event_types": ["llm_output", "thought"]}, [("agents[2].guardrail.event_types", "'thought'")]),
        ({**URL, "event_types": []}, [("agents[2].guardrail.event_types", "a non-empty list")]),
        ({**URL, "budget_ms": 0}, [("agents[2].guardrail.budget_ms", "in [1, 60000]")]),
        ({**URL, "budget_ms": True}, [("agents[2].guardrail.budget_ms", "an integer")]),
        ({**URL, "timeout_s": "10s"}, [("agents[2].guardrail.timeout_s", "a number of seconds")]),
        ({**URL, "budget_ms": 3000, "timeout_s": 2}, [("agents[2].guardrail.budget_ms", "must not exceed timeout_s")]),
        (
            {**URL, "thresholds": [{"min_score": 0.5, "severity": "nudge"}, {"min_score": 0.9, "severity": "halt"}]},
            [("agents[2].guardrail.thresholds[1].min_score", "highest first")],
        ),
        (
            {**URL, "thresholds": [{"min_score": 0.9, "severity": "halt"}, {"min_score": 0.5, "severity": "warn"}]},
            [("agents[2].guardrail.thresholds[1].severity", "one of nudge, redirect, halt")],
        ),
        ({**URL, "thresholds": [[0.9, "halt"]]}, [("agents[2].guardrail.thresholds[0]", "a mapping {min_score")]),
        (
            {**URL, "thresholds": [{"min_score": "high", "severity": "halt"}]},
            [("agents[2].guardrail.thresholds[0].min_score", "a number")],
        ),
        ({**URL, "reason": "blocked: {explanation}"}, [("agents[2].guardrail.reason", "unknown field {explanation}")]),
        ({**URL, "reason": "blocked: {score:.2f}"}, [("agents[2].guardrail.reason", "no format spec")]),
        ({**URL, "reason": "blocked {"}, [("agents[2].guardrail.reason", "not a valid template")]),
        ({**URL, "secret": "sk-live-123"}, [("agents[2].guardrail.secret", "not its value")]),
        ({**URL, "check": "safety"}, [("agents[2].guardrail.check", "only with protocol: fiddler")]),
        ({"protocol": "fiddler"}, [("agents[2].guardrail.secret", "required with protocol: fiddler")]),
        (
            {"protocol": "fiddler", "secret": "f", "check": "toxicity", "block_at": 1.5},
            [
                ("agents[2].guardrail.check", "one of safety, faithfulness"),
                ("agents[2].guardrail.block_at", "in [0, 1]"),
            ],
        ),
    ],
)
def test_every_problem_is_named_by_its_path(value, expected):
    cfg, errors = parse(value)
    assert cfg is None
    assert [where for where, _ in errors] == [where for where, _ in expected]
    for (_, message), (_, fragment) in zip(errors, expected, strict=True):
        assert fragment in message


def test_all_problems_are_reported_at_once():
    _, errors = parse(
        {"url": "ftp://x", "budget_ms": -1, "mapping": {"block": "stop"}, "colour": "red"}, "agents[0].guardrail"
    )
    assert sorted(where for where, _ in errors) == [
        "agents[0].guardrail.budget_ms",
        "agents[0].guardrail.colour",
        "agents[0].guardrail.mapping.block",
        "agents[0].guardrail.url",
    ]


# --- requests


def test_the_generic_request_carries_the_event_and_the_secret_in_the_header_only():
    cfg = config(secret="guard")
    payload = {"text": "Refunds take 5 days.", "model": "gpt-4o"}
    req = ask(cfg, payload)
    assert (req.method, req.url, req.records) == ("POST", "https://guard.internal/check", 0)
    assert json.loads(req.body) == {
        "agent": "support-bot",
        "event_type": "llm_output",
        "message_id": "m-1",
        "trace_id": TRACE,
        "span_id": SPAN,
        "payload": payload,
    }
    assert req.headers["Authorization"] == f"Bearer {SECRET}"
    assert req.headers["Content-Type"] == "application/json"
    assert SECRET.encode() not in req.body


def test_an_engine_without_a_secret_gets_no_authorization_header():
    assert "Authorization" not in ask(config(), {"text": "hi"}, secret="").headers


def test_fiddler_safety_checks_the_text_else_the_content_else_the_payload():
    cfg, _ = parse({"protocol": "fiddler", "secret": "fiddler", "url": "https://acme.fiddler.ai"})
    assert cfg is not None
    req = ask(cfg, {"text": "Refunds take 5 days.", "context": "ignored"})
    assert req.url == "https://acme.fiddler.ai/v3/guardrails/ftl-safety"
    assert json.loads(req.body) == {"data": {"input": "Refunds take 5 days."}}
    assert req.headers["Authorization"] == f"Bearer {SECRET}"
    assert json.loads(ask(cfg, {"content": "from content"}).body) == {"data": {"input": "from content"}}
    tool = json.loads(ask(cfg, {"name": "send_email", "arguments": {"to": "x"}}, event_type="tool_call").body)
    assert json.loads(tool["data"]["input"]) == {"name": "send_email", "arguments": {"to": "x"}}


def test_fiddler_faithfulness_sends_the_response_and_its_context():
    cfg, _ = parse({"protocol": "fiddler", "secret": "fiddler", "check": "faithfulness"})
    assert cfg is not None
    req = ask(cfg, {"text": "Refunds take 5 days.", "context": ["Refunds: 5 days.", "Returns: 30 days."]})
    assert req.url == "https://guardrails.cloud.fiddler.ai/v3/guardrails/ftl-response-faithfulness"
    assert json.loads(req.body) == {
        "data": {"response": "Refunds take 5 days.", "context": "Refunds: 5 days.\n\nReturns: 30 days."}
    }
    with pytest.raises(GuardrailFailed, match="context"):
        ask(cfg, {"text": "Refunds take 5 days."})


def test_fiddler_is_never_asked_without_its_token():
    cfg, _ = parse({"protocol": "fiddler", "secret": "fiddler"})
    assert cfg is not None
    with pytest.raises(GuardrailFailed, match="VIGILO_GUARDRAIL_FIDDLER"):
        ask(cfg, {"text": "hi"}, secret="")


# --- decisions


def test_a_block_maps_to_its_severity_and_fills_the_reason():
    cfg = config(mapping={"block": "halt"}, reason="{action} at {score}: {reason}")
    decision = answer(cfg, {"action": "block", "score": 0.97, "reason": "card number", "findings": {"span": [3, 9]}})
    assert (decision.action, decision.severity, decision.score) == ("block", "halt", 0.97)
    assert decision.reason == "block at 0.97: card number"
    assert decision.engine_reason == "card number"
    assert decision.findings == {"span": [3, 9]}


def test_an_allow_corrects_nothing():
    decision = answer(config(mapping={"block": "halt"}), {"action": "allow"})
    assert (decision.action, decision.severity, decision.score, decision.findings) == ("allow", None, None, {})
    assert decision.reason == "guardrail allow: no reason given"


def test_thresholds_map_scores_highest_first_and_the_most_severe_wins():
    cfg = config(
        mapping={"block": "nudge"},
        thresholds=[{"min_score": 0.9, "severity": "halt"}, {"min_score": 0.5, "severity": "redirect"}],
    )
    assert answer(cfg, {"action": "allow", "score": 0.95}).severity == "halt"
    assert answer(cfg, {"action": "allow", "score": 0.9}).severity == "halt"
    assert answer(cfg, {"action": "allow", "score": 0.6}).severity == "redirect"
    assert answer(cfg, {"action": "allow", "score": 0.2}).severity is None
    assert answer(cfg, {"action": "block", "score": 0.2}).severity == "nudge"
    assert answer(cfg, {"action": "block", "score": 0.7}).severity == "redirect"


def test_a_mapping_to_null_blocks_without_correcting():
    assert answer(config(mapping={"block": None}), {"action": "block"}).severity is None


@pytest.mark.parametrize(
    ("status", "body", "fragment"),
    [
        (500, {"action": "allow"}, "HTTP 500"),
        (401, {"error": f"bad token {SECRET}"}, "HTTP 401"),
        (200, b"<html>busy</html>", "not JSON"),
        (200, b"\xff\xfe", "not JSON"),
        (200, [{"action": "block"}], "JSON list"),
        (200, {"score": 0.9}, "'action'"),
        (200, {"action": "deny"}, "'action'"),
        (200, {"action": "block", "score": "high"}, "'score'"),
        (200, {"action": "block", "score": True}, "'score'"),
        (200, b'{"action": "block", "score": NaN}', "'score'"),
        (200, {"action": "block", "reason": 5}, "'reason'"),
        (200, {"action": "block", "findings": ["pii"]}, "'findings'"),
    ],
)
def test_an_unusable_answer_raises_without_the_secret(status, body, fragment):
    with pytest.raises(GuardrailFailed) as caught:
        answer(config(secret="guard"), body, status)
    assert fragment in caught.value.reason
    assert SECRET not in str(caught.value)


def test_fiddler_safety_blocks_on_its_highest_score():
    cfg, _ = parse({"protocol": "fiddler", "secret": "f", "mapping": {"block": "halt"}, "block_at": 0.8})
    assert cfg is not None
    scores = dict.fromkeys(FIDDLER_SAFETY, 0.01) | {"fdl_jailbreaking": 0.85}
    decision = answer(cfg, scores)
    assert (decision.action, decision.score, decision.severity) == ("block", 0.85, "halt")
    assert decision.engine_reason == "fdl_jailbreaking 0.85"
    assert decision.findings == scores
    calm = answer(cfg, scores | {"fdl_jailbreaking": 0.79})
    assert (calm.action, calm.severity) == ("allow", None)
    with pytest.raises(GuardrailFailed, match="no fdl_"):
        answer(cfg, {"status": "ok"})
    with pytest.raises(GuardrailFailed, match="fdl_violent"):
        answer(cfg, {"fdl_violent": "0.9"})


def test_fiddler_faithfulness_blocks_an_unfaithful_response():
    cfg, _ = parse({"protocol": "fiddler", "secret": "f", "check": "faithfulness", "block_at": 0.6})
    assert cfg is not None
    unfaithful = answer(cfg, {"fdl_faithful_score": 0.25})
    assert (unfaithful.action, unfaithful.score, unfaithful.severity) == ("block", 0.75, "redirect")
    assert unfaithful.engine_reason == "fdl_faithful_score 0.25"
    assert answer(cfg, {"fdl_faithful_score": 0.9}).action == "allow"
    with pytest.raises(GuardrailFailed, match="fdl_faithful_score"):
        answer(cfg, {"fdl_harmful": 0.1})


# --- round trips


def test_a_round_trip_with_the_generic_engine(engine):
    cfg = config(url=engine.url, secret="guard", mapping={"block": "halt"})
    before = len(engine.requests)
    [(status, body)] = send([ask(cfg, {"text": "This is FORBIDDEN talk."})])
    blocked = guardrail_decision(cfg, status, body)
    assert (blocked.action, blocked.severity, blocked.score) == ("block", "halt", 0.97)
    assert blocked.reason == "guardrail block: forbidden word"
    assert blocked.findings == {"word": "forbidden", "message_id": "m-1"}
    [(status, body)] = send([ask(cfg, {"text": "Refunds take 5 days."})])
    allowed = guardrail_decision(cfg, status, body)
    assert (allowed.action, allowed.severity) == ("allow", None)
    received = engine.requests[before:]
    assert len(received) == 2
    assert received[0]["body"]["payload"] == {"text": "This is FORBIDDEN talk."}
    assert received[0]["body"]["trace_id"] == TRACE
    for request in received:
        headers = {key.lower(): value for key, value in request["headers"].items()}
        assert headers["authorization"] == f"Bearer {SECRET}"
        assert SECRET not in json.dumps(request["body"])


def test_the_generic_engine_refuses_a_wrong_token_and_the_failure_hides_it(engine):
    cfg = config(url=engine.url, secret="guard")
    [(status, body)] = send([ask(cfg, {"text": "hi"}, secret="not-the-token")])
    assert status == 401
    with pytest.raises(GuardrailFailed, match="HTTP 401") as caught:
        guardrail_decision(cfg, status, body)
    assert "not-the-token" not in str(caught.value)


def test_a_wrongly_typed_answer_from_the_engine_fails():
    server = GenericGuardrail(token=SECRET)
    server.start()
    try:
        cfg = config(url=server.url, secret="guard")
        server.answer_with({"action": "block", "score": "0.9"})
        [(status, body)] = send([ask(cfg, {"text": "hi"})])
        assert status == 200
        with pytest.raises(GuardrailFailed, match="'score'"):
            guardrail_decision(cfg, status, body)
        server.fail_with(503)
        [(status, body)] = send([ask(cfg, {"text": "hi"})])
        with pytest.raises(GuardrailFailed, match="HTTP 503"):
            guardrail_decision(cfg, status, body)
    finally:
        server.stop()


def test_a_slow_engine_outlasts_the_budget_but_still_answers():
    server = GenericGuardrail(token=SECRET, delay_s=0.5)
    server.start()
    try:
        cfg = config(url=server.url, secret="guard", budget_ms=100, timeout_s=2)
        req = ask(cfg, {"text": "forbidden"})
        request = urllib.request.Request(req.url, data=req.body, headers=dict(req.headers), method=req.method)
        started = time.monotonic()
        with pytest.raises((TimeoutError, socket.timeout)):
            urllib.request.urlopen(request, timeout=cfg.budget_ms / 1000)
        assert time.monotonic() - started < 0.45
        with urllib.request.urlopen(request, timeout=cfg.timeout_s) as response:
            late = guardrail_decision(cfg, response.status, response.read())
        assert late.action == "block"
    finally:
        server.stop()


def test_a_round_trip_with_fiddler_safety(fiddler):
    cfg, _ = parse({"protocol": "fiddler", "secret": "fiddler", "url": fiddler.origin, "mapping": {"block": "halt"}})
    assert cfg is not None
    [(status, body)] = send([ask(cfg, {"text": "a forbidden plan"})])
    unsafe = guardrail_decision(cfg, status, body)
    assert (unsafe.action, unsafe.severity, unsafe.score) == ("block", "halt", 0.93)
    assert unsafe.engine_reason == "fdl_violent 0.93"
    assert set(unsafe.findings) == set(FIDDLER_SAFETY)
    [(status, body)] = send([ask(cfg, {"content": "Refunds take 5 days."})])
    assert guardrail_decision(cfg, status, body).severity is None
    assert fiddler.requests[-1]["path"] == "/v3/guardrails/ftl-safety"
    assert fiddler.requests[-1]["body"] == {"data": {"input": "Refunds take 5 days."}}


def test_a_round_trip_with_fiddler_faithfulness(fiddler):
    cfg, _ = parse({"protocol": "fiddler", "secret": "fiddler", "url": fiddler.origin, "check": "faithfulness"})
    assert cfg is not None
    context = "Refunds take five days. Returns are accepted for thirty days."
    [(status, body)] = send([ask(cfg, {"text": "Refunds take five days.", "context": context})])
    assert guardrail_decision(cfg, status, body).action == "allow"
    [(status, body)] = send([ask(cfg, {"text": "We refund instantly in bitcoin.", "context": context})])
    invented = guardrail_decision(cfg, status, body)
    assert (invented.action, invented.severity) == ("block", "redirect")
    assert invented.findings["fdl_faithful_score"] < 0.3


def test_the_fiddler_stand_in_refuses_what_fiddler_would(fiddler):
    cfg, _ = parse({"protocol": "fiddler", "secret": "fiddler", "url": fiddler.origin})
    assert cfg is not None
    good = ask(cfg, {"text": "hi"})
    bad = [
        {"url": good.url, "body": good.body, "headers": {"Content-Type": "application/json"}},
        {"url": good.url, "body": b'{"input": "hi"}', "headers": dict(good.headers)},
        {"url": good.url, "body": b'{"data": {"input": ""}}', "headers": dict(good.headers)},
        {"url": good.url, "body": b'{"data": {"text": "hi"}}', "headers": dict(good.headers)},
        {"url": fiddler.origin + "/v3/guardrails/ftl-toxicity", "body": good.body, "headers": dict(good.headers)},
    ]
    requests = [type(good)(method="POST", records=0, **item) for item in bad]
    assert [status for status, _ in send(requests)] == [401, 400, 400, 400, 404]
    assert send([good])[0][0] == 200
