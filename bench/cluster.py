"""The distributed modes' cluster: a PostgreSQL database and a RabbitMQ vhost of the bench's own, Celery
workers and beat, and the API under gunicorn (for the verdict API measurement)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from config import PY, REPO, WORK, base_env
from processes import log, manage

CELERY = str(Path(PY).parent / "celery")
GUNICORN = str(Path(PY).parent / "gunicorn")
PG_URL = os.environ.get("VIGILO_BENCH_PG", "postgres://postgres@127.0.0.1:5432/postgres")
BROKER = os.environ.get("VIGILO_BENCH_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
BENCH_DB = "vigilo_bench"


class Cluster:
    """PostgreSQL database + RabbitMQ vhost of the bench's own, two workers and one beat (as tests/distributed);
    the API under gunicorn on demand (serve_api)."""

    def __init__(self) -> None:
        self.vhost = f"vigilo-bench-{uuid.uuid4().hex[:8]}"
        p = urlsplit(PG_URL)
        self.db_url = urlunsplit((p.scheme, p.netloc, "/" + BENCH_DB, "", ""))
        b = urlsplit(BROKER)
        self.broker_url = urlunsplit((b.scheme, b.netloc, "/" + quote(self.vhost, safe=""), "", ""))
        self.procs: list[tuple[str, subprocess.Popen, object]] = []
        self.logdir = WORK / "distributed"
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.env = base_env()
        self.env.update(
            {
                "DATABASE_URL": self.db_url,
                "CELERY_BROKER_URL": self.broker_url,
                "VIGILO_EMBEDDED": "false",
                "VIGILO_DATA_DIR": str(WORK / "data-distributed"),
                "VIGILO_BEAT_SCHEDULE_FILE": str(self.logdir / "celerybeat-schedule"),
            }
        )

    def psql(self, sql: str) -> None:
        subprocess.run(["psql", PG_URL, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], check=True, capture_output=True)

    def create(self) -> None:
        self.psql(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        self.psql(f"CREATE DATABASE {BENCH_DB}")
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", self.vhost], check=True, capture_output=True)
        user = urlsplit(BROKER).username or "guest"
        subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", self.vhost, user, ".*", ".*", ".*"],
            check=True,
            capture_output=True,
        )
        Path(self.env["VIGILO_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
        log(f"distributed: database {BENCH_DB}, vhost {self.vhost}; vigilo_setup")
        manage(["vigilo_setup"], self.env)

    def start(self, workers: int = 2, concurrency: int = 1) -> list[int]:
        roots = []
        for i in range(1, workers + 1):
            name = f"w{i}"
            argv = [
                CELERY,
                "-A",
                "vigilo_project",
                "worker",
                "-Q",
                "executions,online,exports,outbox,default",
                "-n",
                f"bench-{name}-{uuid.uuid4().hex[:6]}@%h",
                "--concurrency",
                str(concurrency),
                "-l",
                "info",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
            roots.append(self._spawn(name, argv))
        self._spawn(
            "beat",
            [
                CELERY,
                "-A",
                "vigilo_project",
                "beat",
                "-l",
                "info",
                "-s",
                str(self.logdir / "celerybeat-schedule"),
                "--pidfile",
                str(self.logdir / "beat.pid"),
            ],
        )
        deadline = time.monotonic() + 90
        for name, _, _ in self.procs:
            if not name.startswith("w"):
                continue
            while " ready." not in (self.logdir / f"{name}.log").read_text(errors="replace"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker {name} not ready:\n{(self.logdir / f'{name}.log').read_text()[-3000:]}")
                time.sleep(0.25)
        return roots

    def _spawn(self, name: str, argv: list[str]) -> int:
        fh = open(self.logdir / f"{name}.log", "wb")  # noqa: SIM115
        p = subprocess.Popen(argv, cwd=REPO, env=self.env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((name, p, fh))
        return p.pid

    def stop(self) -> None:
        for _, p, _fh in self.procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for _, p, fh in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
            fh.close()
        self.procs = []

    @contextlib.contextmanager
    def serve_api(self, port: int) -> Iterator[None]:
        """The API under gunicorn (2 workers) on 127.0.0.1:port, for the duration of the block."""
        fh = open(self.logdir / "gunicorn.log", "wb")  # noqa: SIM115
        g = subprocess.Popen(
            [GUNICORN, "vigilo_project.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2"],
            cwd=REPO,
            env=self.env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield
        finally:
            os.killpg(g.pid, signal.SIGTERM)
            g.wait(timeout=15)
            fh.close()

    def purge(self) -> None:
        code = (
            "from kombu import Connection\nimport sys\nwith Connection(sys.argv[1]) as c:\n ch=c.channel()\n"
            " for q in ('executions','online','outbox','default'):\n"
            "  try: ch.queue_purge(q)\n  except Exception: pass\n"
        )
        subprocess.run([PY, "-c", code, self.broker_url], cwd=REPO, capture_output=True, timeout=60, check=False)

    def destroy(self) -> None:
        self.stop()
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", self.vhost], capture_output=True, check=False)
        try:
            self.psql(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        except subprocess.CalledProcessError:
            pass
