from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from evaluators.build import BuildError, component_build


class Command(BaseCommand):
    help = "Build a Python evaluator folder (app.py using vigilo_sdk) into a WebAssembly component."

    def add_arguments(self, parser):
        parser.add_argument("directory", help="folder with app.py")
        parser.add_argument("--world", default=None, help="evaluator (default) or model-evaluator")
        parser.add_argument("-o", "--output", default=None, help="where to write the .wasm (default DIR/NAME.wasm)")

    def handle(self, *args, directory: str, world: str | None, output: str | None, **options):
        src = Path(directory)
        if not src.is_dir():
            raise CommandError(f"{directory}: not a folder")
        world = world or world_of(src)
        try:
            built = component_build(source_dir=src, cache_dir=Path(settings.VIGILO_CACHE_DIR) / "build", world=world)
        except BuildError as exc:
            raise CommandError(str(exc)) from None
        target = Path(output) if output else src / f"{src.resolve().name}.wasm"
        shutil.copyfile(built, target)
        self.stdout.write(f"built {target} ({target.stat().st_size} bytes, world {world})")


def world_of(src: Path) -> str:
    """A folder may name its world in a file called WORLD; the default is `evaluator`."""
    marker = src / "WORLD"
    return marker.read_text().strip() if marker.is_file() else "evaluator"
