"""What the JSON platforms share: the request, the Vigilo metadata every record carries, time stamps."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from exporters.protocol import HttpRequest
from exporters.records import EvalRecord

_METADATA = (
    ("id", "vigilo.record.id"),
    ("source", "vigilo.source"),
    ("outcome", "vigilo.outcome"),
    ("run_id", "vigilo.run.id"),
    ("execution_id", "vigilo.execution.id"),
    ("case_id", "vigilo.case.id"),
    ("binding_id", "vigilo.binding.id"),
    ("evaluator", "vigilo.evaluator.reference"),
    ("evaluator_version", "vigilo.evaluator.version"),
    ("evaluator_digest", "vigilo.evaluator.digest"),
    ("agent", "vigilo.agent.name"),
    ("message_id", "vigilo.agent.message_id"),
    ("event_type", "vigilo.event.type"),
    ("error_type", "error.type"),
    ("label", "label"),
)


def metadata_of(record: EvalRecord) -> dict[str, Any]:
    """The record's ids and provenance, the non-empty ones (never a secret: records carry none)."""
    out: dict[str, Any] = {key: getattr(record, field) for field, key in _METADATA if getattr(record, field)}
    if record.level == "run":
        out["vigilo.level"] = "run"
    return out


def json_request(url: str, body: Any, headers: Mapping[str, str], records: int) -> HttpRequest:
    data = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    return HttpRequest(
        method="POST", url=url, body=data, headers={"Content-Type": "application/json", **headers}, records=records
    )


def iso_time(timestamp_ns: int) -> str:
    """RFC 3339 in UTC with milliseconds, as the platforms' APIs take."""
    moment = datetime.fromtimestamp(timestamp_ns / 1e9, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def trace_uuid(trace_id: str) -> str:
    """A 32-hex OTEL trace id as a UUID string (the same 128 bits), or ''."""
    return str(uuid.UUID(hex=trace_id)) if len(trace_id) == 32 else ""
