"""Naming what ended a call that did not return: a Wasmtime trap or a host failure becomes an `Invocation`
error with a stable code, told apart by Wasmtime's message and what the guest printed on its way out."""

from __future__ import annotations

from evaluators.sandbox.invocation import Invocation
from evaluators.sandbox.limits import ErrorCode, Limits


def classify_trap(exc: BaseException, *, stderr: str, limits: Limits) -> Invocation:
    """The error result for `exc`, raised by a call under `limits`; `stderr` is the guest's captured output."""
    text = str(exc)
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
