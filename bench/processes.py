"""Running the benchmark's subprocesses: the log line, measured runs, /proc memory sampling, bench/steps.py and
manage.py calls."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from config import BENCH, PY, REPO


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


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
