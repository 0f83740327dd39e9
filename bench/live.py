#!/usr/bin/env python3
"""The live-evaluation benchmark (`make bench-live`, also run by `make bench`): docs/benchmarks.md, "Live".

    .venv/bin/python bench/live.py [--quick] [--machine NAME] [--rates 100 500] [--seconds 10]
                                   [--amqp-events 5000] [--keep]

On a cluster of its own (PostgreSQL database, RabbitMQ vhost, bench/cluster.py) with the bench profile's three
deterministic bindings (two regexes and a substring check on every `llm_output` event, every tenth failing):

1. **lower bound**: the engine's own evaluation of an event in one process (bench/live_steps.py `lower`): no
   HTTP, no database, no queue;
2. **sync path**: `POST /api/v1/online/events` through gunicorn (2 workers), an open-loop load at each rate
   for `--seconds`; latency from each request's scheduled send time (no coordinated omission), p50/p99;
3. **async AMQP path**: `--amqp-events` events published (persistent, confirmed) to `vigilo.online` first, then
   consumed by `manage.py online_consume` and evaluated by two Celery workers: events evaluated per second, from
   the first event stored to the last one evaluated;
4. **correction delivery**: failing events sent async over HTTP at 20/s while a long-poll client waits for their
   corrections: latency from the send to the correction in the agent's hands, p50/p99.

Each step's counts are checked (every event stored once, 3 results each, one correction per failing event):
a figure from a run that lost or duplicated work is refused. Results go to bench/results/<date>-<machine>-live.
The load generator and the publisher run as subprocesses of this script (`_load`, `_publish`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

from cluster import Cluster
from config import BENCH, PY, REPO, WORK
from processes import json_tail, log, manage

RESULTS = BENCH / "results"
LIVE = WORK / "live"
AGENTS = """\
agents:
  - name: bench-sync
    profile: profile.yaml
    rate_limit: {max_corrections_per_window: 10000000, window_seconds: 60}
    sync_deadline_ms: 1000
  - name: bench-amqp
    profile: profile.yaml
    rate_limit: {max_corrections_per_window: 10000000, window_seconds: 60}
  - name: bench-delivery
    profile: profile.yaml
    rate_limit: {max_corrections_per_window: 10000000, window_seconds: 60}
"""
PROFILE = """\
name: bench-live
dimensions: {safety: {}, policy: {}}
bindings:
  - id: card-number
    evaluator: vigilo/regex@^2.0
    dimension: safety
    config: {value: '\\b(?:\\d[ -]?){12,15}\\d\\b', negate: true}
    online: {events: [llm_output], severity: halt}
  - id: policy-reference
    evaluator: vigilo/regex@^2.0
    dimension: policy
    config: {value: 'REF-\\d+'}
    online: {events: [llm_output], severity: nudge}
  - id: refund-terms
    evaluator: vigilo/contains@^1.0
    dimension: policy
    config: {value: [refunds]}
    online: {events: [llm_output], severity: nudge}
