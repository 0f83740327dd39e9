"""vigilo_project.bulk.bulk_insert: the rows COPY writes are the rows bulk_create writes, duplicates are
skipped, and every other integrity problem is raised (on the suite's database, PostgreSQL)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from runs.models import EvaluatorResult, ExecutionAggregate
from vigilo_project.bulk import bulk_insert

FIELDS = [f.attname for f in EvaluatorResult._meta.concrete_fields if f.attname not in ("id", "created_at")]


def results(run, *, attempt: int, binding_id: str) -> list[EvaluatorResult]:
    out = []
    for i, execution in enumerate(run.executions.order_by("ordinal")):
        out.append(
            EvaluatorResult(
                execution=execution,
                run=run,
                shard=run.shard,
                attempt=attempt,
                binding_id=binding_id,
                evaluator_version_id=run.pins["answer"]["version_id"],
                outcome="completed" if i % 2 else "error",
                kind="numeric" if i % 2 else "",
                measurement=[None, 0.1, {"é": '☃ "q" \\ \n'}, 12345678901234567890][i % 4] if i % 2 else None,
                score=0.5 if i % 2 else None,
                findings=[{"severity": "high", "evidence": {"nested": [1, 2.5, None, True]}}] if i % 3 else [],
                error_code="" if i % 2 else "trap",
                error_message="" if i % 2 else "it's\ttabbed\x01",
                duration_ms=1.25,
                fuel_used=2**40,
                isolation="reused",
            )
        )
    return out


def stored(run, binding_id: str) -> list[tuple]:
    rows = EvaluatorResult.objects.filter(run=run, binding_id=binding_id).order_by("execution__ordinal")
    return [tuple(v for k, v in row.items() if k != "binding_id") for row in rows.values(*FIELDS)]


def test_uses_copy_on_postgresql():
    assert connection.vendor == "postgresql", "the suite runs on PostgreSQL (make test); this test checks COPY"


def test_copy_writes_what_bulk_create_writes(run):
    bulk_insert(results(run, attempt=1, binding_id="copy"))
    EvaluatorResult.objects.bulk_create(results(run, attempt=1, binding_id="orm"))
    assert stored(run, "copy") == stored(run, "orm")
    assert len(stored(run, "copy")) == run.executions.count() == 5
    null_measurement = EvaluatorResult.objects.filter(binding_id="copy", measurement__isnull=True).count()
    assert null_measurement == 3  # None is SQL NULL, as JSONField stores it
    assert all(r.created_at is not None for r in EvaluatorResult.objects.filter(binding_id="copy"))


def test_a_batch_written_twice_keeps_one_row_each(run):
    with transaction.atomic():
        bulk_insert(results(run, attempt=1, binding_id="twice"))
        bulk_insert(results(run, attempt=1, binding_id="twice"))  # a retry after a lost COMMIT
        bulk_insert(results(run, attempt=2, binding_id="twice")[:2])  # a new attempt is new rows
    assert EvaluatorResult.objects.filter(binding_id="twice", attempt=1).count() == 5
    assert EvaluatorResult.objects.filter(binding_id="twice", attempt=2).count() == 2


def test_a_partly_written_batch_gets_its_missing_rows(run):
    rows = results(run, attempt=1, binding_id="part")
    bulk_insert(rows[:2])
    bulk_insert(results(run, attempt=1, binding_id="part"))
    assert EvaluatorResult.objects.filter(binding_id="part").count() == 5


def test_other_integrity_errors_are_raised(run):
    rows = results(run, attempt=1, binding_id="bad")
    rows[3].binding_id = None  # NOT NULL
    with pytest.raises(IntegrityError, match="binding_id"), transaction.atomic():
        bulk_insert(rows)
    assert not EvaluatorResult.objects.filter(binding_id="bad").exists()


def test_aggregates_round_trip(run):
    rows = [
        ExecutionAggregate(
            execution=e,
            run=run,
            shard=run.shard,
            attempt=1,
            status="passed",
            aggregate_score=1.0,
            dimension_scores={"d": 1.0},
            binding_scores={"b": {"score": None, "passed": True}},
            reasons=["a reason"],
        )
        for e in run.executions.all()
    ]
    bulk_insert(rows)
    bulk_insert(rows)
    got = ExecutionAggregate.objects.filter(run=run)
    assert got.count() == 5
    assert {a.binding_scores["b"]["passed"] for a in got} == {True} and got[0].blocking_failures == []
