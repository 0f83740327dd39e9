"""Judging one event with its agent's online profile: each binding that judges its type evaluates it in a fresh
sandbox instance (per-event isolation), each result is scored once, and the failures are ranked by severity.

Nothing here writes: online/services.py stores what a judgment found (`events_settle`). The sync path judges
inline under a deadline with the deterministic bindings only; the workers judge everything that is left.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from evaluators.components import component_load, default_limits, sandbox_host
from evaluators.model_broker import broker_for_binding
from evaluators.sandbox import Invocation, Limits, LoadedComponent
from evaluators.sandbox.abi import CaseInput
from gating.profile import Binding
from gating.scoring import BindingScore, binding_score, stored_columns
from online.models import SEVERITIES, EvalEvent, OnlineProfile, OnlineResult
from online.profile import OnlineProfileSpec, Rule, online_profile_parse


@dataclass(frozen=True)
class BoundBinding:
    binding: Binding
    rule: Rule
    version_id: int
    reference: str  # "ns/name@version"
    digest: str
    loaded: LoadedComponent
    limits: Limits
    deterministic: bool  # no model capability: the same event always gets the same result


@dataclass(frozen=True)
class LoadedProfile:
    """An online profile ready to judge with: parsed, each binding's component loaded. Profiles are immutable
    (one row per content hash), so a process keeps them by id."""

    profile_id: int
    spec: OnlineProfileSpec
    bound: dict[str, BoundBinding]

    def judging(self, event_type: str) -> list[BoundBinding]:
        return [self.bound[binding_id] for binding_id in self.spec.bindings_for(event_type)]


_profiles: dict[tuple[int, str, str], LoadedProfile] = {}
_profiles_lock = threading.Lock()


def profile_loaded(profile: OnlineProfile) -> LoadedProfile:
    # Keyed by what the row holds too: a database recreated under the process (tests) reuses ids.
    key = (profile.id, profile.content_hash, json.dumps(profile.pins, sort_keys=True))
    with _profiles_lock:
        cached = _profiles.get(key)
    if cached is not None:
        return cached
    spec = online_profile_parse(data=profile.document)
    base = default_limits()
    bound = {}
    for binding in spec.spec.bindings:
        pin = profile.pins[binding.id]
        bound[binding.id] = BoundBinding(
            binding=binding,
            rule=spec.rules[binding.id],
            version_id=pin["version_id"],
            reference=pin["reference"],
            digest=pin["digest"],
            loaded=component_load(digest=pin["digest"]),
            limits=base.override(binding.limits),
            deterministic="model" not in binding.grants,
        )
    loaded = LoadedProfile(profile_id=profile.id, spec=spec, bound=bound)
    with _profiles_lock:
        _profiles[key] = loaded
    return loaded


@dataclass(frozen=True)
class Failure:
    """A binding that judged the event and failed it: what the correction will say."""

    binding_id: str
    severity: str
    reason: str
    findings: list[dict[str, Any]]
    explanation: str
    score: float | None


@dataclass
class Judgment:
    """What judging one event found: a result row per binding evaluated, the failures, and whether every binding
    that judges the event was evaluated (else `left` says why not, and a worker finishes)."""

    event: EvalEvent
    rows: list[OnlineResult] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    left: str = ""

    @property
    def complete(self) -> bool:
        return not self.left


def worst_failure(failures: list[Failure]) -> Failure:
    """The failure a correction answers with: the most severe, the first in `failures`' order among equals."""
    return max(failures, key=lambda f: SEVERITIES.index(f.severity))  # max keeps the first of equals


def event_case(event: EvalEvent, agent_name: str) -> dict[str, Any]:
    """The event as the evaluators see it: a case whose output is the payload (docs/live.md has the mapping)."""
    payload = event.payload
    text = payload.get("text")
    if not isinstance(text, str):
        text = payload.get("content") if isinstance(payload.get("content"), str) else None
    tool_calls = payload.get("tool_calls")
    if not isinstance(tool_calls, list):
        tool_calls = []
        if event.event_type == "tool_call" and isinstance(payload.get("name"), str):
            tool_calls = [
                {"name": payload["name"], "arguments": payload.get("arguments"), "result": payload.get("result")}
            ]
    metadata = {
        "agent": agent_name,
        "event_type": event.event_type,
        "message_id": event.message_id,
        "trace_id": event.trace_id,
        "span_id": event.span_id,
        "timestamp": event.timestamp.isoformat(),
    }
    return {
        "run_id": f"online:{agent_name}",
        "execution_id": event.message_id,
        "attempt": 1,
        "case": {
            "id": event.message_id,
            "input": payload.get("input"),
            "expected": payload.get("expected"),
            "context": payload.get("context"),
            "tags": [event.event_type],
            "metadata": metadata,
        },
        "output": {
            "text": text,
            "structured": payload,
            "tool_calls": [tc for tc in tool_calls if isinstance(tc, dict)],
            "metadata": metadata,
        },
    }


