"""The two-way guardrail protocol (plain Python, no Django): a remote engine answers a live event with a decision,
and the decision becomes a correction of the live loop (docs/live.md). Pure translation: the live path sends the
request, waits at most `budget_ms` on the sync path (else lets the call finish in the background within
`timeout_s`) and stores the correction.

Declared per agent in agents.yaml (`guardrail_config_parse`; every problem named by its path):

    guardrail:
      protocol: http                     # http (the generic protocol below, default) | fiddler
      url: https://guard.internal/check  # http: the endpoint; fiddler: the base URL
                                         #   (default https://guardrails.cloud.fiddler.ai)
      event_types: [llm_output]          # the event types it checks (default: all)
      budget_ms: 200                     # how long the sync path waits for the answer
      timeout_s: 10                      # how long a late call may take in the background (>= budget_ms)
      mapping: {block: halt}             # decision -> severity or null (default {allow: null, block: redirect})
      thresholds:                        # optional, highest first: the first whose min_score <= score applies
        - {min_score: 0.9, severity: halt}
        - {min_score: 0.5, severity: redirect}
      reason: "guardrail {action}: {reason}"   # fields {reason}, {score}, {action}
      secret: GUARD                      # the NAME of the secret: the caller reads VIGILO_GUARDRAIL_GUARD
                                         #   (or VIGILO_GUARDRAIL_GUARD_FILE); the value is never in the YAML
      check: safety                      # fiddler only: safety (default) | faithfulness
      block_at: 0.7                      # fiddler only: a risk score >= block_at is a block (default 0.7)

The correction's severity is the more severe of `mapping[action]` and the first threshold the score reaches;
None means nothing to correct.

The generic protocol. Request: `POST <url>` with `Content-Type: application/json`, `Authorization: Bearer
<secret>` when a secret is named, and the body

    {"agent": str, "event_type": str, "message_id": str, "trace_id": str, "span_id": str, "payload": object}

(trace_id and span_id are "" when the event has none). Answer: any 2xx with a JSON object

    {"action": "allow" | "block",        # required
     "score": number | null,             # optional: a risk score, higher is riskier (thresholds compare it)
     "reason": string | null,            # optional: why, for the correction's reason ({reason})
     "findings": object | null}          # optional: details, kept in the correction's payload

Other keys are ignored. A non-2xx answer, a body that is not a JSON object or a field of the wrong type raises
`GuardrailFailed`: the event gets no correction from the guardrail (a broken guardrail must not halt agents).

Fiddler (Fiddler Guardrails, docs.fiddler.ai/api/rest-api/guardrails-api-reference): `Authorization: Bearer`.
* safety: `POST <url>/v3/guardrails/ftl-safety` `{"data": {"input": text}}`, answered with one score in [0, 1]
  per dimension (`fdl_harmful`, `fdl_violent`, `fdl_jailbreaking`, ...): the risk score is the highest.
* faithfulness: `POST <url>/v3/guardrails/ftl-response-faithfulness` `{"data": {"response": text, "context":
  context}}`, answered with `{"fdl_faithful_score": p}` (p near 1: faithful): the risk score is 1 - p.
`text` is the payload's `text`, else its `content` (what the evaluators see as output.text), else the payload's
compact JSON (a tool call's name and arguments are checked too); `context` is `payload.context` (a string, a list
of strings joined by blank lines, or anything else as JSON). The answer's `fdl_*` scores are the findings.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard

from exporters.protocol import HttpRequest

Protocol = Literal["http", "fiddler"]
PROTOCOLS: tuple[Protocol, ...] = ("http", "fiddler")
SEVERITIES = ("nudge", "redirect", "halt")  # as online.models.SEVERITIES, in increasing order
DECISIONS = ("allow", "block")
FIDDLER_CHECKS = ("safety", "faithfulness")
FIDDLER_URL = "https://guardrails.cloud.fiddler.ai"
FIDDLER_PATHS = {"safety": "/v3/guardrails/ftl-safety", "faithfulness": "/v3/guardrails/ftl-response-faithfulness"}
FAITHFUL_SCORE = "fdl_faithful_score"
SECRET_ENV = "VIGILO_GUARDRAIL_"
REASON_FIELDS = ("reason", "score", "action")
DEFAULT_REASON = "guardrail {action}: {reason}"
DEFAULT_MAPPING: Mapping[str, str | None] = {"allow": None, "block": "redirect"}
REASON_MAX = 500
KEYS = (
    "protocol",
    "url",
    "event_types",
    "budget_ms",
    "timeout_s",
    "mapping",
    "thresholds",
    "reason",
    "secret",
    "check",
    "block_at",
)
FIDDLER_KEYS = ("check", "block_at")
THRESHOLD_KEYS = ("min_score", "severity")
SECRET_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
URL = re.compile(r"https?://[^/\s]+\S*")


@dataclass(frozen=True, kw_only=True)
class GuardrailConfig:
    """An agent's remote guardrail, as parsed from agents.yaml."""

    protocol: Protocol = "http"
    url: str  # http: the endpoint; fiddler: the base URL, without a trailing slash
    event_types: frozenset[str]
    budget_ms: int = 200
    timeout_s: float = 10.0
    mapping: Mapping[str, str | None] = field(default_factory=lambda: dict(DEFAULT_MAPPING))
    thresholds: tuple[tuple[float, str], ...] = ()  # (min_score, severity), highest first
    reason: str = DEFAULT_REASON
    secret: str = ""  # the secret's NAME (upper case); "" for an engine without auth (http only)
    check: str = "safety"  # fiddler only
    block_at: float = 0.7  # fiddler only

    @property
    def secret_env(self) -> str:
        """The variable the caller reads the secret from (or from <it>_FILE); "" when none is named."""
        return f"{SECRET_ENV}{self.secret}" if self.secret else ""

    def applies(self, event_type: str) -> bool:
        return event_type in self.event_types


