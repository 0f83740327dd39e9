"""Webhook deliveries of corrections to a real HTTP receiver on loopback: signed bodies, delivered, retried with
backoff on a 5xx or a receiver that is down, dead past the limit, retried again from the admin's service; the
secret is in no log line and no body. The service is called as the task calls it (the task function itself
where the outbox row's arguments matter)."""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.utils import timezone

from online.ingest import event_parse
from online.messages import correction_body
from online.models import CorrectionSignal, MonitoredAgent, WebhookDelivery
from online.selectors import corrections_after
from online.services import event_submit_sync
from online.tasks import webhook_send
from online.webhooks import signature, webhook_deliver, webhooks_retry_dead
from outbox.models import OutboxEvent
from outbox.services import backoff_seconds
from tests.support.online import agent_make, unreferenced

pytestmark = pytest.mark.django_db


@dataclass
class Receiver:
    """An agent's webhook endpoint: a real HTTP server on 127.0.0.1 that keeps every request's raw bytes and
    answers `status`."""

    status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def serve(self) -> ThreadingHTTPServer:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.url = f"http://127.0.0.1:{server.server_address[1]}/vigilo/hook"
        threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True).start()
        return server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    server = r.serve()
    yield r
    server.shutdown()
    server.server_close()


def nudged(agent: MonitoredAgent) -> WebhookDelivery:
    """A correction for the agent (a missing policy reference nudges), and its webhook delivery."""
    answer = event_submit_sync(agent=MonitoredAgent.objects.get(pk=agent.pk), event=event_parse(unreferenced()))
    assert answer.correction is not None and answer.correction["severity"] == "nudge"
    return WebhookDelivery.objects.get(correction__delivery_id=answer.correction["delivery_id"])


def rows_of(delivery: WebhookDelivery) -> dict[str, OutboxEvent]:
    return {r.dedupe_key: r for r in OutboxEvent.objects.filter(topic="online.webhook", payload__args__0=delivery.pk)}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_correction_is_posted_signed_with_the_agents_secret_and_marked_delivered(published, receiver, caplog):
    agent, _ = agent_make("hook-bot", delivery="webhook", webhook_url=receiver.url)
    agent.refresh_from_db()
    secret = agent.webhook_secret
    assert secret.startswith("whsec_")
    caplog.set_level(logging.DEBUG)
    delivery = nudged(agent)
    assert list(rows_of(delivery)) == [f"online-webhook:{delivery.pk}:0"]
    assert rows_of(delivery)[f"online-webhook:{delivery.pk}:0"].payload["args"] == [delivery.pk, 0]

    before = int(time.time())
    assert webhook_deliver(delivery_id=delivery.pk) == "delivered"
    after = int(time.time())

    [request] = receiver.requests
    headers, body = request["headers"], request["body"]
    assert request["path"] == "/vigilo/hook"
    assert headers["Content-Type"] == "application/json"
    correction = CorrectionSignal.objects.select_related("event").get(pk=delivery.correction_id)
    assert headers["X-Vigilo-Delivery"] == str(correction.delivery_id)
    timestamp = int(headers["X-Vigilo-Timestamp"])
    assert before <= timestamp <= after
    assert headers["X-Vigilo-Signature"] == signature(secret=secret, timestamp=timestamp, body=body)
    # the signature covers the body and the timestamp: neither can be changed and still verify
    assert headers["X-Vigilo-Signature"] != signature(secret=secret, timestamp=timestamp, body=body + b" ")
    assert headers["X-Vigilo-Signature"] != signature(secret=secret, timestamp=timestamp + 1, body=body)
    assert json.loads(body) == correction_body(correction, agent=agent, event=correction.event)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status, delivery.last_error) == (
        "delivered",
        1,
        200,
        "",
    )
    assert delivery.delivered_at is not None
    assert secret.encode() not in body
    assert not [name for name, value in headers.items() if secret in value]
    assert secret not in caplog.text
    # a second delivery of the same message makes no second POST
    assert webhook_deliver(delivery_id=delivery.pk) == "skipped"
    assert len(receiver.requests) == 1


