"""Run fixtures shared by the test modules of tests/runs."""

from __future__ import annotations

import pytest

from runs.services import dataset_import, profile_import, run_create
from tests.support.datasets import hello_cases
from tests.support.profiles import IDEM_PROFILE


@pytest.fixture
def run(published):
    """A run created (not processed) from five cases, c0 and c3 answering "bye", against the idempotency
    profile: exact-match and contains("o"), in chunks of 2, 2 and 1."""
    dataset, _ = dataset_import(name="idem", text=hello_cases(5))
    profile, _ = profile_import(text=IDEM_PROFILE)
    created, _ = run_create(dataset_version=dataset, profile_version=profile, name="idem")
    return created