@dataclass(frozen=True, kw_only=True)
class GuardrailDecision:
    """What the engine decided and the correction it maps to (`severity` None: nothing to correct)."""

    action: Literal["allow", "block"]
    score: float | None
    reason: str  # the correction's reason: the config's template filled in
    severity: str | None
    findings: dict[str, Any]
    engine_reason: str = ""  # the engine's own reason, as answered ("" when it gave none)


class GuardrailFailed(Exception):
    """The guardrail gave no usable decision; `reason` says why (never with the secret)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


Errors = list[tuple[str, str]]


def guardrail_config_parse(
    value: object, path: str, *, event_types: Sequence[str]
) -> tuple[GuardrailConfig | None, Errors]:
    """The `guardrail:` mapping of an agent (None: the agent has none), or every problem with its path.

    `event_types` are the live loop's (online.models.EVENT_TYPES: that module is Django's, so it is passed in).
    """
    if value is None:
        return None, []
    if not isinstance(value, Mapping):
        return None, [(path, "a mapping {url: ..., ...}: the remote guardrail that checks this agent's events")]
    errors: Errors = [(f"{path}.{key}", f"unknown key; allowed: {', '.join(KEYS)}") for key in value if key not in KEYS]
    protocol = value.get("protocol", "http")
    if protocol not in PROTOCOLS:
        errors.append((f"{path}.protocol", f"one of {', '.join(PROTOCOLS)}"))
    fiddler = protocol == "fiddler"
    if not fiddler:
        errors.extend((f"{path}.{key}", "only with protocol: fiddler") for key in FIDDLER_KEYS if key in value)
    url = _url(errors, f"{path}.url", value.get("url", FIDDLER_URL if fiddler else None), fiddler=fiddler)
    types = _event_types(errors, f"{path}.event_types", value.get("event_types", list(event_types)), event_types)
    budget_ms = _budget(errors, f"{path}.budget_ms", value.get("budget_ms", 200))
    timeout_s = _timeout(errors, f"{path}.timeout_s", value.get("timeout_s", 10.0))
    if budget_ms and timeout_s and budget_ms > timeout_s * 1000:
        errors.append((f"{path}.budget_ms", f"must not exceed timeout_s ({timeout_s:g} s)"))
    mapping = _mapping(errors, f"{path}.mapping", value.get("mapping", {}))
    thresholds = _thresholds(errors, f"{path}.thresholds", value.get("thresholds", []))
    reason = _reason(errors, f"{path}.reason", value.get("reason", DEFAULT_REASON))
    secret = _secret(errors, f"{path}.secret", value.get("secret"), required=fiddler)
    check = value.get("check", "safety")
    if check not in FIDDLER_CHECKS:
        errors.append((f"{path}.check", f"one of {', '.join(FIDDLER_CHECKS)}"))
    block_at = _score(errors, f"{path}.block_at", value.get("block_at", 0.7), low=0.0, high=1.0)
    if errors:
        return None, errors
    return (
        GuardrailConfig(
            protocol=protocol,
            url=url,
            event_types=types,
            budget_ms=budget_ms,
            timeout_s=timeout_s,
            mapping=mapping,
            thresholds=thresholds,
            reason=reason,
            secret=secret,
            check=check,
            block_at=block_at,
        ),
        [],
    )


def _url(errors: Errors, path: str, value: object, *, fiddler: bool) -> str:
    if not isinstance(value, str) or not URL.fullmatch(value):
        what = "the base URL of the Fiddler guardrails service" if fiddler else "required: the engine's endpoint"
        errors.append((path, f"an http(s) URL: {what}"))
        return ""
    return value.rstrip("/") if fiddler else value


def _event_types(errors: Errors, path: str, value: object, known: Sequence[str]) -> frozenset[str]:
    if not isinstance(value, list) or not value or not all(isinstance(t, str) for t in value):
        errors.append((path, f"a non-empty list of event types ({', '.join(known)})"))
        return frozenset()
    for item in value:
        if item not in known:
            errors.append((path, f"unknown event type {item!r}; one of {', '.join(known)}"))
    return frozenset(value)


def _budget(errors: Errors, path: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 60_000:
        errors.append((path, "an integer number of milliseconds in [1, 60000]"))
        return 0
    return value


def _timeout(errors: Errors, path: str, value: object) -> float:
    if not _number(value) or not 0 < float(value) <= 300:
        errors.append((path, "a number of seconds in (0, 300]"))
        return 0.0
    return float(value)


def _mapping(errors: Errors, path: str, value: object) -> dict[str, str | None]:
    if not isinstance(value, Mapping):
        errors.append((path, f"a mapping of decision ({', '.join(DECISIONS)}) to severity or null"))
        return {}
    mapping = dict(DEFAULT_MAPPING)
    for decision, severity in value.items():
        if decision not in DECISIONS:
            errors.append((f"{path}.{decision}", f"unknown decision; one of {', '.join(DECISIONS)}"))
        elif severity is not None and severity not in SEVERITIES:
            errors.append((f"{path}.{decision}", f"one of {', '.join(SEVERITIES)}, or null for no correction"))
        else:
            mapping[decision] = severity
    return mapping


def _thresholds(errors: Errors, path: str, value: object) -> tuple[tuple[float, str], ...]:
    if not isinstance(value, list):
        errors.append((path, "a list of {min_score, severity}, highest min_score first"))
        return ()
    parsed: list[tuple[float, str]] = []
    for i, item in enumerate(value):
        where = f"{path}[{i}]"
        if not isinstance(item, Mapping) or set(item) != set(THRESHOLD_KEYS):
            errors.append((where, "a mapping {min_score: number, severity: nudge | redirect | halt}"))
            continue
        before = len(errors)
        min_score = _score(errors, f"{where}.min_score", item["min_score"])
        if item["severity"] not in SEVERITIES:
            errors.append((f"{where}.severity", f"one of {', '.join(SEVERITIES)}"))
        if parsed and len(errors) == before and min_score >= parsed[-1][0]:
            errors.append((f"{where}.min_score", f"must be below the one before ({parsed[-1][0]:g}): highest first"))
        if len(errors) == before:
            parsed.append((min_score, item["severity"]))
    return tuple(parsed)


def _score(errors: Errors, path: str, value: object, *, low: float = -math.inf, high: float = math.inf) -> float:
    if not _number(value) or not low <= float(value) <= high:
        bounds = f" in [{low:g}, {high:g}]" if math.isfinite(low) else ""
        errors.append((path, f"a number{bounds}"))
        return 0.0
    return float(value)


def _reason(errors: Errors, path: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        errors.append((path, "a non-empty string"))
        return ""
    try:
        parts = list(string.Formatter().parse(value))
    except ValueError as exc:
        errors.append((path, f"not a valid template: {exc} (write {{{{ and }}}} for literal braces)"))
        return ""
    fields = ", ".join("{" + name + "}" for name in REASON_FIELDS)
    for _, name, spec, conversion in parts:
        if name is not None and name not in REASON_FIELDS:
            errors.append((path, f"unknown field {{{name}}}; the fields are {fields}"))
        elif name is not None and (spec or conversion):
            errors.append((path, f"{{{name}}}: no format spec or conversion"))
    return value


def _secret(errors: Errors, path: str, value: object, *, required: bool) -> str:
    if value is None:
        if required:
            errors.append((path, f"required with protocol: fiddler: the NAME of the secret ({SECRET_ENV}<NAME>)"))
        return ""
    if not isinstance(value, str) or not SECRET_NAME.fullmatch(value):
        errors.append(
            (path, f"the NAME of the secret (letters, digits, '_'; read from {SECRET_ENV}<NAME>), not its value")
        )
        return ""
    return value.upper()


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def guardrail_request(
    config: GuardrailConfig,
    *,
    agent: str,
    event_type: str,
    payload: Mapping[str, Any],
    message_id: str,
    trace_id: str,
    span_id: str,
    secret: str,
) -> HttpRequest:
    """The request that asks the engine about one event. GuardrailFailed when the event cannot be asked about
    (Fiddler without a secret, a faithfulness check of an event without a response or a context)."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if secret:
        headers["Authorization"] = f"Bearer {secret}"
    if config.protocol == "fiddler":
        if not secret:
            raise GuardrailFailed(f"no secret for the Fiddler guardrail ({config.secret_env} is empty)")
        return _request(config.url + FIDDLER_PATHS[config.check], {"data": _fiddler_data(config, payload)}, headers)
    body = {
        "agent": agent,
        "event_type": event_type,
        "message_id": message_id,
        "trace_id": trace_id,
        "span_id": span_id,
        "payload": dict(payload),
    }
    return _request(config.url, body, headers)


