"""What wakes the relay after a commit that wrote outbox rows: a registry of kick hooks.

`outbox_write` runs the hooks once its transaction commits. Whoever relays fills the registry: the outbox app's
`ready()` registers the Celery relay kick (distributed mode), the embedded runtime its relay thread's wake-up.
A kick is best effort (a lost one costs latency, not delivery: the relay also polls), so a hook that raises is
logged and neither stops the other hooks nor reaches the code that committed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

KickHook = Callable[[], object]

_lock = threading.Lock()
_hooks: list[KickHook] = []


def kick_hook_register(hook: KickHook) -> None:
    """Run `hook` after every commit that wrote outbox rows; registering it again changes nothing."""
    with _lock:
        if hook not in _hooks:
            _hooks.append(hook)


def kick_hook_unregister(hook: KickHook) -> None:
    """Stop running `hook` (compared by equality, so a bound method of the same object matches); absent: no-op."""
    with _lock:
        if hook in _hooks:
            _hooks.remove(hook)


def kick_hooks_run() -> None:
    """Run every registered hook in registration order, each isolated from the others' failures."""
    with _lock:
        hooks = list(_hooks)  # called outside the lock: a hook may register or unregister
    for hook in hooks:
        try:
            hook()
        except Exception:  # boundary: a failed kick is logged, the others and the committing caller go on
            log.exception("outbox kick hook %r failed", hook)
