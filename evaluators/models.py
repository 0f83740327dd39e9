from __future__ import annotations

from django.db import models
from django.utils import timezone


class Evaluator(models.Model):
    namespace = models.CharField(max_length=63)
    name = models.CharField(max_length=63)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["namespace", "name"], name="evaluator_unique_name")]
        ordering = ["namespace", "name"]

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.namespace}/{self.name}"


class EvaluatorVersion(models.Model):
    """An immutable published component. Only `state` ever changes."""

    class State(models.TextChoices):
        ACTIVE = "active"
        DEPRECATED = "deprecated"
        YANKED = "yanked"
        DISABLED = "disabled"

    evaluator = models.ForeignKey(Evaluator, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=64)
    major = models.PositiveIntegerField()
    minor = models.PositiveIntegerField()
    patch = models.PositiveIntegerField()
    prerelease = models.CharField(max_length=64, blank=True, default="")
    digest = models.CharField(max_length=64, db_index=True, help_text="sha256 of the component bytes")
    size = models.PositiveBigIntegerField()
    contract_version = models.CharField(max_length=16)
    world = models.CharField(max_length=32)
    capabilities = models.JSONField(default=list)
    imports = models.JSONField(default=list)
    description = models.TextField(blank=True, default="")
    config_schema = models.JSONField(null=True, blank=True)
    info = models.JSONField(default=dict, help_text="what describe() returned")
    pure = models.BooleanField(
        default=False,
        help_text="declared at publish: evaluate() depends on its input alone, so a profile may reuse instances",
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["evaluator", "version"], name="evaluator_version_unique")]
        ordering = ["evaluator", "-major", "-minor", "-patch"]

    def __str__(self) -> str:
        return self.reference

    @property
    def reference(self) -> str:
        return f"{self.evaluator.full_name}@{self.version}"


class ModelResponse(models.Model):
    """A deterministic model completion shared by every worker process (the second level of the response cache).

    `key` hashes the evaluator digest, the logical model, the provider's URL and the request body; see
    evaluators/model_broker.py. Rows older than `VIGILO_MODEL_CACHE_TTL_S` are not served and are deleted by the
    reaper.
    """

    key = models.CharField(max_length=64, primary_key=True)
    response = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
