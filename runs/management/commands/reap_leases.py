from django.core.management.base import BaseCommand

from runs.services import chunks_reap


class Command(BaseCommand):
    help = "Return expired chunk leases to pending (or fail chunks past the recovery limit)."

    def handle(self, *args, **options):
        self.stdout.write(str(chunks_reap()))
