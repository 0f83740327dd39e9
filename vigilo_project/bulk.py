"""Idempotent bulk inserts: rows that collide with a unique constraint are skipped, on every database.

A worker writes each chunk's results and aggregates in batches; a batch may be written twice when a commit's
outcome was lost (the connection dropped after COMMIT) and the write is retried. So duplicates must be
skipped, which `bulk_create(ignore_conflicts=True)` does with `INSERT ... ON CONFLICT DO NOTHING`.

Inserting a dataset's cases needs the same speed without the skipping (`ignore_conflicts=False`).

On PostgreSQL that INSERT is slow to build: with client-side binding psycopg quotes every parameter in
Python, and Django prepares every value through the field's `get_db_prep_save`. For 10,000 cases with three
bindings that was a quarter of a worker's time (docs/benchmarks.md). So on PostgreSQL the rows are streamed
with COPY, which psycopg formats in C, from the instances' attribute values: JSON columns are sent as their
JSON text (`json.dumps`, as JSONField would), `auto_now(_add)` fields get their `pre_save` value, every other
field its Python value, which psycopg adapts as the INSERT would. COPY cannot skip conflicts; it runs in a
savepoint, and when a unique violation stops it (only a retried batch can cause one) the batch is written
again with INSERT ... ON CONFLICT DO NOTHING. Any other error is raised as it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, cast

from django.db import IntegrityError, connection, models, transaction

UNIQUE_VIOLATION = "23505"


def bulk_insert(objs: Sequence[models.Model], *, ignore_conflicts: bool = True, batch_size: int = 500) -> None:
    """Insert unsaved instances of one model, skipping any that conflict with a unique constraint (or, with
    `ignore_conflicts=False`, raising IntegrityError for them). The instances' primary keys are not set."""
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objs, ignore_conflicts=ignore_conflicts, batch_size=batch_size)
        return
    sql, values = _copy_plan(model)
    try:
        # psycopg's own cursor does the COPY (Django's wrapper has none); wrap_database_errors turns its errors
        # into Django's, as the wrapper would.
        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            connection.wrap_database_errors,
            cursor.cursor.copy(sql) as copy,
        ):
            for obj in objs:
                copy.write_row([value(obj) for value in values])
    except IntegrityError as exc:
        if not ignore_conflicts or getattr(exc.__cause__, "sqlstate", None) != UNIQUE_VIOLATION:
            raise
        model._default_manager.bulk_create(objs, ignore_conflicts=True, batch_size=batch_size)


@cache
def _copy_plan(model: type[models.Model]) -> tuple[str, list[Callable[[models.Model], Any]]]:
    """The COPY statement for the model's columns (all but the primary key) and a value getter per column."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    columns = [cast(str, f.column) for f in fields]  # a concrete field is one with a column
    sql = f"COPY {quote(model._meta.db_table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    return sql, [_getter(f) for f in fields]


def _getter(field: models.Field) -> Callable[[models.Model], Any]:
    name = field.attname
    if isinstance(field, models.JSONField):
        if field.encoder is not None:
            raise TypeError(f"{field}: bulk_insert writes JSON with the default encoder only")

        def json_text(obj: models.Model) -> str | None:
            value = getattr(obj, name)
            return None if value is None else json.dumps(value)  # None is SQL NULL, as JSONField stores it

        return json_text
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return lambda obj: field.pre_save(obj, True)
    return lambda obj: getattr(obj, name)
