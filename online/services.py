"""Live evaluation's writes (docs/live.md): applying agents and profiles, accepting events, settling what their
evaluation found into results and corrections under the rate limit, halting, resuming, acking.

Exactly once in effect: an event is inserted once per (agent, message_id); a pending event becomes `evaluated`
by one guarded update, in the same transaction as its results, its correction and that correction's deliveries
(outbox rows), so a second worker that judged the same event writes nothing. The rate limit is a sliding window
counted in the database under a lock on the agent's row: correct across processes and machines.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from evaluators.pins import PinsInvalid, profile_pins
from gating.profile import ProfileError
from online.engine import Failure, Judgment, LoadedProfile, event_judge, failure_of, profile_loaded, worst_failure
from online.errors import AgentHalted, EventInvalid, StateConflict
from online.exports import events_export
from online.guardrail import guardrail_judge
from online.ingest import EventIn
from online.messages import (
    agent_event,
    correction_amqp_message,
    correction_body,
    evaluate_message,
    webhook_message,
)
from online.models import (
    AgentAudit,
    CorrectionSignal,
    EvalEvent,
    MonitoredAgent,
    OnlineProfile,
    OnlineResult,
    WebhookDelivery,
)
from online.profile import online_profile_parse
from outbox.services import Message, outbox_write
from vigilo_project.sampling import sampled

log = logging.getLogger(__name__)
SUPERVISOR = "supervisor"


# -- profiles and agents --------------------------------------------------------------------------------------


def profile_store(*, document: Any) -> OnlineProfile:
    """Parse, pin and store an online profile (once per content); EventInvalid names every problem."""
    try:
        parsed = online_profile_parse(data=document)
    except ProfileError as exc:
        raise EventInvalid("online profile", list(exc.errors)) from None
    try:
        pins = profile_pins(profile=parsed.spec)
    except PinsInvalid as exc:
        raise EventInvalid("online profile", exc.errors) from None
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    content_hash = hashlib.sha256(canonical.encode()).hexdigest()
    row, _ = OnlineProfile.objects.get_or_create(
        name=parsed.spec.name,
        content_hash=content_hash,
        defaults={"document": document, "pins": {bid: pin.as_dict() for bid, pin in pins.items()}},
    )
    return row


@dataclass(frozen=True)
class AgentSpec:
    """One agent as declared in agents.yaml (online/agents.py parses it)."""

    name: str
    profile_document: dict[str, Any]
    sample_rate: float = 1.0
    event_types: tuple[str, ...] = ()
    max_corrections_per_window: int = 10
    window_seconds: int = 60
    delivery: str = MonitoredAgent.Delivery.POLL
    webhook_url: str = ""
    sync_deadline_ms: int = 50
    export: tuple[str, ...] | None = None  # None: the profile's destinations (or the defaults)
    guardrail: dict[str, Any] | None = None  # as declared; checked by exporters.guardrail


def agent_apply(*, spec: AgentSpec, actor: str) -> tuple[MonitoredAgent, bool, list[str]]:
    """Create or update an agent from its declaration; its state (active, halted) is never changed here.

    Returns the agent, whether it was created, and what changed. A webhook agent gets a signing secret once.
    """
    with transaction.atomic():
        profile = profile_store(document=spec.profile_document)
        fields: dict[str, Any] = {
            "profile": profile,
            "sample_rate": spec.sample_rate,
            "event_types": list(spec.event_types),
            "max_corrections_per_window": spec.max_corrections_per_window,
            "window_seconds": spec.window_seconds,
            "delivery": spec.delivery,
            "webhook_url": spec.webhook_url,
            "sync_deadline_ms": spec.sync_deadline_ms,
            "export": None if spec.export is None else list(spec.export),
            "guardrail": spec.guardrail,
        }
        agent = MonitoredAgent.objects.select_for_update().filter(name=spec.name).first()
        created = agent is None
        changed: list[str] = []
        if agent is None:
            agent = MonitoredAgent.objects.create(name=spec.name, **fields)
            changed = sorted(fields)
        else:
            for key, value in fields.items():
                if getattr(agent, key) != value:
                    setattr(agent, key, value)
                    changed.append(key)
        if agent.delivery == MonitoredAgent.Delivery.WEBHOOK and not agent.webhook_secret:
            agent.webhook_secret = "whsec_" + secrets.token_urlsafe(32)
            changed.append("webhook_secret")
        if changed and not created:
            agent.save()
        elif created and "webhook_secret" in changed:
            agent.save(update_fields=["webhook_secret"])
        if changed:
            AgentAudit.objects.create(
                agent=agent, action=AgentAudit.Action.APPLY, actor=actor, reason=f"changed: {', '.join(changed)}"
            )
    return agent, created, changed


# -- accepting events -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    message_id: str
    status: str  # an EvalEvent.Status value
    duplicate: bool


def _halt_check(agent: MonitoredAgent) -> None:
    """AgentHalted when the agent's row says halted now (the hot path reads one column; the halt's details only
    when it is halted)."""
    state = MonitoredAgent.objects.filter(pk=agent.pk).values_list("state", flat=True).get()
    if state != MonitoredAgent.State.HALTED:
        return
    reason, halt = (
        MonitoredAgent.objects.filter(pk=agent.pk).values_list("halted_reason", "halt_correction__delivery_id").get()
    )
    raise AgentHalted(agent=agent.name, reason=reason, halt_id=str(halt) if halt else None)


def _first_status(agent: MonitoredAgent, event: EventIn) -> str:
    if agent.event_types and event.event_type not in agent.event_types:
        return EvalEvent.Status.FILTERED
    if not sampled(event.message_id, agent.sample_rate):
        return EvalEvent.Status.UNSAMPLED
    return EvalEvent.Status.PENDING


def _event_row(agent: MonitoredAgent, event: EventIn, *, path: str, status: str) -> EvalEvent:
    return EvalEvent(
        agent=agent,
        message_id=event.message_id,
        event_type=event.event_type,
        payload=event.payload,
        trace_id=event.trace_id,
        span_id=event.span_id,
        timestamp=event.timestamp,
        path=path,
        status=status,
        profile_id=agent.profile_id,
    )


def events_accept(*, agent: MonitoredAgent, events: list[EventIn], path: str) -> list[Accepted]:
    """Store events for the workers (the async paths): one transaction, a resend of a stored event changes nothing.

    Sampling and the agent's event-type filter decide here: an unsampled or filtered event is stored (and
    counted) but never evaluated. The pending ones get one `online.evaluate_events` message. AgentHalted when the
    agent is halted and an event is new: nothing is stored.
    """
    with transaction.atomic():
        ids = [e.message_id for e in events]
        existing = dict(EvalEvent.objects.filter(agent=agent, message_id__in=ids).values_list("message_id", "status"))
        fresh = [e for e in events if e.message_id not in existing]
        if fresh:  # a resend of stored events is answered, even after a halt
            _halt_check(agent)
        rows = [_event_row(agent, e, path=path, status=_first_status(agent, e)) for e in fresh]
        EvalEvent.objects.bulk_create(rows, ignore_conflicts=True)
        stored = dict(
            EvalEvent.objects.filter(agent=agent, message_id__in=[r.message_id for r in rows]).values_list(
                "message_id", "id"
            )
        )
        pending = [
            stored[r.message_id] for r in rows if r.status == EvalEvent.Status.PENDING and r.message_id in stored
        ]
        if pending:
            outbox_write(messages=[evaluate_message(pending)])
    statuses = {r.message_id: r.status for r in rows}
    return [
        Accepted(
            message_id=e.message_id,
            status=existing.get(e.message_id) or statuses[e.message_id],
            duplicate=e.message_id in existing,
        )
        for e in events
    ]


@dataclass(frozen=True)
class SyncAnswer:
    """What the sync path answers: the event's status, its correction (None: no correction, or not yet), why it
    was handed to the workers when it was (`deferred`), and whether it was a resend of a stored event."""

    message_id: str
    status: str
    correction: dict[str, Any] | None
    results: list[dict[str, Any]]
    deferred: str = ""
    duplicate: bool = False


def event_submit_sync(*, agent: MonitoredAgent, event: EventIn) -> SyncAnswer:
    """Evaluate one event inline (the deterministic bindings, before the agent's deadline) and answer with its
    correction. Nothing is written before the evaluation: the event, its results and its correction are written
    in one transaction, so a crash leaves nothing and the agent's retry is evaluated anew; a resend of a stored
    event (its insert conflicts) is answered with what was stored. An event that needs a model or passes the
    deadline is stored with the results so far and finished by a worker (`deferred`)."""
    if agent.state == MonitoredAgent.State.HALTED:  # as the caller loaded it; checked again before writing
        stored = _stored_answer(agent, event.message_id)  # a resend is answered, even after the halt it caused
        if stored is not None:
            return stored
        _halt_check(agent)
    status = _first_status(agent, event)
    row = _event_row(agent, event, path=EvalEvent.Path.SYNC, status=status)
    if status != EvalEvent.Status.PENDING:
        try:
            with transaction.atomic():
                row.save()
                _halt_check(agent)
        except IntegrityError:
            return _stored_answer(agent, event.message_id) or _gone(event)
        return SyncAnswer(message_id=event.message_id, status=status, correction=None, results=[])
    profile = profile_loaded(agent.profile)
    deadline = time.monotonic() + agent.sync_deadline_ms / 1000
    judgment = event_judge(
        event=row, agent_name=agent.name, profile=profile, deadline=deadline, deterministic_only=True
    )
    if judgment.complete:
        guardrail_judge(agent=agent, judgment=judgment, inline=True)
    try:
        with transaction.atomic():
            if judgment.complete:
                row.status = EvalEvent.Status.EVALUATED
                row.evaluated_at = timezone.now()
            else:
                row.deferred = judgment.left[:300]
            row.save()  # first: a resend of a stored event (unique per agent and message id) is answered below
            _halt_check(agent)  # halted while this event was judged: refused like any later event
            if judgment.complete:
                bodies = _settle(agent=agent, judgments=[judgment], profiles={profile.profile_id: profile})
            else:
                _results_write(judgment)
                outbox_write(messages=[evaluate_message([row.id])])
                bodies = {}
    except IntegrityError:  # a resend, or the same message id won a race with this one: what it stored
        return _stored_answer(agent, event.message_id) or _gone(event)
    return SyncAnswer(
        message_id=event.message_id,
        status=row.status,
        correction=bodies.get(row.id),
        results=[_result_view(r) for r in judgment.rows],
        deferred=row.deferred,
    )


def _gone(event: EventIn) -> SyncAnswer:
    return SyncAnswer(
        message_id=event.message_id, status=EvalEvent.Status.PENDING, correction=None, results=[], duplicate=True
    )


def _stored_answer(agent: MonitoredAgent, message_id: str) -> SyncAnswer | None:
    row = EvalEvent.objects.filter(agent=agent, message_id=message_id).first()
    if row is None:
        return None
    correction = CorrectionSignal.objects.filter(event=row, dropped=False).first()
    return SyncAnswer(
        message_id=message_id,
        status=row.status,
        correction=correction_body(correction, agent=agent, event=row) if correction else None,
        results=[_result_view(r) for r in row.results.all()],
        deferred=row.deferred,
        duplicate=True,
    )


def _result_view(row: OnlineResult) -> dict[str, Any]:
    return {
        "binding": row.binding_id,
        "outcome": row.outcome,
        "judgment": row.judgment,
        "score": row.score,
        "error_code": row.error_code,
    }


# -- evaluating on the workers ---------------------------------------------------------------------------------


def events_evaluate(*, event_ids: list[int]) -> int:
    """Judge the pending events among `event_ids` and settle them; returns how many this call settled.

    Safe to run twice, concurrently: an event another call settled first is skipped at the guarded update.
    """
    events = list(
        EvalEvent.objects.filter(id__in=event_ids, status=EvalEvent.Status.PENDING)
        .select_related("agent", "profile")
        .order_by("id")
    )
    if not events:
        return 0
    profiles: dict[int, LoadedProfile] = {}
    done: dict[int, set[str]] = {}
    for event_id, binding_id in OnlineResult.objects.filter(event__in=events).values_list("event_id", "binding_id"):
        done.setdefault(event_id, set()).add(binding_id)  # a deferred sync event's inline results
    by_agent: dict[int, list[Judgment]] = {}
    for event in events:
        profile = profiles.get(event.profile_id) or profiles.setdefault(event.profile_id, profile_loaded(event.profile))
        judgment = event_judge(
            event=event, agent_name=event.agent.name, profile=profile, done=frozenset(done.get(event.id, ()))
        )
        guardrail_judge(agent=event.agent, judgment=judgment, inline=False)
        by_agent.setdefault(event.agent_id, []).append(judgment)
    settled = 0
    for judgments in by_agent.values():
        agent = judgments[0].event.agent
        with transaction.atomic():
            won = _claim_pending([j.event.id for j in judgments])
            mine = [j for j in judgments if j.event.id in won]
            if not mine:
                continue
            _settle(agent=agent, judgments=mine, profiles=profiles, earlier=done)
            settled += len(mine)
    return settled


def _claim_pending(event_ids: list[int]) -> set[int]:
    """pending -> evaluated for these events, in the caller's transaction; the ids this transaction moved."""
    now = timezone.now()
    locked = list(
        EvalEvent.objects.select_for_update()
        .filter(id__in=event_ids, status=EvalEvent.Status.PENDING)
        .values_list("id", flat=True)
    )
    if connection.features.has_select_for_update:  # PostgreSQL: the rows are ours until the commit
        EvalEvent.objects.filter(id__in=locked).update(status=EvalEvent.Status.EVALUATED, evaluated_at=now)
        return set(locked)
    won = set()
    for event_id in locked:  # SQLite locks nothing on select: one guarded update each
        if EvalEvent.objects.filter(id=event_id, status=EvalEvent.Status.PENDING).update(
            status=EvalEvent.Status.EVALUATED, evaluated_at=now
        ):
            won.add(event_id)
    return won


def _results_write(*judgments: Judgment) -> None:
    """Every judgment's result rows in one statement (a repeated row is skipped: unique per event and binding)."""
    rows = []
    for judgment in judgments:
        for row in judgment.rows:
            row.event_id = judgment.event.id
            rows.append(row)
    OnlineResult.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)


