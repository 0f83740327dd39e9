"""Small builders for runs without evaluators: rows only, for state-machine and selector tests."""

from __future__ import annotations

import uuid

from evaluators.models import Evaluator, EvaluatorVersion
from runs.models import Case, Chunk, Dataset, DatasetVersion, Execution, Profile, ProfileVersion, Run

PROFILE_DOC = {
    "name": "factory",
    "min_execution_score": 0.0,
    "dimensions": {"main": {"weight": 1.0}},
    "bindings": [{"id": "b", "evaluator": "tests/fake@1.0.0", "dimension": "main"}],
}


def make_run(*, cases: int = 3, chunk_size: int = 100) -> Run:
    """A run with its chunks and executions, created directly (bypassing registry validation)."""
    dataset, _ = Dataset.objects.get_or_create(name="factory")
    version = DatasetVersion.objects.create(dataset=dataset, content_hash=uuid.uuid4().hex, case_count=cases)
    Case.objects.bulk_create(
        [
            Case(dataset_version=version, ordinal=i, case_id=f"c{i}", data={"id": f"c{i}", "output": {"text": "x"}})
            for i in range(cases)
        ]
    )
    profile, _ = Profile.objects.get_or_create(name="factory")
    pv = ProfileVersion.objects.create(profile=profile, content_hash=uuid.uuid4().hex, source="", document=PROFILE_DOC)
    evaluator, _ = Evaluator.objects.get_or_create(namespace="tests", name="fake")
    ev, _ = EvaluatorVersion.objects.get_or_create(
        evaluator=evaluator,
        version="1.0.0",
        defaults=dict(major=1, minor=0, patch=0, digest="0" * 64, size=1, contract_version="1.0.0", world="evaluator"),
    )
    n_chunks = (cases + chunk_size - 1) // chunk_size
    run = Run.objects.create(
        dataset_version=version,
        profile_version=pv,
        shard=7,
        pins={"b": {"reference": "tests/fake@1.0.0", "version_id": ev.id, "digest": ev.digest}},
        expected_executions=cases,
        expected_results=cases,  # one binding
        chunk_count=n_chunks,
    )
    chunks = [Chunk.objects.create(run=run, index=i, shard=7) for i in range(n_chunks)]
    Execution.objects.bulk_create(
        [
            Execution(run=run, chunk=chunks[i // chunk_size], shard=7, ordinal=i, case_id=f"c{i}", snapshot={})
            for i in range(cases)
        ]
    )
    return run
