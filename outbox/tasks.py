"""The relay as a Celery task: beat sends `outbox.relay` every second, commits kick it in between."""

from celery import shared_task

from outbox.relay import relay_drain


@shared_task(name="outbox.relay", ignore_result=True)
def relay() -> int:
    from outbox.transport import CeleryTransport

    with CeleryTransport() as transport:  # one broker connection for the whole drain
        return relay_drain(transport=transport)
