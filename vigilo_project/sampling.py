"""Deterministic sampling: whether a key is in a sample at a rate, the same answer every time it is asked.

Used where a replay must make the same choice as the first pass: instance-reuse re-checks (runs/reuse.py) and
the live evaluation's event sampling (online/). A lower rate's sample is a subset of a higher rate's.
"""

from __future__ import annotations

import hashlib


def sampled(key: str, rate: float) -> bool:
    """A deterministic sample: the same key is in or out at every attempt, and a lower rate's sample is a subset."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") < rate * 2**64