def _request(url: str, body: Mapping[str, Any], headers: Mapping[str, str]) -> HttpRequest:
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return HttpRequest(method="POST", url=url, body=data, headers=headers, records=0)


def _fiddler_data(config: GuardrailConfig, payload: Mapping[str, Any]) -> dict[str, str]:
    text = _text(payload)
    if config.check == "safety":
        return {"input": text if text is not None else _compact(payload)}
    context = _context(payload.get("context"))
    if not text or not context:
        raise GuardrailFailed("a faithfulness check needs the payload's text (or content) and its context")
    return {"response": text, "context": context}


def _text(payload: Mapping[str, Any]) -> str | None:
    for key in ("text", "content"):
        if isinstance(payload.get(key), str):
            return str(payload[key])
    return None


def _context(value: object) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return "\n\n".join(value)
    return _compact(value)


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def guardrail_decision(config: GuardrailConfig, status: int, body: bytes) -> GuardrailDecision:
    """The decision an answer carries, mapped to a correction severity; GuardrailFailed if there is none."""
    if not 200 <= status < 300:
        raise GuardrailFailed(f"the guardrail answered HTTP {status}")
    try:
        answer = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise GuardrailFailed(f"the guardrail's answer is not JSON ({len(body)} bytes)")
    if not isinstance(answer, dict):
        raise GuardrailFailed(f"the guardrail's answer is a JSON {type(answer).__name__}, not an object")
    if config.protocol == "fiddler":
        action, score, engine_reason, findings = _fiddler_answer(config, answer)
    else:
        action, score, engine_reason, findings = _generic_answer(answer)
    return GuardrailDecision(
        action=action,
        score=score,
        reason=_reason_text(config, action, score, engine_reason),
        severity=_severity(config, action, score),
        findings=findings,
        engine_reason=engine_reason,
    )


