"""Thin Celery tasks of live evaluation, on the `online` queue: ids in, a service call, state in the database."""

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from online.messages import EVALUATE_TASK, WEBHOOK_TASK
from online.services import events_evaluate, events_redispatch_stale
from online.webhooks import webhook_deliver

# A dropped database connection: try again soon rather than lose the message (the work is idempotent).
_DB_ERRORS = (OperationalError, InterfaceError)


@shared_task(
    name=EVALUATE_TASK,
    ignore_result=True,
    acks_late=True,
    autoretry_for=_DB_ERRORS,
    retry_backoff=1,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=10,
)
def evaluate_events(event_ids: list[int]) -> int:
    return events_evaluate(event_ids=event_ids)


@shared_task(
    name=WEBHOOK_TASK,
    ignore_result=True,
    acks_late=True,
    autoretry_for=_DB_ERRORS,
    retry_backoff=1,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=10,
)
def webhook_send(delivery_id: int, round_start: int = 0) -> str:
    return webhook_deliver(delivery_id=delivery_id, round_start=round_start)


@shared_task(name="online.reap", ignore_result=True)
def reap() -> int:
    return events_redispatch_stale(older_than_s=settings.VIGILO_ONLINE_STALE_SECONDS)