def _settle(
    *,
    agent: MonitoredAgent,
    judgments: list[Judgment],
    profiles: dict[int, LoadedProfile],
    earlier: dict[int, set[str]] | None = None,
) -> dict[int, dict[str, Any]]:
    """Write the judgments' results and corrections, in the caller's transaction, for events this transaction
    settled (their exports too). Returns the delivered corrections' bodies by event id."""
    _results_write(*judgments)
    events_export(agent=agent, judgments=judgments, profiles=profiles, earlier=set(earlier or ()))
    failing: list[tuple[Judgment, Failure, list[Failure]]] = []
    for judgment in judgments:
        failures = list(judgment.failures)
        if earlier and judgment.event.id in earlier:  # inline failures of a deferred event count too
            profile = profiles[judgment.event.profile_id]
            rows = OnlineResult.objects.filter(event_id=judgment.event.id, binding_id__in=earlier[judgment.event.id])
            failures += [f for r in rows if (f := failure_of(r, profile, judgment.event, agent.name)) is not None]
        if failures:
            order = {b.id: i for i, b in enumerate(profiles[judgment.event.profile_id].spec.spec.bindings)}
            failures.sort(key=lambda f: order.get(f.binding_id, len(order)))  # the guardrail's last
            failing.append((judgment, worst_failure(failures), failures))
    if not failing:
        return {}
    # The agent's row is the rate limit's lock: every process counting this agent's window waits here.
    agent = MonitoredAgent.objects.select_for_update().get(pk=agent.pk)
    now = timezone.now()
    in_window = CorrectionSignal.objects.filter(
        agent=agent,
        dropped=False,
        severity__in=(CorrectionSignal.Severity.NUDGE, CorrectionSignal.Severity.REDIRECT),
        created_at__gt=now - timedelta(seconds=agent.window_seconds),
    ).count()
    bodies: dict[int, dict[str, Any]] = {}
    messages: list[Message] = []
    for judgment, worst, failures in failing:
        halt = worst.severity == CorrectionSignal.Severity.HALT
        dropped = not halt and in_window >= agent.max_corrections_per_window
        if not halt and not dropped:
            in_window += 1
        correction = CorrectionSignal.objects.create(
            agent=agent,
            event=judgment.event,
            severity=worst.severity,
            reason=worst.reason,
            dropped=dropped,
            payload={
                "binding": worst.binding_id,
                "findings": worst.findings,
                "explanation": worst.explanation,
                "score": worst.score,
                "also": [{"binding": f.binding_id, "severity": f.severity} for f in failures if f is not worst],
            },
        )
        if dropped:
            log.warning(
                "online: %s correction for agent %s dropped: rate limit of %d per %d s (event %s)",
                worst.severity,
                agent.name,
                agent.max_corrections_per_window,
                agent.window_seconds,
                judgment.event.message_id,
            )
            continue
        body = correction_body(correction, agent=agent, event=judgment.event)
        bodies[judgment.event.id] = body
        messages += _deliveries(agent, correction, body)
        if halt:
            messages += _halt(agent, correction)
    outbox_write(messages=messages)
    return bodies


