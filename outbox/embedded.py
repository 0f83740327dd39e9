"""The embedded mode's runtime: a relay thread and a worker pool inside this process.

Only the transport differs from the distributed mode: the relay, the outbox rows, chunk claiming and the gate
are the same code.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.db import close_old_connections, connection

from outbox.relay import register_kick, relay_once, unregister_kick
from outbox.transport import EmbeddedTransport

REAP_EVERY_S = 5.0


class EmbeddedRuntime:
    def __init__(self, *, workers: int = 2, poll_s: float = 0.25) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vigilo-worker")
        self.transport = EmbeddedTransport(self.pool)
        self.poll_s = poll_s
        self.kick = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="vigilo-relay", daemon=True)

    def __enter__(self) -> EmbeddedRuntime:
        register_kick(self.kick)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        self.kick.set()
        self.thread.join(timeout=10)
        self.pool.shutdown(wait=True, cancel_futures=False)
        unregister_kick(self.kick)

    def _loop(self) -> None:
        from runs.services import periodic_reap

        last_reap = time.monotonic()
        try:
            while not self.stopping.is_set():
                self.kick.wait(self.poll_s)
                self.kick.clear()
                close_old_connections()
                while relay_once(transport=self.transport):
                    pass
                if time.monotonic() - last_reap > REAP_EVERY_S:
                    periodic_reap()
                    last_reap = time.monotonic()
        finally:
            connection.close()
