from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from outbox.relay import relay_drain, relay_once
from outbox.transport.rabbitmq import CeleryTransport


class Command(BaseCommand):
    help = "Relay due outbox rows to RabbitMQ (once, or in a loop). Beat does this in production; this is for tools."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="one batch, then exit")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds to sleep when nothing is due")

    def handle(self, *args: Any, once: bool, interval: float, **options: Any) -> None:
        with CeleryTransport() as transport:
            if once:
                self.stdout.write(f"published {relay_once(transport=transport)}")
                return
            while True:
                if not relay_drain(transport=transport):
                    time.sleep(interval)
