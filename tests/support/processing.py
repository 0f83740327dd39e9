"""Processing a run in the test process, chunk by chunk, as a worker would."""

from __future__ import annotations


def process(run) -> None:
    """Run every chunk through the worker's task function, as a worker would."""
    from runs.engine import chunk_evaluate
    from runs.models import Chunk

    for chunk_id in Chunk.objects.filter(run=run).values_list("id", flat=True):
        chunk_evaluate(chunk_id=chunk_id)
    run.refresh_from_db()
