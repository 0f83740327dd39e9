"""Thin Celery tasks: ids in, a service call, state in the database."""

from celery import shared_task

from runs.processing import chunk_process
from runs.services import chunks_reap


@shared_task(name="runs.process_chunk", ignore_result=True, acks_late=True)
def process_chunk(chunk_id: int) -> str:
    return chunk_process(chunk_id=chunk_id)


@shared_task(name="runs.reap_leases", ignore_result=True)
def reap_leases() -> dict[str, int]:
    return chunks_reap()