"""


def payload(i: int) -> dict:
    """The same payloads as bench/live_steps.py: every tenth one lacks its policy reference (a nudge)."""
    ref = "" if i % 10 == 9 else " See policy REF-12."
    return {"text": f"Order {i}: refunds take 5 business days.{ref}", "model": "bench-model"}


def pcts(values: list[float]) -> dict[str, float]:
    v = sorted(values)
    if not v:
        return {}
    return {
        "p50": v[len(v) // 2],
        "p99": v[min(len(v) - 1, int(len(v) * 0.99))],
        "max": v[-1],
        "n": len(v),
    }


# --- subprocess roles: the load generator and the AMQP publisher -----------------------------------------------


def _post(base: str, token: str, body: dict, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(
            "POST",
            "/api/v1/online/events",
            body=json.dumps(body),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", **(headers or {})},
        )
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def role_load(a: argparse.Namespace) -> dict:
    """Open loop: request i is due at start + i/rate; its latency runs from then to its answer."""
    n = int(a.rate * a.seconds)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    start = time.monotonic() + 0.5
    prefix = uuid.uuid4().hex[:8]

    def one(i: int) -> None:
        due = start + i / a.rate
        status, _ = _post(
            a.url, a.token, {"event_type": "llm_output", "message_id": f"{prefix}-{i}", "payload": payload(i)}
        )
        done = time.monotonic()
        with lock:
            latencies.append((done - due) * 1000)
            statuses[status] = statuses.get(status, 0) + 1

    with ThreadPoolExecutor(max_workers=64) as pool:
        for i in range(n):
            delay = start + i / a.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, i)
    elapsed = time.monotonic() - start
    return {
        "rate": a.rate,
        "sent": n,
        "achieved_per_s": n / elapsed,
        "statuses": statuses,
        "latency_ms": pcts(latencies),
    }


def role_publish(a: argparse.Namespace) -> dict:
    """Publish `n` events to vigilo.online, persistent, with publisher confirms; the wall time."""
    from kombu import Connection, Exchange, Producer, Queue

    exchange = Exchange("vigilo.online", type="topic", durable=True)
    queue = Queue("vigilo.online.events", exchange, routing_key="#", durable=True)  # as online/consumer.py
    prefix = uuid.uuid4().hex[:8]
    with Connection(a.broker, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.channel(), exchange=exchange, serializer="json")
        queue(producer.channel).declare()
        t0 = time.time()
        for i in range(a.n):
            producer.publish(
                {"event_type": "llm_output", "message_id": f"{prefix}-{i}", "payload": payload(i)},
                routing_key=a.agent,
                headers={"authorization": f"Bearer {a.token}"},
                delivery_mode=2,
            )
        t1 = time.time()
    return {"published": a.n, "start": t0, "end": t1}


def role_delivery(a: argparse.Namespace) -> dict:
    """Failing events async at `rate`/s; a long-poll client records when each one's correction arrives."""
    n = int(a.rate * a.seconds)
    sent: dict[str, float] = {}
    received: dict[str, float] = {}
    stop = threading.Event()
    parts = urlsplit(a.url)

    def poll() -> None:
        cursor = 0
        while not stop.is_set():
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            try:
                conn.request(
                    "GET",
                    f"/api/v1/online/corrections?after={cursor}&wait=5",
                    headers={"Authorization": f"Bearer {a.token}"},
                )
                body = json.loads(conn.getresponse().read())
            finally:
                conn.close()
            now = time.time()
            for c in body["corrections"]:
                received.setdefault(c["event"]["message_id"], now)
            cursor = body["cursor"]

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    prefix = uuid.uuid4().hex[:8]
    start = time.monotonic()
    for i in range(n):
        delay = start + i / a.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        message_id = f"{prefix}-{i}"
        sent[message_id] = time.time()
        status, body = _post(
            a.url,
            a.token,
            {"event_type": "llm_output", "message_id": message_id, "payload": payload(9)},  # fails: a nudge
            {"Prefer": "respond-async"},
        )
        if status != 202:
            raise RuntimeError(f"async POST answered {status}: {body[:300]!r}")
    deadline = time.monotonic() + 60
    while len(received) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    latencies = [(received[m] - t) * 1000 for m, t in sent.items() if m in received]
    return {"sent": n, "received": len(received), "latency_ms": pcts(latencies)}


# --- the harness --------------------------------------------------------------------------------------------------


