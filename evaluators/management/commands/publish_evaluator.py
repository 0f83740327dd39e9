from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evaluators.services import PublishError, evaluator_version_publish
from vigilo_project.exitcodes import USAGE


class Command(BaseCommand):
    help = (
        "Publish a WebAssembly component as an immutable evaluator version. --name and --version must be what the "
        "component's describe() declares. Exit 3 when the file is missing or the registry refuses it."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # `--version` is the evaluator's version here, not Django's version flag.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", help="the component (.wasm)")
        parser.add_argument("--name", required=True, help="namespace/name, e.g. acme/tone")
        parser.add_argument("--version", required=True, dest="semver", help="semantic version, e.g. 1.0.0")
        parser.add_argument(
            "--pure",
            action="store_true",
            help="declare that evaluate() depends on its input alone: a profile may then allow instance reuse",
        )

    def handle(self, *args: Any, path: str, name: str, semver: str, pure: bool, **options: Any) -> None:
        file = Path(path)
        if not file.is_file():
            raise CommandError(f"{path}: no such file", returncode=USAGE)
        try:
            row, created = evaluator_version_publish(name=name, version=semver, wasm=file.read_bytes(), pure=pure)
        except PublishError as exc:
            raise CommandError(str(exc), returncode=USAGE) from None
        verb = "published" if created else "already published (same bytes)"
        caps = ", ".join(row.capabilities) or "none"
        purity = ", pure" if row.pure else ""
        self.stdout.write(
            f"{row.reference} {verb}: sha256 {row.digest}, world {row.world}, capabilities {caps}{purity}"
        )
