"""Writes for API tokens: create (returns the secret once), revoke, record use."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone

from api.models import AGENT_SCOPES, SCOPES, ApiToken
from online.models import MonitoredAgent

TOKEN_PREFIX = "vgt_"


class TokenError(ValueError):
    pass


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_create(
    *, name: str, scopes: list[str], expires_days: int | None = None, agent: MonitoredAgent | None = None
) -> tuple[ApiToken, str]:
    """Create a token; returns (row, secret). The secret is not stored and cannot be shown again.

    An agent's token (`agent`) has only the agent scopes: it can emit as that agent and nothing else.
    """
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise TokenError("name: required, at most 100 characters")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise TokenError(f"scopes: choose one or more of {', '.join(SCOPES)} (got {', '.join(scopes) or 'none'})")
    if agent is not None and set(scopes) - set(AGENT_SCOPES):
        raise TokenError(f"scopes: an agent's token has only {', '.join(AGENT_SCOPES)} (got {', '.join(scopes)})")
    if agent is None and "emit" in scopes:
        raise TokenError("scopes: emit belongs to an agent's own token (vigilo_agents creates them)")
    if expires_days is not None and expires_days < 1:
        raise TokenError("expires_days: must be >= 1")
    if ApiToken.objects.filter(name=name).exists():
        raise TokenError(f"name: a token named {name!r} exists; revoke it or choose another name")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken.objects.create(
        name=name,
        prefix=secret[:12],
        key_hash=token_hash(secret),
        scopes=[s for s in SCOPES if s in scopes],
        expires_at=timezone.now() + timedelta(days=expires_days) if expires_days else None,
        agent=agent,
    )
    return row, secret


def token_revoke(*, name: str) -> ApiToken:
    row = ApiToken.objects.filter(name=name).first()
    if row is None:
        raise TokenError(f"no token named {name!r}")
    ApiToken.objects.filter(pk=row.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    row.refresh_from_db()
    return row


def token_authenticate(*, secret: str) -> ApiToken | None:
    """The active token for this secret, or None. Records the last use at most once a minute."""
    # An agent's token comes with its agent and profile: the live sync path needs them, in this one query.
    row = ApiToken.objects.select_related("agent__profile").filter(key_hash=token_hash(secret)).first()
    if row is None or not row.is_active:
        return None
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row


def agent_token_name(agent: MonitoredAgent) -> str:
    return f"agent:{agent.name}"


def agent_token_ensure(*, agent: MonitoredAgent, rotate: bool = False) -> str | None:
    """The agent's own token: created when it has no active one (or `rotate` revokes it first). Returns the new
    secret (shown once), or None when the active token was kept."""
    name = agent_token_name(agent)
    current = ApiToken.objects.filter(name=name).first()
    if current is not None and current.is_active and not rotate:
        return None
    if current is not None:
        # A revoked or rotated token keeps no name: the new one takes it, the old row is deleted (secret gone).
        current.delete()
    _, secret = token_create(name=name, scopes=list(AGENT_SCOPES), agent=agent)
    return secret
