"""Load evaluator components and run them under limits.

One `SandboxHost` per process owns a Wasmtime engine (fuel + epoch interruption), an epoch ticker thread,
the compiled components (`loading`) and the calls (`invoke`). `evaluate` gives every invocation a fresh Store:
no state crosses from one case to the next. `reusable` keeps one instance for several calls, for evaluators
published as pure whose profile allows it (`ReusedInstance`). Whatever goes wrong inside an invocation ends
as an `Invocation` with a stable error code; the host stays usable. Values cross the boundary through `abi`
(Wasmtime's C API, without wasmtime-py's per-call type reflection).
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime import component as wc

from evaluators.sandbox import abi
from evaluators.sandbox.contract import ContractInfo
from evaluators.sandbox.host_functions import ModelBroker
from evaluators.sandbox.invocation import Invocation
from evaluators.sandbox.invoke import EPOCH_TICK_S, Invoker
from evaluators.sandbox.limits import Limits
from evaluators.sandbox.loading import ComponentLoader, LoadedComponent
from evaluators.sandbox.pooling import PoolSizes, use_pooling
from evaluators.sandbox.reused_instance import ReusedInstance

log = logging.getLogger(__name__)

# Part of the disk-cache key: precompiled artifacts only load into an engine with the same config.
ENGINE_PROFILE = "fuel+epoch/v1"


def _engine_config() -> wasmtime.Config:
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    return config


class SandboxHost:
    def __init__(
        self,
        *,
        limits: Limits | None = None,
        cache_dir: Path | None = None,
        concurrency: int = 2,
        cache_size: int = 32,
        pooling: bool = True,
        pool_sizes: PoolSizes | None = None,
    ) -> None:
        config = _engine_config()
        self.pooling = pooling and use_pooling(config, pool_sizes)  # False (with a warning) where it cannot be
        try:
            self.engine = wasmtime.Engine(config)
        except wasmtime.WasmtimeError as exc:
            if not self.pooling:
                raise
            log.warning("pooling allocator refused (%s); instances are allocated on demand", exc)
            self.pooling = False
            self.engine = wasmtime.Engine(_engine_config())
        self.limits = limits or Limits()
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._loader = ComponentLoader(
            self.engine, engine_profile=ENGINE_PROFILE, cache_dir=self.cache_dir, cache_size=cache_size
        )
        self.invoker = Invoker(self.engine, concurrency=concurrency)  # bench/steps.py times its steps
        self._reused: weakref.WeakSet[ReusedInstance] = weakref.WeakSet()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="vigilo-epoch", daemon=True)
        self._ticker.start()
        # At exit, before the interpreter finalizes: close what is still open, stop ticking.
        atexit.register(self.close)

    # -- lifecycle ------------------------------------------------------------------------------------------
    def _tick(self) -> None:
        while not self._stop.wait(EPOCH_TICK_S):
            self.engine.increment_epoch()

    def close(self) -> None:
        """Close the Stores this host still keeps (reused instances) and stop the epoch ticker. Idempotent.

        Every invocation closes its own Store; what a caller kept open (a `ReusedInstance` not closed yet) is
        closed here, so that Wasmtime releases its Python callbacks while the interpreter can still run them
        (see `guest_output`). Call it when no invocation is running: at exit the threads that evaluate have
        been joined before atexit handlers run. The host refuses calls afterwards: without the ticker no
        deadline would hold.
        """
        self.invoker.closed = True
        for reused in list(self._reused):
            reused.close()
        self._stop.set()
        if self._ticker.is_alive() and threading.current_thread() is not self._ticker:
            self._ticker.join(timeout=1)
        atexit.unregister(self.close)

    # -- loading --------------------------------------------------------------------------------------------
    def inspect(self, wasm: bytes) -> tuple[wc.Component, ContractInfo]:
        """Compile `wasm` and check it implements the `evaluator` or `model-evaluator` world."""
        return self._loader.inspect(wasm)

    def load(self, *, digest: str, fetch: Callable[[], bytes]) -> LoadedComponent:
        """The compiled component for `digest`: from memory, the disk cache, or by compiling `fetch()`."""
        return self._loader.load(digest=digest, fetch=fetch)

    # -- calling --------------------------------------------------------------------------------------------
    def describe(self, loaded: LoadedComponent, *, limits: Limits | None = None) -> dict[str, Any]:
        """Call `describe()`; raises ComponentRejected when it fails or returns nonsense."""
        return self.invoker.describe(loaded, limits=limits or self.limits)

    def evaluate(
        self,
        loaded: LoadedComponent,
        *,
        data: dict[str, Any] | None = None,
        case: abi.CaseInput | None = None,
        config: Any = None,
        limits: Limits | None = None,
        model: ModelBroker | None = None,
    ) -> Invocation:
        """Run `evaluate` once in a fresh Store. Never raises for anything the guest does.

        The input is `data` (the case, its output and the binding's `config`), or a `case` lowered once for
        all of its bindings plus this binding's `config`.
        """
        limits = limits or self.limits
        return self.invoker.evaluate(loaded, data=data, case=case, config=config, limits=limits, model=model)

    def reusable(self, loaded: LoadedComponent, *, limits: Limits | None = None) -> ReusedInstance:
        """An instance kept across invocations, for evaluators declared pure whose profile allows reuse."""
        reused = ReusedInstance(self.invoker, loaded, limits or self.limits)
        self._reused.add(reused)
        return reused
