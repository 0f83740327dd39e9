"""Online profiles (docs/live.md): the profile format of runs, where each binding also says which event types it
judges and what its failure means for the agent.

    bindings:
      - id: card-number
        evaluator: vigilo/regex@^1
        dimension: safety
        config: {value: '\\b(?:\\d[ -]?){13,16}\\b', negate: true}
        online: {events: [llm_output, message_sent], severity: halt, reason: "card number: {explanation}"}

`online` is optional: without it a binding judges every event type and a failure nudges with the default reason.
The rest of the document is parsed by gating.profile, without requiring a pass rule (an online profile has no
run gate: a binding's own pass threshold decides whether it failed).

Reason templates are `str.format` fields from a fixed set (`REASON_FIELDS`), checked when the profile is parsed;
no attribute access, indexing or conversion.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gating.profile import ProfileError, ProfileSpec, profile_parse
from online.models import EVENT_TYPES, SEVERITIES

REASON_FIELDS = ("agent", "binding", "event_type", "message_id", "explanation", "finding", "score", "severity")
DEFAULT_REASON = "{binding} failed on {event_type}: {explanation}"
ONLINE_KEYS = ("events", "severity", "reason")
REASON_MAX = 500


@dataclass(frozen=True)
class Rule:
    """What a binding does live: the event types it judges and the severity and reason of its failure."""

    events: frozenset[str]
    severity: str
    reason: str

    def reason_for(self, values: Mapping[str, Any]) -> str:
        return self.reason.format_map({name: values.get(name, "") for name in REASON_FIELDS})[:REASON_MAX]


@dataclass(frozen=True)
class OnlineProfileSpec:
    spec: ProfileSpec
    rules: dict[str, Rule]  # by binding id, one for every binding

    def bindings_for(self, event_type: str) -> list[str]:
        """The ids of the bindings that judge this event type, in profile order."""
        return [b.id for b in self.spec.bindings if event_type in self.rules[b.id].events]


def online_profile_parse(*, data: object) -> OnlineProfileSpec:
    """Parse an online profile; ProfileError lists every problem with its path (`bindings[0].online.severity`)."""
    errors: list[tuple[str, str]] = []
    rules: dict[int, Rule] = {}
    stripped: object = data
    if isinstance(data, Mapping) and isinstance(data.get("bindings"), list):
        bindings = []
        for i, raw in enumerate(data["bindings"]):
            if isinstance(raw, Mapping) and "online" in raw:
                rule = _rule_parse(errors, f"bindings[{i}].online", raw["online"])
                if rule is not None:
                    rules[i] = rule
                bindings.append({k: v for k, v in raw.items() if k != "online"})
                continue
            rules[i] = Rule(events=frozenset(EVENT_TYPES), severity="nudge", reason=DEFAULT_REASON)
            bindings.append(raw)
        stripped = {**data, "bindings": bindings}
    try:
        spec = profile_parse(data=stripped, require_pass_rule=False)
    except ProfileError as exc:
        errors.extend(exc.errors)
        spec = None
    if errors or spec is None:
        raise ProfileError(sorted(errors))
    return OnlineProfileSpec(spec=spec, rules={b.id: rules[i] for i, b in enumerate(spec.bindings)})


def _rule_parse(errors: list[tuple[str, str]], path: str, value: object) -> Rule | None:
    if not isinstance(value, Mapping):
        errors.append((path, "must be a mapping with events, severity and reason"))
        return None
    before = len(errors)
    for key in value:
        if key not in ONLINE_KEYS:
            errors.append((f"{path}.{key}", f"unknown key; allowed: {', '.join(ONLINE_KEYS)}"))
    events = value.get("events", list(EVENT_TYPES))
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        errors.append((f"{path}.events", f"must be a non-empty list of event types ({', '.join(EVENT_TYPES)})"))
        events = []
    for event in events:
        if event not in EVENT_TYPES:
            errors.append((f"{path}.events", f"unknown event type {event!r}; one of {', '.join(EVENT_TYPES)}"))
    severity = value.get("severity", "nudge")
    if severity not in SEVERITIES:
        errors.append((f"{path}.severity", f"must be one of {', '.join(SEVERITIES)}"))
    reason = value.get("reason", DEFAULT_REASON)
    if not isinstance(reason, str) or not reason.strip():
        errors.append((f"{path}.reason", "must be a non-empty string"))
    else:
        problem = _template_problem(reason)
        if problem:
            errors.append((f"{path}.reason", problem))
    if len(errors) != before:
        return None
    return Rule(events=frozenset(events), severity=severity, reason=reason)


def _template_problem(template: str) -> str | None:
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"not a valid template: {exc} (write {{{{ and }}}} for literal braces)"
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in REASON_FIELDS:
            return f"unknown field {{{field}}}; the fields are {', '.join('{' + f + '}' for f in REASON_FIELDS)}"
        if spec or conversion:
            return f"{{{field}}}: no format spec or conversion"
    return None
