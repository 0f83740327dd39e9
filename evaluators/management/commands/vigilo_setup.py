from __future__ import annotations

import hashlib
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from evaluators.build import BuildError, bundled_sources, component_build, native_build, native_sources
from evaluators.components import sandbox_host
from evaluators.management.commands.evaluator_build import world_of
from evaluators.services import PublishError, evaluator_version_publish, published_as


class Command(BaseCommand):
    help = "Migrate the database, build the bundled evaluators from source and publish them. Safe to re-run."

    def add_arguments(self, parser):
        parser.add_argument(
            "--only",
            nargs="*",
            default=None,
            help="bundled evaluators to build: folder names, native/<folder> for native ones",
        )

    def handle(self, *args, only: list[str] | None, **options):
        Path(settings.VIGILO_DATA_DIR).mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("database migrated")
        host = sandbox_host()
        cache_dir = Path(settings.VIGILO_CACHE_DIR) / "build"
        # Python evaluators by folder name ("contains"), native ones as "native/<folder>".
        builds = [
            (src.name, src, lambda s=src: component_build(source_dir=s, cache_dir=cache_dir, world=world_of(s)))
            for src in bundled_sources()
        ]
        builds += [
            (f"native/{src.name}", src, lambda s=src: native_build(source_dir=s, cache_dir=cache_dir))
            for src in native_sources()
        ]
        for label, src, build in builds:
            if only and label not in only:
                continue
            started = time.monotonic()
            try:
                wasm_path = build()
                wasm = wasm_path.read_bytes()
                loaded = host.load(digest=hashlib.sha256(wasm).hexdigest(), fetch=lambda w=wasm: w)
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
            except (BuildError, PublishError) as exc:
                raise CommandError(f"bundled evaluator {label}: {exc}") from None
            state = "published" if created else "up to date"
            if row.pure != pure:
                state += f" (published earlier as {'pure' if row.pure else 'not pure'}; versions are immutable)"
            self.stdout.write(f"{row.reference:<34} {state} ({time.monotonic() - started:.1f} s)")
