"""Shared plumbing of the run commands: usage errors exit 3, progress display, waiting for a run."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from runs.models import EvaluatorResult, Run
from runs.reports import EXIT_USAGE


def usage_error(stderr: TextIO, message: str) -> None:
    stderr.write(f"error: {message}\n")
    sys.exit(EXIT_USAGE)


def target_of(*, url: str | None, options: list[str], stderr: TextIO) -> dict[str, Any] | None:
    """The run target from `--target-url` and `--target-option KEY=VALUE` (a JSON value, or else a string).

    Only the shape is read here; the run's creation checks the target and names what is wrong.
    """
    if not url:
        if options:
            usage_error(stderr, "--target-option needs --target-url")
        return None
    target: dict[str, Any] = {"url": url}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key.strip():
            usage_error(stderr, f"--target-option {option!r}: expected KEY=VALUE")
        try:
            target[key.strip()] = json.loads(value)
        except ValueError:
            target[key.strip()] = value
    return target


class Progress:
    """A bar on a terminal, a plain line every 10% elsewhere (CI logs)."""

    def __init__(self, out: TextIO, total: int) -> None:
        self.out, self.total = out, max(total, 1)
        self.tty = out.isatty()
        self.last_decile = -1

    def update(self, done: int, state: str) -> None:
        frac = min(done / self.total, 1.0)
        if self.tty:
            bar = "#" * int(frac * 30)
            self.out.write(f"\r  [{bar:<30}] {done}/{self.total} results  {state:<10}")
            self.out.flush()
        elif int(frac * 10) > self.last_decile:
            self.last_decile = int(frac * 10)
            self.out.write(f"  progress: {done}/{self.total} results ({frac:.0%}), run {state}\n")

    def finish(self) -> None:
        if self.tty:
            self.out.write("\n")


def run_wait(*, run: Run, out: TextIO, timeout_s: float | None, quiet: bool = False) -> Run:
    """Poll until the run is terminal (or the timeout passes); show progress unless quiet."""
    expected = max(run.expected_results, 1)
    progress = None if quiet else Progress(out, expected)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        run.refresh_from_db()
        if progress:
            done = EvaluatorResult.objects.filter(run=run).count()
            progress.update(done, run.state)
        if run.is_terminal or (deadline is not None and time.monotonic() > deadline):
            break
        time.sleep(0.3)
    if progress:
        progress.finish()
    return run
