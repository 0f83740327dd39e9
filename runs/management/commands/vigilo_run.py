from __future__ import annotations

import json
import sys
import uuid
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from exporters.embedded import ExportRelayProcess
from outbox.embedded import EmbeddedRuntime
from runs.errors import ValidationFailed
from runs.management.commands._common import report_path_check, run_wait, target_of, usage_error
from runs.models import Run
from runs.reaper import periodic_reap
from runs.reports import compare_table, exit_code, json_report, junit_xml, verdict_table
from runs.selectors import run_compare
from runs.services import dataset_import, profile_import, run_create
from vigilo_project import exitcodes


class Command(BaseCommand):
    help = (
        "Evaluate a dataset with a profile and print the verdict. "
        "Exit 0 gate passed, 1 gate failed, 2 run failed or cancelled, 3 usage error, 4 timed out."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", required=True, help="JSONL file, one case a line")
        parser.add_argument("--profile", required=True, help="YAML profile")
        parser.add_argument("--name", default="", help="a name for the run")
        parser.add_argument("--dataset-name", default=None, help="dataset name (default: the file name)")
        parser.add_argument("--no-wait", action="store_true", help="create the run and print its id")
        parser.add_argument("--timeout", type=float, default=None, help="seconds to wait for the verdict")
        parser.add_argument("--json", dest="json_path", default=None, help="write the JSON report here")
        parser.add_argument("--junit", dest="junit_path", default=None, help="write JUnit XML here")
        parser.add_argument(
            "--no-model-cache",
            action="store_true",
            help="ask the model again instead of reusing cached judge answers (repeat trials)",
        )
        parser.add_argument(
            "--target-url", default=None, help="an agent endpoint that produces the outputs of cases without one"
        )
        parser.add_argument(
            "--target-option",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="a target setting, e.g. protocol=openai-chat, model=NAME, bearer_token_env=VAR (repeatable)",
        )
        parser.add_argument(
            "--baseline",
            default=None,
            metavar="RUN_ID",
            help="after the verdict, compare the run with this run: status changes per case, mean deltas per "
            "dimension (the exit code stays the gate's)",
        )

    def handle(self, *args: Any, **o: Any) -> None:
        dataset_path, profile_path = Path(o["dataset"]), Path(o["profile"])
        target = target_of(url=o["target_url"], options=o["target_option"], stderr=self.stderr)
        for p in (dataset_path, profile_path):
            if not p.is_file():
                usage_error(self.stderr, f"{p}: no such file")
        # Before the run starts: a report that cannot be written must not turn a decided gate into a crash.
        for flag, report in (("--json", o["json_path"]), ("--junit", o["junit_path"])):
            if report:
                report_path_check(self.stderr, flag, Path(report))
        baseline = self.baseline_of(o["baseline"], no_wait=o["no_wait"])
        try:
            with transaction.atomic():  # a refused profile leaves no dataset behind either
                dataset, _ = dataset_import(
                    name=o["dataset_name"] or dataset_path.stem, text=dataset_path.read_text(encoding="utf-8")
                )
                profile, _ = profile_import(text=profile_path.read_text(encoding="utf-8"))
        except ValidationFailed as exc:
            usage_error(self.stderr, f"{exc}")
        except UnicodeDecodeError as exc:
            usage_error(self.stderr, f"input is not UTF-8 text: {exc}")

        # Embedded mode processes runs inside a waiting command; with --no-wait the run stays queued until one runs.
        embedded = settings.VIGILO_EMBEDDED and not o["no_wait"]
        runtime = (
            EmbeddedRuntime(workers=settings.VIGILO_EMBEDDED_WORKERS, reap=periodic_reap) if embedded else nullcontext()
        )
        with runtime, ExportRelayProcess() if embedded else nullcontext():
            try:
                run, _ = run_create(
                    dataset_version=dataset,
                    profile_version=profile,
                    name=o["name"],
                    options={
                        **({"model_cache": False} if o["no_model_cache"] else {}),
                        **({"target": target} if target else {}),
                    },
                )
            except ValidationFailed as exc:
                usage_error(self.stderr, f"{exc}")
            self.stdout.write(
                f"run {run.id}: {run.expected_executions} cases, {len(run.pins)} bindings, "
                f"{run.expected_results} evaluations in {run.chunk_count} chunks"
                f" ({'embedded' if settings.VIGILO_EMBEDDED else 'distributed'} mode)"
            )
            if o["no_wait"]:
                if settings.VIGILO_EMBEDDED:
                    self.stderr.write(
                        "note: embedded mode has no separate workers; the run continues when a "
                        "command that waits (vigilo_run, vigilo_status --wait) runs\n"
                    )
                return
            run = run_wait(run=run, out=self.stdout, timeout_s=o["timeout"])
        if not run.is_terminal:
            self.stderr.write(f"timed out waiting for run {run.id} (state {run.state})\n")
            sys.exit(exitcodes.TIMEOUT)
        verdict_table(run=run, out=self.stdout)
        if baseline is not None:
            compare_table(compare=run_compare(run=run, baseline=baseline), out=self.stdout)
        try:
            if o["json_path"]:
                Path(o["json_path"]).write_text(json.dumps(json_report(run=run), indent=1, default=str))
                self.stdout.write(f"JSON report: {o['json_path']}")
            if o["junit_path"]:
                Path(o["junit_path"]).write_bytes(junit_xml(run=run))
                self.stdout.write(f"JUnit XML: {o['junit_path']}")
        except OSError as exc:  # checked before the run; the disk can still fill or a folder vanish meanwhile
            usage_error(self.stderr, f"{exc.filename}: cannot write the report: {exc.strerror}")
        sys.exit(exit_code(run))

    def baseline_of(self, run_id: str | None, *, no_wait: bool) -> Run | None:
        """The `--baseline` run; a usage error, before anything is imported, when there is none to compare with."""
        if run_id is None:
            return None
        if no_wait:
            usage_error(self.stderr, "--baseline compares the verdict, which --no-wait does not wait for")
        try:
            return Run.objects.get(pk=uuid.UUID(run_id))
        except ValueError:
            usage_error(self.stderr, f"--baseline {run_id!r}: not a run id")
        except Run.DoesNotExist:
            usage_error(self.stderr, f"--baseline {run_id}: no such run")
