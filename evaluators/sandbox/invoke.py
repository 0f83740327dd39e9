"""Calling a component under limits: a Store with fuel, an epoch deadline, a memory limit and captured output;
the call; its result decoded, or what ended it classified. Whatever the guest does ends as an `Invocation`.

Every Store is closed by the code that opened it, and `guest_output.close_store` waits until Wasmtime has let
go of it: a call leaves nothing behind for another thread, or for interpreter shutdown, to finalize.
"""

from __future__ import annotations

import json
import math
import threading
import time
from typing import Any, Protocol

import wasmtime
from wasmtime import component as wc

from evaluators.sandbox import abi
from evaluators.sandbox.contract import ComponentRejected
from evaluators.sandbox.decode import decode_evaluation
from evaluators.sandbox.guest_output import GuestOutput, close_store
from evaluators.sandbox.host_functions import Call, CapabilityDenied, ModelBroker, SandboxDenied
from evaluators.sandbox.invocation import Invocation
from evaluators.sandbox.limits import ErrorCode, Limits
from evaluators.sandbox.loading import LoadedComponent
from evaluators.sandbox.traps import classify_trap

EPOCH_TICK_S = 0.01  # the host's ticker advances the engine's epoch this often


def deadline_ticks(limits: Limits) -> int:
    """Epoch ticks until the deadline. One more than the timeout needs: the next tick may come at once."""
    return math.ceil(limits.timeout_s / EPOCH_TICK_S) + 1


def exported_func(instance: wc.Instance, store: wasmtime.Store, name: str) -> wc.Func:
    func = instance.get_func(store, name)
    if func is None:  # the contract check saw the export; a component cannot lose it
        raise LookupError(f"the component exports no function `{name}`")
    return func


class CallTarget(Protocol):
    """The instance a call runs on: a fresh one (`FreshInstance`) or one kept across calls (`ReusedInstance`)."""

    def prepare(self, call: Call) -> tuple[wasmtime.Store, wc.Func]:
        """The Store and `evaluate` function to call, with the Store's output going to `call`."""
        ...

    def finish(self, *, usable: bool) -> None:
        """After the call: `usable` is False when it did not return a valid, non-error result."""
        ...


