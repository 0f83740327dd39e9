"""`manage.py online_consume [--batch N] [--wait S]`: the AMQP path of live evaluation (docs/live-amqp.md).

Consumes the events emitters publish to `vigilo.online` (routing key = the agent's name, header
`authorization: Bearer <the agent's token>`) until SIGTERM or SIGINT, which stop it after the batch in hand.
The command lives in api because the tokens do: it hands online's consumer the check of a token.
"""

from __future__ import annotations

import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from api.services import token_authenticate
from online.consumer import QUEUE, EventConsumer
from vigilo_project.exitcodes import USAGE


def agent_of_token(secret: str) -> int | None:
    """The agent an active token with the `emit` scope belongs to (what the HTTP path asks of an emitter)."""
    token = token_authenticate(secret=secret)
    if token is None or token.agent_id is None or "emit" not in token.scopes:
        return None
    return token.agent_id


class Command(BaseCommand):
    help = "Consume live-evaluation events from RabbitMQ (exchange vigilo.online, queue vigilo.online.events)"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch",
            type=int,
            default=settings.VIGILO_ONLINE_CONSUME_BATCH,
            help="messages per batch, and the channel's prefetch (VIGILO_ONLINE_CONSUME_BATCH)",
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=settings.VIGILO_ONLINE_CONSUME_WAIT_S,
            help="seconds a batch waits to fill after its first message (VIGILO_ONLINE_CONSUME_WAIT_S)",
        )

    def handle(self, *args: Any, batch: int, wait: float, **options: Any) -> None:
        if not settings.CELERY_BROKER_URL:
            raise CommandError("CELERY_BROKER_URL is not set: the AMQP path needs RabbitMQ", returncode=USAGE)
        if batch < 1 or wait <= 0:
            raise CommandError("--batch must be >= 1 and --wait > 0", returncode=USAGE)
        consumer = EventConsumer(
            broker_url=settings.CELERY_BROKER_URL,
            authenticate=agent_of_token,
            batch_size=batch,
            wait_s=wait,
            on_ready=lambda: self.stdout.write(f"online_consume: ready, consuming {QUEUE} (batch {batch})"),
        )

        def stop(signum: int, frame: Any) -> None:
            consumer.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        consumer.run()
        c = consumer.counts
        dropped = ", ".join(f"{kind} {n}" for kind, n in sorted(c.dropped.items()))
        self.stdout.write(
            f"online_consume: stopped: {c.accepted} events accepted, {c.duplicates} resends, "
            f"{sum(c.dropped.values())} messages dropped" + (f" ({dropped})" if dropped else "")
        )
