"""API fixtures: token clients per scope (the dataset, profile and finished run the API and admin tests share are
in tests/conftest.py)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient


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
