"""The embedded mode's runtime: a relay thread and a worker pool inside this process.

Only the transport differs from the distributed mode: the relay, the outbox rows, chunk claiming and the gate
are the same code. What the distributed mode's beat schedules besides the relay (reaping expired leases) the
relay thread runs every few seconds: the caller passes it in (`runs.reaper.periodic_reap`), since the outbox
knows nothing of runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from django.db import close_old_connections, connection

from outbox.hooks import kick_hook_register, kick_hook_unregister
from outbox.relay import relay_once
from outbox.transport.embedded import EmbeddedTransport

log = logging.getLogger(__name__)
REAP_EVERY_S = 5.0


class EmbeddedRuntime:
    def __init__(self, *, reap: Callable[[], object], workers: int = 2, poll_s: float = 0.25) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vigilo-worker")
        self.transport = EmbeddedTransport(self.pool)
        self.reap = reap
        self.poll_s = poll_s
        self.kick = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="vigilo-relay", daemon=True)

    def __enter__(self) -> EmbeddedRuntime:
        kick_hook_register(self.kick.set)  # a commit that wrote outbox rows wakes the relay thread
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        self.kick.set()
        self.thread.join(timeout=10)
        self.pool.shutdown(wait=True, cancel_futures=False)
        kick_hook_unregister(self.kick.set)

    def _loop(self) -> None:
        last_reap = time.monotonic()
        try:
            while not self.stopping.is_set():
                self.kick.wait(self.poll_s)
                self.kick.clear()
                try:
                    close_old_connections()
                    while relay_once(transport=self.transport):
                        pass
                    if time.monotonic() - last_reap > REAP_EVERY_S:
                        last_reap = time.monotonic()
                        self.reap()
                except Exception:  # boundary: a failed pass (a database hiccup) is logged; the next one retries
                    log.exception("embedded relay pass failed; retrying in %.2f s", self.poll_s)
                    connection.close()
        finally:
            connection.close()
