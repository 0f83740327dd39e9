"""Evaluator fixtures: a real OpenAI-compatible provider on loopback, for the judge tests."""

from __future__ import annotations

import pytest

from tests.support.openai_provider import OpenAIProvider


@pytest.fixture(scope="module")
def provider():
    """One provider per test module; it favours answers that mention PINEAPPLE."""
    server = OpenAIProvider(marker="PINEAPPLE")
    server.start()
    yield server
    server.stop()
