from django.core.management.base import BaseCommand

from runs.services import periodic_reap


class Command(BaseCommand):
    help = (
        "Return expired chunk leases to pending (or fail chunks past the recovery limit), finalize stalled runs "
        "and delete expired shared model responses."
    )

    def handle(self, *args, **options):
        self.stdout.write(str(periodic_reap()))
