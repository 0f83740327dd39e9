"""Load evaluator components and run them under limits.

One `SandboxHost` per process owns a Wasmtime engine (fuel + epoch interruption), an epoch ticker thread,
an LRU of compiled components and a disk cache of precompiled ones. `evaluate` gives every invocation a fresh
Store: no state crosses from one case to the next. `reusable` keeps one instance for several calls, for
evaluators published as pure whose profile allows it (`ReusedInstance`). Whatever goes wrong inside an
invocation ends as an `Invocation` with a stable error code; the host stays usable. Values cross the boundary
through `abi` (Wasmtime's C API, without wasmtime-py's per-call type reflection).
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.metadata
import json
import logging
import math
import os
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import wasmtime
from wasmtime import component as wc

from evaluators.sandbox import abi
from evaluators.sandbox.limits import ErrorCode, Limits
from evaluators.sandbox.pooling import PoolSizes, use_pooling

log = logging.getLogger(__name__)
PACKAGE = "vigilo:evaluator"
CONTRACT_VERSION = "1.0.0"
IMPORT_TYPES = f"{PACKAGE}/types@{CONTRACT_VERSION}"
IMPORT_LOG = f"{PACKAGE}/log@{CONTRACT_VERSION}"
IMPORT_MODEL = f"{PACKAGE}/model@{CONTRACT_VERSION}"
EVALUATION_INPUT_FIELDS = ["run-id", "execution-id", "attempt", "test-case", "actual", "config-json"]

EPOCH_TICK_S = 0.01
# Part of the disk-cache key: precompiled artifacts only load into an engine with the same config.
ENGINE_PROFILE = "fuel+epoch/v1"
WASMTIME_VERSION = importlib.metadata.version("wasmtime")
STDERR_CAP = 8192


class ComponentRejected(ValueError):
    """The bytes are not a component that implements the evaluator contract."""


class CapabilityDenied(Exception):
    """Raised by a host function the binding did not grant; ends the invocation as `capability_denied`."""


class SandboxDenied(Exception):
    """Raised by a host function the sandbox never allows (e.g. blocking sleeps); ends as `trap`."""


class ModelBroker(Protocol):
    """Host side of the `model` capability (LLM calls), bound to one invocation's grant."""

    def complete(self, *, request: dict[str, Any], deadline: float) -> dict[str, Any]:
        """Return a completion dict, or raise `ModelCallFailed` (its message goes back to the guest)."""
        ...


class ModelCallFailed(Exception):
    pass


@dataclass(frozen=True)
class ContractInfo:
    world: str  # "evaluator" | "model-evaluator"
    contract_version: str
    capabilities: tuple[str, ...]  # "log", "model"
    imports: tuple[str, ...]


@dataclass
class LoadedComponent:
    digest: str
    component: wc.Component
    linker: wc.Linker
    contract: ContractInfo


@dataclass
class Invocation:
    """What one call of `evaluate` produced: an outcome, or an error with a stable code."""

    outcome: str  # completed | abstained | error
    kind: str | None = None  # binary | numeric | ordinal
    measurement: bool | float | str | None = None
    abstention: dict[str, Any] | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)
    explanation: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    logs: list[dict[str, str]] = field(default_factory=list)
    logs_truncated: bool = False
    duration_ms: float = 0.0
    fuel_used: int = 0
    model_usage: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def error(cls, code: ErrorCode, message: str) -> Invocation:
        return cls(outcome="error", error_code=str(code), error_message=message)


class _Call:
    """Per-invocation state the host functions reach through a thread-local."""

    def __init__(self, limits: Limits, deadline: float, model: ModelBroker | None) -> None:
        self.limits = limits
        self.deadline = deadline
        self.model = model
        self.logs: list[dict[str, str]] = []
        self.logs_truncated = False
        self.stderr = bytearray()
        self.denied: str | None = None
        self.model_usage: list[dict[str, Any]] = []

    def log(self, level: str, message: str) -> None:
        if len(self.logs) >= self.limits.max_log_messages:
            self.logs_truncated = True
            return
        encoded = message.encode("utf-8", "replace")
        if len(encoded) > self.limits.max_log_bytes:
            message = encoded[: self.limits.max_log_bytes].decode("utf-8", "ignore")
            self.logs_truncated = True
        self.logs.append({"level": str(level), "message": message})

    def capture_stderr(self, data: bytes) -> None:
        room = STDERR_CAP - len(self.stderr)
        if room > 0:
            self.stderr += bytes(data[:room])


