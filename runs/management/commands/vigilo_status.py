from __future__ import annotations

import sys
import uuid
from contextlib import nullcontext

from django.conf import settings
from django.core.management.base import BaseCommand

from outbox.embedded import EmbeddedRuntime
from runs.management.commands._common import run_wait, usage_error
from runs.models import Run
from runs.reports import exit_code, verdict_table


def run_lookup(stderr, run_id: str) -> Run:
    try:
        return Run.objects.get(pk=uuid.UUID(run_id))
    except (ValueError, Run.DoesNotExist):
        usage_error(stderr, f"no run {run_id!r}")
        raise AssertionError  # unreachable


class Command(BaseCommand):
    help = "Show a run's state and verdict; exits with the verdict's code once the run has ended."

    def add_arguments(self, parser):
        parser.add_argument("run_id")
        parser.add_argument("--wait", action="store_true", help="wait for the run to end")

    def handle(self, *args, run_id: str, wait: bool, **options):
        run = run_lookup(self.stderr, run_id)
        if wait and not run.is_terminal:
            runtime = EmbeddedRuntime() if settings.VIGILO_EMBEDDED else nullcontext()
            with runtime:
                run = run_wait(run=run, out=self.stdout, timeout_s=None)
        self.stdout.write(f"run {run.id}: state {run.state}, gate {run.gate}")
        if run.is_terminal:
            verdict_table(run=run, out=self.stdout)
        sys.exit(exit_code(run))
