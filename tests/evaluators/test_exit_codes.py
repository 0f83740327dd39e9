"""Commands exit with their documented code after an evaluator traps, every time: never 134 (SIGABRT).

A trapping guest writes its traceback through WASI, and Wasmtime delivers that output on its own threads; a
callback left pending when the process exited made libwasmtime abort (see evaluators/sandbox/guest_output.py).
So each command runs as a real process, several times over, on guests that trap in every way the sandbox
names, and the exit code is checked against the table in vigilo_project/exitcodes.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from evaluators.sandbox.guest_output import STDERR_CAP
from evaluators.services import evaluator_version_publish
from tests.support.distributed import test_database_url
from tests.support.paths import REPO
from vigilo_project import exitcodes

REPEAT = 5  # the abort came in most runs, not all: one clean run proves little
PARALLEL = 2  # command processes at a time: each spends most of its second starting Django
ABORT = "panic in a function that cannot unwind"

# (id, the hostile guest's attack, the settings the command runs with, the error code it must report)
TRAPS = [
    ("python-exception", "value_error", {}, "trap"),
    ("open-etc-passwd", "file", {}, "trap"),
    ("memory-error", "memory_error", {}, "memory_limit"),
    ("out-of-memory", "memory", {"VIGILO_MEMORY_MB": "32"}, "memory_limit"),
    ("fuel-exhausted", "loop", {"VIGILO_FUEL": "50000000"}, "fuel_exhausted"),
    ("timeout", "loop", {"VIGILO_TIMEOUT_S": "0.3", "VIGILO_FUEL": str(10**15)}, "timeout"),
]


def manage(*args: str, env: dict[str, str] | None = None, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env={**os.environ, "VIGILO_EMBEDDED": "true", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def repeated(times: int, command: Callable[[int], subprocess.CompletedProcess[str]]):
    """`command(i)` for i in range(times), a few processes at a time, in order."""
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        return list(pool.map(command, range(times)))


def described(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\n--- stdout ---\n{done.stdout[-3000:]}\n--- stderr ---\n{done.stderr[-3000:]}"


@pytest.fixture(scope="module")
def hostile_path(hostile_wasm, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("exit-codes") / "hostile.wasm"
    path.write_bytes(hostile_wasm)
    return path


@pytest.fixture(scope="module")
def case_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("exit-codes") / "case.json"
    path.write_text(json.dumps({"id": "c1", "input": "q", "expected": None, "output": {"text": "ok"}}))
    return path


def evaluator_try(wasm: Path, case: Path, attack: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return manage(
        "evaluator_try", str(wasm), "--input", str(case), "--config", json.dumps({"attack": attack}), "--json", env=env
    )


@pytest.mark.parametrize(("attack", "env", "code"), [t[1:] for t in TRAPS], ids=[t[0] for t in TRAPS])
def test_evaluator_try_exits_1_after_every_kind_of_trap(hostile_path, case_path, attack, env, code):
    def attempt(i: int) -> subprocess.CompletedProcess[str]:
        pooling = {"VIGILO_SANDBOX_POOLING": "true" if i % 2 == 0 else "false"}
        return evaluator_try(hostile_path, case_path, attack, {**env, **pooling})

    for i, done in enumerate(repeated(REPEAT, attempt)):
        assert done.returncode == exitcodes.FAILED, f"run {i + 1} of {REPEAT}: {described(done)}"
        assert ABORT not in done.stderr
        result = json.loads(done.stdout)
        assert (result["outcome"], result["error_code"]) == ("error", code)


def test_evaluator_try_exits_0_when_the_guest_printed_more_than_is_kept(hostile_path, case_path):
    for i, done in enumerate(repeated(2, lambda _: evaluator_try(hostile_path, case_path, "print", {}))):
        assert done.returncode == exitcodes.OK, f"run {i + 1}: {described(done)}"
        result = json.loads(done.stdout)
        assert (result["outcome"], result["measurement"]) == ("completed", True)
        output = [line["message"] for line in result["logs"] if line["level"] == "stderr"]
        assert len(output) == 1 and len(output[0].encode()) == STDERR_CAP  # the start of ~23 KB printed
        assert output[0].startswith("debug line 0 zzz")


# -- vigilo_run, embedded -----------------------------------------------------------------------------------

TRAPPING_PROFILE = """
name: traps
min_execution_score: 1.0
dimensions:
  safety: {weight: 1.0}
