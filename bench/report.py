"""The results' summary, the bars (issue 7) and the .md report, from a results dict (live or --render)."""

from __future__ import annotations

from config import PROMPTFOO_VERSION

BINDINGS = 3  # evaluator bindings per case (PROFILE in bench/run.py)


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


def _relay_steps(relay: dict) -> str:
    steps = relay.get("steps_s")  # absent from results written before it was measured
    if not steps:
        return ""
    return (
        f"; claiming {steps['claim']:.2f} s, publishing {steps['publish']:.2f} s of which waiting for the last"
        f" confirms {steps['confirm_wait']:.2f} s, marking published {steps['mark']:.2f} s"
    )


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
