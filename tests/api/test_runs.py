"""Runs: create (idempotent), list with filters, detail with progress, cancel, verdict, executions, compare,
reports."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from outbox.models import OutboxEvent
from runs.models import Run
from runs.services import dataset_import, run_create
from runs.targets import target_parse
from tests.support.agent_server import AgentServer
from tests.support.datasets import dataset_text
from tests.support.processing import process

pytestmark = pytest.mark.django_db


def body(versions, **extra):
    dataset, profile = versions
    return {"dataset_version": dataset.id, "profile_version": profile.id, "name": "nightly", **extra}


def test_create_returns_201_with_progress_and_writes_the_dispatch_rows(versions, writer):
    response = writer.post("/api/v1/runs/", body(versions), format="json")

    assert response.status_code == 201
    data = response.json()
    run = Run.objects.get()
    assert data["id"] == str(run.id)
    assert data["state"] == "pending"
    assert data["gate"] == "pending"
    assert data["progress"] == {
        "results_written": 0,
        "results_expected": 3,
        "executions_expected": 3,
        "executions": {"passed": 0, "failed": 0, "error": 0, "pending": 3},
        "chunks": {"pending": 1, "leased": 0, "completed": 0, "failed": 0, "cancelled": 0},
    }
    assert OutboxEvent.objects.filter(topic="chunk.ready").count() == 1


def test_same_idempotency_key_and_body_returns_the_same_run_with_200(versions, writer):
    first = writer.post("/api/v1/runs/", body(versions), format="json", HTTP_IDEMPOTENCY_KEY="ci-123")
    again = writer.post("/api/v1/runs/", body(versions), format="json", HTTP_IDEMPOTENCY_KEY="ci-123")

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Run.objects.count() == 1


def test_same_idempotency_key_with_another_body_is_409_and_writes_nothing(versions, writer):
    writer.post("/api/v1/runs/", body(versions), format="json", HTTP_IDEMPOTENCY_KEY="ci-123")

    response = writer.post("/api/v1/runs/", body(versions, name="other"), format="json", HTTP_IDEMPOTENCY_KEY="ci-123")

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "idempotency_conflict"
    assert "Idempotency-Key" in error["fields"]
    assert Run.objects.count() == 1


def test_without_a_key_every_post_is_a_new_run(versions, writer):
    writer.post("/api/v1/runs/", body(versions), format="json")
    writer.post("/api/v1/runs/", body(versions), format="json")

    assert Run.objects.count() == 2


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({}, {"dataset_version", "profile_version"}),
        ({"dataset_version": "x", "profile_version": "y"}, {"dataset_version", "profile_version"}),
        ({"dataset_version": 99999, "profile_version": 99999}, {"dataset_version", "profile_version"}),
        ({"dataset_version": None, "profile_version": []}, {"dataset_version", "profile_version"}),
    ],
)
def test_create_validation_names_the_field(versions, writer, payload, fields):
    response = writer.post("/api/v1/runs/", payload, format="json")

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == fields
    assert not Run.objects.exists()


def test_create_with_a_name_too_long_or_a_bad_chunk_size(versions, writer):
    response = writer.post("/api/v1/runs/", body(versions, name="n" * 201, chunk_size=0), format="json")

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"name", "chunk_size"}


def test_create_refuses_a_dataset_without_outputs(versions, writer):
    _dataset, profile = versions
    no_output, _ = dataset_import(name="no-output", text='{"id": "a", "input": 1}\n')

    response = writer.post(
        "/api/v1/runs/", {"dataset_version": no_output.id, "profile_version": profile.id}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["dataset"]
    assert not Run.objects.exists()


def test_create_with_a_target_runs_cases_without_outputs_and_shows_what_the_agent_said(versions, writer, reader):
    _dataset, profile = versions
    no_output, _ = dataset_import(name="no-output", text='{"id": "a", "input": "q", "expected": {"contains": "KX"}}\n')
    agent = AgentServer(answers={"q": "it is KX-7"})
    agent.start()
    try:
        target = {"url": agent.url, "max_retries": 0}
        response = writer.post(
            "/api/v1/runs/",
            {"dataset_version": no_output.id, "profile_version": profile.id, "target": target},
            format="json",
        )
        assert response.status_code == 201
        assert response.json()["options"]["target"] == target_parse(target).as_dict()
        run = Run.objects.get()
        process(run)
    finally:
        agent.stop()
    (execution,) = reader.get(f"/api/v1/runs/{run.id}/executions/").json()["results"]
    assert execution["output"]["text"] == "it is KX-7"
    assert execution["agent_call"]["status"] == "ok" and execution["agent_call"]["attempts"] == 1
    assert execution["status"] == "passed"
    assert reader.get(f"/api/v1/runs/{run.id}/verdict/").json()["verdict"]["agent"]["outputs"] == 1


@pytest.mark.parametrize(
    ("target", "fields"),
    [
        ("http://agent", {"target"}),
        ({"url": "file:///etc/passwd"}, {"target.url"}),
        (
            {"url": "http://agent/", "headers": {"Authorization": "Bearer x"}, "timeout_s": -1},
            {
                "target.headers.Authorization",
                "target.timeout_s",
            },
        ),
    ],
)
def test_create_with_a_bad_target_is_400_naming_the_field(versions, writer, target, fields):
    response = writer.post("/api/v1/runs/", body(versions, target=target), format="json")

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == fields
    assert not Run.objects.exists()


def test_bad_idempotency_key_is_400(versions, writer):
    response = writer.post("/api/v1/runs/", body(versions), format="json", HTTP_IDEMPOTENCY_KEY="k" * 201)

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["Idempotency-Key"]


def test_list_filters(versions, reader):
    dataset, profile = versions
    a, _ = run_create(dataset_version=dataset, profile_version=profile, name="a")
    b, _ = run_create(dataset_version=dataset, profile_version=profile, name="b")
    process(b)
    Run.objects.filter(pk=a.pk).update(created_at=timezone.now() - timedelta(days=2))

    def names(query):
        response = reader.get(f"/api/v1/runs/{query}")
        assert response.status_code == 200, response.content
        return [r["name"] for r in response.json()["results"]]

    assert names("") == ["b", "a"]
    assert names("?state=completed") == ["b"]
    assert names("?state=pending") == ["a"]
    assert names("?gate=fail") == ["b"]
    assert names("?profile=api-test") == ["b", "a"]
    assert names("?profile=other") == []
    yesterday = (timezone.now() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert names(f"?created_after={yesterday}") == ["b"]
    assert names(f"?created_before={yesterday}") == ["a"]


@pytest.mark.parametrize("query", ["?state=bogus", "?gate=1", "?created_after=yesterday", "?profile=a%00b"])
def test_list_bad_filters_are_400_naming_the_parameter(reader, query):
    response = reader.get(f"/api/v1/runs/{query}")

    assert response.status_code == 400
    (field,) = response.json()["error"]["fields"]
    assert query[1:].startswith(field)


def test_list_is_cursor_paginated(versions, reader):
    dataset, profile = versions
    for i in range(3):
        run_create(dataset_version=dataset, profile_version=profile, name=f"r{i}")

    first = reader.get("/api/v1/runs/?page_size=2").json()
    second = reader.get(first["next"]).json()

    assert [r["name"] for r in first["results"]] == ["r2", "r1"]
    assert [r["name"] for r in second["results"]] == ["r0"]
    assert reader.get("/api/v1/runs/?cursor=garbage").status_code == 404


@pytest.mark.parametrize("run_id", ["not-a-uuid", "12345", "00000000-0000-4000-8000-000000000000"])
def test_unknown_or_malformed_run_ids_are_404(reader, run_id):
    response = reader.get(f"/api/v1/runs/{run_id}/")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_detail_verdict_and_reports_of_a_finished_run(finished_run, reader):
    detail = reader.get(f"/api/v1/runs/{finished_run.id}/").json()
    verdict = reader.get(f"/api/v1/runs/{finished_run.id}/verdict/").json()
    report = reader.get(f"/api/v1/runs/{finished_run.id}/report.json").json()
    junit = reader.get(f"/api/v1/runs/{finished_run.id}/junit.xml")

    assert detail["state"] == "completed"
    assert detail["progress"]["executions"] == {"passed": 2, "failed": 1, "error": 0, "pending": 0}
    assert detail["progress"]["results_written"] == 3
    assert verdict["gate"] == "fail"
    assert verdict["state"] == "completed"
    assert verdict["verdict"]["counts"]["failed"] == 1
    assert [r["code"] for r in verdict["verdict"]["reasons"]] == ["executions_failed"]
    assert [e["case_id"] for e in report["executions"]] == ["case-0", "case-1", "case-2"]
    assert junit["Content-Type"] == "application/xml"
    assert junit.content.count(b"<testcase ") == 3
    assert junit.content.count(b"<failure ") == 1


def test_executions_with_results_and_filters(finished_run, reader):
    url = f"/api/v1/runs/{finished_run.id}/executions/"

    every = reader.get(url).json()["results"]
    failed = reader.get(url + "?status=failed").json()["results"]
    odd = reader.get(url + "?tag=odd").json()["results"]
    dimension = reader.get(url + "?failed_dimension=correctness").json()["results"]
    none = reader.get(url + "?failed_dimension=safety").json()["results"]
    one = reader.get(f"{url}{failed[0]['id']}/").json()

    assert [e["case_id"] for e in every] == ["case-0", "case-1", "case-2"]
    assert [e["case_id"] for e in failed] == ["case-1"]
    assert [e["case_id"] for e in odd] == ["case-1"]
    assert [e["case_id"] for e in dimension] == ["case-1"]
    assert none == []
    (result,) = one["results"]
    assert result["binding_id"] == "mentions"
    assert result["judgment"] == "failed"
    assert result["measurement"] is False
    assert result["findings"][0]["category"] == "missing_content"
    assert one["aggregate"]["reasons"] == ["aggregate score 0 < min_execution_score 1"]
    assert reader.get(url + "?status=nope").status_code == 400
    assert reader.get(f"{url}999999/").status_code == 404
    assert reader.get(f"{url}abc/").status_code == 404


def test_cancel_a_pending_run_then_again_is_409(versions, writer):
    dataset, profile = versions
    run, _ = run_create(dataset_version=dataset, profile_version=profile)

    cancelled = writer.post(f"/api/v1/runs/{run.id}/cancel/")
    again = writer.post(f"/api/v1/runs/{run.id}/cancel/")

    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["gate"] == "fail"
    assert cancelled.json()["progress"]["chunks"]["cancelled"] == 1
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"


def test_compare_with_a_baseline(versions, published, reader):
    dataset, profile = versions
    baseline, _ = run_create(dataset_version=dataset, profile_version=profile, name="base")
    process(baseline)
    better, _ = dataset_import(name="api-ds", text=dataset_text(3, failing=(2,)))
    run, _ = run_create(dataset_version=better, profile_version=profile, name="new")
    process(run)

    response = reader.get(f"/api/v1/runs/{run.id}/compare/?baseline={baseline.id}")

    assert response.status_code == 200
    data = response.json()
    assert data["cases_compared"] == 3
    assert data["transitions"] == {"failed->passed": 1, "passed->failed": 1}
    assert data["changes"] == [
        {"case_id": "case-1", "baseline_status": "failed", "status": "passed"},
        {"case_id": "case-2", "baseline_status": "passed", "status": "failed"},
    ]
    assert data["dimensions"]["correctness"]["delta"] == 0.0
    assert reader.get(f"/api/v1/runs/{run.id}/compare/").status_code == 400
    assert reader.get(f"/api/v1/runs/{run.id}/compare/?baseline=nope").status_code == 400
    missing = reader.get(f"/api/v1/runs/{run.id}/compare/?baseline=00000000-0000-4000-8000-000000000000")
    assert missing.json()["error"]["fields"] == {"baseline": ["no run 00000000-0000-4000-8000-000000000000"]}


def test_unknown_api_paths_and_methods_use_the_envelope(reader):
    missing = reader.get("/api/v1/nothing-here/")
    method = reader.delete("/api/v1/runs/")
    not_json = reader.post("/api/v1/runs/", "{bad", content_type="application/json")

    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert method.status_code in (403, 405)
    assert not_json.status_code in (400, 403)
