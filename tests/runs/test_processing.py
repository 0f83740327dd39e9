"""Chunk processing and finalization are idempotent: doing anything twice changes nothing the second time."""

from __future__ import annotations

import pytest

from gating.profile import profile_parse
from outbox.models import OutboxEvent
from runs.chunks import LeaseLost, chunk_claim, chunk_complete, chunk_record_results
from runs.engine import chunk_evaluate
from runs.errors import IdempotencyConflict
from runs.models import Chunk, EvaluatorResult, ExecutionAggregate, Run
from runs.reaper import chunks_reap
from runs.services import dataset_import, profile_import, run_cancel, run_create, run_finalize_if_done
from tests.support.datasets import hello_cases
from tests.support.profiles import IDEM_PROFILE


def result_rows(run):
    return sorted(EvaluatorResult.objects.filter(run=run).values_list("execution__case_id", "binding_id", "attempt"))


def test_creating_a_run_writes_chunks_executions_and_one_dispatch_row_per_chunk(run):
    assert (run.state, run.gate, run.expected_executions, run.chunk_count) == ("pending", "pending", 5, 3)
    assert run.chunks.count() == 3 and run.executions.count() == 5
    keys = sorted(OutboxEvent.objects.filter(topic="chunk.ready").values_list("dedupe_key", flat=True))
    assert keys == sorted(f"chunk.ready:{c.id}:0" for c in run.chunks.all())
    assert set(run.pins) == {"answer", "mentions"}
    assert all(len(p["digest"]) == 64 for p in run.pins.values())


def test_processing_every_chunk_completes_the_run_with_the_expected_verdict(run):
    for chunk in run.chunks.all():
        assert chunk_evaluate(chunk_id=chunk.id) == "completed"
    run.refresh_from_db()
    assert (run.state, run.gate) == ("completed", "fail")
    # c0 and c3 answered "bye": exact-match and contains("o") both fail for them.
    statuses = dict(ExecutionAggregate.objects.filter(run=run).values_list("execution__case_id", "status"))
    assert statuses == {"c0": "failed", "c1": "passed", "c2": "passed", "c3": "failed", "c4": "passed"}
    assert run.verdict["counts"] == {"expected": 5, "aggregated": 5, "passed": 3, "failed": 2, "error": 0, "missing": 0}
    assert [r["code"] for r in run.verdict["reasons"]] == ["executions_failed"]
    topics = sorted(OutboxEvent.objects.exclude(topic="chunk.ready").values_list("topic", flat=True))
    assert topics == ["gate.decided", "run.completed", "run.started"]


def results_written_before_completion(monkeypatch) -> list[int]:
    """The sizes of the result batches chunk processing writes before completing (the real writes still run)."""
    from runs import engine

    written: list[int] = []
    record = engine.chunk_record_results

    def spy(*, claim, results):
        written.append(len(results))
        record(claim=claim, results=results)

    monkeypatch.setattr(engine, "chunk_record_results", spy)
    return written


def test_a_slow_chunk_writes_its_results_as_it_goes(run, monkeypatch):
    """Past RESULT_FLUSH_S, results are written before the chunk completes (progress, and less to redo)."""
    from runs import engine

    monkeypatch.setattr(engine, "RESULT_FLUSH_S", 0.0)
    written = results_written_before_completion(monkeypatch)
    for chunk in run.chunks.order_by("index"):
        assert chunk_evaluate(chunk_id=chunk.id) == "completed"
    # Chunks of 2, 2 and 1 executions with 2 bindings: the first execution of each 2-execution chunk is written
    # on its own; the last one goes with the completion.
    assert written == [2, 2]
    assert len(result_rows(run)) == 10
    run.refresh_from_db()
    assert run.verdict["counts"]["passed"] == 3


def test_a_fast_chunk_writes_its_results_with_its_completion(run, monkeypatch):
    written = results_written_before_completion(monkeypatch)
    for chunk in run.chunks.order_by("index"):
        assert chunk_evaluate(chunk_id=chunk.id) == "completed"
    assert written == []
    assert len(result_rows(run)) == 10


def test_processing_the_same_chunk_twice_changes_nothing(run):
    chunk = run.chunks.first()
    assert chunk_evaluate(chunk_id=chunk.id) == "completed"
    before = (result_rows(run), ExecutionAggregate.objects.filter(run=run).count())
    assert chunk_evaluate(chunk_id=chunk.id) == "skipped"
    assert (result_rows(run), ExecutionAggregate.objects.filter(run=run).count()) == before
    assert Chunk.objects.get(pk=chunk.pk).attempt == 1


