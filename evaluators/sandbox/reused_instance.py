"""One instance of a component called for several cases in turn: instance reuse, opt-in per profile, for
evaluators published as pure."""

from __future__ import annotations

from typing import Any

import wasmtime
from wasmtime import component as wc

from evaluators.sandbox import abi
from evaluators.sandbox.guest_output import GuestOutput, close_store
from evaluators.sandbox.host_functions import Call
from evaluators.sandbox.invocation import Invocation
from evaluators.sandbox.invoke import Invoker, deadline_ticks, exported_func
from evaluators.sandbox.limits import Limits
from evaluators.sandbox.loading import LoadedComponent


class ReusedInstance:
    """An instance kept across invocations (a `CallTarget` of its own).

    Only for evaluators declared pure: what a call returns depends on its input alone. Every call still gets
    the full per-invocation limits: fuel and the epoch deadline are reset before each call, the memory limit
    holds for the instance's lifetime, logs and output are captured per call. After any error (a trap, a
    limit, invalid output) the instance is closed and the next call starts a fresh one: a trapped instance
    cannot be entered again, and a pure evaluator's failure must never depend on what ran before it. Its owner
    calls `close()` when done (the host closes what is left open when it closes).
    """

    def __init__(self, invoker: Invoker, loaded: LoadedComponent, limits: Limits) -> None:
        self.invoker = invoker
        self.loaded = loaded
        self.limits = limits
        self.calls = 0  # calls on the current instance
        self.instances = 0  # instances started so far
        self._store: wasmtime.Store | None = None
        self._func: wc.Func | None = None
        # The output registry holds this object until Wasmtime releases the Store's streams: it must not refer
        # back to the ReusedInstance or the Store, or it would keep them alive.
        self._output = GuestOutput()

    def prepare(self, call: Call) -> tuple[wasmtime.Store, wc.Func]:
        store, func = self._store, self._func
        if store is None or func is None:
            self.close()  # a Store whose instantiation failed, if any
            self._output = GuestOutput()
            self._output.into = call.stderr
            store = self._store = self.invoker.store_new(self.limits, self._output)
            instance = self.loaded.linker.instantiate(store, self.loaded.component)
            func = self._func = exported_func(instance, store, "evaluate")
            self.instances += 1
            self.calls = 0
        else:
            self._output.into = call.stderr
            store.set_fuel(self.limits.fuel)
            store.set_epoch_deadline(deadline_ticks(self.limits))
        self.calls += 1
        return store, func

    def finish(self, *, usable: bool) -> None:
        self._output.into = None
        if not usable:
            self.close()

    def evaluate(
        self, *, data: dict[str, Any] | None = None, case: abi.CaseInput | None = None, config: Any = None
    ) -> Invocation:
        """Like `SandboxHost.evaluate` (never raises for anything the guest does), on the kept instance."""
        return self.invoker.invoke(self, data=data, case=case, config=config, limits=self.limits, model=None)

    def close(self) -> None:
        """Close the instance's Store (the next call starts a new instance)."""
        store, self._store, self._func = self._store, None, None
        if store is not None:
            close_store(store, self._output)
