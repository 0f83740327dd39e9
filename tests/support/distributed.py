"""The distributed suite's helpers (its fixtures are in tests/distributed/conftest.py): RabbitMQ control, worker
and beat processes (`Proc`, `Cluster`) against the test database, the bench cases and profile, and the waits and
checks on runs the tests share. Every wait is bounded and fails with the processes' logs attached.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.support.paths import REPO, bench_generator

CELERY = str(Path(sys.executable).parent / "celery")
BROKER = os.environ.get("CELERY_BROKER_URL") or "amqp://guest:guest@127.0.0.1:5672//"
QUEUES = ("executions", "online", "exports", "outbox", "default")


def rabbitmqctl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=120, check=check)


def rabbitmq_wait_up(timeout_s: float = 60) -> None:
    from kombu import Connection

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with Connection(BROKER, connect_timeout=2) as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_database_url() -> str:
    """The pytest-django test database, as a URL the worker processes can use."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    assert db["ENGINE"].endswith("postgresql"), "the distributed suite needs PostgreSQL (DATABASE_URL)"
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


test_database_url.__test__ = False  # type: ignore[attr-defined]


class Proc:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name, self.argv, self.log_path = name, argv, log_path
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        """Kill this process and its pool children (its own process group), and reap it."""
        self.signal_group(signal.SIGKILL)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.log.close()


class Cluster:
    """Starts worker and beat processes against the test database and the session vhost."""

    def __init__(self, *, broker_url: str, workdir: Path) -> None:
        from django.conf import settings

        self.workdir = workdir
        self.procs: list[Proc] = []
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "vigilo_project.settings",
            "DATABASE_URL": test_database_url(),
            "CELERY_BROKER_URL": broker_url,
            "VIGILO_EMBEDDED": "false",
            "VIGILO_DATA_DIR": str(settings.VIGILO_DATA_DIR),
            "VIGILO_CACHE_DIR": str(settings.VIGILO_CACHE_DIR),
            "VIGILO_BEAT_SCHEDULE_FILE": str(workdir / "celerybeat-schedule"),
            "VIGILO_LEASE_SECONDS": "5",
            "VIGILO_LOG_LEVEL": "INFO",
            "VIGILO_TASK_EVENTS": "false",
            "PYTHONUNBUFFERED": "1",
        }

    def worker(self, name: str, *, concurrency: int = 1, env: dict[str, str] | None = None, wait: bool = True) -> Proc:
        unique = f"{name}-{uuid.uuid4().hex[:6]}@%h"
        argv = [CELERY, "-A", "vigilo_project", "worker", "-Q", ",".join(QUEUES), "-n", unique]
        argv += ["--concurrency", str(concurrency), "-l", "info", "--without-gossip", "--without-mingle"]
        proc = Proc(name, argv, {**self.env, **(env or {})}, self.workdir / f"{name}.log")
        self.procs.append(proc)
        if wait:
            self.wait_for(lambda: " ready." in proc.text(), timeout_s=60, what=f"worker {name} ready")
        return proc

    def beat(self, *, env: dict[str, str] | None = None) -> Proc:
        argv = [CELERY, "-A", "vigilo_project", "beat", "-l", "info"]
        argv += ["-s", str(self.workdir / "celerybeat-schedule"), "--pidfile", str(self.workdir / "beat.pid")]
        proc = Proc("beat", argv, {**self.env, **(env or {})}, self.workdir / "beat.log")
        self.procs.append(proc)
        return proc

    def logs(self, tail: int = 80) -> str:
        out = []
        for p in self.procs:
            lines = p.text().splitlines()[-tail:]
            out.append(f"----- {p.name} (pid {p.pid}, {'alive' if p.alive() else 'exited'}) -----")
            out.extend(lines)
        return "\n".join(out)

    def wait_for(self, predicate: Callable[[], Any], *, timeout_s: float, what: str, every_s: float = 0.25) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout_s}s waiting for {what}\n{self.logs()}", pytrace=False)
            time.sleep(every_s)

    def stop(self) -> None:
        for p in self.procs:
            p.stop()


