from __future__ import annotations

import sys
import uuid
from contextlib import nullcontext
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from outbox.embedded import EmbeddedRuntime
from runs.management.commands._common import run_wait, usage_error
from runs.models import Run
from runs.reaper import periodic_reap
from runs.reports import TextOut, exit_code, verdict_table


def run_lookup(stderr: TextOut, run_id: str) -> Run:
    try:
        return Run.objects.get(pk=uuid.UUID(run_id))
    except (ValueError, Run.DoesNotExist):
        usage_error(stderr, f"no run {run_id!r}")
        raise AssertionError  # unreachable


class Command(BaseCommand):
    help = (
        "Show a run's state and verdict. Exit 0 gate passed, 1 gate failed, 2 run failed or cancelled, "
        "3 no such run, 4 the run has not ended (it is pending, running or finalizing; --wait waits for it)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run_id")
        parser.add_argument("--wait", action="store_true", help="wait for the run to end")

    def handle(self, *args: Any, run_id: str, wait: bool, **options: Any) -> None:
        run = run_lookup(self.stderr, run_id)
        if wait and not run.is_terminal:
            runtime = EmbeddedRuntime(reap=periodic_reap) if settings.VIGILO_EMBEDDED else nullcontext()
            with runtime:
                run = run_wait(run=run, out=self.stdout, timeout_s=None)
        self.stdout.write(f"run {run.id}: state {run.state}, gate {run.gate}")
        if run.is_terminal:
            verdict_table(run=run, out=self.stdout)
        sys.exit(exit_code(run))