def test_a_5xx_is_retried_with_backoff_until_the_limit_then_dead(published, receiver, settings, caplog):
    settings.VIGILO_WEBHOOK_MAX_ATTEMPTS = 3
    receiver.status = 500
    agent, _ = agent_make("hook-bot", delivery="webhook", webhook_url=receiver.url)
    agent.refresh_from_db()
    caplog.set_level(logging.DEBUG)
    delivery = nudged(agent)

    random.seed(20240501)
    delay = backoff_seconds(1)
    random.seed(20240501)
    before = timezone.now()
    assert webhook_deliver(delivery_id=delivery.pk) == "pending"
    after = timezone.now()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status, delivery.last_error) == (
        "pending",
        1,
        500,
        "the receiver answered HTTP 500",
    )
    retry = rows_of(delivery)[f"online-webhook:{delivery.pk}:1"]
    assert retry.payload == {"task": "online.webhook_deliver", "args": [delivery.pk, 0]}
    assert delay > 0
    # held back by the backoff: due `delay` after the attempt, not at once
    assert before + timedelta(seconds=delay) <= retry.available_at <= after + timedelta(seconds=delay)

    assert webhook_send(*retry.payload["args"]) == "pending"
    assert webhook_send(*rows_of(delivery)[f"online-webhook:{delivery.pk}:2"].payload["args"]) == "dead"

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("dead", 3, 500)
    assert sorted(rows_of(delivery)) == [f"online-webhook:{delivery.pk}:{i}" for i in range(3)]  # none after dead
    assert len(receiver.requests) == 3
    assert {r["headers"]["X-Vigilo-Delivery"] for r in receiver.requests} == {str(delivery.correction.delivery_id)}
    assert webhook_deliver(delivery_id=delivery.pk) == "skipped"
    assert len(receiver.requests) == 3
    failures = [r.getMessage() for r in caplog.records if r.name == "online.webhooks"]
    assert failures == [
        f"online: webhook of agent hook-bot, delivery {delivery.pk} attempt {i} failed: the receiver answered HTTP 500"
        for i in (1, 2, 3)
    ]
    assert agent.webhook_secret not in caplog.text


def test_retry_dead_begins_a_new_round_of_attempts_with_fresh_outbox_rows(published, receiver, settings):
    settings.VIGILO_WEBHOOK_MAX_ATTEMPTS = 2
    receiver.status = 503
    agent, _ = agent_make("hook-bot", delivery="webhook", webhook_url=receiver.url)
    delivery = nudged(agent)
    assert webhook_deliver(delivery_id=delivery.pk) == "pending"
    assert webhook_deliver(delivery_id=delivery.pk) == "dead"

    assert webhooks_retry_dead(ids=[delivery.pk]) == 1
    assert webhooks_retry_dead(ids=[delivery.pk]) == 0  # pending now: not retried twice

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("pending", 2, "")
    first = rows_of(delivery)[f"online-webhook:{delivery.pk}:2"]
    assert (first.status, first.payload["args"]) == ("pending", [delivery.pk, 2])
    assert first.available_at <= timezone.now()  # due at once
    # the round's own failures schedule rows of their own (an earlier round's keys are never reused) ...
    assert webhook_send(*first.payload["args"]) == "pending"
    second = rows_of(delivery)[f"online-webhook:{delivery.pk}:3"]
    assert second.payload["args"] == [delivery.pk, 2]
    # ... and the round ends, dead, after as many attempts as the first
    assert webhook_send(*second.payload["args"]) == "dead"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("dead", 4)
    assert len(rows_of(delivery)) == 4
    # retried again, it is delivered once the receiver is back
    assert webhooks_retry_dead(ids=[delivery.pk]) == 1
    receiver.status = 204
    assert webhook_send(*rows_of(delivery)[f"online-webhook:{delivery.pk}:4"].payload["args"]) == "delivered"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("delivered", 5, 204)
    assert len(receiver.requests) == 5


def test_a_message_claiming_a_later_round_start_than_possible_cannot_stretch_the_round(published, receiver, settings):
    settings.VIGILO_WEBHOOK_MAX_ATTEMPTS = 2
    receiver.status = 500
    agent, _ = agent_make("hook-bot", delivery="webhook", webhook_url=receiver.url)
    delivery = nudged(agent)

    assert webhook_deliver(delivery_id=delivery.pk, round_start=99) == "pending"
    retry = rows_of(delivery)[f"online-webhook:{delivery.pk}:1"]
    assert retry.payload["args"] == [delivery.pk, 0]  # the round began where the delivery's attempts were
    assert webhook_send(*retry.payload["args"]) == "dead"

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("dead", 2)


def test_a_receiver_that_is_down_leaves_the_delivery_pending_with_the_error_and_loses_nothing(published, caplog):
    agent, _ = agent_make("hook-bot", delivery="webhook", webhook_url=f"http://127.0.0.1:{closed_port()}/hook")
    agent.refresh_from_db()
    caplog.set_level(logging.DEBUG)
    delivery = nudged(agent)

    assert webhook_deliver(delivery_id=delivery.pk) == "pending"

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status) == ("pending", 1, None)
    assert delivery.last_error == "webhook of agent hook-bot failed: [Errno 111] Connection refused"
    retry = rows_of(delivery)[f"online-webhook:{delivery.pk}:1"]
    assert (retry.status, retry.payload["args"]) == ("pending", [delivery.pk, 0])
    # the correction is still there for the long-poll, unacked
    [polled] = corrections_after(agent=agent, after=0)
    assert polled["delivery_id"] == str(delivery.correction.delivery_id)
    assert polled["acked"] is False
    assert agent.webhook_secret not in caplog.text
