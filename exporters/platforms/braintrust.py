"""Braintrust: each result as a score on a project log row.

`POST /v1/project_logs/{project_id}/insert` with `events`: a row per record whose `id` is the record's
deterministic id (Braintrust replaces a row inserted again with the same id, so a resend does not add one),
`scores` {name: score in 0..1, or null for an errored or abstained result}, `metadata` with Vigilo's ids and the
explanation, and `span_id` / `root_span_id` when the record judges a known span, so the row joins its trace. With
the option `mode: feedback`, the records become feedback (`POST /v1/project_logs/{project_id}/feedback`,
`source: external`) on rows the agent logged itself, whose id is the evaluated span id; a record without a span
id has no row to sit on and is not sent. Auth: `Authorization: Bearer <api key>`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from exporters.platforms._json import json_request, metadata_of
from exporters.protocol import Destination, HttpRequest
from exporters.records import EvalRecord

MODES = ("insert", "feedback")


def _score(record: EvalRecord) -> float | None:
    if record.outcome != "completed" or record.score is None:
        return None
    return min(max(float(record.score), 0.0), 1.0)


def log_event(record: EvalRecord) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": record.id,
        "scores": {record.name: _score(record)},
        "metadata": {**metadata_of(record), **({"explanation": record.explanation} if record.explanation else {})},
    }
    if record.span_id and not record.own_span:
        event.update(span_id=record.span_id, root_span_id=record.trace_id, span_parents=[record.span_id])
    return event


def feedback_item(record: EvalRecord) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": record.span_id,
        "scores": {record.name: _score(record)},
        "metadata": metadata_of(record),
        "source": "external",
    }
    if record.explanation:
        item["comment"] = record.explanation
    return item


class BraintrustExporter:
    kind = "braintrust"
    max_batch = 500
    secret_names: tuple[str, ...] = ("api_key",)
    option_defaults: Mapping[str, str] = {"project_id": "", "mode": "insert"}
    duplicate_statuses: frozenset[int] = frozenset()
    retry_statuses: frozenset[int] = frozenset()

    def options_problems(self, options: Mapping[str, str]) -> list[str]:
        problems = [] if options.get("project_id") else ["project_id is required (the project's id in Braintrust)"]
        if options.get("mode", "insert") not in MODES:
            problems.append(f"mode must be one of {', '.join(MODES)}")
        return problems

    def requests(self, records: Sequence[EvalRecord], destination: Destination) -> list[HttpRequest]:
        headers = {"Authorization": f"Bearer {destination.secrets.get('api_key', '')}"}
        base = f"{destination.url}/v1/project_logs/{destination.options.get('project_id', '')}"
        if destination.options.get("mode", "insert") == "feedback":
            items = [feedback_item(r) for r in records if r.span_id and not r.own_span]
            return [json_request(f"{base}/feedback", {"feedback": items}, headers, len(records))]
        return [json_request(f"{base}/insert", {"events": [log_event(r) for r in records]}, headers, len(records))]

    def accepted(self, status: int, body: bytes) -> str:
        return ""


BRAINTRUST = BraintrustExporter()
