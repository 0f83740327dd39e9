"""The outbox messages of runs: the work message of a chunk (`chunk.ready`) and the run's domain events."""

from __future__ import annotations

from typing import Any

from outbox.services import Message
from runs.models import Chunk, Run

CHUNK_TASK = "runs.process_chunk"  # the Celery task name a chunk.ready message asks for (runs/tasks.py)


def chunk_ready_message(*, chunk: Chunk, generation: str) -> Message:
    """The work message for a chunk; `generation` ("0", "release-2", "stale-1", ...) makes each (re)dispatch its
    own outbox row, while a repeated write of the same dispatch is one row."""
    return Message(
        topic="chunk.ready",
        dedupe_key=f"chunk.ready:{chunk.id}:{generation}",
        payload={"task": CHUNK_TASK, "args": [chunk.id], "run_id": str(chunk.run_id)},
        shard=chunk.shard,
    )


def run_event(*, run: Run, topic: str, payload: dict[str, Any] | None = None) -> Message:
    """A domain event for the `vigilo.events` exchange (`run.started`, `run.completed`, `gate.decided`, ...)."""
    body = {"run_id": str(run.id), "state": run.state, "gate": run.gate, **(payload or {})}
    return Message(topic=topic, dedupe_key=f"{topic}:{run.id}", payload=body, shard=run.shard)
