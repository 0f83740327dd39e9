"""An agent's remote guardrail in the live loop (docs/exporters.md, "Two-way guardrail"): the engine is asked
about each event of a type it checks, and a decision that maps to a severity becomes a failure the event's
correction can answer with, exactly like a failing binding's (the rate limit, halts and deliveries apply).

Where it is asked: on the sync path after the bindings passed inline, waiting at most `budget_ms`; an answer
that comes later hands the event to the workers (`deferred`), which ask again waiting at most `timeout_s`. The
async paths ask on the workers. A guardrail that fails (down, an error status, an answer without a decision)
adds nothing: the event is settled on its bindings alone and a warning is logged, so a broken engine never halts
agents. The protocol itself (requests, answers, the decision's mapping) is exporters.guardrail.
"""

from __future__ import annotations

import logging

from django.conf import settings

from exporters.guardrail import (
    GuardrailConfig,
    GuardrailDecision,
    GuardrailFailed,
    guardrail_config_parse,
    guardrail_decision,
    guardrail_request,
)
from online.engine import Failure, Judgment
from online.models import EVENT_TYPES, CorrectionSignal, EvalEvent, MonitoredAgent
from vigilo_project.env import env_str
from vigilo_project.httpjson import CallFailed, CallTimedOut, request_once
from vigilo_project.netpolicy import policy_resolve

log = logging.getLogger(__name__)


class GuardrailLate(Exception):
    """The guardrail gave no answer within the time it was given."""


def agent_guardrail(agent: MonitoredAgent) -> GuardrailConfig | None:
    """The agent's guardrail (None: it has none). agents.yaml is checked when applied; a stored value that no
    longer parses (edited by hand) is logged and ignored rather than failing the agent's events."""
    if not agent.guardrail:
        return None
    config, errors = guardrail_config_parse(agent.guardrail, "guardrail", event_types=EVENT_TYPES)
    if errors:
        log.warning(
            "online: the guardrail of agent %s is ignored: %s", agent.name, "; ".join(f"{p}: {m}" for p, m in errors)
        )
    return config


def guardrail_judge(*, agent: MonitoredAgent, judgment: Judgment, inline: bool) -> None:
    """Add the guardrail's failure to `judgment` when the agent has a guardrail that checks the event (not when a
    binding already halts it: nothing is more severe). `inline` (the sync path) waits `budget_ms` and, when the
    answer is late, leaves the event to a worker (`judgment.left`); a worker waits `timeout_s`."""
    config = agent_guardrail(agent)
    if config is None or any(f.severity == CorrectionSignal.Severity.HALT for f in judgment.failures):
        return
    timeout_s = config.budget_ms / 1000 if inline else config.timeout_s
    try:
        failure = guardrail_check(agent=agent, config=config, event=judgment.event, timeout_s=timeout_s)
    except GuardrailLate as exc:
        if inline:
            judgment.left = f"the guardrail did not answer within {config.budget_ms} ms: a worker asks it again"
            return
        log.warning(
            "online: the guardrail of agent %s is late on event %s: %s", agent.name, judgment.event.message_id, exc
        )
        return
    if failure is not None:
        judgment.failures.append(failure)


def guardrail_binding(config: GuardrailConfig) -> str:
    """The `binding` a guardrail's correction names ("guardrail:http"): never a profile's binding id."""
    return f"guardrail:{config.protocol}"


def guardrail_check(
    *, agent: MonitoredAgent, config: GuardrailConfig, event: EvalEvent, timeout_s: float
) -> Failure | None:
    """Ask the guardrail about `event`: the failure its decision maps to, or None (allowed, a decision mapped to
    no correction, a type it does not check, or a guardrail that failed: logged). GuardrailLate when it has not
    answered within `timeout_s`."""
    if not config.applies(event.event_type):
        return None
    try:
        decision = _ask(agent=agent, config=config, event=event, timeout_s=timeout_s)
    except GuardrailFailed as exc:
        log.warning(
            "online: the guardrail of agent %s gave no decision on event %s: %s", agent.name, event.message_id, exc
        )
        return None
    if decision.severity is None:
        return None
    finding = {"category": f"guardrail_{decision.action}", "message": decision.engine_reason, **decision.findings}
    return Failure(
        binding_id=guardrail_binding(config),
        severity=decision.severity,
        reason=decision.reason,
        findings=[finding],
        explanation=decision.engine_reason,
        score=decision.score,
    )


def _ask(*, agent: MonitoredAgent, config: GuardrailConfig, event: EvalEvent, timeout_s: float) -> GuardrailDecision:
    secret = env_str(config.secret_env, "") if config.secret_env else ""
    request = guardrail_request(
        config,
        agent=agent.name,
        event_type=event.event_type,
        payload=event.payload if isinstance(event.payload, dict) else {},
        message_id=event.message_id,
        trace_id=event.trace_id,
        span_id=event.span_id,
        secret=secret,
    )
    policy = policy_resolve(settings.VIGILO_NETWORK_POLICY, source="VIGILO_NETWORK_POLICY", configured=[config.url])
    try:
        status, body = request_once(
            method=request.method,
            url=request.url,
            body=request.body,
            headers=request.headers,
            timeout_s=timeout_s,
            policy=policy,
            call=f"guardrail of agent {agent.name}",
        )
    except CallTimedOut as exc:
        raise GuardrailLate(str(exc)) from None
    except CallFailed as exc:
        raise GuardrailFailed(str(exc)) from None
    return guardrail_decision(config, status, body)
