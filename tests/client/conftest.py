"""A live server process for the CI client: `manage.py runserver` on the test database, with the embedded runtime.

The child process reads the test database through DATABASE_URL, so SQLite needs a file test database (the
in-memory default cannot be shared between processes); PostgreSQL's test database is shared as it is.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connections

from tests.support.paths import REPO, bench_generator

_db = connections.databases["default"]
if _db["ENGINE"].endswith("sqlite3") and not (_db.get("TEST") or {}).get("NAME"):
    _db.setdefault("TEST", {})["NAME"] = str(REPO / "var" / "test" / "test_client_live.sqlite3")
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = _db["TEST"]["NAME"]


def database_url() -> str:
    db = connections["default"].settings_dict  # after test setup, NAME is the test database
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    user = quote(db.get("USER") or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}{port}/{db['NAME']}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server_url(transactional_db, published, tmp_path):
    """Start `runserver` as a user would (embedded mode, no other setting: it processes its own runs) and yield its
    URL; stop it before the flush."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "VIGILO_EMBEDDED": "true",
        "DJANGO_SETTINGS_MODULE": "vigilo_project.settings",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CELERY_BROKER_URL", None)
    env.pop("VIGILO_EMBEDDED_RUNTIME_IN_SERVER", None)  # the default: an embedded server processes its runs
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/v1/runs/", timeout=2)
        except urllib.error.HTTPError:
            break  # 401: up and answering
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.close()
                pytest.fail(f"server did not start:\n{(tmp_path / 'server.log').read_text()}")
            time.sleep(0.2)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        connections.close_all()


@pytest.fixture
def token(transactional_db):
    from api.services import token_create

    _, secret = token_create(name="ci", scopes=["read", "write"])
    return secret


@pytest.fixture(scope="session")
def bench_cases(tmp_path_factory):
    """gen_dataset.py cases (10% fail one of contains / regex / json-schema), as Vigilo JSONL: name -> path."""
    src = tmp_path_factory.mktemp("gen")
    generator = bench_generator()
    subprocess.run(
        [sys.executable, str(generator), "--n", "20", "3000", "--jsonl-dir", str(src), "--pf-dir", str(src / "pf")],
        check=True,
        capture_output=True,
    )
    out = {}
    for n in (20, 3000):
        lines = []
        for line in (src / f"cases_{n}.jsonl").read_text().splitlines():
            case = json.loads(line)
            expected = {k: case["expected"][k] for k in ("contains", "regex", "json_schema")}
            lines.append(
                json.dumps(
                    {"id": case["id"], "input": case["input"], "expected": expected, "output": {"text": case["output"]}}
                )
            )
        path = src / f"vigilo_{n}.jsonl"
        path.write_text("\n".join(lines) + "\n")
        out[n] = path
    return out


PROFILE = """\
name: {name}
min_execution_score: 1.0
dimensions:
  correctness: {{weight: 1.0}}
bindings:
  - id: fact
    evaluator: vigilo/contains@1.0.0
    dimension: correctness
    config: {{expected_path: contains}}
  - id: citation
    evaluator: vigilo/regex@1.0.0
    dimension: correctness
    config: {{expected_path: regex}}
  - id: shape
    evaluator: vigilo/json-schema@1.0.0
    dimension: correctness
    config: {{expected_path: json_schema}}
"""

# 10% of the generated cases fail one check: a scorecard that tolerates that passes, the default gate fails.
PASSING = (
    PROFILE.format(name="ci-tolerant")
    + """\
run_gate:
  scorecard:
    - {dimension: correctness, min_pass_rate: 0.8, max_error_rate: 0.0}
"""
)
FAILING = PROFILE.format(name="ci-strict")


@pytest.fixture
def profiles(tmp_path):
    passing, failing = tmp_path / "passing.yaml", tmp_path / "failing.yaml"
    passing.write_text(PASSING)
    failing.write_text(FAILING)
    return {"passing": passing, "failing": failing}
