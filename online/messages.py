"""The outbox messages of live evaluation: work for the `online` queue, corrections pushed over AMQP, and the
agent events (`agent.halted`, `agent.resumed`) on `vigilo.events`."""

from __future__ import annotations

import hashlib
from typing import Any

from online.models import CorrectionSignal, EvalEvent, MonitoredAgent
from outbox.services import Message, routed

EVALUATE_TASK = "online.evaluate_events"
WEBHOOK_TASK = "online.webhook_deliver"
CORRECTIONS_EXCHANGE = "vigilo.corrections"
EVENTS_EXCHANGE = "vigilo.online"  # where high-volume emitters publish events (online/consumer.py)


def evaluate_message(event_ids: list[int], *, round_: int = 0) -> Message:
    """Evaluate these pending events. The key names the events, so the same batch is dispatched once per round."""
    ids = sorted(event_ids)
    digest = hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()[:24]
    return Message(
        topic="online.evaluate",
        dedupe_key=f"online-eval:{ids[0]}:{len(ids)}:{digest}:{round_}",
        payload={"task": EVALUATE_TASK, "args": [ids]},
    )


def webhook_message(delivery_id: int, *, attempt: int, round_start: int = 0, delay_s: float = 0.0) -> Message:
    """Make attempt number `attempt` of this delivery, counted over its life, so the key is new for every attempt
    of every round. `round_start` is how many attempts the delivery had when its current round began (0, or
    where the admin's retry of a dead delivery began another round): a round ends, dead, after
    VIGILO_WEBHOOK_MAX_ATTEMPTS attempts of its own."""
    return Message(
        topic="online.webhook",
        dedupe_key=f"online-webhook:{delivery_id}:{attempt}",
        payload={"task": WEBHOOK_TASK, "args": [delivery_id, round_start]},
        delay_s=delay_s,
    )


def correction_body(correction: CorrectionSignal, *, agent: MonitoredAgent, event: EvalEvent) -> dict[str, Any]:
    """A correction as every delivery path shows it (the long-poll, the sync answer, webhooks, AMQP)."""
    return {
        "delivery_id": str(correction.delivery_id),
        "cursor": correction.id,
        "agent": agent.name,
        "severity": correction.severity,
        "reason": correction.reason,
        "payload": correction.payload,
        "event": {
            "message_id": event.message_id,
            "event_type": event.event_type,
            "trace_id": event.trace_id,
            "span_id": event.span_id,
        },
        "created_at": correction.created_at.isoformat(),
        "acked": correction.acked_at is not None,
    }


def correction_amqp_message(body: dict[str, Any]) -> Message:
    return Message(
        topic="correction.issued",
        dedupe_key=f"online-correction:{body['delivery_id']}",
        payload=routed(exchange=CORRECTIONS_EXCHANGE, routing_key=body["agent"], body=body),
    )


def agent_event(kind: str, *, agent: MonitoredAgent, audit_id: int, reason: str, actor: str, **extra: Any) -> Message:
    """`agent.halted` or `agent.resumed` on vigilo.events, once per audit entry."""
    return Message(
        topic=f"agent.{kind}",
        dedupe_key=f"agent.{kind}:{audit_id}",
        payload={"agent": agent.name, "reason": reason, "actor": actor, "audit_id": audit_id, **extra},
    )
