from typing import Any

from django.core.management.base import BaseCommand

from runs.reaper import periodic_reap


class Command(BaseCommand):
    help = (
        "Return expired chunk leases to pending (or fail chunks past the recovery limit), finalize stalled runs "
        "and delete expired shared model responses."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(str(periodic_reap()))
