"""Real RabbitMQ, real PostgreSQL, real `celery worker` / `celery beat` processes started per test.

The broker side is isolated in a vhost of its own for the session, and its queues are purged before each test;
workers and beat get unique names and are killed (their whole process group) at teardown, before the test
database is flushed. The processes, waits and data the tests share are in tests/support/distributed.py.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

from tests.support.distributed import BROKER, QUEUES, Cluster, rabbitmq_wait_up, rabbitmqctl


def _vhost_url(vhost: str) -> str:
    parts = urlsplit(BROKER)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), "", ""))


@pytest.fixture(scope="session")
def broker_url() -> Iterator[str]:
    """A vhost of this session's own: other runs and the default vhost never see its messages."""
    if not os.environ.get("CELERY_BROKER_URL"):
        pytest.fail("CELERY_BROKER_URL is not set: the distributed suite needs RabbitMQ (run it with `make test`)")
    vhost = f"vigilo-test-{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", vhost)
    user = urlsplit(BROKER).username or "guest"
    rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    try:
        yield _vhost_url(vhost)
    finally:
        rabbitmq_wait_up()
        rabbitmqctl("delete_vhost", vhost, check=False)


@pytest.fixture
def clean_broker(broker_url: str) -> str:
    """The session vhost with the work queues empty (declared durable, as the workers declare them)."""
    from kombu import Connection, Exchange, Queue

    with Connection(broker_url, connect_timeout=5) as conn:
        channel = conn.channel()
        for name in QUEUES:
            queue = Queue(name, Exchange(name, type="direct", durable=True), routing_key=name, durable=True)
            queue(channel).declare()
            queue(channel).purge()
        channel.close()
    return broker_url


@pytest.fixture
def cluster(published, clean_broker: str, tmp_path: Path) -> Iterator[Cluster]:
    """Depends on `published`, so its processes are killed before the test database is flushed."""
    c = Cluster(broker_url=clean_broker, workdir=tmp_path)
    try:
        yield c
    finally:
        c.stop()
