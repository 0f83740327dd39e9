from __future__ import annotations

import uuid

from django.db import models

from evaluators.models import EvaluatorVersion

SHARDS = 128


class Dataset(models.Model):
    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class DatasetVersion(models.Model):
    """An immutable set of cases, identified by the sha256 of its canonical content."""

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="versions")
    content_hash = models.CharField(max_length=64)
    case_count = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dataset", "content_hash"], name="dataset_version_unique")]

    def __str__(self) -> str:
        return f"{self.dataset.name}@{self.content_hash[:12]}"


class Case(models.Model):
    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="cases")
    ordinal = models.PositiveIntegerField()
    case_id = models.CharField(max_length=200)
    data = models.JSONField(help_text="the case as given: input, expected, context, output, tags, metadata")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset_version", "case_id"], name="case_unique_id"),
            models.UniqueConstraint(fields=["dataset_version", "ordinal"], name="case_unique_ordinal"),
        ]
        ordering = ["dataset_version", "ordinal"]


class Profile(models.Model):
    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class ProfileVersion(models.Model):
    profile = models.ForeignKey(Profile, on_delete=models.PROTECT, related_name="versions")
    content_hash = models.CharField(max_length=64)
    source = models.TextField(help_text="the YAML as uploaded")
    document = models.JSONField(help_text="the parsed YAML")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["profile", "content_hash"], name="profile_version_unique")]

    def __str__(self) -> str:
        return f"{self.profile.name}@{self.content_hash[:12]}"


class Run(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        FINALIZING = "finalizing"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Gate(models.TextChoices):
        PENDING = "pending"
        PASS = "pass"
        FAIL = "fail"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, blank=True, default="")
    dataset_version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="runs")
    profile_version = models.ForeignKey(ProfileVersion, on_delete=models.PROTECT, related_name="runs")
    shard = models.PositiveSmallIntegerField(db_index=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    gate = models.CharField(max_length=8, choices=Gate.choices, default=Gate.PENDING, db_index=True)
    pins = models.JSONField(help_text="binding id -> {reference, version_id, digest}")
    options = models.JSONField(default=dict, blank=True)
    verdict = models.JSONField(null=True, blank=True)
    failure_reason = models.TextField(blank=True, default="")
    expected_executions = models.PositiveIntegerField()
    expected_results = models.PositiveIntegerField(
        default=0, help_text="one per execution and binding that applies to its case (bindings' `when`)"
    )
    chunk_count = models.PositiveIntegerField()
    idempotency_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    request_hash = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"run {self.id} ({self.state}, gate {self.gate})"

    @property
    def is_terminal(self) -> bool:
        return self.state in (self.State.COMPLETED, self.State.FAILED, self.State.CANCELLED)


class Chunk(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        LEASED = "leased"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    shard = models.PositiveSmallIntegerField(db_index=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempt = models.PositiveIntegerField(default=0, help_text="incremented by every claim")
    lease_token = models.UUIDField(null=True, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    recovery_count = models.PositiveIntegerField(default=0)
    redispatch_count = models.PositiveIntegerField(default=0, help_text="stale pending dispatches repeated")
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="when its latest chunk.ready was written")
    failure_reason = models.TextField(blank=True, default="")
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="chunk_unique_index")]
        indexes = [
            models.Index(fields=["state", "leased_until"], name="chunk_lease"),
            models.Index(fields=["state", "dispatched_at"], name="chunk_dispatch"),
        ]
        ordering = ["run", "index"]


class Execution(models.Model):
    """One case in one run, with a frozen snapshot of the case and the agent's output."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="executions")
    chunk = models.ForeignKey(Chunk, on_delete=models.CASCADE, related_name="executions")
    shard = models.PositiveSmallIntegerField(db_index=True)
    ordinal = models.PositiveIntegerField()
    case_id = models.CharField(max_length=200)
    tags = models.JSONField(default=list)
    snapshot = models.JSONField()
    attempt = models.PositiveIntegerField(default=0, help_text="the chunk attempt whose results count")
    agent_call = models.JSONField(
        null=True,
        blank=True,
        help_text="the run target's call that produced the output: status ok | error, attempts, duration_ms, error",
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "case_id"], name="execution_unique_case")]
        ordering = ["run", "ordinal"]


class EvaluatorResult(models.Model):
    """One binding's result for one attempt of one execution; unique, so a retried write is a no-op."""

    class Outcome(models.TextChoices):
        COMPLETED = "completed"
        ABSTAINED = "abstained"
        ERROR = "error"

    class Isolation(models.TextChoices):
        FRESH = "fresh", "fresh instance"
        REUSED = "reused", "reused instance"
        RECHECKED = "rechecked", "reused, re-checked in a fresh instance: same result"
        MISMATCH = "mismatch", "reused, re-checked in a fresh instance: different; the fresh result is kept"

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="results")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="+")
    shard = models.PositiveSmallIntegerField()
    attempt = models.PositiveIntegerField()
    binding_id = models.CharField(max_length=64)
    evaluator_version = models.ForeignKey(EvaluatorVersion, on_delete=models.PROTECT, related_name="+")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    kind = models.CharField(max_length=16, blank=True, default="")
    measurement = models.JSONField(null=True, blank=True)
    abstention = models.JSONField(null=True, blank=True)
    score = models.FloatField(null=True, blank=True)
    judgment = models.CharField(max_length=8, blank=True, default="", help_text="passed | failed | empty")
    blocking = models.BooleanField(default=False)
    error_code = models.CharField(max_length=64, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    findings = models.JSONField(default=list)
    explanation = models.TextField(blank=True, default="")
    logs = models.JSONField(default=list)
    logs_truncated = models.BooleanField(default=False)
    duration_ms = models.FloatField(default=0)
    fuel_used = models.BigIntegerField(default=0)
    model_usage = models.JSONField(default=list)
    isolation = models.CharField(
        max_length=16,
        choices=Isolation.choices,
        default=Isolation.FRESH,
        help_text="how the instance was isolated; see gating options.instance_reuse",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["execution", "attempt", "binding_id"], name="result_unique_attempt")
        ]
        indexes = [models.Index(fields=["run", "shard"], name="result_run_shard")]

    def __str__(self) -> str:
        return f"binding {self.binding_id} (attempt {self.attempt})"


class ExecutionAggregate(models.Model):
    class Status(models.TextChoices):
        PASSED = "passed"
        FAILED = "failed"
        ERROR = "error"

    execution = models.OneToOneField(Execution, on_delete=models.CASCADE, related_name="aggregate")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="aggregates")
    shard = models.PositiveSmallIntegerField()
    attempt = models.PositiveIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices, db_index=True)
    aggregate_score = models.FloatField(null=True, blank=True)
    dimension_scores = models.JSONField(default=dict)
    binding_scores = models.JSONField(default=dict)
    blocking_failures = models.JSONField(default=list)
    reasons = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["run", "status"], name="aggregate_run_status")]
