"""A guest's output reaches the invocation, and Wasmtime has released its Store's callbacks when a call returns.

Wasmtime runs the output callbacks on its own threads, the last one after the Store is closed; one still pending
at interpreter exit aborted the process (exit 134). These tests hold the sandbox to the invariant that prevents
it: between calls, only the Stores someone keeps open (a reused instance) have streams Wasmtime can call back.
"""

from __future__ import annotations

import pytest

from evaluators.sandbox import Limits, SandboxHost
from evaluators.sandbox.guest_output import STDERR_CAP, streams_open
from tests.support.paths import BUILD_CACHE
from tests.support.wasm import load

ATTACKS = ["none", "print", "value_error", "file", "memory_error", "memory", "loop", "sleep"]


def data(attack: str) -> dict:
    return {"case": {"id": "c1", "input": "q"}, "output": {"text": "ok"}, "config": {"attack": attack}}


@pytest.fixture(scope="module")
def hostile(host, hostile_wasm):
    return load(host, hostile_wasm)


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_fresh_invocation_leaves_no_stream_behind(host, hostile, attack):
    before = streams_open()
    inv = host.evaluate(hostile, data=data(attack), limits=Limits(memory_mb=32, fuel=50_000_000))
    assert inv.outcome == ("completed" if attack in ("none", "print") else "error"), inv.error_message
    assert streams_open() == before


def test_output_past_the_cap_is_dropped_and_the_call_completes(host, hostile):
    inv = host.evaluate(hostile, data=data("print"))
    assert (inv.outcome, inv.measurement) == ("completed", True)
    [output] = [line["message"] for line in inv.logs if line["level"] == "stderr"]
    assert len(output.encode()) == STDERR_CAP
    assert output.startswith("debug line 0 ") and "debug line 1 " in output


def test_a_trap_reports_what_the_guest_printed_last(host, hostile):
    inv = host.evaluate(hostile, data=data("value_error"))
    assert (inv.error_code, inv.error_message) == ("trap", "evaluator raised ValueError: deliberately bad value")


def test_a_reused_instance_keeps_its_streams_until_it_is_closed(host, hostile):
    before = streams_open()
    reused = host.reusable(hostile)
    assert reused.evaluate(data=data("print")).outcome == "completed"
    assert streams_open() == before + 2  # the kept Store's stdout and stderr
    assert reused.evaluate(data=data("value_error")).error_code == "trap"  # an error closes the instance
    assert streams_open() == before
    assert reused.evaluate(data=data("none")).outcome == "completed"
    reused.close()
    assert streams_open() == before


def test_closing_the_host_closes_the_instances_it_lent_and_refuses_further_calls(hostile_wasm):
    host = SandboxHost(limits=Limits(), cache_dir=BUILD_CACHE.parent / "cwasm")
    loaded = load(host, hostile_wasm)
    before = streams_open()
    reused = host.reusable(loaded)
    assert reused.evaluate(data=data("none")).outcome == "completed"
    assert streams_open() == before + 2

    host.close()

    assert streams_open() == before
    with pytest.raises(RuntimeError, match="closed"):
        host.evaluate(loaded, data=data("none"))
    host.close()  # idempotent
