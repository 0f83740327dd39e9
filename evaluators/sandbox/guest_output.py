"""A guest's stdout and stderr, captured into the current call's buffer, and released deterministically.

Wasmtime's WASI writes a component's output through an asynchronous stream whose worker task runs on the
tokio runtime inside libwasmtime: both the write callback and the finalizer that drops the callback's data run
on a `tokio-rt-worker` thread, not on the thread that called the guest. The finalizer runs when that task is
dropped, which is *after* the Store is closed, a few microseconds later. A Python callback arriving on a
foreign thread once the interpreter has begun to finalize makes CPython end that thread with
`pthread_exit()` (PyGILState_Ensure at shutdown); the forced unwind then hits Rust's non-unwinding thread
entry and libwasmtime aborts the process ("panic in a function that cannot unwind", exit 134). Every Store
that a guest wrote output into (a trapping Python guest prints its traceback) left such a callback pending,
and a command that exited right after its last invocation raced it.

So the callbacks are registered here, through Wasmtime's C API, with a finalizer this module observes:
`close_store` closes a Store and waits until Wasmtime has released both of its streams. When it returns no
callback of that Store can ever run again, and nothing of it is left for interpreter shutdown to race.
Output past `STDERR_CAP` bytes of a call is dropped, never an error for the guest.
"""

from __future__ import annotations

import ctypes
import itertools
import logging
import threading
from ctypes import POINTER, c_size_t, c_ssize_t, c_ubyte, c_void_p
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi

log = logging.getLogger(__name__)

STDERR_CAP = 8192  # bytes of stdout and stderr kept per call: enough for the last lines of a traceback
RELEASE_TIMEOUT_S = 5.0  # Wasmtime releases a closed Store's streams within microseconds; this bounds a wedge

_WRITE = ctypes.CFUNCTYPE(c_ssize_t, c_void_p, POINTER(c_ubyte), c_size_t)
_FINALIZE = ctypes.CFUNCTYPE(None, c_void_p)


class GuestOutput:
    """One Store's stdout and stderr: the bytes go into `into` (the current call's buffer) up to the cap."""

    def __init__(self) -> None:
        self.into: bytearray | None = None
        self._open = 0  # streams handed to Wasmtime and not released yet
        self._released = threading.Event()
        self._released.set()

    def attach(self, wasi: wasmtime.WasiConfig) -> None:
        """Route `wasi`'s stdout and stderr here (before the config is given to a Store)."""
        for setter in (ffi.wasi_config_set_stdout_custom, ffi.wasi_config_set_stderr_custom):
            key = next(_keys)
            with _lock:
                _streams[key] = self
                self._open += 1
                self._released.clear()
            setter(wasi.ptr(), _write, key, _finalize)

    def write(self, data: Any, size: int) -> None:
        buffer = self.into
        if buffer is None:
            return
        room = STDERR_CAP - len(buffer)
        if room > 0:
            buffer.extend(ctypes.string_at(data, min(size, room)))

    def wait_released(self, timeout_s: float = RELEASE_TIMEOUT_S) -> bool:
        """True once Wasmtime has dropped both streams (their callbacks can no longer be called)."""
        return self._released.wait(timeout_s)

    def _release(self) -> None:
        with _lock:
            self._open -= 1
            if self._open == 0:
                self._released.set()


def close_store(store: wasmtime.Store, output: GuestOutput) -> None:
    """Close `store` (its instance, WASI context and memory) and wait until its output streams are released."""
    store.close()
    if not output.wait_released():
        log.warning("wasmtime did not release a closed store's output streams within %s s", RELEASE_TIMEOUT_S)


def streams_open() -> int:
    """Output streams, of every Store in the process, that Wasmtime has not released: what can still call back."""
    return len(_streams)


_lock = threading.Lock()
_keys = itertools.count(1)  # never 0: the key travels as a C `void *`, and a null one reads back as None
_streams: dict[int, GuestOutput] = {}


def _write_impl(key: int | None, data: Any, size: int) -> int:
    # A C callback: an exception cannot propagate through Wasmtime, so it is logged and the bytes dropped.
    try:
        output = _streams.get(key or 0)
        if output is not None:
            output.write(data, size)
    except Exception:
        log.exception("capturing guest output failed")
    return size


def _finalize_impl(key: int | None) -> None:
    output = _streams.pop(key or 0, None)
    if output is not None:
        output._release()


# Module globals for as long as the process lives: Wasmtime keeps calling these pointers.
_write = _WRITE(_write_impl)
_finalize = _FINALIZE(_finalize_impl)
