"""Writes of runs: datasets and profiles stored, a run created with its chunks, executions and dispatch rows,
marked running, cancelled, finalized with its verdict. Each state change writes its outbox rows in the same
transaction."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from gating.profile import ProfileSpec
from outbox.services import outbox_write
from runs.errors import IdempotencyConflict, TransitionError, ValidationFailed
from runs.exports import verdict_export
from runs.ingest import dataset_parse, profile_load_yaml
from runs.messages import chunk_ready_message, run_event
from runs.models import SHARDS, Case, Chunk, Dataset, DatasetVersion, Execution, Profile, ProfileVersion, Run
from runs.pins import profile_check
from runs.selectors import run_verdict
from runs.targets import target_parse
from runs.transitions import transition
from vigilo_project.bulk import bulk_insert
from vigilo_project.gcpause import gc_paused


def shard_of(run_id: uuid.UUID) -> int:
    return int(hashlib.sha256(str(run_id).encode()).hexdigest(), 16) % SHARDS


def _request_hash(
    dataset_version: DatasetVersion, profile_version: ProfileVersion, name: str, options: dict[str, Any]
) -> str:
    raw = json.dumps([dataset_version.id, profile_version.id, name, options], sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()


def run_create(
    *,
    dataset_version: DatasetVersion,
    profile_version: ProfileVersion,
    name: str = "",
    idempotency_key: str | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[Run, bool]:
    """Create a run, its chunks, executions and `chunk.ready` outbox rows in one transaction.

    Returns (run, created). With an idempotency key, the same request returns the run it created before;
    the same key with a different request raises IdempotencyConflict. Every case needs its output unless
    `options["target"]` names an agent endpoint that produces them (runs/targets.py).
    """
    options = options or {}
    if options.get("target") is not None:  # checked, with its defaults, before it identifies the request
        options = {**options, "target": target_parse(options["target"]).as_dict()}
    request_hash = _request_hash(dataset_version, profile_version, name, options)
    if idempotency_key:
        existing = Run.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            if existing.request_hash != request_hash:
                raise IdempotencyConflict(f"idempotency key {idempotency_key!r} was used for a different request")
            return existing, False

    profile, pins = profile_check(document=profile_version.document)
    case_rows = Case.objects.filter(dataset_version=dataset_version)
    if options.get("target") is None:
        missing_output = list(
            case_rows.filter(Q(data__output__isnull=True) | Q(data__output=None))
            .order_by("ordinal")
            .values_list("case_id", flat=True)
        )
        if missing_output:
            sample = ", ".join(repr(c) for c in missing_output[:5])
            raise ValidationFailed(
                "run",
                [
                    (
                        "dataset",
                        f"{len(missing_output)} case(s) have no output ({sample}); record the agent's outputs in "
                        "the dataset, or give the run a target (an agent endpoint) that produces them",
                    )
                ],
            )
    n_cases = case_rows.count()
    expected_results = _results_expected(profile=profile, cases=case_rows, n_cases=n_cases)
    chunk_size = int(options.get("chunk_size") or profile.chunk_size or settings.VIGILO_CHUNK_SIZE)
    run_id = uuid.uuid4()
    shard = shard_of(run_id)
    n_chunks = (n_cases + chunk_size - 1) // chunk_size
    try:
        with transaction.atomic():
            run = Run.objects.create(
                id=run_id,
                name=name,
                dataset_version=dataset_version,
                profile_version=profile_version,
                shard=shard,
                pins={bid: pin.as_dict() for bid, pin in pins.items()},
                options=options,
                expected_executions=n_cases,
                expected_results=expected_results,
                chunk_count=n_chunks,
                idempotency_key=idempotency_key or None,
                request_hash=request_hash,
            )
            now = timezone.now()
            chunks = Chunk.objects.bulk_create(
                [Chunk(run=run, index=i, shard=shard, dispatched_at=now) for i in range(n_chunks)], batch_size=1000
            )
            if not all(c.pk for c in chunks):  # backends without RETURNING
                chunks = list(Chunk.objects.filter(run=run).order_by("index"))
            _executions_create(run=run, chunks=chunks, chunk_size=chunk_size, dataset_version=dataset_version)
            outbox_write(messages=[chunk_ready_message(chunk=c, generation="0") for c in chunks])
    except IntegrityError:
        if idempotency_key:  # a concurrent request with the same key won
            return run_create(
                dataset_version=dataset_version,
                profile_version=profile_version,
                name=name,
                idempotency_key=idempotency_key,
                options=options,
            )
        raise
    return run, True


def _results_expected(*, profile: ProfileSpec, cases: QuerySet[Case], n_cases: int) -> int:
    """One result per case and binding that applies to it (a binding's `when` picks cases by tag).

    Refuses a binding whose `when` matches no case, and cases that no binding applies to: the first is usually a
    misspelt tag, the second would pass without being checked.
    """
    if all(binding.when_tags is None for binding in profile.bindings):
        return n_cases * len(profile.bindings)
    total, used, unchecked = 0, set(), []
    for case_id, raw in cases.order_by("ordinal").values_list("case_id", "data__tags").iterator(chunk_size=5000):
        tags = json.loads(raw) if isinstance(raw, str) else raw or []
        applicable = [binding.id for binding in profile.bindings if binding.applies_to(tags)]
        total += len(applicable)
        used.update(applicable)
        if not applicable:
            unchecked.append(case_id)
    errors = [
        (
            f"profile binding '{binding.id}'",
            f"when.tags ({', '.join(binding.when_tags or ())}) matches no case of the dataset",
        )
        for binding in profile.bindings
        if binding.id not in used
    ]
    if unchecked:
        sample = ", ".join(repr(c) for c in unchecked[:5])
        errors.append(
            (
                "dataset",
                f"{len(unchecked)} case(s) have no binding that applies to them ({sample}): give them a tag a "
                "binding's `when` names, or add a binding without `when`",
            )
        )
    if errors:
        raise ValidationFailed("run", errors)
    return total


def _executions_create(*, run: Run, chunks: list[Chunk], chunk_size: int, dataset_version: DatasetVersion) -> None:
    """One execution per case, with the case as its frozen snapshot; case `ordinal` goes to chunk ordinal // size.

    On PostgreSQL the snapshots are copied inside the database (one INSERT ... SELECT): at 10,000 cases that
    is ~10x faster than reading every case into Python and writing it back.
    """
    if connection.vendor == "postgresql":
        sql = f"""
            INSERT INTO {Execution._meta.db_table} (run_id, chunk_id, shard, ordinal, case_id, tags, snapshot, attempt)
            SELECT %s, ch.id, %s, c.ordinal, c.case_id, COALESCE(c.data -> 'tags', '[]'::jsonb), c.data, 0
            FROM {Case._meta.db_table} c
            JOIN {Chunk._meta.db_table} ch ON ch.run_id = %s AND ch."index" = c.ordinal / %s
            WHERE c.dataset_version_id = %s
        """
        with connection.cursor() as cursor:
            cursor.execute(sql, [run.id, run.shard, run.id, chunk_size, dataset_version.id])
        return
    cases = Case.objects.filter(dataset_version=dataset_version).order_by("ordinal")
    Execution.objects.bulk_create(
        [
            Execution(
                run=run,
                chunk=chunks[ordinal // chunk_size],
                shard=run.shard,
                ordinal=ordinal,
                case_id=case_id,
                tags=data.get("tags", []),
                snapshot=data,
            )
            for ordinal, case_id, data in cases.values_list("ordinal", "case_id", "data").iterator()
        ],
        batch_size=2000,
    )


def run_mark_running(*, run_id: uuid.UUID) -> bool:
    """pending -> running, with the `run.started` event. False when the run is already past pending."""
    with transaction.atomic():
        try:
            transition(model=Run, pk=run_id, to=Run.State.RUNNING, started_at=timezone.now())
        except TransitionError:
            return False
        run = Run.objects.get(pk=run_id)
        outbox_write(messages=[run_event(run=run, topic="run.started")])
    return True


def run_cancel(*, run_id: uuid.UUID, reason: str = "cancelled by request") -> Run:
    """Cancel a pending or running run: its unfinished chunks are cancelled and workers stop at their next write."""
    with transaction.atomic():
        transition(
            model=Run,
            pk=run_id,
            to=Run.State.CANCELLED,
            gate=Run.Gate.FAIL,
            failure_reason=reason,
            finished_at=timezone.now(),
        )
        Chunk.objects.filter(run_id=run_id, state__in=[Chunk.State.PENDING, Chunk.State.LEASED]).update(
            state=Chunk.State.CANCELLED, lease_token=None, leased_until=None
        )
        run = Run.objects.get(pk=run_id)
        run.verdict = run_verdict(run=run)
        run.save(update_fields=["verdict"])
        outbox_write(messages=[run_event(run=run, topic="run.cancelled")])
    return run


def run_finalize_if_done(*, run_id: uuid.UUID) -> bool:
    """When no chunk is pending or leased: compute the verdict and end the run, exactly once."""
    if Chunk.objects.filter(run_id=run_id, state__in=[Chunk.State.PENDING, Chunk.State.LEASED]).exists():
        return False
    with transaction.atomic():
        try:
            transition(model=Run, pk=run_id, to=Run.State.FINALIZING)
        except TransitionError:
            return False  # another finalizer won, or the run was cancelled
        run = Run.objects.select_related("profile_version").get(pk=run_id)
        verdict = run_verdict(run=run)
        failed = verdict["operational_failure"]
        final = Run.State.FAILED if failed else Run.State.COMPLETED
        gate = Run.Gate.PASS if verdict["gate"] == "pass" else Run.Gate.FAIL
        transition(
            model=Run,
            pk=run_id,
            to=final,
            gate=gate,
            verdict=verdict,
            finished_at=timezone.now(),
            failure_reason=run.failure_reason
            or ("; ".join(r["message"] for r in verdict["reasons"] if r["code"] == "chunks_failed")),
        )
        run.refresh_from_db()
        verdict_export(run=run, verdict=verdict)
        summary = {"counts": verdict["counts"]}
        outbox_write(
            messages=[
                run_event(run=run, topic="run.completed" if not failed else "run.failed", payload=summary),
                run_event(run=run, topic="gate.decided", payload=summary),
            ]
        )
    return True


# -- datasets and profiles -------------------------------------------------------------------------------------


@gc_paused()  # every case and row lives until the insert: see vigilo_project/gcpause.py
def dataset_import(*, name: str, text: str) -> tuple[DatasetVersion, bool]:
    """Create (or find) the dataset version for this content. Returns (version, created)."""
    if not name or len(name) > 200:
        raise ValidationFailed("dataset", [("name", "required, at most 200 characters")])
    cases = dataset_parse(text=text)
    canonical = "\n".join(json.dumps(c, sort_keys=True, separators=(",", ":")) for c in cases)
    content_hash = hashlib.sha256(canonical.encode()).hexdigest()
    with transaction.atomic():
        dataset, _ = Dataset.objects.get_or_create(name=name)
        existing = DatasetVersion.objects.filter(dataset=dataset, content_hash=content_hash).first()
        if existing is not None:
            return existing, False
        version = DatasetVersion.objects.create(dataset=dataset, content_hash=content_hash, case_count=len(cases))
        bulk_insert(
            [Case(dataset_version=version, ordinal=i, case_id=c["id"], data=c) for i, c in enumerate(cases)],
            ignore_conflicts=False,  # case ids were checked unique; a conflict would be a bug, not a retry
            batch_size=2000,
        )
    return version, True


def profile_import(*, text: str) -> tuple[ProfileVersion, bool]:
    """Validate a YAML profile (structure and registry) and store it. Returns (version, created)."""
    document = profile_load_yaml(text=text)
    profile, _ = profile_check(document=document)
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    content_hash = hashlib.sha256(canonical.encode()).hexdigest()
    with transaction.atomic():
        row, _ = Profile.objects.get_or_create(name=profile.name)
        existing = ProfileVersion.objects.filter(profile=row, content_hash=content_hash).first()
        if existing is not None:
            return existing, False
        version = ProfileVersion.objects.create(
            profile=row, content_hash=content_hash, source=text, document=json.loads(canonical)
        )
    return version, True
