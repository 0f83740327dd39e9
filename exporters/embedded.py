"""The embedded mode's export relay: a child process (`manage.py vigilo_export_relay --follow-stdin`), so the
exports use the second core instead of competing for the run's interpreter, and a slow receiver never holds up
the run.

Started next to `outbox.embedded.EmbeddedRuntime` by whoever starts that (the run command, the server), only when
a destination is configured. A commit that wrote batches kicks it (one byte on its stdin); it also polls. When the
parent closes its stdin (or dies), the child drains for a bounded time and exits: a batch still pending then stays
stored and goes out with the next process that relays. `RelayLoop` is the loop both sides share the rules of.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection

from exporters.hooks import EXPORT_KICKS
from exporters.relay import deliver_due

log = logging.getLogger(__name__)

DRAIN_S = 10.0


class RelayLoop:
    """Relay passes until stopped, then one last bounded drain.

    A pass starts on a kick or after `poll_s`, and at most every `min_interval_s`: a run commits a chunk (and its
    batches) several times a second, and one pass over all of them costs one claim and one settle instead of one
    each, in the database the run's workers write to.
    """

    def __init__(self, *, poll_s: float = 1.0, min_interval_s: float = 0.5, drain_s: float = DRAIN_S) -> None:
        self.poll_s, self.min_interval_s, self.drain_s = poll_s, min_interval_s, drain_s
        self.kick = threading.Event()
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()
        self.kick.set()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                self.kick.wait(self.poll_s)
                self.kick.clear()
                self._pass(budget_s=settings.VIGILO_EXPORT_PASS_SECONDS)
                self.stopping.wait(self.min_interval_s)
            self._pass(budget_s=self.drain_s)
        finally:
            connection.close()

    def _pass(self, *, budget_s: float) -> None:
        try:
            close_old_connections()
            deliver_due(budget_s=budget_s)
        except Exception:  # boundary: a failed pass is logged; the next one retries
            log.exception("export relay pass failed")
            connection.close()


class ExportRelayProcess:
    """The child relay of an embedded process, as a context manager (`stop` is idempotent)."""

    def __init__(self, *, drain_s: float = DRAIN_S) -> None:
        self.drain_s = drain_s
        self.active = bool(settings.VIGILO_EXPORT_DESTINATIONS)
        self.process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> ExportRelayProcess:
        if self.active:
            manage = Path(settings.BASE_DIR) / "manage.py"
            self.process = subprocess.Popen(  # the same interpreter, settings and environment as this process
                [sys.executable, str(manage), "vigilo_export_relay", "--follow-stdin", f"--drain-s={self.drain_s:g}"],
                stdin=subprocess.PIPE,
            )
            assert self.process.stdin is not None
            os.set_blocking(self.process.stdin.fileno(), False)
            EXPORT_KICKS.register(self.kick)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kick(self) -> None:
        """Wake the child (after a commit that wrote batches); never blocks, never raises: it also polls."""
        with self._lock:
            process = self.process
            if process is None or process.stdin is None or process.stdin.closed:
                return
            try:
                os.write(process.stdin.fileno(), b"k")
            except (
                BlockingIOError,
                BrokenPipeError,
                OSError,
            ):  # a full pipe has kicks enough; a dead child polls no more
                pass

    def stop(self) -> None:
        with self._lock:
            process, self.process = self.process, None
        if process is None:
            return
        EXPORT_KICKS.unregister(self.kick)
        assert process.stdin is not None
        try:
            process.stdin.close()  # end of input: the child drains and exits
        except OSError:
            pass
        try:
            code = process.wait(timeout=self.drain_s + 15)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
            log.warning("the export relay did not finish its drain in time: what is left goes out with the next one")
        if code != 0:
            log.warning("the export relay exited %s: pending exports go out with the next relay", code)
