"""Django-side steps of the benchmark, run as subprocesses by bench/run.py with the mode's environment.

    python bench/steps.py submit --dataset F --profile F --name N [--timeout S]
        import dataset + profile, run_create (the service), wait until the run is terminal; prints JSON timings
    python bench/steps.py sandbox --dataset F --invocations 500
        micro-benchmark of SandboxHost: the host's own steps timed one by one (encode, store, instantiate, call,
        decode), plus calls on an already used instance (what instance reuse would cost)
    python bench/steps.py persist --dataset F --profile F
        chunk_record_results per result row (25-execution batches, as chunk_evaluate writes them)
    python bench/steps.py relay --events N
        outbox relay throughput: N outbox rows, relay_once with CeleryTransport until drained; the time of each
        of its steps (claim, publish, the wait for the last confirms, mark)
    python bench/steps.py run-id --name N       the id of the newest run with that name

Every command prints one JSON object on its last stdout line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vigilo_project.settings")

import django  # noqa: E402

django.setup()


def _pcts(values: list[float]) -> dict[str, float]:
    v = sorted(values)
    if not v:
        return {}
    return {
        "mean": statistics.fmean(v),
        "p50": v[len(v) // 2],
        "p95": v[min(len(v) - 1, int(len(v) * 0.95))],
        "n": len(v),
    }


def cmd_submit(a: argparse.Namespace) -> dict:
    from runs.models import Run
    from runs.services import dataset_import, profile_import, run_create

    t0 = time.monotonic()
    # Named after the run: each mode imports the dataset itself (one mode must not reuse another's import).
    dataset, _ = dataset_import(name=a.name, text=Path(a.dataset).read_text())
    profile, _ = profile_import(text=Path(a.profile).read_text())
    t_import = time.monotonic()
    run, _ = run_create(dataset_version=dataset, profile_version=profile, name=a.name)
    t_created = time.monotonic()
    first_result = None
    deadline = t0 + a.timeout
    from runs.models import EvaluatorResult

    while True:
        run.refresh_from_db()
        if first_result is None and EvaluatorResult.objects.filter(run=run).exists():
            first_result = time.monotonic()
        if run.is_terminal or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    t_end = time.monotonic()
    from django.db.models import Max

    from runs.models import Chunk

    last_chunk = Chunk.objects.filter(run=run).aggregate(m=Max("completed_at"))["m"]
    finalize_s = (run.finished_at - last_chunk).total_seconds() if run.finished_at and last_chunk else None
    return {
        "finalize_s": finalize_s,
        "run_id": str(run.id),
        "state": run.state,
        "gate": run.gate,
        "counts": (run.verdict or {}).get("counts"),
        "bindings": len(run.pins),
        "executions": run.expected_executions,
        "import_s": t_import - t0,
        "create_s": t_created - t_import,
        "first_result_s": (first_result - t0) if first_result else None,
        "wall_s": t_end - t0,
        "timed_out": not run.is_terminal,
        "terminal": run.state in (Run.State.COMPLETED, Run.State.FAILED, Run.State.CANCELLED),
    }


def _cases(path: str, n: int) -> list[dict]:
    out = []
    with open(path) as fh:
        for line in fh:
            out.append(json.loads(line))
            if len(out) >= n:
                break
    return out


BINDINGS = [
    ("json-schema", {"expected_path": "json_schema"}),
    ("regex", {"expected_path": "regex"}),
    ("contains", {"expected_path": "contains"}),
]


def _loaded() -> list[tuple[str, object, dict]]:
    """The newest published version of each bench evaluator (the native ones, which the bench profile picks)."""
    from evaluators.components import component_load
    from evaluators.models import EvaluatorVersion

    out = []
    for name, config in BINDINGS:
        row = (
            EvaluatorVersion.objects.filter(evaluator__namespace="vigilo", evaluator__name=name).order_by("-id").first()
        )
        out.append((f"vigilo/{name}@{row.version}", component_load(digest=row.digest), config))
    return out


def cmd_sandbox(a: argparse.Namespace) -> dict:
    """Time the steps SandboxHost.evaluate performs, one by one, with the same calls it makes."""
    import wasmtime

    from evaluators.components import default_limits, sandbox_host
    from evaluators.sandbox import abi
    from evaluators.sandbox.decode import decode_evaluation
    from evaluators.sandbox.guest_output import GuestOutput, close_store
    from evaluators.sandbox.host_functions import Call

    host = sandbox_host()
    limits = default_limits()
    loaded = _loaded()
    cases = _cases(a.dataset, max(1, a.invocations // len(loaded)) + 5)
    steps: dict[str, list[float]] = {k: [] for k in ("encode", "store", "instantiate", "call", "decode", "total")}
    reuse_call: list[float] = []
    whole: list[float] = []
    mismatches = 0
    # warm-up: first instantiation of each component pays lazy initialisation
    for _, comp, config in loaded:
        host.evaluate(comp, data={"case": cases[0], "output": cases[0]["output"], "config": config}, limits=limits)
    n = 0
    pc = time.perf_counter
    for case in cases[5:]:
        for _name, comp, config in loaded:
            data = {
                "run_id": "bench",
                "execution_id": "1",
                "attempt": 1,
                "case": case,
                "output": case["output"],
                "config": config,
            }
            call = Call(limits, time.monotonic() + limits.timeout_s, None)
            output = GuestOutput()
            output.into = call.stderr
            with call:
                t0 = pc()
                case_input = abi.CaseInput(data)
                params = case_input.params(config)
                t1 = pc()
                store = host.invoker.store_new(limits, output)
                t2 = pc()
                instance = comp.linker.instantiate(store, comp.component)
                t3 = pc()
                func = instance.get_func(store, "evaluate")
                raw = abi.call_evaluate(func, store, params)
                t4 = pc()
                inv = decode_evaluation(raw, limits.max_output_bytes)
                t5 = pc()
                # what instance reuse would cost: a second call on the same, already used instance
                store.set_fuel(limits.fuel)
                raw2 = abi.call_evaluate(func, store, params)
                case_input.close()
                t6 = pc()
            if decode_evaluation(raw2, limits.max_output_bytes).measurement != inv.measurement:
                mismatches += 1
            for k, v in zip(
                ("encode", "store", "instantiate", "call", "decode", "total"),
                (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0),
                strict=True,
            ):
                steps[k].append(v * 1000)
            reuse_call.append((t6 - t5) * 1000)
            # the public entry point, end to end, for comparison with the sum of the steps
            t7 = pc()
            host.evaluate(comp, data=data, limits=limits)
            whole.append((pc() - t7) * 1000)
            close_store(store, output)
            del instance
            n += 1
            if n >= a.invocations:
                break
        if n >= a.invocations:
            break
    return {
        "invocations": n,
        "evaluators": [name for name, _component, _config in loaded],
        "wasmtime": wasmtime.__version__ if hasattr(wasmtime, "__version__") else None,
        "steps_ms": {k: _pcts(v) for k, v in steps.items()},
        "host_evaluate_ms": _pcts(whole),
        "reused_instance_call_ms": _pcts(reuse_call),
        "reuse_result_mismatches": mismatches,
    }


def cmd_persist(a: argparse.Namespace) -> dict:
    """chunk_record_results on a real claimed chunk: seconds per result row, in batches as the worker writes."""
    from evaluators.sandbox import Invocation
    from gating.profile import profile_parse
    from runs.chunks import chunk_claim, chunk_record_results
    from runs.engine import RESULT_BATCH, result_row
    from runs.models import Chunk, EvaluatorResult, Execution
    from runs.services import dataset_import, profile_import, run_create

    dataset, _ = dataset_import(name=Path(a.dataset).stem, text=Path(a.dataset).read_text())
    profile_v, _ = profile_import(text=Path(a.profile).read_text())
    run, _ = run_create(
        dataset_version=dataset, profile_version=profile_v, name="bench-persist", options={"chunk_size": 500}
    )
    profile = profile_parse(data=profile_v.document)
    chunk = Chunk.objects.filter(run=run).order_by("index").first()
    claim = chunk_claim(chunk_id=chunk.id)
    executions = list(Execution.objects.filter(chunk_id=chunk.id).order_by("ordinal"))
    inv = Invocation(outcome="completed", kind="binary", measurement=True, duration_ms=4.0, fuel_used=1000)
    batch_ms, rows_total, build_ms = [], 0, []
    for start in range(0, len(executions), RESULT_BATCH):
        rows = []
        tb = time.perf_counter()
        for e in executions[start : start + RESULT_BATCH]:
            for binding in profile.bindings:
                row, _ = result_row(
                    execution=e,
                    attempt=claim.attempt,
                    binding=binding,
                    version_id=run.pins[binding.id]["version_id"],
                    blocking=False,
                    inv=inv,
                )
                rows.append(row)
        build_ms.append((time.perf_counter() - tb) * 1000)
        t0 = time.perf_counter()
        chunk_record_results(claim=claim, results=rows)
        batch_ms.append((time.perf_counter() - t0) * 1000)
        rows_total += len(rows)
    # the same batches again: the idempotent no-op path (a redelivered chunk)
    stored = EvaluatorResult.objects.filter(run=run).count()
    from runs.services import run_cancel

    run_cancel(run_id=run.id, reason="benchmark scratch run")
    return {
        "rows": rows_total,
        "stored": stored,
        "batch_rows": RESULT_BATCH * len(profile.bindings),
        "batch_write_ms": _pcts(batch_ms),
        "row_build_ms_per_row": sum(build_ms) / max(rows_total, 1),
        "write_ms_per_row": sum(batch_ms) / max(rows_total, 1),
        "vendor": __import__("django.db", fromlist=["connection"]).connection.vendor,
    }


def cmd_relay(a: argparse.Namespace) -> dict:
    from django.db import transaction

    from outbox.models import OutboxEvent
    from outbox.relay import relay_once
    from outbox.services import Message, outbox_write
    from outbox.transport.rabbitmq import CeleryTransport

    tag = f"{os.getpid()}-{time.time_ns()}"
    # Work messages to a scratch queue-less exchange would be dropped unroutable; use the real `executions`
    # queue while no worker consumes it (the caller purges it afterwards), so every publish is a persisted,
    # routed, confirmed message like a real dispatch.
    msgs = [
        Message(
            topic="chunk.ready",
            dedupe_key=f"bench:{tag}:{i}",
            payload={"task": "runs.process_chunk", "args": [-1], "run_id": "bench"},
            shard=i % 128,
        )
        for i in range(a.events)
    ]
    t0 = time.perf_counter()
    with transaction.atomic():
        outbox_write(messages=msgs)
    t_write = time.perf_counter() - t0
    steps = _time_relay_steps()
    transport = CeleryTransport()
    t1 = time.perf_counter()
    published = 0
    passes = 0
    while True:
        n = relay_once(transport=transport)
        passes += 1
        published += n
        if n == 0 and not OutboxEvent.objects.filter(dedupe_key__startswith=f"bench:{tag}:", status="pending").exists():
            break
        if time.perf_counter() - t1 > 600:
            break
    dt = time.perf_counter() - t1
    return {
        "events": a.events,
        "published": published,
        "relay_s": dt,
        "events_per_s": published / dt if dt else None,
        "write_s": t_write,
        "passes": passes,
        "steps_s": dict(steps),
    }


def _time_relay_steps() -> dict[str, float]:
    """Seconds spent in each step of `relay_once`, summed over the drain: the functions it calls, wrapped here.

    claim (`outbox_claim`), publish (the session's publish, including `confirm_wait`, the wait for the batch's
    last confirms after its last message went out) and mark (`outbox_mark_published`).
    """
    import outbox.relay
    from outbox.transport.rabbitmq import _ConfirmSession

    spent = {"claim": 0.0, "publish": 0.0, "confirm_wait": 0.0, "mark": 0.0}

    def timed(owner: object, name: str, step: str) -> None:
        inner = getattr(owner, name)

        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[step] += time.perf_counter() - t

        setattr(owner, name, wrapper)

    timed(outbox.relay, "outbox_claim", "claim")
    timed(outbox.relay, "outbox_mark_published", "mark")
    timed(_ConfirmSession, "publish", "publish")
    timed(_ConfirmSession, "_wait_for_confirms", "confirm_wait")
    return spent


def cmd_run_id(a: argparse.Namespace) -> dict:
    from runs.models import Run

    run = Run.objects.filter(name=a.name).order_by("-created_at").first()
    return {"run_id": str(run.id) if run else None, "executions": run.expected_executions if run else None}


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("submit")
    s.add_argument("--dataset", required=True)
    s.add_argument("--profile", required=True)
    s.add_argument("--name", required=True)
    s.add_argument("--timeout", type=float, default=7200)
    s = sub.add_parser("sandbox")
    s.add_argument("--dataset", required=True)
    s.add_argument("--invocations", type=int, default=500)
    s = sub.add_parser("persist")
    s.add_argument("--dataset", required=True)
    s.add_argument("--profile", required=True)
    s = sub.add_parser("relay")
    s.add_argument("--events", type=int, default=5000)
    s = sub.add_parser("run-id")
    s.add_argument("--name", required=True)
    a = p.parse_args()
    out = {
        "submit": cmd_submit,
        "sandbox": cmd_sandbox,
        "persist": cmd_persist,
        "relay": cmd_relay,
        "run-id": cmd_run_id,
    }[a.cmd](a)
    sys.stdout.write(json.dumps(out, default=str) + "\n")


if __name__ == "__main__":
    main()
