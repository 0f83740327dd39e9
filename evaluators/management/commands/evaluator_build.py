from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from evaluators.build import (
    WORLDS,
    BuildError,
    BuildToolMissing,
    component_build,
    is_native_source,
    native_build,
)
from vigilo_project.exitcodes import OPERATIONAL, USAGE


class Command(BaseCommand):
    help = (
        "Build an evaluator folder into a WebAssembly component: Python (app.py using vigilo_sdk) or native "
        "(C sources on the runtime in evaluators/native/runtime, with a config_schema.json). A failed build "
        "names the evaluator's own error (file:line) and a hint; -v 2 adds the build tool's whole output. "
        "Exit 3 when the evaluator does not build, 2 when a build tool is missing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", help="folder with app.py, or a native evaluator's folder")
        parser.add_argument("--world", default=None, help="evaluator (default) or model-evaluator")
        parser.add_argument("-o", "--output", default=None, help="where to write the .wasm (default DIR/NAME.wasm)")

    def handle(
        self, *args: Any, directory: str, world: str | None, output: str | None, verbosity: int = 1, **options: Any
    ) -> None:
        src = Path(directory)
        if not src.is_dir():
            raise CommandError(f"{directory}: not a folder", returncode=USAGE)
        target = Path(output) if output else src / f"{src.resolve().name}.wasm"
        if not target.parent.is_dir():
            raise CommandError(f"{output}: the folder {target.parent} does not exist", returncode=USAGE)
        native = is_native_source(src)
        where = "--world" if world else str(src / "WORLD")
        world = world or world_of(src)
        if native and world != "evaluator":
            raise CommandError("native evaluators are built for the `evaluator` world only", returncode=USAGE)
        if not native and world not in WORLDS:
            raise CommandError(f"unknown world {world!r} ({where}): use one of {', '.join(WORLDS)}", returncode=USAGE)
        cache_dir = Path(settings.VIGILO_CACHE_DIR) / "build"
        try:
            if native:
                built = native_build(source_dir=src, cache_dir=cache_dir)
            else:
                built = component_build(source_dir=src, cache_dir=cache_dir, world=world)
        except BuildError as exc:
            code = OPERATIONAL if isinstance(exc, BuildToolMissing) else USAGE
            raise CommandError(build_failure(exc, verbosity=verbosity, stderr=self.stderr), returncode=code) from None
        shutil.copyfile(built, target)
        self.stdout.write(f"built {target} ({target.stat().st_size} bytes, world {world})")


def build_failure(exc: BuildError, *, verbosity: int, stderr: OutputWrapper) -> str:
    """What a failed build exits with: the evaluator's own error first, then a hint. The build tool's whole
    output (componentize-py's native backtrace) goes to `stderr` with -v 2 only."""
    lines = [str(exc)]
    if exc.hint:
        lines.append(f"hint: {exc.hint}")
    if exc.detail and verbosity >= 2:
        stderr.write(f"the build tool's whole output:\n{exc.detail}\n")
    elif exc.detail:
        lines.append("(run with -v 2 for the build tool's whole output)")
    return "\n".join(lines)


def world_of(src: Path) -> str:
    """A folder may name its world in a file called WORLD; the default is `evaluator`."""
    marker = src / "WORLD"
    return marker.read_text().strip() if marker.is_file() else "evaluator"
