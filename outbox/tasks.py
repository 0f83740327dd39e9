"""The relay as a Celery task: beat sends `outbox.relay` every second, commits kick it in between."""

from celery import shared_task

from outbox.relay import relay_drain


@shared_task(name="outbox.relay", ignore_result=True)
def relay() -> int:
    from outbox.transport import CeleryTransport

    return relay_drain(transport=CeleryTransport())