def step(role: str, args: list[str], timeout_s: float = 900) -> dict:
    res = subprocess.run(
        [PY, str(BENCH / "live.py"), role, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"live.py {role} failed ({res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}")
    return json_tail(res.stdout)


def django_step(args: list[str], env: dict[str, str], timeout_s: float = 900) -> dict:
    res = subprocess.run(
        [PY, str(BENCH / "live_steps.py"), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"live_steps.py {args[0]} failed:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}")
    return json_tail(res.stdout)


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_http(base: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    parts = urlsplit(base)
    while True:
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def wait_log(path: Path, text: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in (path.read_text(errors="replace") if path.exists() else ""):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path.name}: no {text!r} after {timeout_s:g} s:\n{path.read_text()[-3000:]}")
        time.sleep(0.2)


def check_counts(counts: dict, *, events: int, failing: int, what: str) -> None:
    """Every event stored once and evaluated, 3 results each, one delivered correction per failing event."""
    evaluated = counts["events"].get("evaluated", 0)
    problems = []
    if evaluated != events or sum(counts["events"].values()) != events:
        problems.append(f"events {counts['events']} (expected {events} evaluated)")
    if counts["results"] != 3 * events:
        problems.append(f"{counts['results']} results (expected {3 * events})")
    if counts["corrections_delivered"] != failing or counts["corrections_dropped"]:
        problems.append(f"corrections {counts} (expected {failing} delivered)")
    if problems:
        raise RuntimeError(f"{what}: the run lost or duplicated work: {'; '.join(problems)}")


def markdown(result: dict) -> str:
    lower = result["lower"]
    lines = [
        f"# Live evaluation benchmark {result['date']} ({result['machine']})",
        "",
        f"Commit {result['commit']}; {result['cpus']} CPUs; 3 deterministic bindings per event (bench/live.py).",
        "",
        "| path | figure | value | lower bound | ratio |",
        "|---|---|---:|---:|---:|",
    ]
    lp50, lp99 = lower["event_ms"]["p50"], lower["event_ms"]["p99"]
    for run in result["sync"]:
        lat = run["latency_ms"]
        lines.append(
            f"| sync @ {run['rate']}/s (achieved {run['achieved_per_s']:.0f}/s) | p50 / p99 ms | "
            f"{lat['p50']:.1f} / {lat['p99']:.1f} | {lp50:.2f} / {lp99:.2f} | {lat['p99'] / lp99:.1f}x (p99) |"
        )
    amqp = result["amqp"]
    one = lower["events_per_s_one_process"]
    lines.append(
        f"| async AMQP ({amqp['events']} events) | events evaluated / s | {amqp['events_per_s']:.0f} | "
        f"{one:.0f} (1 process) | {amqp['events_per_s'] / one:.2f} |"
    )
    delivery = result["delivery"]["latency_ms"]
    lines.append(
        f"| correction delivery (async HTTP + long-poll, {result['delivery']['sent']} events) | p50 / p99 ms | "
        f"{delivery['p50']:.0f} / {delivery['p99']:.0f} | | |"
    )
    lines += [
        "",
        "Goals (issue 16): sync p99 <= 25 ms at 100 and 500 events/s; async AMQP >= 1,500 events/s. The load",
        "generator, the publisher and the poller run on the same 2 cores as the server.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller loads: minutes, for a smoke run")
    parser.add_argument("--machine", default=os.environ.get("VIGILO_BENCH_MACHINE", platform.node() or "local"))
    parser.add_argument("--rates", type=float, nargs="+", default=[100, 500])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--amqp-events", type=int, default=10000)
    parser.add_argument("--keep", action="store_true", help="keep the bench database and vhost")
    a = parser.parse_args()
    if a.quick:
        a.seconds, a.amqp_events = 3, 1000
    LIVE.mkdir(parents=True, exist_ok=True)
    (LIVE / "profile.yaml").write_text(PROFILE)
    (LIVE / "agents.yaml").write_text(AGENTS)
    cluster = Cluster()
    result: dict = {
        "date": dt.date.today().isoformat(),
        "machine": a.machine,
        "cpus": os.cpu_count(),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], check=False, cwd=REPO, capture_output=True, text=True
        ).stdout.strip(),
    }
    try:
        cluster.create()
        secrets_file = LIVE / "secrets.json"
        manage(["vigilo_agents", "apply", str(LIVE / "agents.yaml"), "--secrets-out", str(secrets_file)], cluster.env)
        tokens = {name: s["token"] for name, s in json.loads(secrets_file.read_text()).items()}

        log("live: lower bound (the engine in one process)")
        result["lower"] = django_step(["lower", "--agent", "bench-sync", "--events", "2000"], cluster.env)

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with cluster.serve_api(port):
            wait_http(base)
            result["sync"] = []
            sent = 0
            for rate in a.rates:
                log(f"live: sync path at {rate:g}/s for {a.seconds:g} s")
                run = step(
                    "_load",
                    ["--url", base, "--token", tokens["bench-sync"], "--rate", str(rate), "--seconds", str(a.seconds)],
                )
                result["sync"].append(run)
                sent += run["sent"]
            counts = django_step(["counts", "--agent", "bench-sync"], cluster.env)
            check_counts(counts, events=sent, failing=sent // 10, what="sync")

            cluster.start(workers=2, concurrency=1)
            # The backlog is published first (to the consumer's durable queue), so the figure is Vigilo's rate
            # from the first event stored to the last one evaluated, not the publisher's.
            log(f"live: async AMQP path, {a.amqp_events} events published, then consumed")
            published = step(
                "_publish",
                [
                    "--broker",
                    cluster.broker_url,
                    "--agent",
                    "bench-amqp",
                    "--token",
                    tokens["bench-amqp"],
                    "--n",
                    str(a.amqp_events),
                ],
            )
            consumer = cluster._spawn("consumer", [PY, "manage.py", "online_consume"])
            wait_log(cluster.logdir / "consumer.log", "online_consume: ready")
            log(f"live: consumer pid {consumer} ready")
            done = django_step(
                ["evaluated", "--agent", "bench-amqp", "--n", str(a.amqp_events), "--timeout", "600"], cluster.env
            )
            if not done["complete"]:
                raise RuntimeError(f"async AMQP: only {done['evaluated']} of {a.amqp_events} events evaluated in time")
            wall = done["last_evaluated"] - done["first_received"]
            result["amqp"] = {
                "events": a.amqp_events,
                "publish_s": published["end"] - published["start"],
                "wall_s": wall,
                "events_per_s": a.amqp_events / wall,
            }
            counts = django_step(["counts", "--agent", "bench-amqp"], cluster.env)
            check_counts(counts, events=a.amqp_events, failing=a.amqp_events // 10, what="async AMQP")

            log("live: correction delivery latency (async HTTP + long-poll)")
            result["delivery"] = step(
                "_delivery",
                ["--url", base, "--token", tokens["bench-delivery"], "--rate", "20", "--seconds", str(a.seconds)],
            )
            if result["delivery"]["received"] != result["delivery"]["sent"]:
                raise RuntimeError(f"delivery: {result['delivery']}")
    finally:
        if a.keep:
            cluster.stop()
        else:
            cluster.destroy()
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{result['date']}-{a.machine}-live"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


def roles() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="role", required=True)
    p = sub.add_parser("_load")
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--seconds", type=float, required=True)
    p = sub.add_parser("_publish")
    p.add_argument("--broker", required=True)
    p.add_argument("--agent", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--n", type=int, required=True)
    p = sub.add_parser("_delivery")
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--seconds", type=float, required=True)
    a = parser.parse_args()
    out = {"_load": role_load, "_publish": role_publish, "_delivery": role_delivery}[a.role](a)
    print(json.dumps(out))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("_"):
        roles()
    else:
        main()
