"""Parsing `agents.yaml` (docs/live.md): the monitored agents a deployment declares, every problem named by its
path. Applying it is `manage.py vigilo_agents apply FILE` (api/management/commands/vigilo_agents.py).

    agents:
      - name: support-bot
        profile: live-profile.yaml          # a path relative to this file, or the profile inline
        sample_rate: 1.0
        event_types: [llm_output, tool_call] # optional: the types evaluated (others are counted, not evaluated)
        rate_limit: {max_corrections_per_window: 10, window_seconds: 60}
        delivery: poll | webhook | amqp
        webhook: {url: "https://bot.internal/vigilo"}
        sync_deadline_ms: 50
        export: [otlp, phoenix]              # optional: where its results go (default: the profile's `export`)
        guardrail: {url: ..., ...}           # optional: a remote guardrail engine (docs/exporters.md)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from exporters.guardrail import guardrail_config_parse
from gating.profile import export_parse
from online.errors import EventInvalid
from online.models import EVENT_TYPES, MonitoredAgent
from online.services import AgentSpec

AGENT_KEYS = (
    "name",
    "profile",
    "sample_rate",
    "event_types",
    "rate_limit",
    "delivery",
    "webhook",
    "sync_deadline_ms",
    "export",
    "guardrail",
)
RATE_KEYS = ("max_corrections_per_window", "window_seconds")
AGENT_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")  # a safe AMQP routing key word, a URL segment


def agents_parse(*, text: str, base: Path) -> list[AgentSpec]:
    """The agents declared in `text` (YAML); profile paths are relative to `base`. EventInvalid lists every problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "agents file"
        raise EventInvalid("agents file", [(where, f"not YAML: {exc}")]) from None
    if (
        not isinstance(data, dict)
        or set(data) != {"agents"}
        or not isinstance(data["agents"], list)
        or not data["agents"]
    ):
        raise EventInvalid("agents file", [("agents", "the file is {agents: [agent, ...]} with at least one agent")])
    errors: list[tuple[str, str]] = []
    specs: list[AgentSpec] = []
    names: dict[str, int] = {}
    for i, raw in enumerate(data["agents"]):
        spec = _agent_parse(errors, f"agents[{i}]", raw, base)
        if spec is None:
            continue
        if spec.name in names:
            errors.append((f"agents[{i}].name", f"duplicate agent {spec.name!r} (see agents[{names[spec.name]}])"))
            continue
        names[spec.name] = i
        specs.append(spec)
    if errors:
        raise EventInvalid("agents file", errors)
    return specs


def _agent_parse(errors: list[tuple[str, str]], path: str, raw: Any, base: Path) -> AgentSpec | None:
    if not isinstance(raw, dict):
        errors.append((path, "an agent is a mapping"))
        return None
    before = len(errors)
    for key in raw:
        if key not in AGENT_KEYS:
            errors.append((f"{path}.{key}", f"unknown key; allowed: {', '.join(AGENT_KEYS)}"))
    name = raw.get("name")
    if not isinstance(name, str) or not AGENT_NAME.fullmatch(name):
        errors.append((f"{path}.name", "required: 1-64 of a-z, 0-9, '_', '.', '-', starting with a letter or digit"))
    profile = _profile_document(errors, f"{path}.profile", raw.get("profile"), base)
    sample_rate = raw.get("sample_rate", 1.0)
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)) or not 0 <= sample_rate <= 1:
        errors.append((f"{path}.sample_rate", "must be a number in [0, 1]"))
    event_types = raw.get("event_types", [])
    if not isinstance(event_types, list) or any(t not in EVENT_TYPES for t in event_types):
        errors.append((f"{path}.event_types", f"must be a list of {', '.join(EVENT_TYPES)}"))
    rate = raw.get("rate_limit", {})
    max_per_window, window = 10, 60
    if not isinstance(rate, dict) or set(rate) - set(RATE_KEYS):
        errors.append((f"{path}.rate_limit", f"a mapping of {', '.join(RATE_KEYS)}"))
    else:
        max_per_window = _positive(
            errors,
            f"{path}.rate_limit.max_corrections_per_window",
            rate.get("max_corrections_per_window", 10),
            zero=True,
        )
        window = _positive(errors, f"{path}.rate_limit.window_seconds", rate.get("window_seconds", 60))
    delivery = raw.get("delivery", MonitoredAgent.Delivery.POLL)
    if delivery not in MonitoredAgent.Delivery.values:
        errors.append((f"{path}.delivery", f"one of {', '.join(MonitoredAgent.Delivery.values)}"))
    webhook = raw.get("webhook")
    url = ""
    if webhook is not None:
        if not isinstance(webhook, dict) or set(webhook) != {"url"} or not isinstance(webhook["url"], str):
            errors.append((f"{path}.webhook", "a mapping {url: https://...}"))
        elif not re.match(r"https?://[^/\s]+", webhook["url"]):
            errors.append((f"{path}.webhook.url", "an http(s) URL"))
        else:
            url = webhook["url"]
    if delivery == MonitoredAgent.Delivery.WEBHOOK and not url:
        errors.append((f"{path}.webhook", "required with delivery: webhook"))
    deadline = _positive(errors, f"{path}.sync_deadline_ms", raw.get("sync_deadline_ms", 50))
    export = export_parse(errors, f"{path}.export", raw["export"]) if "export" in raw else None
    guardrail = raw.get("guardrail")
    _, problems = guardrail_config_parse(guardrail, f"{path}.guardrail", event_types=EVENT_TYPES)
    errors += problems
    if len(errors) != before:
        return None
    assert isinstance(name, str) and profile is not None
    return AgentSpec(
        name=name,
        profile_document=profile,
        sample_rate=float(sample_rate),
        event_types=tuple(event_types),
        max_corrections_per_window=max_per_window,
        window_seconds=window,
        delivery=delivery,
        webhook_url=url,
        sync_deadline_ms=deadline,
        export=export,
        guardrail=guardrail,
    )


def _positive(errors: list[tuple[str, str]], path: str, value: Any, *, zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero else 1) or value > 10**7:
        errors.append((path, f"must be an integer {'>= 0' if zero else '>= 1'}"))
        return 0
    return value


def _profile_document(errors: list[tuple[str, str]], path: str, value: Any, base: Path) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if not isinstance(value, str) or not value.strip():
        errors.append((path, "required: a profile file's path (relative to the agents file) or the profile inline"))
        return None
    file = (base / value).resolve()
    try:
        document = yaml.safe_load(file.read_text())
    except OSError as exc:
        errors.append((path, f"cannot read {file}: {exc.strerror or exc}"))
        return None
    except yaml.YAMLError as exc:
        errors.append((path, f"{file} is not YAML: {exc}"))
        return None
    if not isinstance(document, dict):
        errors.append((path, f"{file} must hold a mapping (a profile)"))
        return None
    return document
