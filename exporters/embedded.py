"""The embedded mode's export relay: a thread of its own, so a slow receiver never holds up the run's relay.

Started next to `outbox.embedded.EmbeddedRuntime` by whoever starts that (the run command, the server). Without
a configured destination it does nothing. On exit it drains for a bounded time: a batch still pending then stays
stored and goes out with the next process that relays.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import close_old_connections, connection

from exporters.hooks import EXPORT_KICKS
from exporters.relay import deliver_due

log = logging.getLogger(__name__)


class ExportRelayThread:
    def __init__(self, *, poll_s: float = 1.0, drain_s: float = 10.0) -> None:
        self.poll_s = poll_s
        self.drain_s = drain_s
        self.kick = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="vigilo-exports", daemon=True)
        self.active = bool(settings.VIGILO_EXPORT_DESTINATIONS)

    def __enter__(self) -> ExportRelayThread:
        if self.active:
            EXPORT_KICKS.register(self.kick.set)
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if not self.active or self.stopping.is_set():
            return
        self.stopping.set()
        self.kick.set()
        self.thread.join(timeout=self.drain_s + 15)
        EXPORT_KICKS.unregister(self.kick.set)

    def _loop(self) -> None:
        try:
            while not self.stopping.is_set():
                self.kick.wait(self.poll_s)
                self.kick.clear()
                self._pass(budget_s=settings.VIGILO_EXPORT_PASS_SECONDS)
            self._pass(budget_s=self.drain_s)
        finally:
            connection.close()

    def _pass(self, *, budget_s: float) -> None:
        try:
            close_old_connections()
            deliver_due(budget_s=budget_s)
        except Exception:  # boundary: a failed pass is logged; the next one retries
            log.exception("embedded export pass failed")
            connection.close()
