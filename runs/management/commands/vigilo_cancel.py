from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from runs.errors import TransitionError
from runs.management.commands._common import usage_error
from runs.management.commands.vigilo_status import run_lookup
from runs.services import run_cancel


class Command(BaseCommand):
    help = "Cancel a pending or running run."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("run_id")
        parser.add_argument("--reason", default="cancelled by request")

    def handle(self, *args: Any, run_id: str, reason: str, **options: Any) -> None:
        run = run_lookup(self.stderr, run_id)
        try:
            run = run_cancel(run_id=run.id, reason=reason)
        except TransitionError:
            usage_error(self.stderr, f"run {run.id} is {run.state}; only pending or running runs can be cancelled")
        self.stdout.write(f"run {run.id} cancelled")
