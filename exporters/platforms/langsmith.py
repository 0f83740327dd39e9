"""LangSmith: each result as feedback (`POST /api/v1/feedback`, one per request; its API has no batch create).

The feedback's `id` is the record's deterministic id (a resend of an existing id is refused with 409 by
LangSmith and counted here as delivered, since the feedback is there), `key` the binding (or `vigilo.gate`),
`score` the normalized score, `value` the label, `comment` the explanation, `feedback_source` {type: "api" or
"model" for a judge binding, metadata: Vigilo's ids}. It sits on the evaluated trace: `trace_id` and `run_id`
are the trace id as a UUID (LangSmith's root run of an OTEL trace has the trace's id), so a record without a
trace id is sent on Vigilo's own run trace. Auth: `x-api-key`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from exporters.platforms._json import json_request, metadata_of, trace_uuid
from exporters.protocol import Destination, HttpRequest
from exporters.records import EvalRecord


def feedback_body(record: EvalRecord) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": record.id,
        "key": record.name,
        "feedback_source": {"type": "model" if record.judge else "api", "metadata": metadata_of(record)},
    }
    trace = trace_uuid(record.trace_id)
    if trace:
        body.update(trace_id=trace, run_id=trace)
    if record.outcome == "completed" and record.score is not None:
        body["score"] = float(record.score)
    if record.label:
        body["value"] = record.label
    if record.explanation:
        body["comment"] = record.explanation
    return body


class LangSmithExporter:
    kind = "langsmith"
    max_batch = 1
    secret_names: tuple[str, ...] = ("api_key",)
    option_defaults: Mapping[str, str] = {}
    duplicate_statuses: frozenset[int] = frozenset({409})
    retry_statuses: frozenset[int] = frozenset()

    def options_problems(self, options: Mapping[str, str]) -> list[str]:
        return []

    def requests(self, records: Sequence[EvalRecord], destination: Destination) -> list[HttpRequest]:
        headers = {"x-api-key": destination.secrets.get("api_key", "")}
        return [json_request(f"{destination.url}/api/v1/feedback", feedback_body(r), headers, 1) for r in records]

    def accepted(self, status: int, body: bytes) -> str:
        return ""


LANGSMITH = LangSmithExporter()
