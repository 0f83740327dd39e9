"""The live-agent tests' helpers: the SDK (client/vigilo_live.py) loaded as the agents load it, the real server
under gunicorn against the test database, the example agent process, and a loopback TCP proxy that loses
answers (the network between an agent and Vigilo, not a stand-in for Vigilo)."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.distributed import Proc, test_database_url
from tests.support.paths import REPO

AGENT = REPO / "examples" / "live-agent" / "agent.py"
AGENTS_YAML = REPO / "examples" / "live-agent" / "agents.yaml"
GUNICORN = str(Path(sys.executable).parent / "gunicorn")


def _sdk() -> Any:
    """client/vigilo_live.py as the module `vigilo_live` (one module object: its exception classes are the SDK's)."""
    if "vigilo_live" in sys.modules:
        return sys.modules["vigilo_live"]
    spec = importlib.util.spec_from_file_location("vigilo_live", REPO / "client" / "vigilo_live.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["vigilo_live"] = module
    spec.loader.exec_module(module)
    return module


vigilo_live = _sdk()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], Any], *, timeout_s: float, what: str, logs: Callable[[], str]) -> Any:
    """Poll `predicate` until it is truthy; fail after `timeout_s` with what was awaited and the processes' logs."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}\n{logs()}", pytrace=False)
        time.sleep(0.1)


@dataclass
class Web:
    """gunicorn serving vigilo_project.wsgi on loopback."""

    url: str
    proc: Proc

    def log(self, tail: int = 120) -> str:
        return "----- gunicorn -----\n" + "\n".join(self.proc.text().splitlines()[-tail:])

    def call(self, method: str, path: str, token: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")


def web_start(workdir: Path) -> Web:
    """gunicorn in the embedded mode (its worker process runs the outbox relay and the evaluation pool) on the
    test database; threads, so a long-poll does not hold every request. The caller stops `proc`."""
    from django.conf import settings

    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vigilo_project.settings",
        "DATABASE_URL": test_database_url(),
        "VIGILO_EMBEDDED": "true",
        "VIGILO_DATA_DIR": str(settings.VIGILO_DATA_DIR),
        "VIGILO_CACHE_DIR": str(settings.VIGILO_CACHE_DIR),
        "VIGILO_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CELERY_BROKER_URL", None)
    env.pop("VIGILO_EMBEDDED_RUNTIME_IN_SERVER", None)
    argv = [GUNICORN, "vigilo_project.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "8"]
    argv += ["--timeout", "120"]
    web = Web(url=f"http://127.0.0.1:{port}", proc=Proc("web", argv, env, workdir / "web.log"))

    def up() -> bool:
        if not web.proc.alive():
            pytest.fail(f"gunicorn exited\n{web.log()}", pytrace=False)
        try:
            urllib.request.urlopen(f"{web.url}/healthz", timeout=5).close()
        except urllib.error.HTTPError:
            return True  # answering (503 without a broker's workers is still an answer)
        except OSError:
            return False
        return True

    try:
        wait_for(up, timeout_s=60, what="gunicorn to answer", logs=web.log)
    except BaseException:
        web.proc.stop()
        raise
    return web


@dataclass
class AgentRun:
    """A finished run of examples/live-agent/agent.py: its exit code and its output lines."""

    code: int
    stdout: str
    stderr: str

    def lines(self, kind: str) -> list[list[str]]:
        """The output lines starting with `kind`, split in words (a reason keeps its spaces: the last word)."""
        limits = {"STOPPED": 3, "HALTED": 2}
        out = []
        for line in self.stdout.splitlines():
            words = line.split(" ", limits.get(kind, -1))
            if words[0] == kind:
                out.append(words[1:])
        return out

    def describe(self) -> str:
        return f"agent.py exited {self.code}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"


def agent_env(url: str, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIGILO_", "DJANGO_", "DATABASE_"))}
    return {**env, "VIGILO_URL": url, "VIGILO_AGENT_TOKEN": token, "PYTHONUNBUFFERED": "1"}


def agent_run(url: str, token: str, *args: str, timeout_s: float = 90) -> AgentRun:
    """Run the example agent to its end (bounded) and return what it printed."""
    done = subprocess.run(
        [sys.executable, str(AGENT), *args],
        cwd=REPO / "examples" / "live-agent",
        env=agent_env(url, token),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    return AgentRun(code=done.returncode, stdout=done.stdout, stderr=done.stderr)


class LossyProxy:
    """A loopback TCP proxy to `upstream` that can lose answers: `lose(n, prefix)` makes the next n requests
    starting with `prefix` (e.g. b"POST /api/v1/online/events") reach the server, whose whole answer is read,
    then closes the connection without passing it on. The request took effect, the client never heard of it:
    the case retries with the same message id are for. `requests` has the request line of each request."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.requests: list[str] = []
        self.lost = 0
        self._lose, self._prefix = 0, b""
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def lose(self, n: int, prefix: bytes) -> None:
        with self._lock:
            self._lose, self._prefix = n, prefix

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            try:
                upstream = socket.create_connection(self.upstream, timeout=60)
            except OSError:  # the server is gone (the test is over): the client sees its connection closed
                return
            with upstream:
                try:
                    self._forward(client, upstream)
                except OSError:  # either side went away: so does this connection
                    return

    def _forward(self, client: socket.socket, upstream: socket.socket) -> None:
        client.settimeout(60)
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = client.recv(65536)
            if not chunk:
                return
            request += chunk
        head, _, body = request.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = client.recv(65536)
            if not chunk:
                return
            body += chunk
        with self._lock:
            self.requests.append(head.split(b"\r\n", 1)[0].decode("latin-1"))
            losing = self._lose > 0 and head.startswith(self._prefix)
            if losing:
                self._lose -= 1
        upstream.sendall(head + b"\r\n\r\n" + body)
        answer = b""
        while True:  # urllib asks `Connection: close`: the answer ends when gunicorn closes
            chunk = upstream.recv(65536)
            if not chunk:
                break
            answer += chunk
        if losing:
            with self._lock:
                self.lost += 1
            return
        client.sendall(answer)

    def close(self) -> None:
        try:
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the other thread; close() alone does not
        except OSError:
            pass
        self._server.close()
