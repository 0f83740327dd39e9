from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandParser

from evaluators.components import component_load, sandbox_host
from evaluators.sandbox import ComponentRejected, Invocation
from evaluators.selectors import ResolveError, evaluator_version_resolve
from vigilo_project import exitcodes


class Command(BaseCommand):
    help = (
        f"Run an evaluator once on one case in the sandbox. Exit {exitcodes.OK} when it completed (or abstained), "
        f"{exitcodes.FAILED} when the invocation ended in an error result, {exitcodes.USAGE} on usage errors."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ref", help="a reference (vigilo/regex@^1.0) or a path to a .wasm component")
        parser.add_argument("--input", required=True, help="one case in the dataset format (a JSON file)")
        parser.add_argument("--config", default="{}", help="the binding config as JSON")
        parser.add_argument("--json", action="store_true", help="print the raw result as JSON")

    def fail(self, message: str) -> NoReturn:
        self.stderr.write(f"error: {message}")
        sys.exit(exitcodes.USAGE)

    def handle(self, *args: Any, **options: Any) -> None:
        ref: str = options["ref"]
        case = self.read_case(options["input"])
        try:
            cfg = json.loads(options["config"])
        except ValueError as exc:
            self.fail(f"--config is not valid JSON: {exc}")
        host = sandbox_host()
        try:
            if ref.endswith(".wasm") or Path(ref).is_file():
                wasm = Path(ref).read_bytes()
                loaded = host.load(digest=hashlib.sha256(wasm).hexdigest(), fetch=lambda: wasm)
            else:
                loaded = component_load(digest=evaluator_version_resolve(reference=ref).digest)
        except (ResolveError, ComponentRejected, OSError) as exc:
            self.fail(str(exc))
        output = case.get("output") or {}
        data = {"run_id": "try", "execution_id": "try", "attempt": 1, "case": case, "output": output, "config": cfg}
        inv = host.evaluate(loaded, data=data)
        if options["json"]:
            self.stdout.write(json.dumps(inv.__dict__, indent=2, default=str))
        else:
            self.report(inv)
        sys.exit(exitcodes.FAILED if inv.outcome == "error" else exitcodes.OK)

    def read_case(self, path: str) -> dict[str, Any]:
        try:
            case = json.loads(Path(path).read_text())
        except OSError as exc:
            self.fail(f"{path}: {exc.strerror}")
        except ValueError as exc:
            self.fail(f"{path} is not valid JSON: {exc}")
        if not isinstance(case, dict):
            self.fail(f"{path} must hold one JSON object (a case in the dataset format)")
        return case

    def report(self, inv: Invocation) -> None:
        if inv.outcome == "completed":
            self.stdout.write(f"outcome: completed, {inv.kind} measurement {inv.measurement!r}")
        elif inv.outcome == "abstained" and inv.abstention is not None:
            self.stdout.write(f"outcome: abstained ({inv.abstention['category']}: {inv.abstention['reason']})")
        else:
            self.stdout.write(f"outcome: error {inv.error_code}: {inv.error_message}")
        if inv.explanation:
            self.stdout.write(f"explanation: {inv.explanation}")
        for f in inv.findings:
            self.stdout.write(f"finding [{f['severity']}] {f['category']}: {f['message']}")
        for line in inv.logs:
            self.stdout.write(f"log [{line['level']}] {line['message']}")
        if inv.logs_truncated:
            self.stdout.write("log: truncated at the configured limits")
        self.stdout.write(f"duration {inv.duration_ms:.1f} ms, fuel {inv.fuel_used}")
