"""Small datasets (JSONL text) that several test modules share."""

from __future__ import annotations

import json


def dataset_text(n: int = 3, failing: tuple[int, ...] = ()) -> str:
    """`n` cases for the API tests' profile: case i expects `KX-000i`, and its output says it unless i is in
    `failing`; even and odd cases are tagged so."""
    lines = []
    for i in range(n):
        answer = "nothing useful" if i in failing else f"the answer is KX-{i:04d}"
        lines.append(
            json.dumps(
                {
                    "id": f"case-{i}",
                    "input": f"question {i}",
                    "expected": {"contains": f"KX-{i:04d}"},
                    "output": {"text": answer},
                    "tags": ["even" if i % 2 == 0 else "odd"],
                }
            )
        )
    return "\n".join(lines) + "\n"


def hello_cases(n: int) -> str:
    """`n` cases expecting "hello", for the idempotency tests: every third one (c0, c3, ...) answered "bye"."""
    rows = [
        {"id": f"c{i}", "input": i, "expected": "hello", "output": {"text": "hello" if i % 3 else "bye"}}
        for i in range(n)
    ]
    return "\n".join(json.dumps(r) for r in rows)
