"""Langfuse: each result as a score on the trace (and observation) it judges.

Scores go in batches through the ingestion API (`POST /api/public/ingestion`, events of type `score-create`;
the answer is 207 with `successes` and `errors` per event) or, with the option `api: scores`, one per request
to `POST /api/public/scores`. Both are in Langfuse's API definition (fern/apis/server/definition:
ingestion.yml, scores.yml); the ingestion API is the batched one its SDKs use. The score `id` is the record's
deterministic id, so a resend updates the same score instead of adding one. `dataType` follows what the
evaluator measured: BOOLEAN (value 1 or 0) for pass/fail checks, NUMERIC (the normalized score) for numbers,
CATEGORICAL (the label as a string) for ordinal ones; an errored or abstained result is CATEGORICAL with its
outcome as the value, so it is visible and never counted as a number. A live event without a trace id is scored
on the agent's session (`sessionId` `vigilo:<agent>`), since a score needs a trace, a session or a dataset run.
Auth: HTTP Basic, public key : secret key.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from exporters.platforms._json import iso_time, json_request, metadata_of
from exporters.protocol import Destination, HttpRequest
from exporters.records import BOOLEAN_KINDS, CATEGORICAL_KINDS, EvalRecord

APIS = ("ingestion", "scores")


def score_body(record: EvalRecord, *, environment: str) -> dict[str, Any]:
    """The ScoreBody / CreateScoreRequest of one record."""
    body: dict[str, Any] = {"id": record.id, "name": record.name, "metadata": metadata_of(record)}
    if record.trace_id:
        body["traceId"] = record.trace_id
        if record.span_id and record.level == "binding":
            body["observationId"] = record.span_id
    else:  # a live event without a trace: the agent's session (Langfuse needs a trace, session or dataset run)
        body["sessionId"] = f"vigilo:{record.agent or record.run_id}"
    if environment:
        body["environment"] = environment
    if record.explanation:
        body["comment"] = record.explanation
    if record.outcome != "completed" or record.score is None:
        body.update(dataType="CATEGORICAL", value=record.label or record.outcome)
    elif record.kind in BOOLEAN_KINDS or record.level == "run":
        body.update(dataType="BOOLEAN", value=1 if record.passed else 0)
    elif record.kind in CATEGORICAL_KINDS:
        body.update(dataType="CATEGORICAL", value=str(record.value if record.value is not None else record.label))
    else:
        body.update(dataType="NUMERIC", value=float(record.score))
    return body


class LangfuseExporter:
    kind = "langfuse"
    max_batch = 500  # the ingestion API takes up to 3.5 MB a request; a score is well under 2 KB
    secret_names: tuple[str, ...] = ("public_key", "secret_key")
    option_defaults: Mapping[str, str] = {"api": "ingestion", "environment": ""}
    duplicate_statuses: frozenset[int] = frozenset()
    retry_statuses: frozenset[int] = frozenset()

    def options_problems(self, options: Mapping[str, str]) -> list[str]:
        return [] if options.get("api", "ingestion") in APIS else [f"api must be one of {', '.join(APIS)}"]

    def requests(self, records: Sequence[EvalRecord], destination: Destination) -> list[HttpRequest]:
        pair = f"{destination.secrets.get('public_key', '')}:{destination.secrets.get('secret_key', '')}"
        headers = {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
        environment = destination.options.get("environment", "")
        if destination.options.get("api", "ingestion") == "scores":
            url = f"{destination.url}/api/public/scores"
            return [json_request(url, score_body(r, environment=environment), headers, 1) for r in records]
        batch = [
            {
                "id": str(uuid.uuid5(uuid.UUID(record.id), "score-create")),
                "type": "score-create",
                "timestamp": iso_time(record.timestamp_ns),
                "body": score_body(record, environment=environment),
            }
            for record in records
        ]
        return [json_request(f"{destination.url}/api/public/ingestion", {"batch": batch}, headers, len(records))]

    def accepted(self, status: int, body: bytes) -> str:
        """The ingestion API answers 207 with an `errors` entry per refused event."""
        if status != 207:
            return ""
        try:
            errors = json.loads(body).get("errors") or []
        except (ValueError, AttributeError):
            return "207 without a readable answer"
        if not errors:
            return ""
        first = errors[0]
        return f"{len(errors)} score(s) refused, first: {first.get('status')} {first.get('message', '')}"[:300]


LANGFUSE = LangfuseExporter()
