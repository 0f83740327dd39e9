#!/usr/bin/env python3
"""The export benchmark (`make bench-exports`, also run by `make bench`): docs/benchmarks.md, "Exports".

    .venv/bin/python bench/exports.py [--records 20000] [--cases 10000] [--machine NAME] [--skip-run]

1. **lower bound**: the OTLP exporter's translation alone (records -> protobuf requests), in one process;
2. **relay**: `--records` evaluation records stored as export batches (300 a batch, a chunk's worth) in
   PostgreSQL, then delivered by the relay (`exporters.relay.deliver_due`) to a real OTLP/HTTP receiver running in
   another process, which decodes every request: records delivered per second, from the first claim to the last
   batch settled; the receiver's count must equal `--records` (a figure from a lossy or duplicating run is
   refused);
3. **run cost**: the embedded `vigilo_run` of `--cases` cases (bench/run.py's data and profile) without and
   with the OTLP destination configured, `--repeats` times each, alternating, each on a fresh copy of one set-up
   database; the second includes its export relay (a child process) draining before exit, and its records are
   counted at the receiver. The medians are compared.

Results go to bench/results/<date>-<machine>-exports.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request

from config import BENCH, PY, REPO, WORK
from processes import log, manage, run_measured
from run import embedded_env, prepare

RESULTS = BENCH / "results"
PG = os.environ.get("VIGILO_BENCH_PG", "postgres://postgres@127.0.0.1:5432/postgres")
BENCH_DB = "vigilo_bench_exports"
PER_BATCH = 300
RESULTS_PER_CASE = 3  # bench/run.py's profile has three bindings; a run exports them and its verdict

SINK = """
import sys, time
sys.path.insert(0, {repo!r})
from tests.support.receivers.otlp import OtlpReceiver
receiver = OtlpReceiver(keep_decoded=False)
print(receiver.start(), flush=True)
sys.stdin.read()
"""


def sink() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [PY, "-c", SINK.format(repo=str(REPO))], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def counts(origin: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{origin}/counts", timeout=10) as answer:
        return dict(json.loads(answer.read()))


def django_env(db_url: str, otlp: str) -> None:
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "vigilo_project.settings",
            "DATABASE_URL": db_url,
            "VIGILO_EMBEDDED": "true",
            "VIGILO_EXPORT_OTLP_URL": otlp,
            "VIGILO_LOG_LEVEL": "WARNING",
        }
    )
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def bench_lower(n: int) -> dict:
    from exporters.platforms.otlp import OTLP
    from exporters.protocol import Destination
    from tests.support.exports import records

    made = records(n)
    destination = Destination(name="otlp", kind="otlp", url="http://127.0.0.1:9", options=dict(OTLP.option_defaults))
    t0 = time.perf_counter()
    size = 0
    for start in range(0, n, OTLP.max_batch):
        size += sum(len(r.body) for r in OTLP.requests(made[start : start + OTLP.max_batch], destination))
    wall = time.perf_counter() - t0
    return {"records": n, "wall_s": wall, "records_per_s": n / wall, "bytes_per_record": size / n}


def bench_relay(n: int, origin: str) -> dict:
    from django.conf import settings
    from django.db import transaction

    from exporters.models import ExportBatch
    from exporters.relay import deliver_due
    from exporters.services import exports_write
    from tests.support.exports import records

    made = records(n)
    t_write = time.perf_counter()
    for start in range(0, n, PER_BATCH):
        with transaction.atomic():
            exports_write(records=made[start : start + PER_BATCH], destinations=["otlp"], source_key=f"b:{start}")
    write_s = time.perf_counter() - t_write
    assert settings.VIGILO_EXPORT_DESTINATIONS["otlp"].url == origin
    t0 = time.perf_counter()
    while ExportBatch.objects.filter(status="pending").exists():
        deliver_due(budget_s=60)
    wall = time.perf_counter() - t0
    got = counts(origin)
    ok = got["logs"] == n and not ExportBatch.objects.exclude(status="delivered").exists()
    return {
        "records": n,
        "batches": ExportBatch.objects.count(),
        "write_s": write_s,
        "wall_s": wall,
        "records_per_s": n / wall,
        "requests": got["requests"],
        "receiver_records": got["logs"],
        "ok": ok,
    }


def bench_run_cost(cases: int, origin: str, repeats: int) -> dict:
    """The run without and with the OTLP destination, alternating, each on a fresh copy of one set-up database
    (a database that grows run after run slows every later run down); the medians are compared."""
    datasets = prepare([cases])
    template = WORK / "data-exports-template"
    shutil.rmtree(template, ignore_errors=True)
    template.mkdir(parents=True)
    # Not this process's own destination (django_env): only "with_otlp" exports.
    base = {k: v for k, v in embedded_env().items() if not k.startswith("VIGILO_EXPORT_")}
    manage(["vigilo_setup"], {**base, "VIGILO_DATA_DIR": str(template)})
    out: dict = {"repeats": repeats}
    walls: dict[str, list[float]] = {"without": [], "with_otlp": []}
    for i in range(repeats):
        order = [("without", {}), ("with_otlp", {"VIGILO_EXPORT_OTLP_URL": origin})]
        for label, extra in order if i % 2 == 0 else order[::-1]:
            data = WORK / f"data-exports-{label}"
            shutil.rmtree(data, ignore_errors=True)
            shutil.copytree(template, data)
            env = {**base, **extra, "VIGILO_DATA_DIR": str(data)}
            before = counts(origin)["logs"]
            m = run_measured(
                [
                    PY,
                    "manage.py",
                    "vigilo_run",
                    "--dataset",
                    str(datasets[cases]),
                    "--profile",
                    str(WORK / "vigilo" / "profile.yaml"),
                    "--name",
                    f"bench-exports-{label}",
                ],
                env=env,
                log_path=WORK / f"exports-run-{label}.log",
            )
            m["exported"] = counts(origin)["logs"] - before
            expected = cases * RESULTS_PER_CASE + 1 if extra else 0
            if m["exported"] != expected:
                raise SystemExit(f"run {label} exported {m['exported']} records, not {expected}")
            walls[label].append(m["wall_s"])
            out[label] = m  # the last one's details; the walls of all are below
            log(f"run cost: {label} #{i + 1} {m['wall_s']:.2f} s, exported {m['exported']}")
    for label, values in walls.items():
        out[label]["walls_s"] = values
        out[label]["wall_s"] = statistics.median(values)
    out["overhead"] = out["with_otlp"]["wall_s"] / out["without"]["wall_s"] - 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--machine", default="python-svc-2c")
    parser.add_argument("--skip-run", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind; their medians are compared")
    a = parser.parse_args()
    subprocess.run(["psql", PG, "-q", "-c", f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)"], check=True)
    subprocess.run(["psql", PG, "-q", "-c", f"CREATE DATABASE {BENCH_DB}"], check=True)
    db_url = PG.rsplit("/", 1)[0] + "/" + BENCH_DB
    proc, origin = sink()
    try:
        django_env(db_url, origin)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        results: dict = {"machine": a.machine, "date": dt.date.today().isoformat(), "python": platform.python_version()}
        log(f"lower bound: encoding {a.records} records")
        results["lower"] = bench_lower(a.records)
        log(f"relay: {a.records} records to the OTLP receiver at {origin}")
        results["relay"] = bench_relay(a.records, origin)
        if not results["relay"]["ok"]:
            raise SystemExit(f"relay lost or duplicated records: {results['relay']}")
        results["relay"]["ratio_to_lower"] = results["lower"]["records_per_s"] / results["relay"]["records_per_s"]
        if not a.skip_run:
            results["run_cost"] = bench_run_cost(a.cases, origin, a.repeats)
    finally:
        proc.communicate("", timeout=10)
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{results['date']}-{a.machine}-exports"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    stem.with_suffix(".md").write_text(report(results))
    log(f"wrote {stem}.json and .md")
    print(report(results))


def report(r: dict) -> str:
    lines = [
        f"# Exports, {r['date']} ({r['machine']}, Python {r['python']})",
        "",
        "| step | records | wall s | records/s | note |",
        "|---|---:|---:|---:|---|",
        f"| lower bound: OTLP translation only | {r['lower']['records']} | {r['lower']['wall_s']:.2f} | "
        f"{r['lower']['records_per_s']:,.0f} | {r['lower']['bytes_per_record']:.0f} bytes a record |",
        f"| relay: PostgreSQL batches -> OTLP receiver | {r['relay']['records']} | {r['relay']['wall_s']:.2f} | "
        f"{r['relay']['records_per_s']:,.0f} | {r['relay']['requests']} requests, "
        f"{r['relay']['ratio_to_lower']:.1f}x the lower bound's time |",
    ]
    if "run_cost" in r:
        c = r["run_cost"]
        lines += [
            "",
            f"| embedded vigilo_run, {c['repeats']} runs each, alternating | median wall s | walls s | "
            "peak RSS MB | exported |",
            "|---|---:|---|---:|---:|",
            *(
                f"| {title} | {c[key]['wall_s']:.2f} | {', '.join(f'{w:.2f}' for w in c[key]['walls_s'])} | "
                f"{c[key]['peak_rss_mb']:.0f} | {c[key]['exported']} |"
                for key, title in (("without", "without a destination"), ("with_otlp", "with OTLP"))
            ),
            "",
            f"Cost of one exporter: {c['overhead'] * 100:+.1f}% wall (medians).",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
