"""The allowed state transitions, and the one guarded-update primitive every state change goes through."""

from __future__ import annotations

from typing import Any

from django.db import models

from runs.errors import TransitionError
from runs.models import Chunk, Run

RS, CS = Run.State, Chunk.State

RUN_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        (RS.PENDING, RS.RUNNING),
        (RS.PENDING, RS.CANCELLED),
        (RS.PENDING, RS.FINALIZING),  # every chunk ended before any worker marked the run running
        (RS.RUNNING, RS.FINALIZING),
        (RS.RUNNING, RS.CANCELLED),
        (RS.FINALIZING, RS.COMPLETED),
        (RS.FINALIZING, RS.FAILED),
    }
)

CHUNK_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        (CS.PENDING, CS.LEASED),
        (CS.PENDING, CS.CANCELLED),
        (CS.LEASED, CS.COMPLETED),
        (CS.LEASED, CS.PENDING),  # lease expired or released: back to the queue
        (CS.LEASED, CS.FAILED),  # past the recovery limit
        (CS.LEASED, CS.CANCELLED),
    }
)


def _sources(table: frozenset[tuple[str, str]], to: str) -> list[str]:
    return sorted(src for src, dst in table if dst == to)


def transition(
    *,
    model: type[models.Model],
    pk: Any,
    to: str,
    sources: list[str] | None = None,
    guard: dict[str, Any] | None = None,
    **fields: Any,
) -> None:
    """`UPDATE ... SET state=to WHERE pk AND state IN (allowed sources) [AND guard]`, or raise TransitionError.

    `sources` narrows the allowed sources further; a source outside the table is a programming error.
    """
    table = RUN_TRANSITIONS if model is Run else CHUNK_TRANSITIONS
    allowed = _sources(table, to)
    if sources is not None:
        illegal = set(sources) - set(allowed)
        if illegal:
            raise TransitionError(f"{model.__name__} cannot go from {sorted(illegal)} to {to}")
        allowed = sorted(sources)
    if not allowed:
        raise TransitionError(f"{model.__name__} has no transition into {to}")
    updated = model._default_manager.filter(pk=pk, state__in=allowed, **(guard or {})).update(state=to, **fields)
    if updated != 1:
        raise TransitionError(f"{model.__name__} {pk} is not in {allowed} (or the guard failed); cannot go to {to}")