def _deliveries(agent: MonitoredAgent, correction: CorrectionSignal, body: dict[str, Any]) -> list[Message]:
    if agent.delivery == MonitoredAgent.Delivery.WEBHOOK and agent.webhook_url:
        delivery = WebhookDelivery.objects.create(correction=correction)
        return [webhook_message(delivery.id, attempt=0)]
    if agent.delivery == MonitoredAgent.Delivery.AMQP:
        return [correction_amqp_message(body)]
    return []


def _halt(agent: MonitoredAgent, correction: CorrectionSignal) -> list[Message]:
    """active -> halted (a halt of a halted agent is recorded as a correction, not as a second halt)."""
    now = timezone.now()
    moved = MonitoredAgent.objects.filter(pk=agent.pk, state=MonitoredAgent.State.ACTIVE).update(
        state=MonitoredAgent.State.HALTED, halted_at=now, halted_reason=correction.reason, halt_correction=correction
    )
    if not moved:
        return []
    agent.state = MonitoredAgent.State.HALTED
    audit = AgentAudit.objects.create(
        agent=agent, action=AgentAudit.Action.HALT, actor=SUPERVISOR, reason=correction.reason, correction=correction
    )
    log.warning("online: agent %s halted: %s", agent.name, correction.reason)
    return [
        agent_event(
            "halted",
            agent=agent,
            audit_id=audit.id,
            reason=correction.reason,
            actor=SUPERVISOR,
            delivery_id=str(correction.delivery_id),
        )
    ]


