from __future__ import annotations

from django.db import models
from django.utils import timezone

SCOPES = ("read", "write", "publish", "emit", "operate")
# An agent's token (ApiToken.agent set) has exactly this scope: it emits its own events and reads its own
# corrections, nothing else. `operate` (halted agents' resume) is never an agent's.
AGENT_SCOPES = ("emit",)


class ApiToken(models.Model):
    """A client's API token. Only the sha256 of the secret is stored; the secret is shown once at creation."""

    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=16, help_text="the first characters of the secret, to recognise it")
    key_hash = models.CharField(max_length=64, unique=True, help_text="sha256 hex of the secret")
    scopes = models.JSONField(default=list, help_text="any of read, write, publish, emit, operate")
    agent = models.ForeignKey(
        "online.MonitoredAgent",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="tokens",
        help_text="an agent's own token: it can act only as this agent",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()
