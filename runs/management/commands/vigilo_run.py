from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from outbox.embedded import EmbeddedRuntime
from runs.ingest import ValidationFailed, dataset_import, profile_import
from runs.management.commands._common import run_wait, target_of, usage_error
from runs.reports import EXIT_TIMEOUT, exit_code, json_report, junit_xml, verdict_table
from runs.services import run_create


class Command(BaseCommand):
    help = (
        "Evaluate a dataset with a profile and print the verdict. "
        "Exit 0 gate passed, 1 gate failed, 2 run failed or cancelled, 3 usage error, 4 timed out."
    )

    def add_arguments(self, parser):
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

    def handle(self, *args, **o):
        dataset_path, profile_path = Path(o["dataset"]), Path(o["profile"])
        target = target_of(url=o["target_url"], options=o["target_option"], stderr=self.stderr)
        for p in (dataset_path, profile_path):
            if not p.is_file():
                usage_error(self.stderr, f"{p}: no such file")
        try:
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
        runtime = EmbeddedRuntime(workers=settings.VIGILO_EMBEDDED_WORKERS) if embedded else nullcontext()
        with runtime:
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
            sys.exit(EXIT_TIMEOUT)
        verdict_table(run=run, out=self.stdout)
        if o["json_path"]:
            Path(o["json_path"]).write_text(json.dumps(json_report(run=run), indent=1, default=str))
            self.stdout.write(f"JSON report: {o['json_path']}")
        if o["junit_path"]:
            Path(o["junit_path"]).write_bytes(junit_xml(run=run))
            self.stdout.write(f"JUnit XML: {o['junit_path']}")
        sys.exit(exit_code(run))