_current = threading.local()


def _call() -> _Call:
    call = getattr(_current, "call", None)
    if call is None:  # pragma: no cover - host functions only run inside evaluate()
        raise SandboxDenied("host function called outside an invocation")
    return call


def _host_log(_store: Any, level: Any, message: str) -> None:
    _call().log(str(level), message)


def _host_model_complete(_store: Any, request: Any) -> Any:
    call = _call()
    if call.model is None:
        call.denied = "the binding does not grant the `model` capability"
        raise CapabilityDenied(call.denied)
    req = {
        "model": request.model,
        "messages_json": getattr(request, "messages-json"),
        "response_schema_json": getattr(request, "response-schema-json"),
        "temperature": request.temperature,
        "max_tokens": getattr(request, "max-tokens"),
    }
    try:
        done = call.model.complete(request=req, deadline=call.deadline)
    except CapabilityDenied as exc:
        call.denied = str(exc)
        raise
    except ModelCallFailed as exc:
        # result<completion, string>: the arms lift/lower by Python type (Record vs str), untagged.
        return str(exc)
    call.model_usage.append(done)
    rec = wc.Record()
    rec.content = done["content"]
    rec.model = done["model"]
    setattr(rec, "input-tokens", int(done["input_tokens"]))
    setattr(rec, "output-tokens", int(done["output_tokens"]))
    rec.cached = bool(done["cached"])
    return rec


def _deny_sleep(*_args: Any) -> None:
    raise SandboxDenied("evaluators may not sleep or wait on clocks")


SEVERITIES = {"info", "low", "medium", "high", "critical"}
MEASUREMENT_KINDS = {"binary": bool, "numeric": float, "ordinal": str}


class _Invalid(ValueError):
    pass


