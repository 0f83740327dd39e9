"""The agent SDK (client/vigilo_live.py) where no Vigilo server is needed: the no-op when unconfigured, the stop
path, webhook signatures as online/webhooks.py makes them, and the webhook handler served by a real http.server.
The SDK against the real server is tests/online/test_live_agent.py."""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer

import pytest

from online.webhooks import signature
from tests.support.live_agent import vigilo_live

pytestmark = pytest.mark.embedded  # no server, no database: the check suite runs them too

SECRET = "whsec_test-secret"
DELIVERY = "6f1c0a52-3f0e-4a57-9d57-0d3f2b4f9e11"


@pytest.fixture(autouse=True)
def unconfigured(monkeypatch):
    """`LiveAgent()` reads VIGILO_URL: these tests never send anything."""
    monkeypatch.delenv("VIGILO_URL", raising=False)
    monkeypatch.delenv("VIGILO_AGENT_TOKEN", raising=False)


def correction_body(delivery_id: str = DELIVERY, severity: str = "nudge") -> dict:
    """A correction as online/messages.py `correction_body` shows it."""
    return {
        "delivery_id": delivery_id,
        "cursor": 7,
        "agent": "support-bot",
        "severity": severity,
        "reason": "cite the policy you rely on (REF-nn): no match for REF-\\d+",
        "payload": {"binding": "policy-reference", "findings": [], "explanation": "", "score": 0.0, "also": []},
        "event": {"message_id": "m-1", "event_type": "llm_output", "trace_id": "", "span_id": ""},
        "created_at": "2026-12-04T10:00:00+00:00",
        "acked": False,
    }


def signed(body: bytes, *, secret: str = SECRET, timestamp: int | None = None, delivery: str = DELIVERY) -> dict:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "X-Vigilo-Delivery": delivery,
        "X-Vigilo-Timestamp": str(timestamp),
        "X-Vigilo-Signature": signature(secret=secret, timestamp=timestamp, body=body),
    }


def encoded(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()  # as webhook_deliver encodes it


# -- unconfigured: a no-op ------------------------------------------------------------------------------------


def test_without_a_url_the_agent_is_a_no_op():
    before = {t.name for t in threading.enumerate()}

    agent = vigilo_live.LiveAgent(mode="async")
    agent.start_polling()

    assert agent.enabled is False
    assert agent.emit_eval("llm_output", {"text": "hello"}) is None
    assert agent.wait_resumed(0.1) is True
    assert agent.running is True
    assert {t.name for t in threading.enumerate()} - before == set()  # no sender, no poller


def test_the_url_and_token_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("VIGILO_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("VIGILO_AGENT_TOKEN", "vgt_x")
    agent = vigilo_live.LiveAgent()
    assert (agent.enabled, agent.base) == (True, "http://127.0.0.1:9")

    monkeypatch.delenv("VIGILO_AGENT_TOKEN")
    with pytest.raises(ValueError, match="a token is required"):
        vigilo_live.LiveAgent()
    with pytest.raises(ValueError, match="not an http"):
        vigilo_live.LiveAgent("ftp://example.com", "vgt_x")
    with pytest.raises(ValueError, match="mode must be"):
        vigilo_live.LiveAgent(mode="later")


def test_a_bad_event_is_refused_before_anything_is_sent():
    agent = vigilo_live.LiveAgent("http://127.0.0.1:9", "vgt_x", mode="async")
    with pytest.raises(ValueError, match="event_type 'llm'"):
        agent.emit_eval("llm", {"text": "hi"})
    with pytest.raises(ValueError, match="payload must be a dict"):
        agent.emit_eval("llm_output", "hi")  # type: ignore[arg-type]
    assert agent.flush(0.1) is True  # nothing was queued


def test_stop_runs_the_stop_callbacks_once_and_refuses_later_events():
    agent = vigilo_live.LiveAgent("http://127.0.0.1:9", "vgt_x")
    stops = []
    agent.on_stop(stops.append)

    agent.stop("shutting down")
    agent.close()

    assert agent.running is False
    assert [(s.source, s.reason, s.halt_id) for s in stops] == [("stop", "shutting down", None)]
    with pytest.raises(vigilo_live.AgentStopped):
        agent.emit_eval("llm_output", {"text": "hi"})
    with pytest.raises(vigilo_live.AgentStopped):
        agent.wait_resumed(0.1)  # a stop is not a halt: nothing to resume


def test_sigterm_stops_the_agent_through_the_same_path():
    agent = vigilo_live.LiveAgent()
    stops = []
    agent.on_stop(stops.append)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        agent.install_signal_handlers()
        signal.raise_signal(signal.SIGTERM)
        assert agent.running is False  # at once, before the helper thread ran the callbacks
        deadline = time.monotonic() + 10
        while not stops and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert [(s.source, s.reason) for s in stops] == [("stop", "SIGTERM received")]


# -- dispatch -------------------------------------------------------------------------------------------------


def test_each_delivery_is_dispatched_once_and_a_halt_stops_the_agent():
    agent = vigilo_live.LiveAgent()
    seen, stops = [], []
    agent.on_correction(seen.append)
    agent.on_stop(stops.append)
    nudge = vigilo_live.Correction.from_body(correction_body())
    halt = vigilo_live.Correction.from_body(correction_body("0b6c3f5e-0000-4000-8000-000000000001", "halt"))

    assert agent.dispatch(nudge) is True
    assert agent.dispatch(nudge) is False
    assert agent.dispatch(halt) is True
    assert agent.dispatch(halt) is False

    assert [(c.delivery_id, c.severity, c.cursor) for c in seen] == [(DELIVERY, "nudge", 7)]  # a halt is no nudge
    assert [(s.source, s.halt_id) for s in stops] == [("halt", halt.delivery_id)]
    assert agent.running is False and agent.halted is not None and agent.name == "support-bot"


def test_a_failing_callback_is_recorded_and_the_others_still_stop(caplog):
    agent = vigilo_live.LiveAgent()
    stops = []

    def broken(stop):
        raise RuntimeError("the agent's own bug")

    agent.on_stop(broken)
    agent.on_stop(stops.append)
    agent.dispatch(vigilo_live.Correction.from_body(correction_body(severity="halt")))

    assert len(stops) == 1
    assert "on_stop callback failed" in caplog.text


# -- verify_webhook -------------------------------------------------------------------------------------------


def test_verify_webhook_accepts_a_body_signed_as_vigilo_signs_it():
    body = encoded(correction_body())
    headers = signed(body)

    correction = vigilo_live.verify_webhook(SECRET, headers, body)

    assert correction == vigilo_live.Correction.from_body(correction_body())
    assert (correction.delivery_id, correction.severity, correction.event["message_id"]) == (DELIVERY, "nudge", "m-1")
    lower = {k.lower(): v for k, v in headers.items()}  # header names are case-insensitive
    assert vigilo_live.verify_webhook(SECRET, lower, body).delivery_id == DELIVERY


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h, b: ({**h}, b + b" "), "does not match the body"),
        (lambda h, b: (signed(b, secret="whsec_other"), b), "does not match the body"),
        (lambda h, b: ({**h, "X-Vigilo-Signature": "sha256=" + "0" * 64}, b), "does not match the body"),
        (lambda h, b: ({**h, "X-Vigilo-Timestamp": "soon"}, b), "is not Unix seconds"),
        (lambda h, b: (signed(b, delivery="another"), b), "is not the body's delivery_id"),
    ],
    ids=["body-changed", "wrong-secret", "forged-signature", "timestamp-not-a-number", "delivery-mismatch"],
)
def test_verify_webhook_refuses_a_bad_signature(change, message):
    body = encoded(correction_body())
    headers, sent = change(signed(body), body)
    with pytest.raises(vigilo_live.WebhookRefused, match=message):
        vigilo_live.verify_webhook(SECRET, headers, sent)