def test_writing_the_same_results_twice_keeps_one_row_each(run):
    chunk = run.chunks.first()
    claim = chunk_claim(chunk_id=chunk.id)
    rows = [
        EvaluatorResult(
            execution=e,
            run=run,
            shard=run.shard,
            attempt=claim.attempt,
            binding_id="answer",
            evaluator_version_id=run.pins["answer"]["version_id"],
            outcome="completed",
            kind="binary",
            measurement=True,
        )
        for e in chunk.executions.all()
    ]
    chunk_record_results(claim=claim, results=rows)
    chunk_record_results(
        claim=claim,
        results=[
            EvaluatorResult(
                **{
                    k: getattr(r, k)
                    for k in (
                        "execution_id",
                        "run_id",
                        "shard",
                        "attempt",
                        "binding_id",
                        "evaluator_version_id",
                        "outcome",
                        "kind",
                        "measurement",
                    )
                }
            )
            for r in rows
        ],
    )
    assert EvaluatorResult.objects.filter(run=run).count() == len(rows)


def test_completing_twice_or_with_a_stale_token_is_refused(run):
    chunk = run.chunks.first()
    claim = chunk_claim(chunk_id=chunk.id)
    profile = profile_parse(data=run.profile_version.document)
    chunk_complete(claim=claim, profile=profile, pins=run.pins)
    with pytest.raises(LeaseLost):
        chunk_complete(claim=claim, profile=profile, pins=run.pins)
    assert ExecutionAggregate.objects.filter(run=run).count() == chunk.executions.count()


def test_a_worker_whose_lease_expired_cannot_write_after_recovery(run, settings):
    chunk = run.chunks.first()
    old = chunk_claim(chunk_id=chunk.id)
    Chunk.objects.filter(pk=chunk.pk).update(leased_until="2000-01-01T00:00:00Z")
    assert chunks_reap()["recovered"] == 1
    new = chunk_claim(chunk_id=chunk.id)
    assert new.attempt == old.attempt + 1
    with pytest.raises(LeaseLost):
        chunk_record_results(claim=old, results=[])
    assert OutboxEvent.objects.filter(dedupe_key=f"chunk.ready:{chunk.id}:1").exists()


def test_past_the_recovery_limit_the_chunk_fails_and_the_run_fails_operationally(run, settings):
    settings.VIGILO_MAX_RECOVERIES = 0
    first, *rest = list(run.chunks.all())
    for chunk in rest:
        chunk_evaluate(chunk_id=chunk.id)
    chunk_claim(chunk_id=first.id)
    Chunk.objects.filter(pk=first.pk).update(leased_until="2000-01-01T00:00:00Z")
    assert chunks_reap()["failed"] == 1
    run.refresh_from_db()
    assert (run.state, run.gate) == ("failed", "fail")
    assert run.verdict["operational_failure"] is True
    assert "chunks_failed" in [r["code"] for r in run.verdict["reasons"]]
    assert "recovery limit" in run.failure_reason


def test_finalizing_twice_changes_nothing(run):
    for chunk in run.chunks.all():
        chunk_evaluate(chunk_id=chunk.id)
    run.refresh_from_db()
    verdict, finished = run.verdict, run.finished_at
    assert run_finalize_if_done(run_id=run.id) is False
    run.refresh_from_db()
    assert (run.verdict, run.finished_at) == (verdict, finished)
    assert OutboxEvent.objects.filter(topic="gate.decided").count() == 1


def test_cancelling_stops_the_run_and_workers_cannot_write(run):
    chunk = run.chunks.first()
    claim = chunk_claim(chunk_id=chunk.id)
    cancelled = run_cancel(run_id=run.id)
    assert (cancelled.state, cancelled.gate) == ("cancelled", "fail")
    assert set(run.chunks.values_list("state", flat=True)) == {"cancelled"}
    assert cancelled.verdict["reasons"][0]["code"] == "run_cancelled"
    with pytest.raises(LeaseLost):
        chunk_record_results(claim=claim, results=[])
    assert chunk_evaluate(chunk_id=run.chunks.last().id) == "skipped"


def test_idempotency_key_returns_the_same_run_or_conflicts(published):
    dataset, _ = dataset_import(name="idem", text=hello_cases(2))
    profile, _ = profile_import(text=IDEM_PROFILE)
    first, created = run_create(dataset_version=dataset, profile_version=profile, idempotency_key="k1")
    again, created_again = run_create(dataset_version=dataset, profile_version=profile, idempotency_key="k1")
    assert (created, created_again, first.pk) == (True, False, again.pk)
    with pytest.raises(IdempotencyConflict):
        run_create(dataset_version=dataset, profile_version=profile, idempotency_key="k1", name="other")
    assert Run.objects.count() == 1
