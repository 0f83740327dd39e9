"""Datasets and profiles: upload (multipart or raw body), content hashing, validation naming the field."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from runs.models import Case, Dataset, DatasetVersion, ProfileVersion
from tests.support.datasets import dataset_text
from tests.support.profiles import API_PROFILE

pytestmark = pytest.mark.django_db


def test_dataset_multipart_upload_creates_a_version(writer):
    upload = SimpleUploadedFile("cases.jsonl", dataset_text(3).encode())

    response = writer.post("/api/v1/datasets/", {"name": "support", "file": upload}, format="multipart")

    assert response.status_code == 201
    body = response.json()
    version = DatasetVersion.objects.get()
    assert body["id"] == version.id
    assert body["dataset"] == "support"
    assert body["case_count"] == 3
    assert body["created"] is True
    assert body["content_hash"] == version.content_hash
    assert Case.objects.filter(dataset_version=version).count() == 3


def test_dataset_raw_body_upload_and_the_same_content_again_is_200(writer):
    text = dataset_text(2)
    first = writer.generic("POST", "/api/v1/datasets/?name=raw", text, content_type="application/x-ndjson")
    again = writer.generic("POST", "/api/v1/datasets?name=raw", text, content_type="application/x-ndjson")

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["created"] is False
    assert DatasetVersion.objects.count() == 1


def test_dataset_validation_names_each_line_and_field(writer):
    text = '{"id": "a", "input": 1}\nnot json\n{"id": "", "input": 1, "colour": "red"}\n'
    upload = SimpleUploadedFile("cases.jsonl", text.encode())

    response = writer.post("/api/v1/datasets/", {"name": "bad", "file": upload}, format="multipart")

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == {"line 2", "line 3 field 'colour'", "line 3 field 'id'"}
    assert error["fields"]["line 3 field 'colour'"] == ["unknown field"]
    assert error["message"].startswith("dataset is invalid: line 2: not valid JSON")
    assert not Dataset.objects.exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"file": "x"}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "empty"}, "file"),
    ],
)
def test_dataset_upload_requires_a_name_and_content(writer, data, field):
    if "file" in data:
        data = {**data, "file": SimpleUploadedFile("c.jsonl", dataset_text(1).encode())}

    response = writer.post("/api/v1/datasets/", data, format="multipart")

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not DatasetVersion.objects.exists()


def test_dataset_that_is_not_utf8_is_400(writer):
    upload = SimpleUploadedFile("c.jsonl", b"\xff\xfe\x00bad")

    response = writer.post("/api/v1/datasets/", {"name": "bin", "file": upload}, format="multipart")

    assert response.status_code == 400
    assert "not UTF-8" in response.json()["error"]["fields"]["file"][0]


def test_datasets_list_and_detail(writer, reader):
    writer.generic("POST", "/api/v1/datasets/?name=one", dataset_text(1), content_type="text/plain")
    writer.generic("POST", "/api/v1/datasets/?name=one", dataset_text(2), content_type="text/plain")

    listing = reader.get("/api/v1/datasets/").json()
    dataset = Dataset.objects.get()
    detail = reader.get(f"/api/v1/datasets/{dataset.id}/").json()

    assert [d["name"] for d in listing["results"]] == ["one"]
    assert [v["case_count"] for v in detail["versions"]] == [2, 1]
    assert reader.get("/api/v1/datasets/999/").status_code == 404
    assert reader.get("/api/v1/datasets/abc/").json()["error"]["code"] == "not_found"


def test_profile_upload_list_and_detail(published, writer, reader):
    upload = SimpleUploadedFile("profile.yaml", API_PROFILE.encode())

    created = writer.post("/api/v1/profiles/", {"file": upload}, format="multipart")
    again = writer.generic("POST", "/api/v1/profiles/", API_PROFILE, content_type="application/yaml")

    assert created.status_code == 201
    assert again.status_code == 200
    body = created.json()
    assert body["profile"] == "api-test"
    assert body["document"]["bindings"][0]["evaluator"] == "vigilo/contains@1.0.0"
    assert body["source"] == API_PROFILE
    listing = reader.get("/api/v1/profiles/").json()
    assert [p["name"] for p in listing["results"]] == ["api-test"]
    detail = reader.get(f"/api/v1/profiles/{body['profile_id']}/").json()
    assert [v["id"] for v in detail["versions"]] == [body["id"]]


def test_profile_validation_names_the_field(published, writer):
    bad = API_PROFILE.replace("vigilo/contains@1.0.0", "vigilo/nope@1.0.0").replace("weight: 1.0", "weight: -1")

    response = writer.generic("POST", "/api/v1/profiles/", bad, content_type="application/yaml")

    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert fields == {"dimensions.correctness.weight": ["must be >= 0"]} or "dimensions.correctness.weight" in fields
    assert not ProfileVersion.objects.exists()


def test_profile_unknown_evaluator_names_the_binding(published, writer):
    bad = API_PROFILE.replace("vigilo/contains@1.0.0", "vigilo/nope@1.0.0")

    response = writer.generic("POST", "/api/v1/profiles/", bad, content_type="application/yaml")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "bindings[0] (mentions).evaluator": ["no evaluator named vigilo/nope is published"]
    }


def test_profile_that_is_not_yaml_is_400_with_the_position(writer):
    response = writer.generic("POST", "/api/v1/profiles/", "name: [unclosed\n", content_type="text/plain")

    assert response.status_code == 400
    (where,) = response.json()["error"]["fields"]
    assert where.startswith("line ")


def test_a_body_over_the_limit_is_413(settings, writer):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048

    response = writer.generic("POST", "/api/v1/datasets/?name=big", "x" * 5000, content_type="text/plain")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
