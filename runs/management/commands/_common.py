"""Shared plumbing of the run commands: usage errors exit 3, progress display, waiting for a run."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NoReturn, Protocol

from django.core.management.base import OutputWrapper

from runs.models import EvaluatorResult, Run
from runs.reports import TextOut
from vigilo_project import exitcodes


class Terminal(TextOut, Protocol):
    """A text stream the progress display can also flush and ask whether it is a terminal."""

    def flush(self) -> None: ...

    def isatty(self) -> bool: ...


def usage_error(stderr: TextOut, message: str) -> NoReturn:
    stderr.write(f"error: {message}\n")
    sys.exit(exitcodes.USAGE)


def report_path_check(stderr: TextOut, flag: str, path: Path) -> None:
    """A usage error unless a report can be written at `path`: its folder exists and is writable, and the path
    is not a folder itself."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        usage_error(stderr, f"{flag} {path}: is a folder; give the report's file name")
    if not folder.is_dir():
        usage_error(stderr, f"{flag} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        usage_error(stderr, f"{flag} {path}: not writable")


def target_of(*, url: str | None, options: list[str], stderr: TextOut) -> dict[str, Any] | None:
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

    def __init__(self, out: Terminal, total: int) -> None:
        self.out, self.total = out, max(total, 1)
        self.tty = out.isatty()
        self.last_decile = -1
        # A command's OutputWrapper ends every write with a newline unless told otherwise: the bar redraws in place.
        self.write: Callable[[str], object] = (
            partial(out.write, ending="") if isinstance(out, OutputWrapper) else out.write
        )

    def update(self, done: int, state: str) -> None:
        frac = min(done / self.total, 1.0)
        if self.tty:
            bar = "#" * int(frac * 30)
            self.write(f"\r  [{bar:<30}] {done}/{self.total} results  {state:<10}")
            self.out.flush()
        elif int(frac * 10) > self.last_decile:
            self.last_decile = int(frac * 10)
            self.write(f"  progress: {done}/{self.total} results ({frac:.0%}), run {state}\n")

    def finish(self) -> None:
        if self.tty:
            self.write("\n")


def run_wait(*, run: Run, out: Terminal, timeout_s: float | None, quiet: bool = False) -> Run:
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
