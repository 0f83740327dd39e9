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
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / "work"
RESULTS = BENCH / "results"
PY = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else sys.executable
CELERY = str(Path(PY).parent / "celery")
GUNICORN = str(Path(PY).parent / "gunicorn")
GEN = Path(os.environ.get("VIGILO_BENCH_GEN", str(REPO.parent / "shared" / "bench" / "gen_dataset.py")))
PROMPTFOO_VERSION = "0.121.20"
PG_URL = os.environ.get("VIGILO_BENCH_PG", "postgres://postgres@127.0.0.1:5432/postgres")
BROKER = os.environ.get("VIGILO_BENCH_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
BENCH_DB = "vigilo_bench"
BINDINGS = 3

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


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- processes and memory ----------------------------------------------------------------------------------


def run_measured(
    argv: list[str], *, env: dict[str, str], cwd: Path = REPO, log_path: Path | None = None, timeout_s: float = 7200
) -> dict:
    """Run a command to completion: wall time, exit code, peak RSS of it and its waited-for descendants."""
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    tree_peak = {"kb": 0}
    stop = threading.Event()

    def sample() -> None:  # the whole tree's summed RSS, for tools that spread over several processes
        while not stop.wait(0.2):
            tree_peak["kb"] = max(tree_peak["kb"], sum(rss_kb(p)[0] for p in tree(proc.pid)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    timer = threading.Timer(timeout_s, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    timer.cancel()
    stop.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if log_path:
        out.close()
    return {
        "wall_s": wall,
        "rc": proc.returncode,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "tree_peak_rss_mb": tree_peak["kb"] / 1024,
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


def children(pid: int) -> list[int]:
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out += [int(x) for x in fh.read().split()]
    except OSError:
        pass
    return out


def tree(pid: int) -> list[int]:
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += children(p)
    return seen


def rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in kB, zeros for a process that is gone."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


class Sampler:
    """Samples the worker process trees: each process's VmHWM, and the peak of their summed VmRSS."""

    def __init__(self, roots: list[int]) -> None:
        self.roots = roots
        self.hwm: dict[int, int] = {}
        self.sum_peak = 0
        self.stop_ev = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while True:
            total = 0
            for root in self.roots:
                for p in tree(root):
                    rss, hwm = rss_kb(p)
                    total += rss
                    if hwm:
                        self.hwm[p] = max(self.hwm.get(p, 0), hwm)
            self.sum_peak = max(self.sum_peak, total)
            if self.stop_ev.wait(0.25):
                return

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_ev.set()
        self.thread.join()

    def report(self) -> dict:
        return {
            "max_process_peak_rss_mb": max(self.hwm.values(), default=0) / 1024,
            "sum_of_peaks_mb": sum(self.hwm.values()) / 1024,
            "peak_of_sum_rss_mb": self.sum_peak / 1024,
            "processes": len(self.hwm),
        }


def json_tail(text: str) -> dict:
    for raw in reversed(text.strip().splitlines()):
        line = raw.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no JSON in output:\n{text[-3000:]}")


def py_step(args: list[str], env: dict[str, str], timeout_s: float = 7200) -> dict:
    res = subprocess.run(
        [PY, str(BENCH / "steps.py"), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"steps.py {args[0]} failed ({res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}")
    return json_tail(res.stdout)


def manage(args: list[str], env: dict[str, str], timeout_s: float = 1800) -> str:
    res = subprocess.run(
        [PY, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if res.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res.stdout


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


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "VIGILO_EMBEDDED")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "vigilo_project.settings",
            "VIGILO_CACHE_DIR": os.environ.get("VIGILO_CACHE_DIR", str(REPO / "var" / "cache")),
            "VIGILO_LOG_LEVEL": "WARNING",
            "VIGILO_TASK_EVENTS": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


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


class Cluster:
    """PostgreSQL database + RabbitMQ vhost of the bench's own, two workers and one beat (as tests/distributed)."""

    def __init__(self) -> None:
        self.vhost = f"vigilo-bench-{uuid.uuid4().hex[:8]}"
        p = urlsplit(PG_URL)
        self.db_url = urlunsplit((p.scheme, p.netloc, "/" + BENCH_DB, "", ""))
        b = urlsplit(BROKER)
        self.broker_url = urlunsplit((b.scheme, b.netloc, "/" + quote(self.vhost, safe=""), "", ""))
        self.procs: list[tuple[str, subprocess.Popen, object]] = []
        self.logdir = WORK / "distributed"
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.env = base_env()
        self.env.update(
            {
                "DATABASE_URL": self.db_url,
                "CELERY_BROKER_URL": self.broker_url,
                "VIGILO_EMBEDDED": "false",
                "VIGILO_DATA_DIR": str(WORK / "data-distributed"),
                "VIGILO_BEAT_SCHEDULE_FILE": str(self.logdir / "celerybeat-schedule"),
            }
        )

    def psql(self, sql: str) -> None:
        subprocess.run(["psql", PG_URL, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], check=True, capture_output=True)

    def create(self) -> None:
        self.psql(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        self.psql(f"CREATE DATABASE {BENCH_DB}")
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", self.vhost], check=True, capture_output=True)
        user = urlsplit(BROKER).username or "guest"
        subprocess.run(
            ["rabbitmqctl", "-q", "set_permissions", "-p", self.vhost, user, ".*", ".*", ".*"],
            check=True,
            capture_output=True,
        )
        Path(self.env["VIGILO_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
        log(f"distributed: database {BENCH_DB}, vhost {self.vhost}; vigilo_setup")
        manage(["vigilo_setup"], self.env)

    def start(self, workers: int = 2, concurrency: int = 1) -> list[int]:
        roots = []
        for i in range(1, workers + 1):
            name = f"w{i}"
            argv = [
                CELERY,
                "-A",
                "vigilo_project",
                "worker",
                "-Q",
                "executions,outbox,default",
                "-n",
                f"bench-{name}-{uuid.uuid4().hex[:6]}@%h",
                "--concurrency",
                str(concurrency),
                "-l",
                "info",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
            roots.append(self._spawn(name, argv))
        self._spawn(
            "beat",
            [
                CELERY,
                "-A",
                "vigilo_project",
                "beat",
                "-l",
                "info",
                "-s",
                str(self.logdir / "celerybeat-schedule"),
                "--pidfile",
                str(self.logdir / "beat.pid"),
            ],
        )
        deadline = time.monotonic() + 90
        for name, _, _ in self.procs:
            if not name.startswith("w"):
                continue
            while " ready." not in (self.logdir / f"{name}.log").read_text(errors="replace"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker {name} not ready:\n{(self.logdir / f'{name}.log').read_text()[-3000:]}")
                time.sleep(0.25)
        return roots

    def _spawn(self, name: str, argv: list[str]) -> int:
        fh = open(self.logdir / f"{name}.log", "wb")  # noqa: SIM115
        p = subprocess.Popen(argv, cwd=REPO, env=self.env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((name, p, fh))
        return p.pid

    def stop(self) -> None:
        for _, p, _fh in self.procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for _, p, fh in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
            fh.close()
        self.procs = []

    def purge(self) -> None:
        code = (
            "from kombu import Connection\nimport sys\nwith Connection(sys.argv[1]) as c:\n ch=c.channel()\n"
            " for q in ('executions','outbox','default'):\n  try: ch.queue_purge(q)\n  except Exception: pass\n"
        )
        subprocess.run([PY, "-c", code, self.broker_url], cwd=REPO, capture_output=True, timeout=60, check=False)

    def destroy(self) -> None:
        self.stop()
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", self.vhost], capture_output=True, check=False)
        try:
            self.psql(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        except subprocess.CalledProcessError:
            pass


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


def _relay_steps(relay: dict) -> str:
    steps = relay.get("steps_s")  # absent from results written before it was measured
    if not steps:
        return ""
    return (
        f"; claiming {steps['claim']:.2f} s, publishing {steps['publish']:.2f} s of which waiting for the last"
        f" confirms {steps['confirm_wait']:.2f} s, marking published {steps['mark']:.2f} s"
    )


def bench_verdict_api(cluster: Cluster, run_id: str, requests: int = 200) -> dict:
    secret = (
        manage(["vigilo_token", "create", f"bench-{uuid.uuid4().hex[:6]}", "--scopes", "read,write"], cluster.env)
        .strip()
        .splitlines()[-1]
    )
    port = 18000 + os.getpid() % 1000
    fh = open(cluster.logdir / "gunicorn.log", "wb")  # noqa: SIM115
    g = subprocess.Popen(
        [GUNICORN, "vigilo_project.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2"],
        cwd=REPO,
        env=cluster.env,
        stdout=fh,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api/v1/runs/{run_id}/verdict/"
    hdr = {"Authorization": f"Bearer {secret}"}
    try:
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
    finally:
        os.killpg(g.pid, signal.SIGTERM)
        g.wait(timeout=15)
        fh.close()
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


def bench_peer(sizes: list[int]) -> dict:
    pf = WORK / "promptfoo"
    bin_ = pf / "node_modules" / ".bin" / "promptfoo"
    if not bin_.exists():
        pf.mkdir(parents=True, exist_ok=True)
        if not (pf / "package.json").exists():
            (pf / "package.json").write_text('{"name": "vigilo-bench-peer", "private": true}\n')
        log(f"peer: npm install promptfoo@{PROMPTFOO_VERSION} into {pf}")
        res = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", f"promptfoo@{PROMPTFOO_VERSION}"],
            cwd=pf,
            check=False,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if res.returncode != 0 or not bin_.exists():
            reason = f"npm install failed (registry unreachable?): {res.stderr.strip().splitlines()[-1:]}"
            print(f"peer skipped: {reason}")
            return {"skipped": reason}
    env = dict(os.environ)
    home = WORK / "promptfoo-home"
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "PROMPTFOO_CONFIG_DIR": str(home),
            "PROMPTFOO_DISABLE_TELEMETRY": "1",
            "PROMPTFOO_DISABLE_UPDATE": "1",
            "PROMPTFOO_DISABLE_SHARING": "1",
            "NO_COLOR": "1",
            "CI": "1",
        }
    )
    out: dict = {"version": PROMPTFOO_VERSION}
    for n in sizes:
        cfg = WORK / "promptfoo-config" / f"promptfooconfig_{n}.yaml"
        log(f"peer: N={n} promptfoo eval")
        m = run_measured(
            [
                str(bin_),
                "eval",
                "-c",
                str(cfg),
                "--no-cache",
                "--no-progress-bar",
                "--no-table",
                "-o",
                # JSONL: promptfoo 0.121.20 refuses JSON export at 100,000 results ("Dataset too large for JSON
                # export"), after the whole evaluation; JSONL at every N keeps the sizes comparable.
                str(WORK / f"promptfoo-{n}.jsonl"),
            ],
            env=env,
            cwd=cfg.parent,
            log_path=WORK / f"promptfoo-{n}.log",
        )
        text = (WORK / f"promptfoo-{n}.log").read_text(errors="replace")
        # promptfoo exits 100 when some assertions fail (10% of the cases are built to fail)
        m["ok"] = m["rc"] in (0, 100)
        m["summary"] = [ln.strip() for ln in text.splitlines() if "Pass" in ln or "Fail" in ln or "Successes" in ln][
            -3:
        ]
        log(
            f"peer: N={n} {m['wall_s']:.1f} s, "
            f"peak RSS {max(m['peak_rss_mb'], m['tree_peak_rss_mb']):.0f} MB, rc {m['rc']}"
        )
        out[n] = m
    return out


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


# --- report --------------------------------------------------------------------------------------------------


def summarize(res: dict) -> dict:
    rows = []
    peer, lower = res.get("peer", {}), res.get("lower", {})
    for mode in ("embedded", "distributed", "reuse", "peer", "lower"):
        for key, m in (res.get(mode) or {}).items():
            if not isinstance(m, dict) or "wall_s" not in m:
                continue
            n = int(key)
            wall = m["wall_s"]
            row = {
                "mode": mode,
                "n": n,
                "wall_s": wall,
                "cases_per_s": n / wall,
                "invocations_per_s": n * BINDINGS / wall,
            }
            if mode in ("distributed", "reuse"):
                row["peak_rss_mb"] = m["workers"]["max_process_peak_rss_mb"]
                row["peak_rss_all_workers_mb"] = m["workers"]["peak_of_sum_rss_mb"]
            elif mode in ("embedded", "peer"):
                row["peak_rss_mb"] = max(m.get("peak_rss_mb", 0), m.get("tree_peak_rss_mb", 0))
            pw = (peer.get(n) or peer.get(str(n)) or {}).get("wall_s")
            lw = (lower.get(n) or lower.get(str(n)) or {}).get("wall_s")
            if pw and mode != "peer":
                row["vs_peer"] = wall / pw
            if lw and mode != "lower":
                row["vs_lower"] = wall / lw
            rows.append(row)
    return {"rows": rows}


def bars(res: dict) -> list[dict]:
    def get(mode: str, n: int) -> dict | None:
        d = res.get(mode) or {}
        return d.get(n) or d.get(str(n))

    out = []
    d10, p10 = get("distributed", 10000), get("peer", 10000)
    if d10 and p10 and "wall_s" in p10:
        ratio = d10["wall_s"] / p10["wall_s"]
        out.append(
            {
                "bar": "N=10k distributed, per-case isolation: wall <= peer (ratio <= 1.0)",
                "value": ratio,
                "met": ratio <= 1.0,
            }
        )
        r10 = get("reuse", 10000)
        reuse_ratio = r10["wall_s"] / p10["wall_s"] if r10 and "wall_s" in r10 else None
        out.append(
            {
                "bar": "N=10k distributed, instance reuse: ratio <= 0.2",
                "value": reuse_ratio,
                "met": reuse_ratio is not None and reuse_ratio <= 0.2,
                **({} if reuse_ratio is not None else {"note": "not measured in this run (mode `reuse`)"}),
            }
        )
        peer_rss = max(p10.get("peak_rss_mb", 0), p10.get("tree_peak_rss_mb", 0))
        w = d10["workers"]["max_process_peak_rss_mb"]
        out.append(
            {
                "bar": "worker peak RSS <= 1/4 of peer peak RSS",
                "value": w / peer_rss,
                "met": w / peer_rss <= 0.25,
                "note": f"per worker process {w:.0f} MB vs peer {peer_rss:.0f} MB; all worker processes together "
                f"{d10['workers']['peak_of_sum_rss_mb']:.0f} MB",
            }
        )
    d100 = get("distributed", 100000)
    if d100 and d10:
        r = d100["wall_s"] / d10["wall_s"]
        out.append(
            {
                "bar": "time(100k)/time(10k) <= 11 (distributed)",
                "value": r,
                "met": r <= 11 and d100.get("state") == "completed",
            }
        )
    api = res.get("verdict_api")
    if api:
        out.append(
            {
                "bar": "verdict API p95 <= 50 ms (largest run)",
                "value": api["p95_ms"],
                "met": api["p95_ms"] <= 50,
                "note": f"on the N={api.get('n')} run",
            }
        )
    relay = res.get("relay")
    if relay:
        out.append(
            {
                "bar": "outbox relay >= 5,000 events/s with confirms",
                "value": relay["events_per_s"],
                "met": relay["events_per_s"] >= 5000,
            }
        )
    return out


def ratio(v: float | None) -> str:
    if v is None:
        return ""
    return f"{v:.4f}" if v < 0.1 else (f"{v:.2f}" if v < 100 else f"{v:,.0f}")


def markdown(res: dict) -> str:
    f = lambda v, p=1: "" if v is None else (f"{v:,.{p}f}" if isinstance(v, float) else f"{v:,}")  # noqa: E731
    lines = [
        f"# Vigilo benchmark {res['date']} on {res['machine']}",
        "",
        f"{res['host']['cpus']} CPUs, {res['host']['python']}, promptfoo {PROMPTFOO_VERSION}; "
        "3 evaluator bindings per case; wall = submit -> verdict available.",
        "",
        "| mode | N | wall s | cases/s | invocations/s | peak RSS MB | / peer | / lower bound |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["summary"]["rows"]:
        rss = f(r.get("peak_rss_mb"), 0)
        if r.get("peak_rss_all_workers_mb"):
            rss += f" (all {f(r['peak_rss_all_workers_mb'], 0)})"
        lines.append(
            f"| {r['mode']} | {r['n']:,} | {f(r['wall_s'], 2)} | {f(r['cases_per_s'], 0)} | "
            f"{f(r['invocations_per_s'], 0)} | {rss} | {ratio(r.get('vs_peer'))} | {ratio(r.get('vs_lower'))} |"
        )
    micro = res.get("micro", {}).get("sandbox")
    if micro:
        s = micro["steps_ms"]
        lines += [
            "",
            f"Per invocation (SandboxHost, {', '.join(micro.get('evaluators', ['Python guests']))}, mean ms over "
            f"{micro['invocations']}): encode {s['encode']['mean']:.3f}, store {s['store']['mean']:.3f}, "
            f"instantiate {s['instantiate']['mean']:.3f}, call {s['call']['mean']:.3f}, decode "
            f"{s['decode']['mean']:.3f}; host.evaluate end to end {micro['host_evaluate_ms']['mean']:.3f}; "
            f"a call on a reused instance {micro['reused_instance_call_ms']['mean']:.3f}.",
        ]
    for key in ("persist_sqlite", "persist_postgresql"):
        p = res.get("micro", {}).get(key)
        if p:
            lines.append(
                f"Persistence ({p['vendor']}): chunk_record_results {p['write_ms_per_row']:.3f} ms per result "
                f"row (+ {p['row_build_ms_per_row']:.3f} ms building it), batches of {p['batch_rows']} rows."
            )
    if res.get("relay"):
        lines.append(
            f"Outbox relay: {res['relay']['events_per_s']:,.0f} events/s with publisher confirms "
            f"({res['relay']['published']} events{_relay_steps(res['relay'])})."
        )
    if res.get("verdict_api"):
        a = res["verdict_api"]
        lines.append(
            f"Verdict API (N={a.get('n')} run, {a['requests']} GETs): p50 {a['p50_ms']:.1f} ms, "
            f"p95 {a['p95_ms']:.1f} ms."
        )
    if res.get("bars"):
        lines += ["", "| bar | value | met |", "|---|---:|---|"]
        for b in res["bars"]:
            v = "n/a" if b["value"] is None else f"{b['value']:,.2f}"
            lines.append(f"| {b['bar']} | {v} | {'yes' if b['met'] else 'no'} |")
    return "\n".join(lines) + "\n"


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
