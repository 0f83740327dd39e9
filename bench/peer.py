"""The peer: promptfoo, installed from npm into bench/work/promptfoo, run over the same cases."""

from __future__ import annotations

import os
import subprocess

from config import PROMPTFOO_VERSION, WORK
from processes import log, run_measured


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