Answer = tuple[Literal["allow", "block"], float | None, str, dict[str, Any]]


def _generic_answer(answer: dict[str, Any]) -> Answer:
    action = answer.get("action")
    if action not in DECISIONS:
        raise GuardrailFailed(f"the guardrail's answer has no action: 'action' must be one of {', '.join(DECISIONS)}")
    score = answer.get("score")
    if score is not None and not _number(score):
        raise GuardrailFailed("the guardrail's 'score' must be a finite number or null")
    reason = answer.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise GuardrailFailed("the guardrail's 'reason' must be a string or null")
    findings = answer.get("findings")
    if findings is not None and not isinstance(findings, dict):
        raise GuardrailFailed("the guardrail's 'findings' must be an object or null")
    return action, None if score is None else float(score), reason or "", findings or {}


def _fiddler_answer(config: GuardrailConfig, answer: dict[str, Any]) -> Answer:
    scores = {key: value for key, value in answer.items() if key.startswith("fdl_")}
    bad = sorted(key for key, value in scores.items() if not _number(value))
    if bad:
        raise GuardrailFailed(f"Fiddler's {', '.join(bad)} must be numbers")
    if config.check == "faithfulness":
        if FAITHFUL_SCORE not in scores:
            raise GuardrailFailed(f"Fiddler's answer has no {FAITHFUL_SCORE}")
        risk = 1.0 - float(scores[FAITHFUL_SCORE])
        reason = f"{FAITHFUL_SCORE} {float(scores[FAITHFUL_SCORE]):g}"
    else:
        if not scores:
            raise GuardrailFailed("Fiddler's answer has no fdl_* safety score")
        top = max(scores, key=lambda key: float(scores[key]))
        risk = float(scores[top])
        reason = f"{top} {risk:g}"
    action: Literal["allow", "block"] = "block" if risk >= config.block_at else "allow"
    return action, risk, reason, {key: float(value) for key, value in scores.items()}


def _severity(config: GuardrailConfig, action: str, score: float | None) -> str | None:
    candidates = [config.mapping.get(action)]
    if score is not None:
        candidates.append(next((severity for low, severity in config.thresholds if score >= low), None))
    ranked = [severity for severity in candidates if severity is not None]
    return max(ranked, key=SEVERITIES.index) if ranked else None


def _reason_text(config: GuardrailConfig, action: str, score: float | None, engine_reason: str) -> str:
    values = {
        "reason": engine_reason or "no reason given",
        "score": "" if score is None else f"{score:g}",
        "action": action,
    }
    return config.reason.format_map(values)[:REASON_MAX]
