"""/healthz and /metrics served by gunicorn (as in docker/compose.yml) against the real database and broker."""

from __future__ import annotations

import json
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.distributed import Proc, create_run

pytestmark = [pytest.mark.distributed, pytest.mark.django_db(transaction=True)]
GUNICORN = str(Path(sys.executable).parent / "gunicorn")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _web(cluster) -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    argv = [GUNICORN, "vigilo_project.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--timeout", "30"]
    web = Proc("web", argv, cluster.env, cluster.workdir / "web.log")
    cluster.procs.append(web)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            _get(base + "/healthz")
            return True
        except OSError:
            return False

    cluster.wait_for(up, timeout_s=30, what="gunicorn to listen")
    return base


def test_healthz_needs_a_worker_and_metrics_read_the_database(cluster):
    base = _web(cluster)

    status, body = _get(base + "/healthz")
    report = json.loads(body)
    assert status == 503, body
    assert report["checks"]["database"]["ok"] and report["checks"]["broker"]["ok"]
    workers = report["checks"]["workers"]
    assert (workers["ok"], workers["error"]) == (False, "no worker answered a ping")

    cluster.worker("w1")
    status, body = _get(base + "/healthz")
    report = json.loads(body)
    assert status == 200, body
    assert report["status"] == "ok"
    assert report["checks"]["workers"]["seen"][0].startswith("w1-")

    run = create_run(n=30, tag="metrics", chunk_size=10)
    status, text = _get(base + "/metrics")
    assert status == 200
    lines = set(text.splitlines())
    assert 'vigilo_runs{state="pending"} 1.0' in lines or 'vigilo_runs{state="running"} 1.0' in lines, text
    assert "vigilo_chunk_lease_recoveries_total 0.0" in lines
    assert any(line.startswith('vigilo_outbox_events{status="dead"} 0.0') for line in lines)
    assert any(line.startswith("vigilo_outbox_relay_lag_seconds ") for line in lines)
    assert any(line.startswith('vigilo_executions_evaluated_total{status="passed"}') for line in lines)
    assert run.chunk_count == 3