@pytest.mark.parametrize("missing", ["X-Vigilo-Delivery", "X-Vigilo-Timestamp", "X-Vigilo-Signature"])
def test_verify_webhook_refuses_a_missing_header(missing):
    body = encoded(correction_body())
    headers = {k: v for k, v in signed(body).items() if k != missing}
    with pytest.raises(vigilo_live.WebhookRefused, match=f"missing header\\(s\\): {missing}"):
        vigilo_live.verify_webhook(SECRET, headers, body)


def test_verify_webhook_refuses_a_timestamp_outside_the_tolerance():
    body = encoded(correction_body())
    signed_at = 1_800_000_000
    headers = signed(body, timestamp=signed_at)

    assert vigilo_live.verify_webhook(SECRET, headers, body, now=signed_at + 300).delivery_id == DELIVERY
    for now in (signed_at + 301, signed_at - 301):  # a replay later, or a clock far ahead
        with pytest.raises(vigilo_live.WebhookRefused, match="outside the tolerance of 300 s"):
            vigilo_live.verify_webhook(SECRET, headers, body, now=now)
    with pytest.raises(vigilo_live.WebhookRefused, match="outside the tolerance of 10 s"):
        vigilo_live.verify_webhook(SECRET, headers, body, now=signed_at + 11, tolerance_s=10)


def test_verify_webhook_refuses_a_signed_body_that_is_not_a_correction():
    body = b'{"hello": "world"}'
    with pytest.raises(vigilo_live.WebhookRefused, match="not a correction"):
        vigilo_live.verify_webhook(SECRET, signed(body), body)


# -- webhook_handler on a real http.server --------------------------------------------------------------------


@pytest.fixture
def receiver():
    """An agent (not configured: nothing is sent, acks included) and its webhook handler on 127.0.0.1:0."""
    agent = vigilo_live.LiveAgent()
    seen, stops = [], []
    agent.on_correction(seen.append)
    agent.on_stop(stops.append)
    server = ThreadingHTTPServer(("127.0.0.1", 0), vigilo_live.webhook_handler(agent, SECRET))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/vigilo", agent, seen, stops
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def post(url: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_webhook_handler_refuses_an_unsigned_post(receiver):
    url, agent, seen, stops = receiver
    body = encoded(correction_body())

    status, answer = post(url, body, {"Content-Type": "application/json"})
    tampered, _ = post(url, body.replace(b"nudge", b"halt!"), signed(body))

    assert (status, tampered) == (401, 401)
    assert "missing header(s)" in json.loads(answer)["error"]
    assert (seen, stops, agent.running) == ([], [], True)


def test_the_webhook_handler_dispatches_a_signed_delivery_once(receiver):
    url, agent, seen, stops = receiver
    body = encoded(correction_body())

    first, answer = post(url, body, signed(body))
    again, _ = post(url, body, signed(body))  # Vigilo's retry of a delivery it thinks was lost

    assert (first, again, answer) == (204, 204, b"")
    assert [(c.delivery_id, c.severity) for c in seen] == [(DELIVERY, "nudge")]
    assert (stops, agent.running) == ([], True)


def test_a_halt_by_webhook_stops_the_agent_once(receiver):
    url, agent, seen, stops = receiver
    halt_id = "0b6c3f5e-0000-4000-8000-000000000002"
    body = encoded(correction_body(halt_id, "halt"))

    statuses = [post(url, body, signed(body, delivery=halt_id))[0] for _ in range(2)]

    assert statuses == [204, 204]
    assert seen == []
    assert [(s.source, s.halt_id, s.reason) for s in stops] == [("halt", halt_id, correction_body()["reason"])]
    assert agent.running is False
