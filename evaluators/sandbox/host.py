"""Load evaluator components and run them under limits.

One `SandboxHost` per process owns a Wasmtime engine (fuel + epoch interruption), an epoch ticker thread,
an LRU of compiled components and a disk cache of precompiled ones. Every invocation gets a fresh Store:
no state crosses from one case to the next. Whatever goes wrong inside an invocation ends as an
`Invocation` with a stable error code; the host stays usable.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.metadata
import json
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

from evaluators.sandbox.limits import ErrorCode, Limits

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
    value: bool | float | str | None = None
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


def _record(**values: Any) -> wc.Record:
    rec = wc.Record()
    for name, value in values.items():
        setattr(rec, name.replace("_", "-"), value)
    return rec


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


def encode_input(data: dict[str, Any]) -> wc.Record:
    """Build the WIT `evaluation-input` record from plain data (the dataset's case shape)."""
    case = data.get("case") or {}
    out = data.get("output") or {}
    test_case = _record(
        id=str(case.get("id", "")),
        input_json=json.dumps(case.get("input")),
        expected_json=_json_or_none(case.get("expected")),
        context_json=_json_or_none(case.get("context")),
        tags=[str(t) for t in case.get("tags") or []],
        metadata_json=json.dumps(case.get("metadata") or {}),
    )
    actual = _record(
        text=out.get("text"),
        structured_json=_json_or_none(out.get("structured")),
        tool_calls=[
            _record(
                name=str(tc.get("name", "")),
                arguments_json=json.dumps(tc.get("arguments")),
                result_json=_json_or_none(tc.get("result")),
            )
            for tc in out.get("tool_calls") or []
        ],
        trace=[
            _record(kind=str(ev.get("kind", "")), name=ev.get("name"), payload_json=json.dumps(ev.get("payload")))
            for ev in out.get("trace") or []
        ],
        metadata_json=json.dumps(out.get("metadata") or {}),
    )
    return _record(
        run_id=str(data.get("run_id", "")),
        execution_id=str(data.get("execution_id", "")),
        attempt=int(data.get("attempt", 1)),
        test_case=test_case,
        actual=actual,
        config_json=json.dumps(data.get("config") or {}),
    )


SEVERITIES = {"info", "low", "medium", "high", "critical"}


def decode_evaluation(result: Any, max_output_bytes: int) -> Invocation:
    """Turn the lifted `result<evaluation, evaluator-error>` into an Invocation, checking every field.

    wasmtime-py lifts a variant whose cases have distinct Python types untagged: `completed(binary(b))`
    arrives as a bool, `numeric` as a float, `ordinal` as a str and `abstained(...)` as a Record, while the
    `result` (two record arms) arrives tagged. The contract fixes those types, so decoding by Python type is
    exact; anything else is `invalid_output`.
    """
    if not isinstance(result, wc.Variant) or result.tag not in ("ok", "err"):
        return Invocation.error(ErrorCode.INVALID_OUTPUT, f"evaluate returned {type(result).__name__}")
    payload = result.payload
    if result.tag == "err":
        code, message = str(payload.code), str(payload.message)
        if len(code) + len(message) > max_output_bytes:
            return Invocation.error(ErrorCode.INVALID_OUTPUT, "evaluator error larger than the output limit")
        return Invocation.error(ErrorCode.EVALUATOR_ERROR, f"{code}: {message}")

    size = 0
    outcome = payload.outcome
    inv = Invocation(outcome="completed")
    if isinstance(outcome, bool):
        inv.kind, inv.value = "binary", outcome
    elif isinstance(outcome, float | int):
        if not math.isfinite(outcome):
            return Invocation.error(ErrorCode.INVALID_OUTPUT, f"numeric measurement {outcome} is not finite")
        inv.kind, inv.value = "numeric", float(outcome)
    elif isinstance(outcome, str):
        inv.kind, inv.value = "ordinal", outcome
        size += len(outcome)
    elif isinstance(outcome, wc.Record):
        inv.outcome = "abstained"
        inv.abstention = {"category": outcome.category, "reason": outcome.reason}
        size += len(outcome.category) + len(outcome.reason or "")
    else:
        return Invocation.error(ErrorCode.INVALID_OUTPUT, f"unexpected outcome {type(outcome).__name__}")

    for f in payload.findings:
        severity = str(f.severity)
        if severity not in SEVERITIES:
            return Invocation.error(ErrorCode.INVALID_OUTPUT, f"unknown finding severity {severity!r}")
        evidence_raw = getattr(f, "evidence-json")
        size += len(f.category) + len(f.message) + len(evidence_raw or "")
        evidence: Any = None
        if evidence_raw is not None:
            try:
                evidence = json.loads(evidence_raw)
            except ValueError:
                evidence = evidence_raw
        inv.findings.append({"severity": severity, "category": f.category, "message": f.message, "evidence": evidence})
    inv.explanation = payload.explanation
    size += len(inv.explanation or "")
    if size > max_output_bytes:
        return Invocation.error(
            ErrorCode.INVALID_OUTPUT, f"output of {size} bytes exceeds the limit of {max_output_bytes} bytes"
        )
    return inv


def _classify_trap(exc: BaseException, call: _Call, limits: Limits) -> Invocation:
    text = str(exc)
    stderr = call.stderr.decode("utf-8", "replace")
    if "all fuel consumed" in text:
        return Invocation.error(ErrorCode.FUEL_EXHAUSTED, f"evaluator used all {limits.fuel} units of fuel")
    if "interrupt" in text and time.monotonic() >= call.deadline:
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
    ) -> None:
        config = wasmtime.Config()
        config.consume_fuel = True
        config.epoch_interruption = True
        self.engine = wasmtime.Engine(config)
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
        store = wasmtime.Store(self.engine)
        store.set_fuel(limits.fuel)
        store.set_epoch_deadline(max(1, math.ceil(limits.timeout_s / EPOCH_TICK_S)))
        store.set_limits(memory_size=limits.memory_mb << 20)
        wasi = wasmtime.WasiConfig()
        wasi.stdout_custom = call.capture_stderr
        wasi.stderr_custom = call.capture_stderr
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
        data: dict[str, Any],
        limits: Limits | None = None,
        model: ModelBroker | None = None,
    ) -> Invocation:
        """Run `evaluate` once in a fresh Store. Never raises for anything the guest does."""
        limits = limits or self.limits
        try:
            wit_input = encode_input(data)
        except (TypeError, ValueError) as exc:
            return Invocation.error(ErrorCode.INVALID_OUTPUT, f"input cannot be encoded: {exc}")
        with self._slots:
            started = time.monotonic()
            call = _Call(limits, started + limits.timeout_s, model)
            _current.call = call
            store = None
            try:
                store = self._store(limits, call)
                instance = loaded.linker.instantiate(store, loaded.component)
                raw = instance.get_func(store, "evaluate")(store, wit_input)
                inv = decode_evaluation(raw, limits.max_output_bytes)
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
        return inv
