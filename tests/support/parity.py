"""Comparing two evaluator components on the same requests, field by field (the native evaluators against the
Python ones they replace)."""

from __future__ import annotations

import dataclasses


def comparable(invocation) -> dict:
    out = dataclasses.asdict(invocation)
    for key in ("duration_ms", "fuel_used", "logs", "logs_truncated"):
        out.pop(key)
    return out


def request(*, expected=None, text=None, structured=None, config=None, case_id="case-1") -> dict:
    return {
        "run_id": "run-1",
        "execution_id": "execution-1",
        "attempt": 1,
        "case": {"id": case_id, "input": {"q": "?"}, "expected": expected, "tags": [], "metadata": {}},
        "output": {"text": text, "structured": structured, "tool_calls": [], "metadata": {}},
        "config": config or {},
    }


def assert_same(host, python, native, requests: list[dict]) -> None:
    differences = []
    for data in requests:
        want, got = comparable(host.evaluate(python, data=data)), comparable(host.evaluate(native, data=data))
        if want != got:
            differences.append((data, want, got))
    assert not differences, f"{len(differences)} of {len(requests)} differ; first: {differences[0]}"
