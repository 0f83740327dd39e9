"""What wakes a relay after a commit: registries of kick hooks.

`outbox_write` runs the outbox's hooks (`kick_hooks_run`) once its transaction commits. Whoever relays fills the
registry: the outbox app's `ready()` registers the Celery relay kick (distributed mode), the embedded runtime its
relay thread's wake-up. Other durable queues (the export batches) keep a `KickHooks` of their own.
A kick is best effort (a lost one costs latency, not delivery: the relay also polls), so a hook that raises is
logged and neither stops the other hooks nor reaches the code that committed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

KickHook = Callable[[], object]


class KickHooks:
    """One registry: `name` says whose kicks these are in log lines."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._hooks: list[KickHook] = []

    def register(self, hook: KickHook) -> None:
        """Run `hook` after every commit that wrote rows; registering it again changes nothing."""
        with self._lock:
            if hook not in self._hooks:
                self._hooks.append(hook)

    def unregister(self, hook: KickHook) -> None:
        """Stop running `hook` (compared by equality, so a bound method of the same object matches); absent: no-op."""
        with self._lock:
            if hook in self._hooks:
                self._hooks.remove(hook)

    def run(self) -> None:
        """Run every registered hook in registration order, each isolated from the others' failures."""
        with self._lock:
            hooks = list(self._hooks)  # called outside the lock: a hook may register or unregister
        for hook in hooks:
            try:
                hook()
            except Exception:  # boundary: a failed kick is logged, the others and the committing caller go on
                log.exception("%s kick hook %r failed", self.name, hook)


OUTBOX_KICKS = KickHooks("outbox")
kick_hook_register = OUTBOX_KICKS.register
kick_hook_unregister = OUTBOX_KICKS.unregister
kick_hooks_run = OUTBOX_KICKS.run
