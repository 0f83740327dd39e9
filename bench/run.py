#!/usr/bin/env python3
"""Vigilo benchmark harness (`make bench`): Vigilo against a peer (promptfoo) and against the limit.

    .venv/bin/python bench/run.py [--sizes 1000 10000 100000] [--modes embedded distributed reuse peer lower]
                                  [--quick] [--machine NAME] [--no-micro] [--keep]

Workload: ../shared/bench/gen_dataset.py (deterministic): N cases, 3 checks each (JSON Schema, regex, substring),
10% fail exactly one. Everything it writes lives in bench/work/ (git-ignored); results go to
bench/results/<date>-<machine>.json and .md. See docs/benchmarks.md for what each number means.

Only the standard library here: Django-side steps run in subprocesses (bench/steps.py) with each mode's
environment, so the embedded and distributed databases never mix and the project's var/ is untouched
(VIGILO_DATA_DIR is bench-local; the build/compile cache VIGILO_CACHE_DIR stays shared at var/cache).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

# The harness's other modules, imported from this script's folder (bench/ is sys.path[0] for `python bench/run.py`):
# config (shared paths, base_env), processes (measured subprocesses, memory sampling, steps.py and manage.py
# calls), cluster (PostgreSQL + RabbitMQ + Celery workers, beat and gunicorn), peer (promptfoo), report
# (summary, bars, .md). This file: the configuration only it uses, prepare, the bench_* modes and main().
from cluster import Cluster
from config import BENCH, PY, REPO, WORK, base_env
from peer import bench_peer
from processes import Sampler, json_tail, log, manage, py_step, run_measured
from report import bars, markdown, summarize

RESULTS = BENCH / "results"
GEN = Path(os.environ.get("VIGILO_BENCH_GEN", str(REPO.parent / "shared" / "bench" / "gen_dataset.py")))

PROFILE = """\
name: bench
min_execution_score: 1.0
dimensions:
  format: {weight: 1.0}
  grounding: {weight: 1.0}
bindings:
  - id: schema
    evaluator: vigilo/json-schema@^2.0
    dimension: format
    config: {expected_path: json_schema}
  - id: citation
    evaluator: vigilo/regex@^2.0
    dimension: format
    config: {expected_path: regex}
  - id: fact
    evaluator: vigilo/contains@^1.0
    dimension: grounding
    config: {expected_path: contains}
"""

# --- data ----------------------------------------------------------------------------------------------------


def prepare(sizes: list[int]) -> dict[int, Path]:
    """Generate the cases (and promptfoo configs) and convert them to Vigilo's dataset format."""
    raw, pf, vg = WORK / "cases", WORK / "promptfoo-config", WORK / "vigilo"
    for d in (raw, pf, vg):
        d.mkdir(parents=True, exist_ok=True)
    todo = [n for n in sizes if not (raw / f"cases_{n}.jsonl").exists() or not (pf / f"tests_{n}.json").exists()]
    if todo:
        subprocess.run(
            [sys.executable, str(GEN), "--n", *map(str, todo), "--jsonl-dir", str(raw), "--pf-dir", str(pf)], check=True
        )
    out = {}
    for n in sizes:
        dst = vg / f"cases_{n}.jsonl"
        with open(raw / f"cases_{n}.jsonl") as src, open(dst, "w") as fh:
            for line in src:
                c = json.loads(line)
                fh.write(
                    json.dumps(
                        {"id": c["id"], "input": c["input"], "expected": c["expected"], "output": {"text": c["output"]}}
                    )
                    + "\n"
                )
        out[n] = dst
    (vg / "profile.yaml").write_text(PROFILE)
    # The same checks with instance reuse allowed (the bundled evaluators are published as pure).
    (vg / "profile-reuse.yaml").write_text(
        PROFILE.replace("name: bench\n", "name: bench-reuse\n") + "options: {instance_reuse: true}\n"
    )
    return out


# --- modes ---------------------------------------------------------------------------------------------------


def embedded_env() -> dict[str, str]:
    env = base_env()
    env.update({"VIGILO_DATA_DIR": str(WORK / "data-embedded"), "VIGILO_EMBEDDED": "true"})
    return env


