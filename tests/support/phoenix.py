"""A real Arize Phoenix on loopback: `phoenix serve` from its own virtualenv (`make phoenix`, part of `make test`),
on free ports, with a fresh SQLite working directory, and readers of its REST API for the tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.paths import REPO

PHOENIX = REPO / ".venv-phoenix" / "bin" / "phoenix"
READY_S = 120


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PhoenixServer:
    def __init__(self) -> None:
        if not PHOENIX.exists():
            raise RuntimeError(f"{PHOENIX} is missing: `make phoenix` installs Arize Phoenix (make test does)")
        self.port = _free_port()
        self.workdir = tempfile.TemporaryDirectory(prefix="vigilo-phoenix-")
        self.log = Path(self.workdir.name) / "phoenix.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PhoenixServer:
        env = {
            **os.environ,
            "PHOENIX_WORKING_DIR": self.workdir.name,
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(self.port),
            "PHOENIX_GRPC_PORT": str(_free_port()),
            "PHOENIX_TELEMETRY_ENABLED": "false",
        }
        env.pop("DATABASE_URL", None)
        with self.log.open("wb") as out:
            self.process = subprocess.Popen([str(PHOENIX), "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"phoenix serve exited {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.origin}/healthz", timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"phoenix serve was not ready in {READY_S} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.workdir.cleanup()

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.origin}{path}", timeout=10) as answer:
            return json.loads(answer.read())

    def spans(self, project: str) -> list[dict[str, Any]]:
        return list(self.get(f"/v1/projects/{project}/spans?limit=1000")["data"])

    def annotations(self, project: str, span_ids: list[str]) -> list[dict[str, Any]]:
        query = "&".join(f"span_ids={span_id}" for span_id in span_ids)
        return list(self.get(f"/v1/projects/{project}/span_annotations?{query}&limit=1000")["data"])
