"""EvalRecords for exporter tests: one realistic record, and batches of them with distinct ids."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from exporters.records import EvalRecord, own_span_id, own_trace_id, record_id


def record(**overrides: Any) -> EvalRecord:
    """A passing binding result of an offline run, on Vigilo's own span unless overridden."""
    run_id, execution_id = (
        overrides.pop("run_id", "11111111-2222-3333-4444-555555555555"),
        overrides.pop("execution_id", "1"),
    )
    binding_id = overrides.pop("binding_id", "correctness")
    now = time.time_ns()
    base = EvalRecord(
        id=record_id("run", f"{run_id}:{execution_id}:{binding_id}"),
        source="run",
        name=binding_id,
        outcome="completed",
        kind="numeric",
        value=0.9,
        score=0.9,
        label="pass",
        passed=True,
        explanation="matches the expected answer",
        evaluator="vigilo/exact-match",
        evaluator_version="1.0.0",
        evaluator_digest="ab" * 32,
        trace_id=own_trace_id(run_id),
        span_id=own_span_id(run_id, execution_id),
        own_span=True,
        run_id=run_id,
        execution_id=execution_id,
        case_id=f"case-{execution_id}",
        binding_id=binding_id,
        timestamp_ns=now,
        start_ns=now - 2_000_000,
        end_ns=now - 1_000_000,
    )
    return replace(base, **overrides)


def records(count: int, **overrides: Any) -> list[EvalRecord]:
    """`count` records of one run, one per execution, each with its own id and span."""
    run_id = overrides.pop("run_id", "11111111-2222-3333-4444-555555555555")
    return [record(run_id=run_id, execution_id=str(i + 1), **overrides) for i in range(count)]


def send(requests: list[Any]) -> list[tuple[int, bytes]]:
    """Send an exporter's HttpRequests in order with the standard library (the tests' stand-in for the relay):
    (status, body) per request; an HTTP error status is returned, not raised."""
    import urllib.error
    import urllib.request

    answers: list[tuple[int, bytes]] = []
    for req in requests:
        request = urllib.request.Request(req.url, data=req.body, headers=dict(req.headers), method=req.method)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                answers.append((response.status, response.read()))
        except urllib.error.HTTPError as exc:
            answers.append((exc.code, exc.read()))
    return answers