# --- data ------------------------------------------------------------------------------------------------


def bench_cases(n: int) -> list[dict[str, Any]]:
    """The benchmark generator's cases, in Vigilo's case format."""
    spec = importlib.util.spec_from_file_location("gen_dataset", bench_generator())
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [
        {"id": c["id"], "input": c["input"], "expected": c["expected"], "output": {"text": c["output"]}}
        for c in module.generate(n)
    ]


PROFILE = """
name: bench-{tag}
min_execution_score: 1.0
dimensions:
  format: {{weight: 1.0}}
  grounding: {{weight: 1.0}}
bindings:
  - id: schema
    evaluator: vigilo/json-schema@^1.0
    dimension: format
    config: {{expected_path: json_schema}}
  - id: citation
    evaluator: vigilo/regex@^1.0
    dimension: format
    config: {{expected_path: regex}}
  - id: fact
    evaluator: vigilo/contains@^1.0
    dimension: grounding
    config: {{expected_path: contains}}
"""


def import_inputs(*, n: int, tag: str) -> tuple[Any, Any]:
    from runs.services import dataset_import, profile_import

    text = "\n".join(json.dumps(c) for c in bench_cases(n)) + "\n"
    dataset, _ = dataset_import(name=f"bench-{tag}", text=text)
    profile, _ = profile_import(text=PROFILE.format(tag=tag))
    return dataset, profile


def create_run(*, n: int, tag: str, chunk_size: int = 100) -> Any:
    from runs.services import run_create

    dataset, profile = import_inputs(n=n, tag=tag)
    run, _ = run_create(dataset_version=dataset, profile_version=profile, name=tag, options={"chunk_size": chunk_size})
    return run


def run_state(run_id: Any) -> str:
    from runs.models import Run

    return Run.objects.values_list("state", flat=True).get(pk=run_id)


def wait_terminal(cluster: Cluster, run_id: Any, *, timeout_s: float) -> Any:
    from runs.models import Run

    terminal = {Run.State.COMPLETED, Run.State.FAILED, Run.State.CANCELLED}
    cluster.wait_for(lambda: run_state(run_id) in terminal, timeout_s=timeout_s, what=f"run {run_id} to finish")
    return Run.objects.get(pk=run_id)


def assert_exactly_once(run: Any) -> None:
    """One result per (execution, binding) for each execution's current attempt, one aggregate per execution."""
    from django.db.models import Count

    from runs.models import EvaluatorResult, Execution, ExecutionAggregate

    bindings = len(run.pins)
    executions = Execution.objects.filter(run=run).count()
    assert executions == run.expected_executions
    current = EvaluatorResult.objects.filter(run=run, attempt=models_f("execution__attempt"))
    assert current.count() == executions * bindings
    per = current.values("execution_id", "binding_id").annotate(n=Count("id")).filter(n__gt=1)
    assert list(per) == []
    assert ExecutionAggregate.objects.filter(run=run).count() == executions
    assert ExecutionAggregate.objects.filter(run=run, attempt=models_f("execution__attempt")).count() == executions


def models_f(name: str) -> Any:
    from django.db.models import F

    return F(name)


def comparable_verdict(verdict: dict[str, Any]) -> dict[str, Any]:
    """The verdict without ids and timestamps (which differ between two runs of the same inputs)."""
    # `examples` lists execution ids, which differ between two runs of the same inputs.
    volatile = {"run_id", "execution_id", "id", "examples", "created_at", "finished_at", "started_at", "computed_at"}

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in volatile}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    out = strip(verdict)
    # Ties among the worst executions are broken by execution id, which differs between two runs: compare
    # the worst scores, not which of the tied cases was listed.
    if "worst" in out:
        out["worst"] = sorted((w["status"], w["aggregate_score"]) for w in out["worst"])
    return out
