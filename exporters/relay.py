"""The export relay: deliver one destination's pending batches, in order, in requests as large as it takes.

One pass claims due batches (`exports_claim`), joins their undelivered records, asks the platform's exporter for
the requests that carry them (`EvalExporter.requests`, at most `max_batch` records each) and sends them in order.
After the pass every claimed batch is settled by what happened to its records:

* every record accepted (a 2xx the exporter calls complete): delivered;
* connection refused, timed out, no answer: the receiver is down. Nothing is counted: the batches wait (backoff,
  capped) and are tried again however long the outage lasts, so an outage delays exports and never loses them;
* 408, 429 or 5xx: an attempt is counted and the batch retried with exponential backoff and jitter, dead after
  VIGILO_EXPORT_MAX_ATTEMPTS;
* any other 4xx, or a 2xx with per-record errors: the receiver refused the records. The batches of the refused
  request are dead at once with the reason (visible and retryable in admin); the batches after them are given
  back untouched and go on in the next pass.

Progress is kept per batch (`delivered`), so a resumed batch starts after the last accepted request. At least
once: a request the receiver took but whose answer was lost is sent again, with the same record ids (receivers
that upsert on them see no duplicate). Secrets are redacted from every stored error and log line.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings

from exporters.config import configured, destination_policy, secret_values
from exporters.models import ExportBatch
from exporters.platforms import EXPORTERS
from exporters.protocol import Destination, EvalExporter
from exporters.records import EvalRecord
from exporters.services import export_settle, exports_claim, exports_delivered
from vigilo_project.httpjson import CallFailed, request_once

log = logging.getLogger(__name__)

RETRYABLE = frozenset({408, 425, 429})
ERROR_BODY_CHARS = 300


@dataclass
class _Failure:
    outcome: str  # "retry" | "unreachable" | "dead"
    status: int | None
    error: str


def deliver_due(*, budget_s: float = 10.0) -> int:
    """Deliver what is due at every configured destination until nothing is, or `budget_s` has passed; returns
    the records delivered. A destination that fails stops for this call (its batches wait their backoff)."""
    delivered = 0
    deadline = time.monotonic() + budget_s
    for destination in configured().values():
        while time.monotonic() < deadline:
            taken, more = deliver_once(destination=destination)
            delivered += taken
            if not more:
                break
    return delivered


def deliver_once(*, destination: Destination, limit: int | None = None) -> tuple[int, bool]:
    """One pass over one destination: returns (records delivered, whether to go on: every claimed batch went)."""
    token, batches = exports_claim(destination=destination.name, limit=limit or settings.VIGILO_EXPORT_CLAIM_BATCHES)
    if not batches:
        return 0, False
    exporter = EXPORTERS[destination.kind]
    owners: list[ExportBatch] = []
    records: list[EvalRecord] = []
    for batch in batches:
        for raw in batch.records[batch.delivered :]:
            owners.append(batch)
            records.append(EvalRecord.from_dict(raw))
    taken, failure, failed_span = _send(exporter=exporter, destination=destination, records=records)
    accepted = {batch.id: batch.delivered for batch in batches}
    for owner in owners[:taken]:
        accepted[owner.id] += 1
    refused = {owner.id for owner in owners[failed_span[0] : failed_span[1]]} if failure else set()
    exports_delivered(batches=[batch for batch in batches if accepted[batch.id] >= batch.count], token=token)
    for batch in batches:
        done = accepted[batch.id]
        if done >= batch.count:
            continue
        if failure is None:  # cannot happen: without a failure every record was taken
            raise AssertionError(f"batch {batch.id}: {done}/{batch.count} delivered without a failure")
        elif batch.id in refused or failure.outcome == "unreachable":
            export_settle(
                batch=batch,
                token=token,
                delivered=done,
                status=failure.status,
                error=failure.error,
                outcome=failure.outcome,
            )
        else:  # not reached by the pass: back as it was, due again now (a retry delays it below)
            export_settle(
                batch=batch,
                token=token,
                delivered=done,
                status=failure.status,
                error="",
                outcome="unreachable" if failure.outcome == "retry" else "release",
            )
    if failure is not None:
        log.warning(
            "exports: %s refused or missed %d record(s) of batches %s: %s",
            destination.name,
            len(records) - taken,
            sorted(refused) or [batch.id for batch in batches],
            failure.error,
        )
    return taken, failure is None


def _send(
    *, exporter: EvalExporter, destination: Destination, records: list[EvalRecord]
) -> tuple[int, _Failure | None, tuple[int, int]]:
    """Send `records` in groups of the exporter's size: (records taken, the failure that stopped it, the
    records [start, end) of the request that failed)."""
    policy = destination_policy(destination)
    for start in range(0, len(records), exporter.max_batch):
        group = records[start : start + exporter.max_batch]
        offset = start
        for request in exporter.requests(group, destination):
            # A request that carries no record (spans before their annotations) fails for the group's records.
            span = (offset, offset + (request.records or start + len(group) - offset))
            try:
                status, body = request_once(
                    method=request.method,
                    url=request.url,
                    body=request.body,
                    headers=request.headers,
                    timeout_s=destination.timeout_s,
                    policy=policy,
                    call=f"export to {destination.name}",
                )
            except CallFailed as exc:
                return offset, _Failure("unreachable", None, _redacted(str(exc))), span
            failure = _judged(exporter, status, body)
            if failure is not None:
                return offset, failure, span
            offset += request.records
        # Every request of the group went: all its records are taken (an exporter may send none for a record
        # its platform has no place for, e.g. feedback without a row to sit on).
    return len(records), None, (0, 0)


def _judged(exporter: EvalExporter, status: int, body: bytes) -> _Failure | None:
    if status in exporter.duplicate_statuses:  # the platform already has these records (a resend)
        return None
    if 200 <= status < 300:
        reason = exporter.accepted(status, body)
        return _Failure("dead", status, _redacted(f"HTTP {status}: {reason}")) if reason else None
    text = _redacted(f"HTTP {status}: {body[:ERROR_BODY_CHARS].decode('utf-8', 'replace')}")
    if status in RETRYABLE or status >= 500 or status in exporter.retry_statuses:
        return _Failure("retry", status, text)
    return _Failure("dead", status, text)


def _redacted(text: str) -> str:
    for secret in secret_values(configured()):
        text = text.replace(secret, "[redacted]")
    return text
