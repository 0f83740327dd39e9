"""Where the suite finds things: the repository, its build cache and test guests, and the shared bench generator.

The generator lives next to the repository (`../shared/bench/gen_dataset.py`), not in it: `bench_generator()`
fails with a message naming the path it looked at when the file is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_CACHE = REPO / "var" / "cache" / "build"
GUESTS = REPO / "tests" / "evaluators" / "guests"
GEN_DATASET = (REPO / ".." / "shared" / "bench" / "gen_dataset.py").resolve()


def bench_generator() -> Path:
    """The shared bench generator, or a failure that says where it was expected."""
    if not GEN_DATASET.is_file():
        pytest.fail(
            f"the shared bench generator is missing: expected {GEN_DATASET} "
            f"(../shared/bench/gen_dataset.py relative to the repository {REPO})",
            pytrace=False,
        )
    return GEN_DATASET
