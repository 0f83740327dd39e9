from __future__ import annotations

import time

from django.core.management.base import BaseCommand

from outbox.relay import relay_once


class Command(BaseCommand):
    help = "Relay due outbox rows to RabbitMQ (once, or in a loop)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true")
        parser.add_argument("--interval", type=float, default=1.0)

    def handle(self, *args, once: bool, interval: float, **options):
        from outbox.transport import CeleryTransport

        transport = CeleryTransport()
        while True:
            n = relay_once(transport=transport)
            if once:
                self.stdout.write(f"published {n}")
                return
            if not n:
                time.sleep(interval)
