from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from evaluators.build import BuildError, bundled_sources, component_build, native_build, native_sources
from evaluators.components import sandbox_host
from evaluators.management.commands.evaluator_build import build_failure, world_of
from evaluators.sandbox import ComponentRejected
from evaluators.services import PublishError, evaluator_version_publish, published_as
from vigilo_project.exitcodes import OPERATIONAL, USAGE


class Command(BaseCommand):
    help = (
        "Migrate the database, build the bundled evaluators from source and publish them. Safe to re-run. "
        "Exit 2 when a bundled evaluator does not build or publish (the installation is broken), 3 on an unknown "
        "--only name."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--only",
            nargs="*",
            default=None,
            help="bundled evaluators to build: folder names, native/<folder> for native ones",
        )

    def handle(self, *args: Any, only: list[str] | None, verbosity: int = 1, **options: Any) -> None:
        cache_dir = Path(settings.VIGILO_CACHE_DIR) / "build"
        # Python evaluators by folder name ("contains"), native ones as "native/<folder>".
        builds: list[tuple[str, Path, Callable[[], Path]]] = [
            (src.name, src, functools.partial(_python_build, src, cache_dir)) for src in bundled_sources()
        ]
        builds += [
            (f"native/{src.name}", src, functools.partial(native_build, source_dir=src, cache_dir=cache_dir))
            for src in native_sources()
        ]
        unknown = sorted(set(only or ()) - {label for label, _, _ in builds})
        if unknown:
            known = ", ".join(label for label, _, _ in builds)
            raise CommandError(
                f"--only: no bundled evaluator {', '.join(unknown)} (choose from {known})", returncode=USAGE
            )
        Path(settings.VIGILO_DATA_DIR).mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("database migrated")
        host = sandbox_host()
        for label, src, build in builds:
            if only and label not in only:
                continue
            started = time.monotonic()
            try:
                wasm_path = build()
                wasm = wasm_path.read_bytes()
                loaded = host.load(digest=hashlib.sha256(wasm).hexdigest(), fetch=_returning(wasm))
                info = host.describe(loaded)
                pure = (src / "PURE").is_file()
                earlier = published_as(name=info["name"], version=info["version"], wasm=wasm)
                if earlier is not None:
                    # Same bytes published before, maybe by an older setup that did not declare purity yet.
                    row, created = earlier, False
                else:
                    row, created = evaluator_version_publish(
                        name=info["name"], version=info["version"], wasm=wasm, pure=pure
                    )
            except BuildError as exc:
                # Nothing the user typed: the sources that came with this installation do not build.
                message = build_failure(exc, verbosity=verbosity, stderr=self.stderr)
                raise CommandError(f"bundled evaluator {label}: {message}", returncode=OPERATIONAL) from None
            except (PublishError, ComponentRejected) as exc:
                raise CommandError(f"bundled evaluator {label}: {exc}", returncode=OPERATIONAL) from None
            state = "published" if created else "up to date"
            if row.pure != pure:
                state += f" (published earlier as {'pure' if row.pure else 'not pure'}; versions are immutable)"
            self.stdout.write(f"{row.reference:<34} {state} ({time.monotonic() - started:.1f} s)")


def _python_build(src: Path, cache_dir: Path) -> Path:
    return component_build(source_dir=src, cache_dir=cache_dir, world=world_of(src))


def _returning(wasm: bytes) -> Callable[[], bytes]:
    """A `fetch` for the sandbox host that hands over bytes already read."""
    return lambda: wasm