# -- operators and acks ---------------------------------------------------------------------------------------


def agent_resume(*, agent_name: str, actor: str, reason: str) -> AgentAudit:
    """halted -> active, audited with who and why; StateConflict when the agent is not halted."""
    reason = (reason or "").strip()
    if not reason:
        raise EventInvalid("resume", [("reason", "required: say why the agent may go on")])
    with transaction.atomic():
        agent = MonitoredAgent.objects.select_for_update().get(name=agent_name)
        if agent.state != MonitoredAgent.State.HALTED:
            raise StateConflict(f"agent {agent_name!r} is {agent.state}, not halted")
        MonitoredAgent.objects.filter(pk=agent.pk).update(
            state=MonitoredAgent.State.ACTIVE, halted_at=None, halted_reason="", halt_correction=None
        )
        audit = AgentAudit.objects.create(
            agent=agent, action=AgentAudit.Action.RESUME, actor=actor, reason=reason[:2000]
        )
        outbox_write(messages=[agent_event("resumed", agent=agent, audit_id=audit.id, reason=reason, actor=actor)])
    log.warning("online: agent %s resumed by %s: %s", agent_name, actor, reason)
    return audit


def correction_ack(*, agent: MonitoredAgent, delivery_id: str) -> CorrectionSignal | None:
    """Record the agent's ack (the first one counts); None when the agent has no such correction."""
    correction = CorrectionSignal.objects.filter(agent=agent, delivery_id=delivery_id, dropped=False).first()
    if correction is None:
        return None
    if correction.acked_at is None:
        CorrectionSignal.objects.filter(pk=correction.pk, acked_at__isnull=True).update(acked_at=timezone.now())
        correction.refresh_from_db()
    return correction


def events_redispatch_stale(*, older_than_s: float) -> int:
    """Dispatch again pending events older than this (their message was lost): the guarded update keeps it once."""
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    ids = list(
        EvalEvent.objects.filter(status=EvalEvent.Status.PENDING, received_at__lt=cutoff)
        .order_by("id")
        .values_list("id", flat=True)[:5000]
    )
    if not ids:
        return 0
    round_ = int(time.time() // max(older_than_s, 1))  # a new key each period, the same within one
    with transaction.atomic():
        outbox_write(messages=[evaluate_message(ids[i : i + 100], round_=round_) for i in range(0, len(ids), 100)])
    return len(ids)
