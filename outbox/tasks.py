from celery import shared_task

from outbox.relay import relay_once


@shared_task(name="outbox.relay", ignore_result=True)
def relay() -> int:
    from outbox.transport import CeleryTransport

    return relay_once(transport=CeleryTransport())
