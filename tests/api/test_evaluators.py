"""Evaluators: list, detail with versions, publish by multipart upload, state changes."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from evaluators.models import EvaluatorVersion

pytestmark = pytest.mark.django_db


def test_list_and_detail_show_versions_with_digests(published, reader):
    listing = reader.get("/api/v1/evaluators/").json()

    names = [e["full_name"] for e in listing["results"]]
    assert names == sorted(names)
    assert "vigilo/regex" in names
    regex = next(e for e in listing["results"] if e["full_name"] == "vigilo/regex")
    detail = reader.get(f"/api/v1/evaluators/{regex['id']}/").json()
    versions = {v["reference"]: v for v in detail["versions"]}
    assert sorted(versions) == ["vigilo/regex@1.0.0", "vigilo/regex@2.0.0"]  # Python and native
    for reference, folder in (("vigilo/regex@1.0.0", "regex"), ("vigilo/regex@2.0.0", "native/regex")):
        assert versions[reference]["digest"] == published[folder].digest
        assert versions[reference]["state"] == "active"
        assert versions[reference]["capabilities"] == published[folder].capabilities


def test_publish_a_new_version_then_the_same_bytes_again(bundled_wasm, publisher, db):
    wasm = bundled_wasm["contains"]

    def publish():
        upload = SimpleUploadedFile("c.wasm", wasm, content_type="application/wasm")
        return publisher.post(
            "/api/v1/evaluators/publish/",
            {"name": "vigilo/contains", "version": "1.0.0", "file": upload},
            format="multipart",
        )

    first, again = publish(), publish()

    assert first.status_code == 201
    assert first.json()["reference"] == "vigilo/contains@1.0.0"
    assert first.json()["created"] is True
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert EvaluatorVersion.objects.filter(evaluator__name="contains").count() == 1


def test_publish_can_declare_the_version_pure(bundled_wasm, publisher, db):
    upload = SimpleUploadedFile("c.wasm", bundled_wasm["contains"], content_type="application/wasm")
    response = publisher.post(
        "/api/v1/evaluators/publish/",
        {"name": "vigilo/contains", "version": "1.0.0", "file": upload, "pure": "true"},
        format="multipart",
    )
    assert response.status_code == 201 and response.json()["pure"] is True
    assert EvaluatorVersion.objects.get(evaluator__name="contains", evaluator__namespace="vigilo").pure is True


def test_publish_refuses_what_is_not_a_component(publisher, db):
    upload = SimpleUploadedFile("x.wasm", b"\x00asm not really")

    response = publisher.post(
        "/api/v1/evaluators/publish/", {"name": "acme/x", "version": "1.0.0", "file": upload}, format="multipart"
    )

    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("acme/x@1.0.0 refused")
    assert not EvaluatorVersion.objects.exists()


@pytest.mark.parametrize(("name", "version"), [("acme/other-name", "1.0.0"), ("vigilo/contains", "2.0.0")])
def test_publish_refuses_a_name_or_version_the_component_does_not_declare(bundled_wasm, publisher, db, name, version):
    upload = SimpleUploadedFile("c.wasm", bundled_wasm["contains"], content_type="application/wasm")

    response = publisher.post(
        "/api/v1/evaluators/publish/", {"name": name, "version": version, "file": upload}, format="multipart"
    )

    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        f"{name}@{version} refused: the component's describe() declares it is vigilo/contains@1.0.0; publish it "
        "as vigilo/contains@1.0.0, or change name= and version= in its source and build it again"
    )
    assert not EvaluatorVersion.objects.exists()


def test_publish_validation_names_the_fields(publisher, db):
    response = publisher.post("/api/v1/evaluators/publish/", {"name": "acme/x"}, format="multipart")

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"version", "file"}


def test_state_changes_go_through_the_allowed_table(published, publisher):
    version = published["regex"]
    url = f"/api/v1/evaluators/{version.evaluator_id}/versions/1.0.0/state/"

    deprecated = publisher.post(url, {"state": "deprecated"}, format="json")
    refused = publisher.post(url, {"state": "bogus"}, format="json")
    yanked = publisher.post(url, {"state": "yanked"}, format="json")
    missing = publisher.post(url.replace("1.0.0", "9.9.9"), {"state": "active"}, format="json")

    assert deprecated.status_code == 200
    assert deprecated.json()["state"] == "deprecated"
    assert refused.status_code == 400
    assert "state" in refused.json()["error"]["fields"]
    assert yanked.json()["state"] == "yanked"
    assert missing.status_code == 404
    version.refresh_from_db()
    assert version.state == "yanked"


def test_a_forbidden_state_change_is_400_and_writes_nothing(published, publisher):
    version = published["regex"]
    url = f"/api/v1/evaluators/{version.evaluator_id}/versions/1.0.0/state/"
    publisher.post(url, {"state": "disabled"}, format="json")

    response = publisher.post(url, {"state": "yanked"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"state": ["vigilo/regex@1.0.0 cannot go from disabled to yanked"]}
    version.refresh_from_db()
    assert version.state == "disabled"