def event_judge(
    *,
    event: EvalEvent,
    agent_name: str,
    profile: LoadedProfile,
    deadline: float | None = None,
    deterministic_only: bool = False,
    done: frozenset[str] = frozenset(),
) -> Judgment:
    """Evaluate the event with every binding that judges its type, except those in `done` (evaluated before).

    With `deterministic_only`, a binding that calls a model is left for a worker; with a `deadline`
    (time.monotonic()), the bindings not started before it are.
    """
    judgment = Judgment(event=event)
    todo = [b for b in profile.judging(event.event_type) if b.binding.id not in done]
    if not todo:
        return judgment
    host = sandbox_host()
    with CaseInput(event_case(event, agent_name)) as case:
        for i, bound in enumerate(todo):
            if deterministic_only and not bound.deterministic:
                judgment.left = f"binding {bound.binding.id!r} calls a model: judged by a worker"
                return judgment
            if deadline is not None and i > 0 and time.monotonic() >= deadline:
                judgment.left = f"the sync deadline passed after {i} of {len(todo)} bindings"
                return judgment
            grant = bound.binding.grants.get("model")
            broker = broker_for_binding(grant=grant if isinstance(grant, dict) else None, evaluator_digest=bound.digest)
            inv = host.evaluate(bound.loaded, case=case, config=bound.binding.config, limits=bound.limits, model=broker)
            scored = binding_score(binding=bound.binding, result=inv)
            judgment.rows.append(result_row(event=event, bound=bound, inv=inv, scored=scored))
            if scored.passed is False:
                judgment.failures.append(_failure(bound, inv, scored, event, agent_name))
    return judgment


def result_row(*, event: EvalEvent, bound: BoundBinding, inv: Invocation, scored: BindingScore) -> OnlineResult:
    return OnlineResult(
        event=event,
        binding_id=bound.binding.id,
        evaluator_version_id=bound.version_id,
        kind=inv.kind or "",
        measurement=inv.measurement,
        findings=inv.findings,
        explanation=inv.explanation or "",
        duration_ms=inv.duration_ms,
        fuel_used=inv.fuel_used,
        **stored_columns(report=inv, scored=scored),
    )


def failure_of(row: OnlineResult, profile: LoadedProfile, event: EvalEvent, agent_name: str) -> Failure | None:
    """The failure a stored row records (a deferred event's inline results), or None when it passed."""
    if row.judgment != "failed" or row.binding_id not in profile.bound:
        return None
    bound = profile.bound[row.binding_id]
    inv = Invocation(outcome=row.outcome, findings=row.findings, explanation=row.explanation or None)
    scored = BindingScore(binding_id=row.binding_id, outcome="completed", score=row.score, passed=False)
    return _failure(bound, inv, scored, event, agent_name)


def _failure(bound: BoundBinding, inv: Invocation, scored: BindingScore, event: EvalEvent, agent_name: str) -> Failure:
    first = inv.findings[0] if inv.findings else {}
    explanation = inv.explanation or (first.get("message") if isinstance(first.get("message"), str) else "") or ""
    values = {
        "agent": agent_name,
        "binding": bound.binding.id,
        "event_type": event.event_type,
        "message_id": event.message_id,
        "explanation": explanation or "no explanation given",
        "finding": first.get("category", "") if isinstance(first, dict) else "",
        "score": "" if scored.score is None else f"{scored.score:g}",
        "severity": bound.rule.severity,
    }
    return Failure(
        binding_id=bound.binding.id,
        severity=bound.rule.severity,
        reason=bound.rule.reason_for(values),
        findings=list(inv.findings),
        explanation=explanation,
        score=scored.score,
    )
