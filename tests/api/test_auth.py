"""Tokens: hashed storage, scopes, expiry, revocation, the management command, the run-creation throttle."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from api.models import ApiToken
from api.services import token_create, token_revoke

pytestmark = pytest.mark.django_db

# (method, path, the scope it needs); {run} is replaced by a real run id when the test needs one.
ENDPOINTS = [
    ("get", "/api/v1/datasets/", "read"),
    ("post", "/api/v1/datasets/", "write"),
    ("get", "/api/v1/datasets/1/", "read"),
    ("get", "/api/v1/profiles/", "read"),
    ("post", "/api/v1/profiles/", "write"),
    ("get", "/api/v1/profiles/1/", "read"),
    ("get", "/api/v1/evaluators/", "read"),
    ("get", "/api/v1/evaluators/1/", "read"),
    ("post", "/api/v1/evaluators/publish/", "publish"),
    ("post", "/api/v1/evaluators/1/versions/1.0.0/state/", "publish"),
    ("get", "/api/v1/runs/", "read"),
    ("post", "/api/v1/runs/", "write"),
    ("get", "/api/v1/runs/{run}/", "read"),
    ("post", "/api/v1/runs/{run}/cancel/", "write"),
    ("get", "/api/v1/runs/{run}/verdict/", "read"),
    ("get", "/api/v1/runs/{run}/compare/?baseline={run}", "read"),
    ("get", "/api/v1/runs/{run}/executions/", "read"),
    ("get", "/api/v1/runs/{run}/executions/1/", "read"),
    ("get", "/api/v1/runs/{run}/report.json", "read"),
    ("get", "/api/v1/runs/{run}/junit.xml", "read"),
]
RUN = "00000000-0000-4000-8000-000000000000"


def _call(client, method, path):
    return getattr(client, method)(path.format(run=RUN))


@pytest.mark.parametrize(("method", "path", "scope"), ENDPOINTS)
def test_every_endpoint_needs_a_token(method, path, scope):
    response = _call(APIClient(), method, path)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == 'Bearer realm="vigilo"'


@pytest.mark.parametrize(("method", "path", "scope"), ENDPOINTS)
def test_every_endpoint_refuses_a_token_without_its_scope(token_client, method, path, scope):
    others = [s for s in ("read", "write", "publish") if s != scope]

    response = _call(token_client(*others), method, path)

    assert response.status_code == 403
    assert response.json()["error"] == {
        "code": "permission_denied",
        "message": f"this token lacks the `{scope}` scope",
        "fields": {},
    }


@pytest.mark.parametrize(("method", "path", "scope"), ENDPOINTS)
def test_every_endpoint_passes_auth_with_its_scope(token_client, method, path, scope):
    response = _call(token_client(scope), method, path)

    assert response.status_code not in (401, 403, 500)


def test_the_secret_is_stored_only_as_its_sha256():
    row, secret = token_create(name="ci", scopes=["read", "write"])

    assert secret.startswith("vgt_")
    assert row.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(ApiToken.objects.filter(pk=row.pk).values().get())
    assert row.scopes == ["read", "write"]


@pytest.mark.parametrize(
    "header",
    ["Bearer nope", "Bearer", "Token abc", "Bearer " + "x" * 300],
)
def test_bad_credentials_are_401(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/v1/runs/")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_a_revoked_token_is_refused():
    _, secret = token_create(name="gone", scopes=["read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/api/v1/runs/").status_code == 200

    token_revoke(name="gone")

    assert client.get("/api/v1/runs/").status_code == 401


def test_an_expired_token_is_refused():
    row, secret = token_create(name="old", scopes=["read"], expires_days=1)
    ApiToken.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert client.get("/api/v1/runs/").status_code == 401


def test_management_command_creates_lists_and_revokes():
    out = StringIO()
    call_command(
        "vigilo_token",
        "create",
        "pipeline",
        "--scopes",
        "read,write",
        "--expires-days",
        "30",
        stdout=out,
        stderr=StringIO(),
    )
    secret = out.getvalue().strip()
    row = ApiToken.objects.get(name="pipeline")
    assert row.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert row.scopes == ["read", "write"]
    assert row.expires_at is not None

    listing = StringIO()
    call_command("vigilo_token", "list", stdout=listing)
    assert "pipeline" in listing.getvalue()
    assert "read,write\tactive" in listing.getvalue()
    assert secret not in listing.getvalue()

    call_command("vigilo_token", "revoke", "pipeline", stdout=StringIO())
    listing = StringIO()
    call_command("vigilo_token", "list", stdout=listing)
    assert "\trevoked\t" in listing.getvalue()


def test_management_command_refuses_unknown_scopes():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="scopes"):
        call_command("vigilo_token", "create", "x", "--scopes", "read,admin", stdout=StringIO(), stderr=StringIO())
    assert not ApiToken.objects.exists()


def test_run_creation_is_throttled_per_token(settings, token_client):
    settings.VIGILO_RUN_CREATE_RATE = "2/min"
    cache.clear()
    first, second = token_client("write"), token_client("write")

    codes = [first.post("/api/v1/runs/", {}, format="json").status_code for _ in range(3)]
    other = second.post("/api/v1/runs/", {}, format="json").status_code

    assert codes == [400, 400, 429]
    assert other == 400
    cache.clear()
