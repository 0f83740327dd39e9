"""Live evaluation (docs/live.md): monitored agents, the events they emit, what each binding said of an event,
the corrections sent back, webhook deliveries and the audit of halts and resumes."""

from __future__ import annotations

import uuid

from django.db import models

EVENT_TYPES = ("llm_output", "tool_call", "decision", "message_sent", "custom")
SEVERITIES = ("nudge", "redirect", "halt")  # in increasing order: the most severe failing binding answers


class OnlineProfile(models.Model):
    """An online profile document as applied (stored once per content hash) and its bindings' pins."""

    name = models.CharField(max_length=200)
    content_hash = models.CharField(max_length=64, help_text="sha256 of the canonical JSON document")
    document = models.JSONField()
    pins = models.JSONField(help_text="binding id -> {reference, version_id, digest, pure}")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["name", "content_hash"], name="online_profile_once")]
        ordering = ["name", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.content_hash[:10]})"


class MonitoredAgent(models.Model):
    """An agent under live evaluation: what evaluates its events, how often, how it hears back, and its state."""

    class State(models.TextChoices):
        ACTIVE = "active"
        HALTED = "halted"

    class Delivery(models.TextChoices):
        POLL = "poll", "long-poll only"
        WEBHOOK = "webhook", "webhook (and long-poll)"
        AMQP = "amqp", "AMQP vigilo.corrections (and long-poll)"

    name = models.CharField(max_length=64, unique=True, help_text="also its AMQP routing key")
    state = models.CharField(max_length=8, choices=State.choices, default=State.ACTIVE)
    profile = models.ForeignKey(OnlineProfile, on_delete=models.PROTECT, related_name="agents")
    sample_rate = models.FloatField(default=1.0, help_text="share of events evaluated, in [0, 1]")
    event_types = models.JSONField(default=list, blank=True, help_text="event types evaluated; empty: all")
    max_corrections_per_window = models.PositiveIntegerField(default=10)
    window_seconds = models.PositiveIntegerField(default=60)
    delivery = models.CharField(max_length=8, choices=Delivery.choices, default=Delivery.POLL)
    webhook_url = models.CharField(max_length=2000, blank=True, default="")
    webhook_secret = models.CharField(max_length=100, blank=True, default="", help_text="never shown")
    export = models.JSONField(
        null=True, blank=True, help_text="export destinations of its results; null: its profile's, else the defaults"
    )
    guardrail = models.JSONField(null=True, blank=True, help_text="the remote guardrail it is checked by (agents.yaml)")
    sync_deadline_ms = models.PositiveIntegerField(
        default=50, help_text="a sync event still being evaluated after this long goes to the async path"
    )
    halted_at = models.DateTimeField(null=True, blank=True)
    halted_reason = models.TextField(blank=True, default="")
    halt_correction = models.ForeignKey(
        "CorrectionSignal", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.state})"


class EvalEvent(models.Model):
    """One event an agent emitted. (agent, message_id) is the idempotency key: a resend changes nothing."""

    class Status(models.TextChoices):
        PENDING = "pending", "waiting for a worker"
        EVALUATED = "evaluated"
        UNSAMPLED = "unsampled", "not in the agent's sample"
        FILTERED = "filtered", "an event type the agent does not evaluate"

    class Path(models.TextChoices):
        SYNC = "sync"
        HTTP = "http", "async over HTTP"
        AMQP = "amqp", "async over AMQP"

    agent = models.ForeignKey(MonitoredAgent, on_delete=models.CASCADE, related_name="events")
    message_id = models.CharField(max_length=200)
    event_type = models.CharField(max_length=16)
    payload = models.JSONField()
    trace_id = models.CharField(max_length=32, blank=True, default="")
    span_id = models.CharField(max_length=16, blank=True, default="")
    timestamp = models.DateTimeField(help_text="when the agent says it happened")
    received_at = models.DateTimeField(auto_now_add=True)
    path = models.CharField(max_length=8, choices=Path.choices)
    status = models.CharField(max_length=12, choices=Status.choices)
    profile = models.ForeignKey(OnlineProfile, on_delete=models.PROTECT, related_name="+")
    evaluated_at = models.DateTimeField(null=True, blank=True)
    deferred = models.CharField(max_length=300, blank=True, default="", help_text="why a sync event went async")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agent", "message_id"], name="online_event_once")]
        indexes = [
            models.Index(fields=["agent", "-id"], name="online_event_recent"),
            models.Index(fields=["id"], condition=models.Q(status="pending"), name="online_event_pending"),
        ]
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.agent_id}:{self.message_id} {self.event_type} ({self.status})"


