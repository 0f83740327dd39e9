"""The OpenAPI schema: generates without warnings, and the API conforms to it under property-based fuzzing."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.services import token_create

try:
    from schemathesis.checks import not_a_server_error
except ImportError:  # pragma: no cover - older layout
    from schemathesis.specs.openapi.checks import not_a_server_error


def test_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))

    text = out.read_text()
    assert "/api/v1/runs/{id}/verdict/" in text
    assert "bearerAuth" in text


@pytest.mark.django_db
def test_schema_and_docs_need_a_token_or_a_staff_session(client, django_user_model):
    _, secret = token_create(name="docs", scopes=["read"])

    assert client.get("/api/schema/").status_code in (401, 403)
    assert client.get("/api/schema/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"cdn.jsdelivr" not in docs.content  # served by drf-spectacular-sidecar: works offline


def _fuzz_schema():
    from django.core.wsgi import get_wsgi_application
    from drf_spectacular.generators import SchemaGenerator

    raw = SchemaGenerator().get_schema(request=None, public=True)
    schema = schemathesis.openapi.from_dict(raw)
    schema.app = get_wsgi_application()
    return schema


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.mark.django_db
def test_api_conforms_to_its_schema(published):
    """Every operation, 25 generated requests each (valid and invalid): no 5xx, every response as documented."""
    _, secret = token_create(name="fuzz", scopes=["read", "write", "publish"])
    headers = {"Authorization": f"Bearer {secret}"}
    operations = [result.ok() for result in _fuzz_schema().get_all_operations()]
    assert len(operations) >= 15
    seen: list[int] = []

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            seen.append(case.call_and_validate(headers=headers, checks=CHECKS).status_code)

        # Like Django's test client: the test's database connection must outlive each request.
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            check()
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
    assert len(seen) > 10 * len(operations)
    assert max(seen) < 500