class Invoker:
    """Runs calls on `engine`, at most `concurrency` at a time."""

    def __init__(self, engine: wasmtime.Engine, *, concurrency: int) -> None:
        self.engine = engine
        self.closed = False
        self._slots = threading.BoundedSemaphore(concurrency)

    def store_new(self, limits: Limits, output: GuestOutput) -> wasmtime.Store:
        """A Store under `limits` whose WASI context denies everything and writes stdout/stderr to `output`."""
        store = wasmtime.Store(self.engine)
        store.set_fuel(limits.fuel)
        store.set_epoch_deadline(deadline_ticks(limits))
        store.set_limits(memory_size=limits.memory_mb << 20)
        wasi = wasmtime.WasiConfig()
        output.attach(wasi)
        store.set_wasi(wasi)
        return store

    def describe(self, loaded: LoadedComponent, *, limits: Limits) -> dict[str, Any]:
        """Call `describe()`; raises ComponentRejected when it fails or returns nonsense."""
        self._check_open()
        fresh = FreshInstance(self, loaded, export="describe")
        call = Call(limits, time.monotonic() + limits.timeout_s, None)
        failure: Exception | None = None
        with self._slots:
            try:
                with call:
                    store, func = fresh.prepare(call)
                    info = func(store)
            except Exception as exc:  # boundary: any failure means the component is unusable
                failure = exc
            finally:
                fresh.finish(usable=False)
        if failure is not None:
            stderr = call.stderr.decode("utf-8", "replace")
            why = classify_trap(failure, stderr=stderr, limits=limits).error_message
            failure = None  # no frame -> exception -> traceback -> frame cycle left for the collector
            raise ComponentRejected(f"describe() failed: {why}")
        schema_raw = getattr(info, "config-schema-json", None)
        schema = None
        if schema_raw is not None:
            try:
                schema = json.loads(schema_raw)
            except ValueError:
                raise ComponentRejected("describe() returned a config schema that is not JSON") from None
        return {"name": info.name, "version": info.version, "description": info.description, "config_schema": schema}

    def evaluate(
        self,
        loaded: LoadedComponent,
        *,
        data: dict[str, Any] | None,
        case: abi.CaseInput | None,
        config: Any,
        limits: Limits,
        model: ModelBroker | None,
    ) -> Invocation:
        """One call of `evaluate` in a fresh Store."""
        fresh = FreshInstance(self, loaded, export="evaluate")
        return self.invoke(fresh, data=data, case=case, config=config, limits=limits, model=model)

    def invoke(
        self,
        target: CallTarget,
        *,
        data: dict[str, Any] | None,
        case: abi.CaseInput | None,
        config: Any,
        limits: Limits,
        model: ModelBroker | None,
    ) -> Invocation:
        """One call of `evaluate` on `target`, with the input `data` or `case` (plus `config`). Never raises for
        anything the guest does."""
        self._check_open()
        if case is None:
            with abi.CaseInput(data or {}) as own:
                config = (data or {}).get("config")
                return self.invoke(target, data=None, case=own, config=config, limits=limits, model=model)
        if case.error is not None:
            return Invocation.error(ErrorCode.INVALID_OUTPUT, case.error)
        try:
            params = case.params(config)
        except (TypeError, ValueError) as exc:
            return Invocation.error(ErrorCode.INVALID_OUTPUT, f"config cannot be encoded: {exc}")
        with self._slots:
            started = time.monotonic()
            call = Call(limits, started + limits.timeout_s, model)
            inv = self._call(target, call, params, limits)
            inv.duration_ms = (time.monotonic() - started) * 1000
        inv.logs = call.logs
        inv.logs_truncated = call.logs_truncated
        if call.stderr:
            inv.logs.append({"level": "stderr", "message": call.stderr.decode("utf-8", "replace")})
        inv.model_usage = call.model_usage
        return inv

    def _call(self, target: CallTarget, call: Call, params: Any, limits: Limits) -> Invocation:
        inv: Invocation | None = None
        failure: Exception | None = None
        fuel_used = 0
        try:
            with call:
                store, func = target.prepare(call)
                try:
                    raw = abi.call_evaluate(func, store, params)
                finally:
                    fuel_used = _fuel_used(store, limits)
                inv = decode_evaluation(raw, limits.max_output_bytes)
        except abi.LiftError as exc:  # the call returned, with a value outside the contract
            inv = Invocation.error(ErrorCode.INVALID_OUTPUT, f"evaluate returned an invalid value: {exc}")
        except CapabilityDenied as exc:
            inv = Invocation.error(ErrorCode.CAPABILITY_DENIED, str(exc))
        except SandboxDenied as exc:
            inv = Invocation.error(ErrorCode.TRAP, str(exc))
        except Exception as exc:  # boundary: a trap or host failure becomes an error result, below
            failure = exc
        finally:
            # Before a trap is classified: a fresh Store is closed here, and all the guest wrote is in.
            target.finish(usable=inv is not None and inv.outcome != "error")
        if inv is None:
            if call.denied:
                inv = Invocation.error(ErrorCode.CAPABILITY_DENIED, call.denied)
            else:
                assert failure is not None
                inv = classify_trap(failure, stderr=call.stderr.decode("utf-8", "replace"), limits=limits)
        failure = None  # no frame -> exception -> traceback -> frame cycle left for the collector
        inv.fuel_used = fuel_used
        return inv

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("the sandbox host is closed")


def _fuel_used(store: wasmtime.Store, limits: Limits) -> int:
    try:
        return limits.fuel - store.get_fuel()
    except wasmtime.WasmtimeError:
        return limits.fuel


class FreshInstance:
    """A new Store and instance for one call, closed when the call ends: no state crosses between calls."""

    def __init__(self, invoker: Invoker, loaded: LoadedComponent, *, export: str) -> None:
        self.invoker = invoker
        self.loaded = loaded
        self.export = export
        self._store: wasmtime.Store | None = None
        self._output = GuestOutput()

    def prepare(self, call: Call) -> tuple[wasmtime.Store, wc.Func]:
        self._output.into = call.stderr
        store = self._store = self.invoker.store_new(call.limits, self._output)
        instance = self.loaded.linker.instantiate(store, self.loaded.component)
        return store, exported_func(instance, store, self.export)

    def finish(self, *, usable: bool) -> None:
        store, self._store = self._store, None
        if store is not None:
            close_store(store, self._output)
