"""Thin Celery tasks: ids in, a call of the engine or the reaper, state in the database."""

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from runs.engine import chunk_evaluate
from runs.messages import CHUNK_TASK
from runs.reaper import periodic_reap


@shared_task(
    name=CHUNK_TASK,
    bind=True,
    ignore_result=True,
    acks_late=True,
    # A dropped database connection before or during the claim: try again soon rather than lose the message.
    # Work already leased is recovered by the lease reaper instead.
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=1,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=10,
    # Far below RabbitMQ's consumer_timeout. Past the soft limit the task raises and stops heartbeating, so its
    # lease expires and the reaper counts a recovery (a chunk that always overruns ends up failed, not looping).
    soft_time_limit=settings.VIGILO_CHUNK_TIME_LIMIT_S,
    time_limit=settings.VIGILO_CHUNK_TIME_LIMIT_S + 60,
)
def process_chunk(self: object, chunk_id: int) -> str:
    return chunk_evaluate(chunk_id=chunk_id)


@shared_task(name="runs.reap_leases", ignore_result=True)
def reap_leases() -> dict[str, int]:
    return periodic_reap()
