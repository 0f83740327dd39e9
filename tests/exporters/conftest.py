"""The exporter tests' shared fixture: a real OTLP/HTTP receiver on loopback (tests/support/receivers/otlp.py)."""

from __future__ import annotations

import pytest

from tests.support.receivers.otlp import OtlpReceiver


@pytest.fixture
def receiver():
    server = OtlpReceiver()
    server.start()
    yield server
    server.stop()
