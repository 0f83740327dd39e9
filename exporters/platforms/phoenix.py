"""Arize Phoenix: each result as a span annotation on the span it judges.

`POST /v1/span_annotations?sync=true` with `data`: per record `span_id`, `name` (the binding, or `vigilo.gate`),
`annotator_kind` LLM for a judge binding else CODE, `result` {label, score, explanation}, `metadata` (Vigilo's
ids) and `identifier` = the record id: Phoenix upserts on (name, span, identifier), so a resend updates the
annotation instead of adding one (src/phoenix/server/api/routers/v1/spans.py, annotations.py). Results on
Vigilo's own spans send those spans first, over OTLP protobuf (`POST /v1/traces`) into the project named by the
`project` option (`openinference.project.name`). Phoenix ingests spans asynchronously: an annotation that comes
before its span is answered 404 and retried by the relay with backoff, as it is for any span not there yet. A
record without a span id has nowhere to sit in Phoenix and is not sent. Auth: `Authorization: Bearer <api key>`
when Phoenix runs with authentication.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from exporters.platforms._json import json_request, metadata_of
from exporters.protocol import Destination, HttpRequest
from exporters.records import EvalRecord
from exporters.spans import spans_body, spans_wanted

PROJECT_ATTRIBUTE = "openinference.project.name"


def annotation(record: EvalRecord) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if record.label:
        result["label"] = record.label
    if record.score is not None:
        result["score"] = float(record.score)
    if record.explanation:
        result["explanation"] = record.explanation
    return {
        "span_id": record.span_id,
        "name": record.name,
        "annotator_kind": "LLM" if record.judge else "CODE",
        "result": result,
        "metadata": metadata_of(record),
        "identifier": record.id,
    }


class PhoenixExporter:
    kind = "phoenix"
    max_batch = 500
    secret_names: tuple[str, ...] = ("api_key",)
    option_defaults: Mapping[str, str] = {"project": "vigilo"}
    duplicate_statuses: frozenset[int] = frozenset()
    retry_statuses: frozenset[int] = frozenset({404})  # the span is not ingested yet

    def options_problems(self, options: Mapping[str, str]) -> list[str]:
        return [] if options.get("project") else ["project must name a Phoenix project"]

    def requests(self, records: Sequence[EvalRecord], destination: Destination) -> list[HttpRequest]:
        key = destination.secrets.get("api_key", "")
        auth = {"Authorization": f"Bearer {key}"} if key else {}
        out = []
        if spans_wanted(records):
            project = destination.options.get("project") or "vigilo"
            body = spans_body(records, service_name="vigilo", resource_attributes={PROJECT_ATTRIBUTE: project})
            headers = {"Content-Type": "application/x-protobuf", **auth}
            out.append(
                HttpRequest(method="POST", url=f"{destination.url}/v1/traces", body=body, headers=headers, records=0)
            )
        data = [annotation(record) for record in records if record.span_id]
        if data:
            out.append(
                json_request(f"{destination.url}/v1/span_annotations?sync=true", {"data": data}, auth, len(records))
            )
        return out

    def accepted(self, status: int, body: bytes) -> str:
        return ""


PHOENIX = PhoenixExporter()