def bench_embedded(datasets: dict[int, Path]) -> dict:
    env = embedded_env()
    Path(env["VIGILO_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    log("embedded: vigilo_setup (bench-local SQLite)")
    manage(["vigilo_setup"], env)
    out = {}
    for n, path in datasets.items():
        log(f"embedded: N={n} vigilo_run")
        m = run_measured(
            [
                PY,
                "manage.py",
                "vigilo_run",
                "--dataset",
                str(path),
                "--profile",
                str(WORK / "vigilo" / "profile.yaml"),
                "--name",
                f"bench-embedded-{n}",
            ],
            env=env,
            log_path=WORK / f"embedded-{n}.log",
        )
        text = (WORK / f"embedded-{n}.log").read_text(errors="replace")
        m["gate_exit_code"] = m.pop("rc")  # 1 = gate failed, as designed (10% of the cases fail)
        m["ok"] = m["gate_exit_code"] in (0, 1) and "failed" in text
        m["verdict_line"] = next((ln.strip() for ln in text.splitlines() if "executions" in ln.lower()), "")
        log(f"embedded: N={n} {m['wall_s']:.1f} s, peak RSS {m['peak_rss_mb']:.0f} MB, exit {m['gate_exit_code']}")
        out[n] = m
    return out


def bench_distributed(
    cluster: Cluster, datasets: dict[int, Path], out: dict, save, *, mode: str = "distributed"
) -> dict:
    profile = WORK / "vigilo" / ("profile-reuse.yaml" if mode == "reuse" else "profile.yaml")
    for n, path in datasets.items():
        log(f"{mode}: N={n} starting 2 workers (concurrency 1 each) + beat")
        roots = cluster.start()
        with Sampler(roots) as sampler:
            r = py_step(
                [
                    "submit",
                    "--dataset",
                    str(path),
                    "--profile",
                    str(profile),
                    "--name",
                    f"bench-{mode}-{n}",
                ],
                cluster.env,
            )
        cluster.stop()
        r["workers"] = sampler.report()
        r["ok"] = r["state"] == "completed"
        log(
            f"{mode}: N={n} {r['wall_s']:.1f} s ({r['state']}, gate {r['gate']}), worker peak RSS "
            f"{r['workers']['max_process_peak_rss_mb']:.0f} MB per process, "
            f"{r['workers']['peak_of_sum_rss_mb']:.0f} MB all workers"
        )
        out[n] = r
        save()
    return out


def bench_relay(cluster: Cluster, events: int) -> dict:
    log(f"relay: {events} outbox rows through CeleryTransport (confirms) to loopback RabbitMQ")
    r = py_step(["relay", "--events", str(events)], cluster.env)
    cluster.purge()
    log(f"relay: {r['events_per_s']:.0f} events/s")
    return r


def bench_verdict_api(cluster: Cluster, run_id: str, requests: int = 200) -> dict:
    secret = (
        manage(["vigilo_token", "create", f"bench-{uuid.uuid4().hex[:6]}", "--scopes", "read,write"], cluster.env)
        .strip()
        .splitlines()[-1]
    )
    port = 18000 + os.getpid() % 1000
    url = f"http://127.0.0.1:{port}/api/v1/runs/{run_id}/verdict/"
    hdr = {"Authorization": f"Bearer {secret}"}
    with cluster.serve_api(port):
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(urllib.request.Request(url, headers=hdr), timeout=5).read()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        for _ in range(10):  # warm both workers
            urllib.request.urlopen(urllib.request.Request(url, headers=hdr), timeout=5).read()
        lat, size = [], 0
        for _ in range(requests):
            t0 = time.perf_counter()
            body = urllib.request.urlopen(urllib.request.Request(url, headers=hdr), timeout=10).read()
            lat.append((time.perf_counter() - t0) * 1000)
            size = len(body)
    lat.sort()
    r = {
        "requests": requests,
        "p50_ms": lat[len(lat) // 2],
        "p95_ms": lat[int(len(lat) * 0.95) - 1],
        "max_ms": lat[-1],
        "mean_ms": statistics.fmean(lat),
        "body_bytes": size,
        "run_id": run_id,
    }
    log(f"verdict API: p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms ({size} bytes)")
    return r


def bench_lower(datasets: dict[int, Path]) -> dict:
    out = {}
    for n, path in datasets.items():
        res = subprocess.run([PY, str(BENCH / "lower.py"), str(path)], capture_output=True, text=True, check=True)
        r = json_tail(res.stdout)
        r["wall_s"] = r["seconds"]
        out[n] = r
        log(f"lower bound: N={n} {r['seconds']:.3f} s ({r['failed']} failed)")
    return out


def bench_micro(datasets: dict[int, Path], cluster: Cluster | None) -> dict:
    smallest = datasets[min(datasets)]
    env = embedded_env()
    log("micro: SandboxHost steps over 500 invocations")
    out = {"sandbox": py_step(["sandbox", "--dataset", str(smallest), "--invocations", "500"], env)}
    prof = str(WORK / "vigilo" / "profile.yaml")
    log("micro: chunk_record_results per row (SQLite)")
    out["persist_sqlite"] = py_step(["persist", "--dataset", str(smallest), "--profile", prof], env)
    if cluster is not None:
        log("micro: chunk_record_results per row (PostgreSQL)")
        out["persist_postgresql"] = py_step(["persist", "--dataset", str(smallest), "--profile", prof], cluster.env)
        cluster.purge()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument(
        "--modes",
        nargs="+",
        default=["embedded", "distributed", "reuse", "peer", "lower"],
        choices=["embedded", "distributed", "reuse", "peer", "lower"],
    )
    ap.add_argument("--quick", action="store_true", help="sizes 1000 only")
    ap.add_argument("--machine", default=os.environ.get("VIGILO_BENCH_MACHINE", f"python-svc-{os.cpu_count()}c"))
    ap.add_argument("--no-micro", action="store_true", help="skip the sandbox/persistence/relay/API measurements")
    ap.add_argument("--relay-events", type=int, default=10000)
    ap.add_argument(
        "--embedded-sizes", type=int, nargs="*", default=None, help="sizes for the embedded mode (default: --sizes)"
    )
    ap.add_argument("--peer-sizes", type=int, nargs="*", default=None, help="sizes for the peer (default: --sizes)")
    ap.add_argument(
        "--reuse-sizes", type=int, nargs="*", default=None, help="sizes for the reuse mode (default: --sizes)"
    )
    ap.add_argument("--out", default=None, help="results file stem (default: bench/results/<date>-<machine>)")
    ap.add_argument("--render", default=None, metavar="JSON", help="only re-render a results JSON's summary and .md")
    a = ap.parse_args()
    if a.render:
        res = json.loads(Path(a.render).read_text())
        res["summary"], res["bars"] = summarize(res), bars(res)
        Path(a.render).write_text(json.dumps(res, indent=1, default=str) + "\n")
        Path(a.render[: -len(".json")] + ".md").write_text(markdown(res))
        print(markdown(res))
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the cluster is torn down on `kill`
    sizes = [1000] if a.quick else sorted(set(a.sizes))
    WORK.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    datasets = prepare(sizes)
    res: dict = {
        "date": dt.date.today().isoformat(),
        "machine": a.machine,
        "sizes": sizes,
        "modes": a.modes,
        "host": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_start": os.getloadavg(),
        },
        "workload": {
            "generator": str(GEN),
            "bindings": ["vigilo/json-schema", "vigilo/regex", "vigilo/contains"],
            "fail_rate": 0.10,
        },
    }
    stem = a.out or str(RESULTS / f"{res['date']}-{a.machine}")

    def save() -> None:
        res["summary"] = summarize(res)
        res["bars"] = bars(res)
        Path(stem + ".json").write_text(json.dumps(res, indent=1, default=str) + "\n")
        Path(stem + ".md").write_text(markdown(res))

    if "lower" in a.modes:
        res["lower"] = bench_lower(datasets)
    if "peer" in a.modes:
        res["peer"] = bench_peer(a.peer_sizes if a.peer_sizes is not None else sizes)
        save()
    if "embedded" in a.modes:
        emb = {n: datasets[n] for n in (a.embedded_sizes if a.embedded_sizes is not None else sizes) if n in datasets}
        res["embedded"] = bench_embedded(emb)
        save()
    cluster = None
    try:
        if "distributed" in a.modes or "reuse" in a.modes:
            cluster = Cluster()
            cluster.create()
        if not a.no_micro:  # before the big runs, so a long N=100k cannot cost these numbers
            res["micro"] = bench_micro(datasets, cluster)
            if cluster is not None:
                res["relay"] = bench_relay(cluster, a.relay_events)
            save()
        if cluster is not None and "reuse" in a.modes:
            sizes_reuse = a.reuse_sizes if a.reuse_sizes is not None else sizes
            res["reuse"] = {}
            reuse_sets = {n: datasets[n] for n in sizes_reuse if n in datasets}
            bench_distributed(cluster, reuse_sets, res["reuse"], save, mode="reuse")
        if cluster is not None and "distributed" in a.modes:
            res["distributed"] = {}
            bench_distributed(cluster, datasets, res["distributed"], save)
            if not a.no_micro:
                largest = max(datasets)
                run_id = res["distributed"][largest]["run_id"]
                res["verdict_api"] = bench_verdict_api(cluster, run_id)
                res["verdict_api"]["n"] = largest
        res["host"]["loadavg_end"] = os.getloadavg()
        save()
    finally:
        if cluster is not None:
            cluster.destroy()
    print(markdown(res))
    print(f"results: {stem}.json, {stem}.md")


if __name__ == "__main__":
    main()