class OnlineResult(models.Model):
    """What one binding reported for one event, and how it was scored (the same columns as a run's result)."""

    event = models.ForeignKey(EvalEvent, on_delete=models.CASCADE, related_name="results")
    binding_id = models.CharField(max_length=63)
    evaluator_version = models.ForeignKey("evaluators.EvaluatorVersion", on_delete=models.PROTECT, related_name="+")
    outcome = models.CharField(max_length=16)
    kind = models.CharField(max_length=16, blank=True, default="")
    measurement = models.JSONField(null=True)
    score = models.FloatField(null=True)
    judgment = models.CharField(max_length=8, blank=True, default="")
    findings = models.JSONField(default=list)
    explanation = models.TextField(blank=True, default="")
    error_code = models.CharField(max_length=64, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    duration_ms = models.FloatField(default=0.0)
    fuel_used = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "binding_id"], name="online_result_once")]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.event_id}/{self.binding_id}: {self.judgment or self.outcome}"


class CorrectionSignal(models.Model):
    """What Vigilo told an agent about one event: at most one per event, the most severe failing binding's.

    A nudge or redirect past the agent's rate limit is stored as `dropped` and never delivered; a halt is never
    dropped. Delivered corrections are read by long-poll (cursor = id), pushed by webhook or AMQP, and acked.
    """

    class Severity(models.TextChoices):
        NUDGE = "nudge"
        REDIRECT = "redirect"
        HALT = "halt"

    agent = models.ForeignKey(MonitoredAgent, on_delete=models.CASCADE, related_name="corrections")
    event = models.OneToOneField(EvalEvent, on_delete=models.CASCADE, related_name="correction")
    delivery_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    reason = models.TextField()
    payload = models.JSONField(help_text="binding, findings, explanation, and the other failing bindings")
    dropped = models.BooleanField(default=False, help_text="over the agent's rate limit: stored, not delivered")
    created_at = models.DateTimeField(auto_now_add=True)
    acked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["agent", "id"], name="online_correction_cursor"),
            models.Index(fields=["agent", "created_at"], name="online_correction_window"),
        ]
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.severity} for {self.agent_id} ({'dropped' if self.dropped else 'delivered'})"


class AgentAudit(models.Model):
    """Who did what to an agent, when and why: halts, resumes, applied configuration, tokens."""

    class Action(models.TextChoices):
        HALT = "halt"
        RESUME = "resume"
        APPLY = "apply"
        TOKEN = "token"

    agent = models.ForeignKey(MonitoredAgent, on_delete=models.CASCADE, related_name="audit")
    action = models.CharField(max_length=8, choices=Action.choices)
    actor = models.CharField(max_length=200, help_text="'supervisor', 'admin:<user>' or 'token:<name>'")
    reason = models.TextField(blank=True, default="")
    correction = models.ForeignKey(CorrectionSignal, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.agent_id} by {self.actor}"


class WebhookDelivery(models.Model):
    """The push of one correction to its agent's webhook: retried with backoff by outbox rows, dead past the limit."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        DEAD = "dead"

    correction = models.OneToOneField(CorrectionSignal, on_delete=models.CASCADE, related_name="webhook")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status = models.PositiveIntegerField(null=True, blank=True, help_text="the receiver's last HTTP status")
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"webhook {self.correction_id} ({self.status}, {self.attempts} attempts)"
