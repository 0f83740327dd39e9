"""Serializers: input validation and output shapes. Writes go through the services, never through these."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from evaluators.models import Evaluator, EvaluatorVersion
from runs.models import Dataset, DatasetVersion, EvaluatorResult, Execution, Profile, ProfileVersion, Run
from runs.selectors import run_progress

# -- errors ------------------------------------------------------------------------------------------------


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    # The metaclass pops declared fields from the class, so this does not shadow Serializer.fields (the stubs think so).
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))  # type: ignore[assignment]


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()


# -- datasets and profiles ---------------------------------------------------------------------------------


class DatasetVersionSerializer(serializers.ModelSerializer):
    dataset = serializers.CharField(source="dataset.name", read_only=True)
    dataset_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = DatasetVersion
        fields = ["id", "dataset_id", "dataset", "content_hash", "case_count", "created_at"]


class DatasetSerializer(serializers.ModelSerializer):
    versions = DatasetVersionSerializer(many=True, read_only=True)

    class Meta:
        model = Dataset
        fields = ["id", "name", "created_at", "versions"]


class DatasetUploadSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, help_text="dataset name; the version is the content hash")
    file = serializers.FileField(required=False, help_text="the JSONL file (multipart); or send the raw body")


class DatasetUploadResultSerializer(DatasetVersionSerializer):
    created = serializers.BooleanField(read_only=True, help_text="false when this content was uploaded before")

    class Meta(DatasetVersionSerializer.Meta):
        fields = [*DatasetVersionSerializer.Meta.fields, "created"]


class ProfileVersionSerializer(serializers.ModelSerializer):
    profile = serializers.CharField(source="profile.name", read_only=True)
    profile_id = serializers.IntegerField(read_only=True)
    document = serializers.JSONField(read_only=True)

    class Meta:
        model = ProfileVersion
        fields = ["id", "profile_id", "profile", "content_hash", "source", "document", "created_at"]


class ProfileSerializer(serializers.ModelSerializer):
    versions = ProfileVersionSerializer(many=True, read_only=True)

    class Meta:
        model = Profile
        fields = ["id", "name", "created_at", "versions"]


class ProfileUploadSerializer(serializers.Serializer):
    file = serializers.FileField(required=False, help_text="the YAML file (multipart); or send the raw body")


class ProfileUploadResultSerializer(ProfileVersionSerializer):
    created = serializers.BooleanField(read_only=True)

    class Meta(ProfileVersionSerializer.Meta):
        fields = [*ProfileVersionSerializer.Meta.fields, "created"]


# -- evaluators --------------------------------------------------------------------------------------------


class EvaluatorVersionSerializer(serializers.ModelSerializer):
    reference = serializers.CharField(read_only=True)
    capabilities = serializers.ListField(child=serializers.CharField(), read_only=True)
    config_schema = serializers.JSONField(read_only=True, allow_null=True)

    class Meta:
        model = EvaluatorVersion
        fields = [
            "id",
            "reference",
            "version",
            "digest",
            "size",
            "contract_version",
            "world",
            "capabilities",
            "description",
            "config_schema",
            "pure",
            "state",
            "created_at",
        ]


class EvaluatorSerializer(serializers.ModelSerializer):
    full_name = serializers.CharField(read_only=True)
    versions = EvaluatorVersionSerializer(many=True, read_only=True)

    class Meta:
        model = Evaluator
        fields = ["id", "namespace", "name", "full_name", "created_at", "versions"]


class EvaluatorPublishSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=127, help_text="namespace/name")
    version = serializers.CharField(max_length=64, help_text="semver, e.g. 1.2.0")
    file = serializers.FileField(help_text="the component (.wasm)")
    pure = serializers.BooleanField(
        required=False,
        default=False,
        help_text="declare that evaluate() depends on its input alone (lets a profile allow instance reuse)",
    )


class EvaluatorPublishResultSerializer(EvaluatorVersionSerializer):
    created = serializers.BooleanField(read_only=True)

    class Meta(EvaluatorVersionSerializer.Meta):
        fields = [*EvaluatorVersionSerializer.Meta.fields, "created"]


class EvaluatorStateSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=EvaluatorVersion.State.choices)


# -- runs --------------------------------------------------------------------------------------------------


class TargetSerializer(serializers.Serializer):
    """The shape of a run target, for the schema; runs/targets.py validates it (one set of rules)."""

    url = serializers.URLField(help_text="the agent endpoint (http or https)")
    protocol = serializers.ChoiceField(choices=["vigilo", "openai-chat"], required=False, default="vigilo")
    model = serializers.CharField(required=False, help_text="openai-chat: the model to ask")
    system = serializers.CharField(required=False, help_text="openai-chat: a system message before the input")
    headers = serializers.DictField(
        child=serializers.CharField(), required=False, help_text="extra headers (not Authorization: no secrets)"
    )
    bearer_token_env = serializers.CharField(
        required=False, help_text="a worker environment variable holding the bearer token"
    )
    timeout_s = serializers.FloatField(required=False, default=60.0, help_text="each attempt, at most 600")
    max_retries = serializers.IntegerField(required=False, default=2, min_value=0, max_value=10)
    concurrency = serializers.IntegerField(required=False, default=4, min_value=1, max_value=64)
    replace_outputs = serializers.BooleanField(
        required=False, default=False, help_text="ask the agent for cases that have an output too"
    )
    network = serializers.JSONField(
        required=False,
        help_text='"allow-all", "deny-all" or {"allow": [host, *.domain, IP or CIDR, each with an optional :port]}: '
        "narrows the workers' network policy for this target's calls (docs/targets.md)",
    )


@extend_schema_field(TargetSerializer)
class TargetField(serializers.JSONField):
    pass


class RunCreateSerializer(serializers.Serializer):
    dataset_version = serializers.IntegerField(min_value=1, max_value=2**62, help_text="a dataset version id")
    profile_version = serializers.IntegerField(min_value=1, max_value=2**62, help_text="a profile version id")
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    chunk_size = serializers.IntegerField(min_value=1, max_value=1000, required=False)
    target = TargetField(
        required=False,
        allow_null=True,
        help_text="an agent endpoint that produces the output of every case without one (see docs/targets.md)",
    )

    def validate_dataset_version(self, value: int) -> DatasetVersion:
        version = DatasetVersion.objects.filter(pk=value).first()
        if version is None:
            raise serializers.ValidationError(f"no dataset version {value}")
        return version

    def validate_profile_version(self, value: int) -> ProfileVersion:
        version = ProfileVersion.objects.filter(pk=value).first()
        if version is None:
            raise serializers.ValidationError(f"no profile version {value}")
        return version


class ChunkCountsSerializer(serializers.Serializer):
    pending = serializers.IntegerField()
    leased = serializers.IntegerField()
    completed = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()


class ExecutionCountsSerializer(serializers.Serializer):
    passed = serializers.IntegerField()
    failed = serializers.IntegerField()
    error = serializers.IntegerField()
    pending = serializers.IntegerField(help_text="expected executions without an aggregate yet")


class ProgressSerializer(serializers.Serializer):
    results_written = serializers.IntegerField()
    results_expected = serializers.IntegerField()
    executions_expected = serializers.IntegerField()
    executions = ExecutionCountsSerializer()
    chunks = ChunkCountsSerializer()


class RunSerializer(serializers.ModelSerializer):
    dataset = serializers.CharField(source="dataset_version.dataset.name", read_only=True)
    profile = serializers.CharField(source="profile_version.profile.name", read_only=True)
    pins = serializers.JSONField(read_only=True)
    options = serializers.JSONField(read_only=True)

    class Meta:
        model = Run
        fields = [
            "id",
            "name",
            "state",
            "gate",
            "dataset_version",
            "dataset",
            "profile_version",
            "profile",
            "pins",
            "options",
            "expected_executions",
            "chunk_count",
            "failure_reason",
            "created_at",
            "started_at",
            "finished_at",
        ]


class RunDetailSerializer(RunSerializer):
    progress = serializers.SerializerMethodField()

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "progress"]

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, run: Run) -> dict[str, Any]:
        return run_progress(run=run)


class VerdictSerializer(serializers.Serializer):
    run = serializers.UUIDField()
    state = serializers.ChoiceField(choices=Run.State.choices)
    gate = serializers.ChoiceField(choices=Run.Gate.choices)
    failure_reason = serializers.CharField(allow_blank=True)
    verdict = serializers.JSONField(
        allow_null=True,
        help_text=(
            "counts, dimensions, bindings, scorecard, reasons (why the gate failed), warnings (what passed although "
            "it looks like it should not, e.g. passed_with_failed_bindings), worst executions, model_usage; each "
            "reason and warning names its examples by execution id (`examples`) and by case id (`cases`); null "
            "until decided"
        ),
    )


class ResultSerializer(serializers.ModelSerializer):
    evaluator = serializers.CharField(source="evaluator_version.reference", read_only=True)
    measurement = serializers.JSONField(read_only=True, allow_null=True)
    abstention = serializers.JSONField(read_only=True, allow_null=True)
    findings = serializers.JSONField(read_only=True)
    logs = serializers.JSONField(read_only=True)

    class Meta:
        model = EvaluatorResult
        fields = [
            "binding_id",
            "evaluator",
            "attempt",
            "outcome",
            "kind",
            "measurement",
            "abstention",
            "score",
            "judgment",
            "blocking",
            "error_code",
            "error_message",
            "findings",
            "explanation",
            "logs",
            "logs_truncated",
            "duration_ms",
            "fuel_used",
            "isolation",
        ]


class AggregateSerializer(serializers.Serializer):
    status = serializers.CharField()
    aggregate_score = serializers.FloatField(allow_null=True)
    dimension_scores = serializers.JSONField()
    binding_scores = serializers.JSONField()
    blocking_failures = serializers.ListField(child=serializers.CharField())
    reasons = serializers.ListField(child=serializers.CharField())


class ExecutionSerializer(serializers.ModelSerializer):
    tags = serializers.ListField(child=serializers.CharField(), read_only=True)
    status = serializers.SerializerMethodField()
    aggregate = serializers.SerializerMethodField()
    results = serializers.SerializerMethodField()
    output = serializers.JSONField(
        source="snapshot.output", read_only=True, help_text="the output evaluated: the case's, or the agent's"
    )
    agent_call = serializers.JSONField(
        read_only=True, help_text="the run target's call that produced the output (null without a target)"
    )

    class Meta:
        model = Execution
        fields = [
            "id",
            "ordinal",
            "case_id",
            "tags",
            "attempt",
            "status",
            "aggregate",
            "output",
            "agent_call",
            "results",
        ]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_status(self, e: Execution) -> str | None:
        agg = getattr(e, "aggregate", None)
        return agg.status if agg else None

    @extend_schema_field(AggregateSerializer(allow_null=True))
    def get_aggregate(self, e: Execution) -> dict[str, Any] | None:
        agg = getattr(e, "aggregate", None)
        return AggregateSerializer(agg).data if agg else None

    @extend_schema_field(ResultSerializer(many=True))
    def get_results(self, e: Execution) -> list[dict[str, Any]]:
        results = self.context.get("results", {}).get(e.id, [])
        return ResultSerializer(results, many=True).data  # type: ignore[return-value]  # many=True: a ReturnList


class CompareDimensionSerializer(serializers.Serializer):
    baseline_mean = serializers.FloatField(allow_null=True)
    mean = serializers.FloatField(allow_null=True)
    delta = serializers.FloatField(allow_null=True)


class CompareChangeSerializer(serializers.Serializer):
    case_id = serializers.CharField()
    baseline_status = serializers.CharField(allow_null=True)
    status = serializers.CharField(allow_null=True)


class CompareSerializer(serializers.Serializer):
    run = serializers.UUIDField()
    baseline = serializers.UUIDField()
    cases_compared = serializers.IntegerField()
    changed = serializers.IntegerField()
    transitions = serializers.DictField(child=serializers.IntegerField(), help_text='e.g. {"passed->failed": 3}')
    changes = CompareChangeSerializer(many=True)
    changes_truncated = serializers.BooleanField()
    dimensions = serializers.DictField(child=CompareDimensionSerializer())


class RunFilterSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=Run.State.choices, required=False)
    gate = serializers.ChoiceField(choices=Run.Gate.choices, required=False)
    profile = serializers.CharField(max_length=200, required=False, help_text="profile name")
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)


class ExecutionFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["passed", "failed", "error", "pending"], required=False)
    failed_dimension = serializers.CharField(max_length=200, required=False)
    tag = serializers.CharField(max_length=200, required=False)


class CompareQuerySerializer(serializers.Serializer):
    baseline = serializers.UUIDField()


# -- live evaluation (api/live.py; docs/live.md): the shapes of the bodies, for the schema -------------------


class LiveEventSerializer(serializers.Serializer):
    """One event (online/ingest.py parses and checks it, naming each bad field)."""

    event_type = serializers.ChoiceField(choices=["llm_output", "tool_call", "decision", "message_sent", "custom"])
    payload = serializers.JSONField(help_text="a JSON object; its JSON at most VIGILO_ONLINE_MAX_EVENT_BYTES")
    message_id = serializers.CharField(max_length=200, help_text="the agent's id of the event: unique per agent")
    agent_name = serializers.CharField(required=False, help_text="the token's own agent (another one is a 403)")
    trace_id = serializers.CharField(required=False, help_text="32 hex characters (W3C trace context)")
    span_id = serializers.CharField(required=False, help_text="16 hex characters")
    timestamp = serializers.DateTimeField(required=False)


class LiveCorrectionSerializer(serializers.Serializer):
    delivery_id = serializers.UUIDField()
    cursor = serializers.IntegerField()
    agent = serializers.CharField()
    severity = serializers.ChoiceField(choices=["nudge", "redirect", "halt"])
    reason = serializers.CharField()
    payload = serializers.JSONField(help_text="binding, findings, explanation, score, also (the other failures)")
    event = serializers.JSONField(help_text="message_id, event_type, trace_id, span_id")
    created_at = serializers.DateTimeField()
    acked = serializers.BooleanField()


class LiveResultSerializer(serializers.Serializer):
    binding = serializers.CharField()
    outcome = serializers.CharField()
    judgment = serializers.CharField(allow_blank=True)
    score = serializers.FloatField(allow_null=True)
    error_code = serializers.CharField(allow_blank=True)


class LiveAnswerSerializer(serializers.Serializer):
    """The sync answer (200), or with `deferred` when a worker finishes (202)."""

    message_id = serializers.CharField()
    status = serializers.CharField()
    correction = LiveCorrectionSerializer(allow_null=True)
    results = LiveResultSerializer(many=True)
    duplicate = serializers.BooleanField()
    deferred = serializers.CharField(required=False)


class LiveAcceptedSerializer(serializers.Serializer):
    """The async answer (202): each event's status."""

    accepted = serializers.JSONField(help_text="[{message_id, status, duplicate}]")


class LiveCorrectionsSerializer(serializers.Serializer):
    agent = serializers.CharField()
    corrections = LiveCorrectionSerializer(many=True)
    cursor = serializers.IntegerField(help_text="pass it back as `after`")


class LiveAckSerializer(serializers.Serializer):
    delivery_id = serializers.UUIDField()
    acked_at = serializers.DateTimeField()


class LiveAgentSerializer(serializers.Serializer):
    name = serializers.CharField()
    state = serializers.ChoiceField(choices=["active", "halted"])
    halted_at = serializers.DateTimeField(allow_null=True)
    halted_reason = serializers.CharField(allow_blank=True)
    halt_id = serializers.UUIDField(allow_null=True)
    profile = serializers.JSONField()
    sample_rate = serializers.FloatField()
    event_types = serializers.ListField(child=serializers.CharField())
    rate_limit = serializers.JSONField()
    delivery = serializers.CharField()
    sync_deadline_ms = serializers.IntegerField()


class LiveResumeSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="why the agent may go on (audited)")
