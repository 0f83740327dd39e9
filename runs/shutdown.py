"""Worker lifecycle in the distributed mode: a graceful SIGTERM finishes or releases the chunk in hand.

Celery's warm shutdown (SIGTERM to the main process) stops consuming and waits for running tasks. Each pool
process also learns of the shutdown (the main process forwards SIGTERM to it; an orchestrator that signals the
whole process group reaches it directly): from then on the chunk it is processing gets VIGILO_SHUTDOWN_GRACE_S
to complete, after which `runs.engine` releases it (`chunk_release`: back to pending with a fresh
`chunk.ready`) so another worker takes it over at once instead of after the lease expires. A second SIGTERM to a
pool process kills it (the lease reaper then recovers its chunk).

Plain state and signal handlers, no database: `vigilo_project.celery` installs them.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

import billiard.process
from celery import signals
from django.conf import settings

log = logging.getLogger(__name__)

_lock = threading.Lock()
_release_at: float | None = None


def stop_request(*, grace_s: float) -> None:
    """Ask the chunk in progress (in this process) to complete within `grace_s`, or be released."""
    global _release_at
    with _lock:
        at = time.monotonic() + grace_s
        _release_at = at if _release_at is None else min(_release_at, at)


def stop_requested() -> bool:
    return _release_at is not None


def release_due() -> bool:
    """True once the grace period after a stop request has passed: give the chunk back now."""
    at = _release_at
    return at is not None and time.monotonic() >= at


def stop_reset() -> None:
    global _release_at
    with _lock:
        _release_at = None


def _grace_s() -> float:
    return float(settings.VIGILO_SHUTDOWN_GRACE_S)


def _child_sigterm(signum: int, frame: Any) -> None:
    first = not stop_requested()
    stop_request(grace_s=_grace_s())
    if first:
        log.warning("pool process %s: SIGTERM, finishing or releasing the chunk in hand", os.getpid())
        return
    # The second SIGTERM (a cold shutdown, an impatient operator) ends the process the default way.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


_pool_child = False
_worker_main_pid: int | None = None


def _on_worker_init(**_: Any) -> None:
    global _worker_main_pid
    _worker_main_pid = os.getpid()


def _on_process_init(**_: Any) -> None:
    global _pool_child
    # The solo pool sends worker_process_init in the worker's main process too: that process keeps Celery's own
    # SIGTERM handler (its warm shutdown), or a solo worker would never shut down on the first SIGTERM.
    _pool_child = os.getpid() != _worker_main_pid
    stop_reset()


def _on_task_prerun(**_: Any) -> None:
    # Installed here, not at process init: billiard replaces SIGTERM handlers right after its initializer ran.
    # An idle pool process keeps billiard's handler (it has nothing to release).
    if _pool_child and signal.getsignal(signal.SIGTERM) is not _child_sigterm:
        signal.signal(signal.SIGTERM, _child_sigterm)


def _on_shutting_down(sig: str = "", how: str = "", exitcode: int = 0, **_: Any) -> None:
    if how != "Warm":
        return
    for child in billiard.process.active_children():
        if child.pid is None:  # not started
            continue
        try:
            os.kill(child.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    log.warning("warm shutdown: pool processes asked to finish or release their chunks")


def install() -> None:
    """Connect the lifecycle to Celery's worker signals (RunsConfig.ready)."""
    signals.worker_init.connect(_on_worker_init, weak=False)
    signals.worker_process_init.connect(_on_process_init, weak=False)
    signals.task_prerun.connect(_on_task_prerun, weak=False)
    signals.worker_shutting_down.connect(_on_shutting_down, weak=False)
