"""What a guest can call on the host: the contract's `log` and `model` capabilities and the clocks, linked with
Wasmtime's WASI (deny-all) by `linker_build`. The host functions reach the invocation they serve, its limits,
logs and model grant (`Call`), through a thread-local that `with call:` binds for the duration of the call.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

import wasmtime
from wasmtime import component as wc

from evaluators.sandbox.contract import IMPORT_LOG, IMPORT_MODEL, ContractInfo
from evaluators.sandbox.limits import Limits


class CapabilityDenied(Exception):
    """Raised by a host function the binding did not grant; ends the invocation as `capability_denied`."""


class SandboxDenied(Exception):
    """Raised by a host function the sandbox never allows (e.g. blocking sleeps); ends as `trap`."""


class ModelCallFailed(Exception):
    """A model call that did not produce a completion; its message goes back to the guest."""


class ModelBroker(Protocol):
    """Host side of the `model` capability (LLM calls), bound to one invocation's grant."""

    def complete(self, *, request: dict[str, Any], deadline: float) -> dict[str, Any]:
        """Return a completion dict, or raise `ModelCallFailed` (its message goes back to the guest)."""
        ...


class Call:
    """One invocation's state: its limits and deadline, the logs and output it produced, its model grant."""

    def __init__(self, limits: Limits, deadline: float, model: ModelBroker | None) -> None:
        self.limits = limits
        self.deadline = deadline
        self.model = model
        self.logs: list[dict[str, str]] = []
        self.logs_truncated = False
        self.stderr = bytearray()  # the guest's stdout and stderr (see guest_output)
        self.denied: str | None = None
        self.model_usage: list[dict[str, Any]] = []

    def __enter__(self) -> Call:
        _current.call = self
        return self

    def __exit__(self, *exc: object) -> None:
        _current.call = None

    def log(self, level: str, message: str) -> None:
        if len(self.logs) >= self.limits.max_log_messages:
            self.logs_truncated = True
            return
        encoded = message.encode("utf-8", "replace")
        if len(encoded) > self.limits.max_log_bytes:
            message = encoded[: self.limits.max_log_bytes].decode("utf-8", "ignore")
            self.logs_truncated = True
        self.logs.append({"level": str(level), "message": message})


_current = threading.local()


def _call() -> Call:
    call = getattr(_current, "call", None)
    if not isinstance(call, Call):  # pragma: no cover - host functions only run inside a call
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
    completion = {
        "content": done["content"],
        "model": done["model"],
        "input-tokens": int(done["input_tokens"]),
        "output-tokens": int(done["output_tokens"]),
        "cached": bool(done["cached"]),
    }
    rec = wc.Record()
    for name, value in completion.items():  # WIT field names, some not Python identifiers
        setattr(rec, name, value)
    return rec


def _deny_sleep(*_args: Any) -> None:
    raise SandboxDenied("evaluators may not sleep or wait on clocks")


def _now(_store: Any) -> int:
    return time.monotonic_ns()


def _resolution(_store: Any) -> int:
    return 1


def linker_build(engine: wasmtime.Engine, contract: ContractInfo) -> wc.Linker:
    """A linker for a component with `contract`: WASI, the capabilities, and clocks that never block."""
    linker = wc.Linker(engine)
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
                    clock.add_func("now", _now)
                    clock.add_func("resolution", _resolution)
                    clock.add_func("subscribe-instant", _deny_sleep)
                    clock.add_func("subscribe-duration", _deny_sleep)
    linker.allow_shadowing = False
    return linker