bindings:
  - {id: value-error, evaluator: tests/hostile@^1.0, dimension: safety, config: {attack: value_error}}
  - {id: open-file, evaluator: tests/hostile@^1.0, dimension: safety, config: {attack: file}}
  - {id: memory-error, evaluator: tests/hostile@^1.0, dimension: safety, config: {attack: memory_error}}
  - id: out-of-memory
    evaluator: tests/hostile@^1.0
    dimension: safety
    config: {attack: memory}
    limits: {memory_mb: 32}
  - id: fuel
    evaluator: tests/hostile@^1.0
    dimension: safety
    config: {attack: loop}
    limits: {fuel: 50000000}
  - id: timeout
    evaluator: tests/hostile@^1.0
    dimension: safety
    config: {attack: loop}
    limits: {timeout_s: 0.3, fuel: 1000000000000000}
"""

EXACT_PROFILE = """
name: big-output
min_execution_score: 1.0
dimensions:
  correctness: {weight: 1.0}
bindings:
  - {id: answer, evaluator: vigilo/exact-match@^1.0, dimension: correctness}
"""


def database_url() -> str:
    """This test's database, for the command processes (the rows the test commits are visible to them)."""
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return test_database_url()


def vigilo_run(
    tmp_path: Path, cases: list[dict[str, Any]], profile: str, tag: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    dataset = tmp_path / f"{tag}.jsonl"
    dataset.write_text("".join(json.dumps(c) + "\n" for c in cases))
    (tmp_path / f"{tag}.yaml").write_text(profile)
    report = tmp_path / f"{tag}.json"
    done = manage(
        "vigilo_run",
        "--dataset",
        str(dataset),
        "--profile",
        str(tmp_path / f"{tag}.yaml"),
        "--json",
        str(report),
        "--timeout",
        "90",
        env={"DATABASE_URL": database_url(), **(env or {})},
        timeout_s=180,
    )
    return done, json.loads(report.read_text()) if report.exists() else {}


@pytest.mark.embedded
@pytest.mark.django_db(transaction=True)
def test_vigilo_run_exits_1_when_every_binding_traps(hostile_wasm, tmp_path):
    evaluator_version_publish(name="tests/hostile", version="1.0.0", wasm=hostile_wasm)
    cases = [{"id": f"c{i}", "input": "q", "expected": None, "output": {"text": "ok"}} for i in range(2)]
    for i in range(2):
        done, report = vigilo_run(tmp_path, cases, TRAPPING_PROFILE, f"traps-{i}")
        assert done.returncode == exitcodes.FAILED, described(done)
        assert ABORT not in done.stderr
        assert report["verdict"]["gate"] == "fail"
        codes = {r["binding"]: r["error_code"] for e in report["executions"] for r in e["results"]}
        assert codes == {
            "value-error": "trap",
            "open-file": "trap",
            "memory-error": "memory_limit",
            "out-of-memory": "memory_limit",
            "fuel": "fuel_exhausted",
            "timeout": "timeout",
        }


@pytest.mark.embedded
@pytest.mark.django_db(transaction=True)
def test_vigilo_run_exits_1_when_an_output_of_30_mb_exhausts_the_evaluator(bundled_wasm, tmp_path):
    evaluator_version_publish(name="vigilo/exact-match", version="1.0.0", wasm=bundled_wasm["exact-match"], pure=True)
    cases = [{"id": "big", "input": "q", "expected": "Yes", "output": {"text": "y" * (30 << 20)}}]
    larger_cases = {"VIGILO_MAX_CASE_BYTES": str(48 << 20)}  # the default refuses a case this large at import
    for i in range(2):
        done, report = vigilo_run(tmp_path, cases, EXACT_PROFILE, f"big-{i}", larger_cases)
        assert done.returncode == exitcodes.FAILED, described(done)
        assert ABORT not in done.stderr
        [execution] = report["executions"]
        assert [r["error_code"] for r in execution["results"]] == ["memory_limit"]
