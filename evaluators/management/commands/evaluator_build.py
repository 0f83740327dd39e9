from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from evaluators.build import BuildError, component_build, is_native_source, native_build


class Command(BaseCommand):
    help = (
        "Build an evaluator folder into a WebAssembly component: Python (app.py using vigilo_sdk) or native "
        "(C sources on the runtime in evaluators/native/runtime, with a config_schema.json)."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", help="folder with app.py, or a native evaluator's folder")
        parser.add_argument("--world", default=None, help="evaluator (default) or model-evaluator")
        parser.add_argument("-o", "--output", default=None, help="where to write the .wasm (default DIR/NAME.wasm)")

    def handle(self, *args, directory: str, world: str | None, output: str | None, **options):
        src = Path(directory)
        if not src.is_dir():
            raise CommandError(f"{directory}: not a folder")
        native = is_native_source(src)
        world = world or world_of(src)
        if native and world != "evaluator":
            raise CommandError("native evaluators are built for the `evaluator` world only")
        cache_dir = Path(settings.VIGILO_CACHE_DIR) / "build"
        try:
            if native:
                built = native_build(source_dir=src, cache_dir=cache_dir)
            else:
                built = component_build(source_dir=src, cache_dir=cache_dir, world=world)
        except BuildError as exc:
            raise CommandError(str(exc)) from None
        target = Path(output) if output else src / f"{src.resolve().name}.wasm"
        shutil.copyfile(built, target)
        self.stdout.write(f"built {target} ({target.stat().st_size} bytes, world {world})")


def world_of(src: Path) -> str:
    """A folder may name its world in a file called WORLD; the default is `evaluator`."""
    marker = src / "WORLD"
    return marker.read_text().strip() if marker.is_file() else "evaluator"