def _fields(value: Any, names: tuple[str, ...], what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or tuple(value) != names:
        raise _Invalid(f"{what} is not the contract's record ({', '.join(names)})")
    return value


def _case(value: Any, cases: set[str], what: str) -> tuple[str, Any]:
    if not isinstance(value, tuple) or len(value) != 2 or value[0] not in cases:
        raise _Invalid(f"{what} is not one of {', '.join(sorted(cases))}")
    return value


def _text(value: Any, what: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise _Invalid(f"{what} is not a string")
    return value


def decode_evaluation(result: Any, max_output_bytes: int) -> Invocation:
    """Turn the lifted `result<evaluation, evaluator-error>` (see `abi.lift`) into an Invocation.

    Every field is checked against the contract: a component whose `evaluate` returns another shape (it can
    only if its own types differ from the contract's) ends as `invalid_output`, like an oversized output.
    """
    try:
        return _decode(result, max_output_bytes)
    except _Invalid as exc:
        return Invocation.error(ErrorCode.INVALID_OUTPUT, f"evaluate returned an invalid value: {exc}")


def _decode(result: Any, max_output_bytes: int) -> Invocation:
    tag, payload = _case(result, {"ok", "err"}, "the result")
    if tag == "err":
        err = _fields(payload, ("code", "message"), "the evaluator-error")
        code, message = _text(err["code"], "code"), _text(err["message"], "message")
        if len(code) + len(message) > max_output_bytes:
            return Invocation.error(ErrorCode.INVALID_OUTPUT, "evaluator error larger than the output limit")
        return Invocation.error(ErrorCode.EVALUATOR_ERROR, f"{code}: {message}")

    evaluation = _fields(payload, ("outcome", "findings", "explanation"), "the evaluation")
    size = 0
    inv = Invocation(outcome="completed")
    case, value = _case(evaluation["outcome"], {"completed", "abstained"}, "the outcome")
    if case == "completed":
        kind, measured = _case(value, set(MEASUREMENT_KINDS), "the measurement")
        if not isinstance(measured, MEASUREMENT_KINDS[kind]):
            raise _Invalid(f"the {kind} measurement is a {type(measured).__name__}")
        if kind == "numeric" and not math.isfinite(measured):
            return Invocation.error(ErrorCode.INVALID_OUTPUT, f"numeric measurement {measured} is not finite")
        inv.kind, inv.measurement = kind, measured
        size += len(measured) if kind == "ordinal" else 0
    else:
        abstention = _fields(value, ("category", "reason"), "the abstention")
        category = _text(abstention["category"], "category")
        reason = _text(abstention["reason"], "reason", optional=True)
        inv.outcome = "abstained"
        inv.abstention = {"category": category, "reason": reason}
        size += len(category) + len(reason or "")

    findings = evaluation["findings"]
    if not isinstance(findings, list):
        raise _Invalid("findings is not a list")
    for raw in findings:
        f = _fields(raw, ("severity", "category", "message", "evidence-json"), "a finding")
        severity = f["severity"]
        if severity not in SEVERITIES:
            return Invocation.error(ErrorCode.INVALID_OUTPUT, f"unknown finding severity {severity!r}")
        category, message = _text(f["category"], "category"), _text(f["message"], "message")
        evidence_raw = _text(f["evidence-json"], "evidence-json", optional=True)
        size += len(category) + len(message) + len(evidence_raw or "")
        evidence: Any = None
        if evidence_raw is not None:
            try:
                evidence = json.loads(evidence_raw)
            except ValueError:
                evidence = evidence_raw
        inv.findings.append({"severity": severity, "category": category, "message": message, "evidence": evidence})
    inv.explanation = _text(evaluation["explanation"], "explanation", optional=True)
    size += len(inv.explanation or "")
    if size > max_output_bytes:
        return Invocation.error(
            ErrorCode.INVALID_OUTPUT, f"output of {size} bytes exceeds the limit of {max_output_bytes} bytes"
        )
    return inv


def _deadline_ticks(limits: Limits) -> int:
    """Epoch ticks until the deadline. One more than the timeout needs: the next tick may come at once."""
    return math.ceil(limits.timeout_s / EPOCH_TICK_S) + 1


def _classify_trap(exc: BaseException, call: _Call, limits: Limits) -> Invocation:
    text = str(exc)
    stderr = call.stderr.decode("utf-8", "replace")
    if "all fuel consumed" in text:
        return Invocation.error(ErrorCode.FUEL_EXHAUSTED, f"evaluator used all {limits.fuel} units of fuel")
    if "interrupt" in text:  # epoch interruption: the only interrupt the host arms is the deadline
        return Invocation.error(ErrorCode.TIMEOUT, f"evaluator ran longer than {limits.timeout_s:g} s")
    if "MemoryError" in stderr or "out of memory" in text.lower() or "memory.grow" in text:
        return Invocation.error(ErrorCode.MEMORY_LIMIT, f"evaluator exceeded its {limits.memory_mb} MiB memory")
    guest_error = _last_exception_line(stderr)
    if guest_error:
        return Invocation.error(ErrorCode.TRAP, f"evaluator raised {guest_error}")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    cause = _caused_by(text)
    return Invocation.error(ErrorCode.TRAP, f"evaluator trapped: {cause or first}")


def _last_exception_line(stderr: str) -> str | None:
    """The `Type: message` line of a Python traceback the guest printed, if any."""
    if "Traceback" not in stderr:
        return None
    lines = [ln for ln in stderr.splitlines() if ln and not ln.startswith((" ", "\t", "Traceback", "thread"))]
    for line in lines:
        if ":" in line and not line.startswith("note"):
            return line.strip()
    return None


def _caused_by(text: str) -> str | None:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "Caused by:" and i + 1 < len(lines):
            return lines[i + 1].strip().lstrip("0123456789: ").strip()
    return None


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
        config = self._config()
        self.pooling = pooling and use_pooling(config, pool_sizes)  # False (with a warning) where it cannot be
        try:
            self.engine = wasmtime.Engine(config)
        except wasmtime.WasmtimeError as exc:
            if not self.pooling:
                raise
            log.warning("pooling allocator refused (%s); instances are allocated on demand", exc)
            self.pooling = False
            self.engine = wasmtime.Engine(self._config())
        self.limits = limits or Limits()
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._slots = threading.BoundedSemaphore(concurrency)
        self._cache: OrderedDict[str, LoadedComponent] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self._load_locks: dict[str, threading.Lock] = {}
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="vigilo-epoch", daemon=True)
        self._ticker.start()
        # Stop ticking before the interpreter (and Wasmtime's runtime threads) shut down.
        atexit.register(self.close)

    @staticmethod
    def _config() -> wasmtime.Config:
        config = wasmtime.Config()
        config.consume_fuel = True
        config.epoch_interruption = True
        return config

    # -- lifecycle ------------------------------------------------------------------------------------------
    def _tick(self) -> None:
        while not self._stop.wait(EPOCH_TICK_S):
            self.engine.increment_epoch()

    def close(self) -> None:
        self._stop.set()
        if self._ticker.is_alive() and threading.current_thread() is not self._ticker:
            self._ticker.join(timeout=1)

    # -- loading --------------------------------------------------------------------------------------------
    def inspect(self, wasm: bytes) -> tuple[wc.Component, ContractInfo]:
        """Compile `wasm` and check it implements the `evaluator` or `model-evaluator` world."""
        if len(wasm) < 8 or wasm[:4] != b"\0asm":
            raise ComponentRejected("not a WebAssembly file (missing the \\0asm header)")
        if wasm[4:8] == b"\x01\x00\x00\x00":
            raise ComponentRejected(
                "this is a core WebAssembly module, not a component: build it as a component targeting "
                f"the `evaluator` world of {PACKAGE}@{CONTRACT_VERSION}"
            )
        digest = hashlib.sha256(wasm).hexdigest()
        component = self._from_disk(digest)
        if component is None:
            try:
                component = wc.Component(self.engine, wasm)
            except wasmtime.WasmtimeError as exc:
                raise ComponentRejected(f"not a valid WebAssembly component: {str(exc).splitlines()[0]}") from None
            contract = self._contract(component)
            self._to_disk(digest, component)  # only components that passed the contract check are cached
            return component, contract
        return component, self._contract(component)

    def _to_disk(self, digest: str, component: wc.Component) -> None:
        path = self._disk_path(digest)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(component.serialize())
        os.replace(tmp, path)

    def _from_disk(self, digest: str) -> wc.Component | None:
        """The precompiled component for `digest`, if this engine configuration compiled it before."""
        path = self._disk_path(digest)
        if path is None or not path.exists():
            return None
        try:
            return wc.Component.deserialize_file(self.engine, str(path))
        except wasmtime.WasmtimeError:
            path.unlink(missing_ok=True)  # stale or torn artifact: recompile
            return None

    def _contract(self, component: wc.Component) -> ContractInfo:
        ctype = component.type
        imports = sorted(ctype.imports(self.engine))
        exports = ctype.exports(self.engine)
        capabilities = []
        for name in imports:
            if name.startswith("wasi:"):
                continue
            if name == IMPORT_LOG:
                capabilities.append("log")
            elif name == IMPORT_MODEL:
                capabilities.append("model")
            elif name != IMPORT_TYPES:
                raise ComponentRejected(
                    f"imports `{name}`, which the {PACKAGE}@{CONTRACT_VERSION} contract does not provide"
                )
        missing = [n for n in ("describe", "evaluate") if n not in exports]
        if missing:
            raise ComponentRejected(
                f"does not export {', '.join(missing)}: it is not a component of the `evaluator` world of "
                f"{PACKAGE}@{CONTRACT_VERSION}"
            )
        evaluate = exports["evaluate"].ty
        params = evaluate.params if isinstance(evaluate, wc.FuncType) else []
        fields = []
        if len(params) == 1 and isinstance(params[0][1], wc.RecordType):
            fields = [name for name, _ in params[0][1].fields]
        if fields != EVALUATION_INPUT_FIELDS:
            raise ComponentRejected(
                "its `evaluate` export does not take the contract's `evaluation-input`: "
                f"it is not a component of the {PACKAGE}@{CONTRACT_VERSION} `evaluator` world"
            )
        world = "model-evaluator" if "model" in capabilities else "evaluator"
        return ContractInfo(
            world=world, contract_version=CONTRACT_VERSION, capabilities=tuple(capabilities), imports=tuple(imports)
        )

    def _linker(self, component: wc.Component, contract: ContractInfo) -> wc.Linker:
        linker = wc.Linker(self.engine)
        # WASI from Wasmtime, with a deny-all context per Store: no preopened directories, no environment, no
        # arguments, no sockets (Wasmtime's default address check refuses every address), stdout/stderr into a
        # capped buffer. Blocking clock waits are replaced below: epoch interruption cannot stop a host wait.
        linker.add_wasip2()
        linker.allow_shadowing = True
        with linker.root() as root:
            with root.add_instance(IMPORT_LOG) as log:
                log.add_func("write", _host_log)
            with root.add_instance(IMPORT_MODEL) as model:
                model.add_func("complete", _host_model_complete)
            for name in contract.imports:
                if name.startswith("wasi:clocks/monotonic-clock@"):
                    with root.add_instance(name) as clock:
                        clock.add_func("now", lambda _s: time.monotonic_ns())
                        clock.add_func("resolution", lambda _s: 1)
                        clock.add_func("subscribe-instant", _deny_sleep)
                        clock.add_func("subscribe-duration", _deny_sleep)
        linker.allow_shadowing = False
        return linker

    def _disk_path(self, digest: str) -> Path | None:
        if self.cache_dir is None:
            return None
        profile = hashlib.sha256(f"{WASMTIME_VERSION}|{ENGINE_PROFILE}".encode()).hexdigest()[:12]
        return self.cache_dir / f"{digest}-{profile}.cwasm"

    def load(self, *, digest: str, fetch: Callable[[], bytes]) -> LoadedComponent:
        """The compiled component for `digest`: from memory, the disk cache, or by compiling `fetch()`."""
        with self._cache_lock:
            hit = self._cache.get(digest)
            if hit is not None:
                self._cache.move_to_end(digest)
                return hit
            lock = self._load_locks.setdefault(digest, threading.Lock())
        with lock:  # compile each digest once even when many threads ask at the same time
            with self._cache_lock:
                hit = self._cache.get(digest)
                if hit is not None:
                    return hit
            loaded = self._load_uncached(digest, fetch)
            with self._cache_lock:
                self._cache[digest] = loaded
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            return loaded

    def _load_uncached(self, digest: str, fetch: Callable[[], bytes]) -> LoadedComponent:
        component = self._from_disk(digest)
        if component is None:
            wasm = fetch()
            actual = hashlib.sha256(wasm).hexdigest()
            if actual != digest:
                raise ComponentRejected(f"artifact digest {actual} does not match {digest}")
            component, _ = self.inspect(wasm)
        contract = self._contract(component)
        return LoadedComponent(
            digest=digest, component=component, linker=self._linker(component, contract), contract=contract
        )

    # -- calling --------------------------------------------------------------------------------------------
    def _store(self, limits: Limits, call: _Call) -> wasmtime.Store:
        return self._new_store(limits, call.capture_stderr)

    def _new_store(self, limits: Limits, sink: Callable[[bytes], None]) -> wasmtime.Store:
        store = wasmtime.Store(self.engine)
        store.set_fuel(limits.fuel)
        store.set_epoch_deadline(_deadline_ticks(limits))
        store.set_limits(memory_size=limits.memory_mb << 20)
        wasi = wasmtime.WasiConfig()
        wasi.stdout_custom = sink
        wasi.stderr_custom = sink
        store.set_wasi(wasi)
        return store

    def describe(self, loaded: LoadedComponent, *, limits: Limits | None = None) -> dict[str, Any]:
        """Call `describe()`; raises ComponentRejected when it fails or returns nonsense."""
        limits = limits or self.limits
        call = _Call(limits, time.monotonic() + limits.timeout_s, None)
        with self._slots:
            _current.call = call
            try:
                store = self._store(limits, call)
                instance = loaded.linker.instantiate(store, loaded.component)
                info = instance.get_func(store, "describe")(store)
            except Exception as exc:  # boundary: any failure means the component is unusable
                raise ComponentRejected(f"describe() failed: {_classify_trap(exc, call, limits).error_message}")
            finally:
                _current.call = None
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

        def fresh(call: _Call) -> tuple[wasmtime.Store, Any]:
            store = self._store(limits, call)
            instance = loaded.linker.instantiate(store, loaded.component)
            return store, instance.get_func(store, "evaluate")

        return self._invoke(fresh, data=data, case=case, config=config, limits=limits, model=model)[0]

    def reusable(self, loaded: LoadedComponent, *, limits: Limits | None = None) -> ReusedInstance:
        """An instance kept across invocations, for evaluators declared pure whose profile allows reuse."""
        return ReusedInstance(self, loaded, limits or self.limits)

    def _invoke(
        self,
        prepare: Callable[[_Call], tuple[wasmtime.Store, Any]],
        *,
        data: dict[str, Any] | None,
        case: abi.CaseInput | None,
        config: Any,
        limits: Limits,
        model: ModelBroker | None,
    ) -> tuple[Invocation, bool]:
        """One call of `evaluate` on the (store, func) that `prepare` gives; (invocation, instance still usable)."""
        if case is None:
            with abi.CaseInput(data or {}) as own:
                return self._invoke(
                    prepare, data=None, case=own, config=(data or {}).get("config"), limits=limits, model=model
                )
        if case.error is not None:
            return Invocation.error(ErrorCode.INVALID_OUTPUT, case.error), True
        try:
            params = case.params(config)
        except (TypeError, ValueError) as exc:
            return Invocation.error(ErrorCode.INVALID_OUTPUT, f"config cannot be encoded: {exc}"), True
        usable = False
        with self._slots:
            started = time.monotonic()
            call = _Call(limits, started + limits.timeout_s, model)
            _current.call = call
            store = None
            try:
                store, func = prepare(call)
                raw = abi.call_evaluate(func, store, params)
                inv = decode_evaluation(raw, limits.max_output_bytes)
                usable = True
            except abi.LiftError as exc:  # the call returned, with a value outside the contract
                inv = Invocation.error(ErrorCode.INVALID_OUTPUT, f"evaluate returned an invalid value: {exc}")
            except CapabilityDenied as exc:
                inv = Invocation.error(ErrorCode.CAPABILITY_DENIED, str(exc))
            except SandboxDenied as exc:
                inv = Invocation.error(ErrorCode.TRAP, str(exc))
            except Exception as exc:  # boundary: a trap or host failure becomes an error result
                if call.denied:
                    inv = Invocation.error(ErrorCode.CAPABILITY_DENIED, call.denied)
                else:
                    inv = _classify_trap(exc, call, limits)
            finally:
                _current.call = None
            inv.duration_ms = (time.monotonic() - started) * 1000
            if store is not None:
                try:
                    inv.fuel_used = limits.fuel - store.get_fuel()
                except wasmtime.WasmtimeError:
                    inv.fuel_used = limits.fuel
        inv.logs = call.logs
        inv.logs_truncated = call.logs_truncated
        if call.stderr:
            inv.logs.append({"level": "stderr", "message": call.stderr.decode("utf-8", "replace")})
        inv.model_usage = call.model_usage
        return inv, usable


class ReusedInstance:
    """One instance of a component called for several cases in turn (instance reuse, opt-in per profile).

    Only for evaluators declared pure: what a call returns depends on its input alone. Every call still gets
    the full per-invocation limits: fuel and the epoch deadline are reset before each call, the memory limit
    holds for the instance's lifetime, logs and stderr are captured per call. After any error (a trap, a
    limit, invalid output) the instance is dropped and the next call starts a fresh one: a trapped instance
    cannot be entered again, and a pure evaluator's failure must never depend on what ran before it.
    """

    def __init__(self, host: SandboxHost, loaded: LoadedComponent, limits: Limits) -> None:
        self.host = host
        self.loaded = loaded
        self.limits = limits
        self.calls = 0  # calls on the current instance
        self.instances = 0  # instances started so far
        self._store: wasmtime.Store | None = None
        self._func: Any = None
        # The stderr sink's only reference: wasmtime-py keeps the sink in a global registry until the Store is
        # dropped, so a sink that referenced this object (and through it the Store) would keep every Store alive.
        self._current: list[_Call | None] = [None]

    def _prepare(self, call: _Call) -> tuple[wasmtime.Store, Any]:
        self._current[0] = call
        if self._store is None:
            current = self._current

            def sink(data: bytes) -> None:
                if current[0] is not None:
                    current[0].capture_stderr(data)

            store = self.host._new_store(self.limits, sink)
            instance = self.loaded.linker.instantiate(store, self.loaded.component)
            self._store, self._func = store, instance.get_func(store, "evaluate")
            self.instances += 1
            self.calls = 0
        else:
            self._store.set_fuel(self.limits.fuel)
            self._store.set_epoch_deadline(_deadline_ticks(self.limits))
        self.calls += 1
        return self._store, self._func

    def evaluate(
        self, *, data: dict[str, Any] | None = None, case: abi.CaseInput | None = None, config: Any = None
    ) -> Invocation:
        """Like `SandboxHost.evaluate` (never raises for anything the guest does), on the kept instance."""
        inv, usable = self.host._invoke(
            self._prepare, data=data, case=case, config=config, limits=self.limits, model=None
        )
        self._current[0] = None
        if not usable or inv.outcome == "error":
            self.close()
        return inv

    def close(self) -> None:
        self._store = None
        self._func = None
