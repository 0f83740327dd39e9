"""`manage.py vigilo_export_relay`: deliver pending export batches until stopped (docs/exporters.md).

The embedded mode starts it as a child with `--follow-stdin` (exporters.embedded): each byte read is a kick, the
end of input (the parent closed the pipe or died) a stop. Standalone, it runs until SIGTERM or SIGINT. Either way
it drains for at most `--drain-s` before it exits. The distributed mode needs none: its Celery task relays.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from exporters.embedded import DRAIN_S, RelayLoop


class Command(BaseCommand):
    help = "Deliver pending export batches to the configured destinations until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--follow-stdin", action="store_true", help="a byte on stdin wakes it; the end of stdin stops it"
        )
        parser.add_argument("--drain-s", type=float, default=DRAIN_S, help="the longest drain before exiting")

    def handle(self, *args: Any, **o: Any) -> None:
        if not settings.VIGILO_EXPORT_DESTINATIONS:
            self.stderr.write("vigilo_export_relay: no destination is configured (VIGILO_EXPORT_<KIND>_URL)")
            return
        loop = RelayLoop(drain_s=o["drain_s"])

        def stop(_signum: int, _frame: FrameType | None) -> None:
            loop.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)  # Ctrl-C reaches the whole process group: drain, then exit quietly
        if o["follow_stdin"]:
            threading.Thread(target=_follow, args=(loop,), name="vigilo-export-kicks", daemon=True).start()
        loop.run()


def _follow(loop: RelayLoop) -> None:
    """Kick the loop for every read from stdin; stop it at the end of input."""
    try:
        while os.read(sys.stdin.fileno(), 4096):
            loop.kick.set()
    except (OSError, ValueError):
        pass
    loop.stop()
