"""Live evaluation's shared test data: the online profile of examples/live-agent (a card number halts, a
missing policy reference nudges, an off-topic tool call redirects), agents applied through the real services,
and event bodies."""

from __future__ import annotations

import uuid
from typing import Any

import yaml

from tests.support.paths import REPO

LIVE_EXAMPLE = REPO / "examples" / "live-agent"
CARD = "4111 1111 1111 1111"


def live_profile() -> dict[str, Any]:
    """The example's online profile (examples/live-agent/live-profile.yaml)."""
    return yaml.safe_load((LIVE_EXAMPLE / "live-profile.yaml").read_text())


def agent_make(name: str = "support-bot", **overrides: Any) -> tuple[Any, str]:
    """A monitored agent with the live profile, applied as `vigilo_agents apply` does; (agent, token secret)."""
    from api.services import agent_token_ensure
    from online.services import AgentSpec, agent_apply

    spec = AgentSpec(**{"name": name, "profile_document": live_profile(), **overrides})
    agent, _, _ = agent_apply(spec=spec, actor="test")
    secret = agent_token_ensure(agent=agent)
    assert secret is not None
    return agent, secret


def event(event_type: str = "llm_output", payload: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """An event body; a passing llm_output (it cites the policy) unless told otherwise."""
    return {
        "event_type": event_type,
        "payload": payload if payload is not None else {"text": "Refunds take 5 days, see policy REF-12."},
        "message_id": fields.pop("message_id", None) or f"m-{uuid.uuid4().hex[:12]}",
        **fields,
    }


def leaking(**fields: Any) -> dict[str, Any]:
    """An llm_output that leaks a card number: halts."""
    return event("llm_output", {"text": f"Your card {CARD} is on file, see policy REF-12."}, **fields)


def unreferenced(**fields: Any) -> dict[str, Any]:
    """An llm_output without a policy reference: nudges."""
    return event("llm_output", {"text": "Refunds take 5 days."}, **fields)


def off_topic(**fields: Any) -> dict[str, Any]:
    """A tool call to a tool the support agent must not use: redirects."""
    return event("tool_call", {"name": "web_search", "arguments": {"q": "football scores"}}, **fields)
