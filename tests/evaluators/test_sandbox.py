"""The sandbox against hostile guests: every attack ends as a stable error code, and the host stays usable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evaluators.build import component_build
from evaluators.sandbox import ComponentRejected, Limits, ModelCallFailed
from tests.support.paths import BUILD_CACHE, GUESTS
from tests.support.wasm import load

CASE = {"id": "c1", "input": "q", "expected": None}


def run(host, loaded, attack: str, limits: Limits | None = None, model=None):
    data = {
        "run_id": "r",
        "execution_id": "e",
        "attempt": 1,
        "case": CASE,
        "output": {"text": "ok"},
        "config": {"attack": attack},
    }
    return host.evaluate(loaded, data=data, limits=limits, model=model)


@pytest.fixture(scope="module")
def hostile(host, hostile_wasm):
    return load(host, hostile_wasm)


def assert_host_still_works(host, loaded):
    inv = run(host, loaded, "none")
    assert (inv.outcome, inv.kind, inv.measurement, inv.error_code) == ("completed", "binary", True, None)


def test_normal_evaluation_reports_measurement_and_fuel(host, hostile):
    inv = run(host, hostile, "none")
    assert inv.outcome == "completed" and inv.measurement is True
    assert 0 < inv.fuel_used < host.limits.fuel


def test_infinite_loop_ends_as_timeout_within_the_wall_bound(host, hostile):
    limits = Limits(timeout_s=0.3, fuel=10**15)
    inv = run(host, hostile, "loop", limits)
    assert inv.error_code == "timeout", inv.error_message
    assert "0.3 s" in inv.error_message
    assert_host_still_works(host, hostile)


def test_infinite_loop_ends_as_fuel_exhausted_when_fuel_is_the_tighter_bound(host, hostile):
    inv = run(host, hostile, "loop", Limits(fuel=50_000_000, timeout_s=30))
    assert inv.error_code == "fuel_exhausted"
    assert inv.fuel_used == 50_000_000
    assert_host_still_works(host, hostile)


def test_unbounded_memory_growth_ends_as_memory_limit(host, hostile):
    inv = run(host, hostile, "memory", Limits(memory_mb=32))
    assert inv.error_code == "memory_limit", inv.error_message
    assert "32 MiB" in inv.error_message
    assert_host_still_works(host, hostile)


def test_explicit_trap_is_reported_with_the_guest_exception(host, hostile):
    inv = run(host, hostile, "trap")
    assert inv.error_code == "trap"
    assert inv.error_message == "evaluator raised RuntimeError: deliberate failure"
    assert any(line["level"] == "stderr" and "Traceback" in line["message"] for line in inv.logs)
    assert_host_still_works(host, hostile)


def test_opening_a_file_fails_inside_the_guest_and_leaks_nothing(host, hostile):
    inv = run(host, hostile, "file")
    assert inv.error_code == "trap"
    assert "FileNotFoundError" in inv.error_message
    assert "root:" not in json.dumps(inv.__dict__, default=str)
    assert_host_still_works(host, hostile)


def test_environment_variables_are_empty_inside_the_guest(host, hostile, monkeypatch):
    monkeypatch.setenv("VIGILO_SECRET_PROBE", "hunter2")
    inv = run(host, hostile, "env")
    assert (inv.outcome, inv.measurement) == ("completed", True)
    assert inv.findings[0]["message"] == "[]"


def test_sleeping_is_refused_instead_of_blocking_the_worker(host, hostile):
    inv = run(host, hostile, "sleep", Limits(timeout_s=5))
    assert inv.error_code == "trap"
    assert inv.duration_ms < 5000
    assert_host_still_works(host, hostile)


def test_ten_thousand_log_lines_are_capped_and_marked_truncated(host, hostile):
    inv = run(host, hostile, "logs")
    assert inv.outcome == "completed"
    assert len(inv.logs) == 128
    assert inv.logs[0] == {"level": "info", "message": "line 0"}
    assert inv.logs_truncated is True


def test_a_huge_log_line_is_cut_to_the_byte_limit(host, hostile):
    inv = run(host, hostile, "huge_log", Limits(max_log_bytes=4096))
    assert len(inv.logs[0]["message"]) == 4096
    assert inv.logs_truncated is True


def test_oversized_output_is_invalid_output(host, hostile):
    inv = run(host, hostile, "oversized")
    assert inv.error_code == "invalid_output"
    assert "exceeds the limit of 1048576 bytes" in inv.error_message
    assert_host_still_works(host, hostile)


def test_each_invocation_gets_a_fresh_instance(host, hostile):
    first, second = run(host, hostile, "state"), run(host, hostile, "state")
    assert (first.explanation, second.explanation) == ("1", "1")


def test_describe_returns_the_guest_info(host, hostile):
    assert host.describe(hostile) == {
        "name": "tests/hostile",
        "version": "1.0.0",
        "description": "misbehaves on request",
        "config_schema": None,
    }


def test_a_non_wasm_file_is_refused(host):
    with pytest.raises(ComponentRejected, match="not a WebAssembly file"):
        host.inspect(b"#!/bin/sh\necho hi\n")


def test_a_core_module_is_refused(host, tmp_path):
    wat = tmp_path / "core.wat"
    wat.write_text('(module (func (export "evaluate") (result i32) i32.const 1))')
    wasm_tools = Path(sys.executable).parent / "wasm-tools"
    core = subprocess.run([wasm_tools, "parse", str(wat)], capture_output=True, check=True).stdout
    with pytest.raises(ComponentRejected, match="core WebAssembly module, not a component"):
        host.inspect(core)


def test_a_component_of_another_world_is_refused(host):
    src = GUESTS / "otherworld"
    wasm = component_build(source_dir=src, cache_dir=BUILD_CACHE, world="other", wit_dir=src / "wit").read_bytes()
    with pytest.raises(ComponentRejected, match="does not export describe, evaluate"):
        host.inspect(wasm)


@pytest.fixture(scope="module")
def model_probe(host):
    wasm = component_build(
        source_dir=GUESTS / "model_probe", cache_dir=BUILD_CACHE, world="model-evaluator"
    ).read_bytes()
    return load(host, wasm)


def test_model_evaluator_lists_the_model_capability(model_probe):
    assert model_probe.contract.world == "model-evaluator"
    assert model_probe.contract.capabilities == ("log", "model")


def test_calling_model_without_a_grant_is_capability_denied(host, model_probe):
    inv = run(host, model_probe, "none")
    assert inv.error_code == "capability_denied"
    assert "does not grant the `model` capability" in inv.error_message


class FixedBroker:
    def __init__(self, answer: str | None) -> None:
        self.answer = answer

    def complete(self, *, request, deadline):
        if self.answer is None:
            raise ModelCallFailed("provider unavailable")
        return {
            "content": self.answer,
            "model": request["model"],
            "input_tokens": 3,
            "output_tokens": 1,
            "cached": False,
        }


def test_a_granted_model_call_reaches_the_broker_and_its_usage_is_recorded(host, model_probe):
    inv = run(host, model_probe, "none", model=FixedBroker("yes"))
    assert (inv.outcome, inv.measurement, inv.explanation) == ("completed", True, "yes")
    assert inv.model_usage == [
        {"content": "yes", "model": "judge-default", "input_tokens": 3, "output_tokens": 1, "cached": False}
    ]


def test_a_failed_model_call_returns_the_error_to_the_guest(host, model_probe):
    inv = run(host, model_probe, "none", model=FixedBroker(None))
    assert inv.outcome == "abstained"
    assert inv.abstention == {"category": "model_error", "reason": "provider unavailable"}


@pytest.mark.parametrize("pooling", [True, False])
def test_fresh_instances_start_clean_with_and_without_the_pooling_allocator(hostile_wasm, pooling):
    """Pooled slots are reused, and a memory is reset in place: a reused slot must not carry the last case's state."""
    from evaluators.sandbox import SandboxHost

    host = SandboxHost(limits=Limits(), cache_dir=BUILD_CACHE.parent / "cwasm", pooling=pooling)
    try:
        assert host.pooling is pooling
        loaded = load(host, hostile_wasm)
        counts = [run(host, loaded, "state").explanation for _ in range(20)]
        assert counts == ["1"] * 20
        hoarded = run(host, loaded, "memory", Limits(memory_mb=32))
        assert hoarded.error_code == "memory_limit"
        assert run(host, loaded, "state").explanation == "1"  # the slot the memory bomb used is clean again
    finally:
        host.close()


def test_under_an_address_space_limit_the_host_allocates_on_demand_instead_of_aborting(hostile_wasm, tmp_path):
    """libwasmtime aborts the process when the pool cannot reserve its address space: the host must not try."""
    wasm = tmp_path / "hostile.wasm"
    wasm.write_bytes(hostile_wasm)
    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (16 << 30, 16 << 30))\n"
        "from evaluators.sandbox import SandboxHost\n"
        "from tests.support.wasm import load\n"
        "host = SandboxHost()\n"
        "inv = host.evaluate(load(host, open(sys.argv[1], 'rb').read()), data={'output': {'text': 'ok'}})\n"
        "print(host.pooling, inv.measurement)\n"
    )
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script, str(wasm)], cwd=repo, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "True"]
    assert "instances are allocated on demand" in done.stderr
