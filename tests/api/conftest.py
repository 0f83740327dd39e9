"""API fixtures: token clients per scope, small datasets and profiles, a run processed by the task functions."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

PROFILE = """\
name: api-test
min_execution_score: 1.0
dimensions:
  correctness: {weight: 1.0}
bindings:
  - id: mentions
    evaluator: vigilo/contains@1.0.0
    dimension: correctness
    config: {expected_path: contains}
"""


def dataset_text(n: int = 3, failing: tuple[int, ...] = ()) -> str:
    lines = []
    for i in range(n):
        answer = "nothing useful" if i in failing else f"the answer is KX-{i:04d}"
        lines.append(
            json.dumps(
                {
                    "id": f"case-{i}",
                    "input": f"question {i}",
                    "expected": {"contains": f"KX-{i:04d}"},
                    "output": {"text": answer},
                    "tags": ["even" if i % 2 == 0 else "odd"],
                }
            )
        )
    return "\n".join(lines) + "\n"


@pytest.fixture
def token_client(db):
    """token_client("read", "write") -> an APIClient sending a Bearer token with those scopes."""
    from api.services import token_create

    made = []

    def make(*scopes: str) -> APIClient:
        _, secret = token_create(name=f"test-{len(made)}-{'-'.join(scopes)}", scopes=list(scopes))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        made.append(client)
        return client

    return make


@pytest.fixture
def reader(token_client):
    return token_client("read")


@pytest.fixture
def writer(token_client):
    return token_client("read", "write")


@pytest.fixture
def publisher(token_client):
    return token_client("read", "publish")


@pytest.fixture
def versions(published):
    """A dataset version (3 cases, case-1 failing) and the profile version, imported through the services."""
    from runs.ingest import dataset_import, profile_import

    dataset, _ = dataset_import(name="api-ds", text=dataset_text(3, failing=(1,)))
    profile, _ = profile_import(text=PROFILE)
    return dataset, profile


def process(run) -> None:
    """Run every chunk through the worker's task function, as a worker would."""
    from runs.models import Chunk
    from runs.processing import chunk_process

    for chunk_id in Chunk.objects.filter(run=run).values_list("id", flat=True):
        chunk_process(chunk_id=chunk_id)
    run.refresh_from_db()


@pytest.fixture
def finished_run(versions):
    from runs.services import run_create

    dataset, profile = versions
    run, _ = run_create(dataset_version=dataset, profile_version=profile, name="finished")
    process(run)
    return run
