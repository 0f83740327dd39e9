"""Parsing what agents send (docs/live.md): one event, or a batch, with every problem named by its field.

Parsing only: online/services.py stores what was parsed. The same parser serves the HTTP paths and the AMQP
consumer, so an event means the same wherever it came from.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from online.errors import EventInvalid
from online.models import EVENT_TYPES

EVENT_KEYS = ("agent_name", "event_type", "payload", "message_id", "trace_id", "span_id", "timestamp")
TRACE_ID = re.compile(r"[0-9a-f]{32}")
SPAN_ID = re.compile(r"[0-9a-f]{16}")
MESSAGE_ID_MAX = 200
BATCH_MAX = 500


@dataclass(frozen=True)
class EventIn:
    """One parsed event, ready to store: every field checked."""

    agent_name: str | None  # None: the sender's own agent (a token knows who it is)
    event_type: str
    payload: dict[str, Any]
    message_id: str
    trace_id: str
    span_id: str
    timestamp: datetime


def event_parse(raw: Any, *, where: str = "event") -> EventIn:
    """The event in `raw` (decoded JSON); EventInvalid names every problem by its field."""
    errors: list[tuple[str, str]] = []
    if not isinstance(raw, dict):
        raise EventInvalid(where, [(where, f"must be a JSON object, not {type(raw).__name__}")])
    for key in sorted(set(raw) - set(EVENT_KEYS)):
        errors.append((f"{where}.{key}", f"unknown field; the fields are {', '.join(EVENT_KEYS)}"))
    agent_name = raw.get("agent_name")
    if agent_name is not None and (not isinstance(agent_name, str) or not agent_name.strip()):
        errors.append((f"{where}.agent_name", "must be a non-empty string"))
    event_type = raw.get("event_type")
    if event_type is None:
        errors.append((f"{where}.event_type", f"required: one of {', '.join(EVENT_TYPES)}"))
    elif event_type not in EVENT_TYPES:
        errors.append((f"{where}.event_type", f"unknown event type {event_type!r}; one of {', '.join(EVENT_TYPES)}"))
    payload = raw.get("payload")
    if not isinstance(payload, dict):
        errors.append((f"{where}.payload", "required: a JSON object"))
    else:
        size = len(json.dumps(payload, ensure_ascii=False).encode())
        if size > settings.VIGILO_ONLINE_MAX_EVENT_BYTES:
            errors.append(
                (
                    f"{where}.payload",
                    f"{size} bytes, over the limit of {settings.VIGILO_ONLINE_MAX_EVENT_BYTES} "
                    "(VIGILO_ONLINE_MAX_EVENT_BYTES)",
                )
            )
    message_id = raw.get("message_id")
    if not isinstance(message_id, str) or not message_id.strip() or len(message_id) > MESSAGE_ID_MAX:
        errors.append(
            (
                f"{where}.message_id",
                f"required: a non-empty string of at most {MESSAGE_ID_MAX} characters, unique per agent",
            )
        )
    trace_id = _hex_id(errors, where, raw, "trace_id", pattern=TRACE_ID, n=32)
    span_id = _hex_id(errors, where, raw, "span_id", pattern=SPAN_ID, n=16)
    timestamp = timezone.now()
    if raw.get("timestamp") is not None:
        parsed = parse_datetime(raw["timestamp"]) if isinstance(raw["timestamp"], str) else None
        if parsed is None:
            errors.append((f"{where}.timestamp", "must be an RFC 3339 date-time, e.g. 2026-12-04T10:00:00Z"))
        else:
            timestamp = parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, UTC)
    if errors:
        raise EventInvalid(where, errors)
    assert isinstance(event_type, str) and isinstance(payload, dict) and isinstance(message_id, str)
    return EventIn(
        agent_name=agent_name.strip() if isinstance(agent_name, str) else None,
        event_type=event_type,
        payload=payload,
        message_id=message_id,
        trace_id=trace_id,
        span_id=span_id,
        timestamp=timestamp,
    )


def events_parse(raw: Any) -> list[EventIn]:
    """A batch: `{"events": [...]}` with 1 to BATCH_MAX events; every problem of every event is named."""
    if not isinstance(raw, dict) or set(raw) != {"events"} or not isinstance(raw["events"], list):
        raise EventInvalid("batch", [("events", 'a batch is {"events": [event, ...]}')])
    items = raw["events"]
    if not 1 <= len(items) <= BATCH_MAX:
        raise EventInvalid("batch", [("events", f"1 to {BATCH_MAX} events, got {len(items)}")])
    events, errors = [], []
    seen: dict[tuple[str | None, str], int] = {}
    for i, item in enumerate(items):
        try:
            event = event_parse(item, where=f"events[{i}]")
        except EventInvalid as exc:
            errors.extend(exc.errors)
            continue
        key = (event.agent_name, event.message_id)
        if key in seen:
            errors.append((f"events[{i}].message_id", f"given twice in this batch (see events[{seen[key]}])"))
            continue
        seen[key] = i
        events.append(event)
    if errors:
        raise EventInvalid("batch", errors)
    return events


def body_decode(body: bytes) -> Any:
    """The JSON of a request or message body; EventInvalid when it is not JSON (or not UTF-8)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventInvalid("body", [("body", f"not JSON: {exc}")]) from None


def _hex_id(
    errors: list[tuple[str, str]], where: str, raw: dict[str, Any], key: str, *, pattern: re.Pattern[str], n: int
) -> str:
    value = raw.get(key)
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or not pattern.fullmatch(value.lower()):
        errors.append((f"{where}.{key}", f"must be {n} hex characters (W3C trace context)"))
        return ""
    return value.lower()
