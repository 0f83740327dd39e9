"""The REST API: viewsets for reads, explicit actions for commands; services do every write."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Prefetch, QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, renderers, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from api import serializers as s
from api.auth import PublishScope, ReadScope, RunCreateThrottle, WriteScope
from api.errors import PayloadTooLarge
from api.http import (
    CONFLICT,
    ERRORS,
    READ_ERRORS,
    THROTTLED,
    WRITE_ERRORS,
    PlainTextParser,
    XMLRenderer,
    mark_created,
    one_or_404,
    query,
    upload_text,
    uuid_or_404,
)
from api.pagination import ByOrdinal, NewestFirst
from evaluators.models import Evaluator, EvaluatorVersion
from evaluators.services import evaluator_version_publish, evaluator_version_set_state
from runs.models import Dataset, DatasetVersion, Execution, Profile, ProfileVersion, Run
from runs.reports import json_report, junit_xml
from runs.selectors import executions_filter, result_current, run_compare, runs_filter
from runs.services import dataset_import, profile_import, run_cancel, run_create

# -- datasets ----------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List datasets with their versions", responses={200: s.DatasetSerializer, **READ_ERRORS}
    ),
    retrieve=extend_schema(summary="A dataset with its versions", responses={200: s.DatasetSerializer, **READ_ERRORS}),
)
class DatasetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.DatasetSerializer
    pagination_class = NewestFirst
    parser_classes = [MultiPartParser, FormParser, PlainTextParser]

    def get_queryset(self) -> QuerySet[Dataset]:
        return Dataset.objects.prefetch_related(Prefetch("versions", DatasetVersion.objects.order_by("-created_at")))

    def get_object(self) -> Dataset:
        return one_or_404(self.get_queryset(), self.kwargs["pk"], "dataset")

    def get_permissions(self):
        return [WriteScope()] if self.action == "create" else [ReadScope()]

    @extend_schema(
        summary="Upload a JSONL dataset",
        description="Multipart (`name` + `file`) or the raw JSONL as the body with `?name=`. Content-hashed: the "
        "same content returns the existing version (200) instead of a new one (201).",
        parameters=[OpenApiParameter("name", str, description="dataset name, when sending the raw body")],
        request={
            "multipart/form-data": s.DatasetUploadSerializer,
            "application/x-ndjson": OpenApiTypes.BINARY,
            "text/plain": OpenApiTypes.BINARY,
        },
        responses={200: s.DatasetUploadResultSerializer, 201: s.DatasetUploadResultSerializer, **WRITE_ERRORS},
    )
    def create(self, request: Request) -> Response:
        name = request.data.get("name") if hasattr(request.data, "get") and "_raw" not in request.data else None
        name = name if isinstance(name, str) and name else request.query_params.get("name", "")
        fields = s.DatasetUploadSerializer().fields
        try:
            name = fields["name"].run_validation(name)
        except exceptions.ValidationError as exc:
            raise exceptions.ValidationError({"name": exc.detail})
        version, created = dataset_import(name=name, text=upload_text(request))
        mark_created(version, created)
        return Response(s.DatasetUploadResultSerializer(version).data, status=201 if created else 200)


# -- profiles ----------------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List profiles with their versions", responses={200: s.ProfileSerializer, **READ_ERRORS}
    ),
    retrieve=extend_schema(summary="A profile with its versions", responses={200: s.ProfileSerializer, **READ_ERRORS}),
)
class ProfileViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.ProfileSerializer
    pagination_class = NewestFirst
    parser_classes = [MultiPartParser, FormParser, PlainTextParser]

    def get_queryset(self) -> QuerySet[Profile]:
        return Profile.objects.prefetch_related(Prefetch("versions", ProfileVersion.objects.order_by("-created_at")))

    def get_object(self) -> Profile:
        return one_or_404(self.get_queryset(), self.kwargs["pk"], "profile")

    def get_permissions(self):
        return [WriteScope()] if self.action == "create" else [ReadScope()]

    @extend_schema(
        summary="Upload a YAML profile",
        description="Multipart `file` or the raw YAML as the body. The profile's name comes from its `name` key; "
        "every binding is checked against the evaluator registry. The same content returns the existing version.",
        request={
            "multipart/form-data": s.ProfileUploadSerializer,
            "application/yaml": OpenApiTypes.BINARY,
            "text/plain": OpenApiTypes.BINARY,
        },
        responses={200: s.ProfileUploadResultSerializer, 201: s.ProfileUploadResultSerializer, **WRITE_ERRORS},
    )
    def create(self, request: Request) -> Response:
        version, created = profile_import(text=upload_text(request))
        mark_created(version, created)
        return Response(s.ProfileUploadResultSerializer(version).data, status=201 if created else 200)


# -- evaluators --------------------------------------------------------------------------------------------


class EvaluatorPagination(NewestFirst):
    ordering = ("namespace", "name", "pk")


@extend_schema_view(
    list=extend_schema(
        summary="List evaluators with their versions", responses={200: s.EvaluatorSerializer, **READ_ERRORS}
    ),
    retrieve=extend_schema(
        summary="An evaluator with its versions", responses={200: s.EvaluatorSerializer, **READ_ERRORS}
    ),
)
class EvaluatorViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.EvaluatorSerializer
    pagination_class = EvaluatorPagination
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def get_queryset(self) -> QuerySet[Evaluator]:
        return Evaluator.objects.prefetch_related(
            Prefetch("versions", EvaluatorVersion.objects.select_related("evaluator"))
        )

    def get_object(self) -> Evaluator:
        return one_or_404(self.get_queryset(), self.kwargs["pk"], "evaluator")

    def get_permissions(self):
        return [PublishScope()] if self.action in ("publish", "set_state") else [ReadScope()]

    @extend_schema(
        summary="Publish an evaluator version (multipart upload of a .wasm component)",
        request={"multipart/form-data": s.EvaluatorPublishSerializer},
        responses={200: s.EvaluatorPublishResultSerializer, 201: s.EvaluatorPublishResultSerializer, **WRITE_ERRORS},
    )
    @action(detail=False, methods=["post"], url_path="publish", parser_classes=[MultiPartParser, FormParser])
    def publish(self, request: Request) -> Response:
        ser = s.EvaluatorPublishSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        upload = ser.validated_data["file"]
        if upload.size > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise PayloadTooLarge(f"the component is {upload.size} bytes")
        row, created = evaluator_version_publish(
            name=ser.validated_data["name"],
            version=ser.validated_data["version"],
            wasm=upload.read(),
            pure=ser.validated_data["pure"],
        )
        mark_created(row, created)
        return Response(s.EvaluatorPublishResultSerializer(row).data, status=201 if created else 200)

    @extend_schema(
        summary="Change a version's state (active, deprecated, yanked, disabled)",
        request=s.EvaluatorStateSerializer,
        responses={200: s.EvaluatorVersionSerializer, **WRITE_ERRORS, **CONFLICT},
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"versions/(?P<version>[^/]+)/state",
        parser_classes=[JSONParser, FormParser, MultiPartParser],
    )
    def set_state(self, request: Request, pk: str, version: str) -> Response:
        evaluator = self.get_object()
        row = EvaluatorVersion.objects.select_related("evaluator").filter(evaluator=evaluator, version=version).first()
        if row is None:
            raise exceptions.NotFound(f"{evaluator.full_name} has no version {version!r}")
        ser = s.EvaluatorStateSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        try:
            row = evaluator_version_set_state(version=row, state=ser.validated_data["state"])
        except ValueError as exc:
            raise exceptions.ValidationError({"state": [str(exc)]})
        return Response(s.EvaluatorVersionSerializer(row).data)


# -- runs --------------------------------------------------------------------------------------------------

RUN_FILTERS = [
    OpenApiParameter("state", str, enum=Run.State.values),
    OpenApiParameter("gate", str, enum=Run.Gate.values),
    OpenApiParameter("profile", str, description="profile name"),
    OpenApiParameter("created_after", OpenApiTypes.DATETIME),
    OpenApiParameter("created_before", OpenApiTypes.DATETIME),
]
EXECUTION_FILTERS = [
    OpenApiParameter("status", str, enum=["passed", "failed", "error", "pending"]),
    OpenApiParameter("failed_dimension", str, description="a binding of this dimension failed or did not complete"),
    OpenApiParameter("tag", str, description="executions whose case has this tag"),
]
IDEMPOTENCY = OpenApiParameter(
    "Idempotency-Key",
    str,
    location=OpenApiParameter.HEADER,
    description="the same key and body return the run created before (200); a different body is a 409",
)


@extend_schema_view(
    list=extend_schema(
        summary="List runs, newest first", parameters=RUN_FILTERS, responses={200: s.RunSerializer, **ERRORS}
    ),
    retrieve=extend_schema(
        summary="A run with its progress counts", responses={200: s.RunDetailSerializer, **READ_ERRORS}
    ),
)
class RunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    pagination_class = NewestFirst
    parser_classes = [JSONParser, FormParser, MultiPartParser]
    lookup_value_regex = "[^/]+"

    def get_queryset(self) -> QuerySet[Run]:
        return Run.objects.select_related("dataset_version__dataset", "profile_version__profile")

    def get_serializer_class(self):
        return s.RunDetailSerializer if self.action == "retrieve" else s.RunSerializer

    def get_permissions(self):
        return [WriteScope()] if self.action in ("create", "cancel") else [ReadScope()]

    def get_throttles(self):
        return [RunCreateThrottle()] if self.action == "create" else []

    def get_object(self) -> Run:
        run = self.get_queryset().filter(pk=uuid_or_404(self.kwargs["pk"])).first()
        if run is None:
            raise exceptions.NotFound(f"no run {self.kwargs['pk']}")
        return run

    # Any rows, as GenericAPIView.filter_queryset is generic in them; list requests pass get_queryset()'s Run rows.
    def filter_queryset(self, queryset: QuerySet[Run, Any]) -> QuerySet[Run, Any]:
        if self.action != "list":
            return queryset
        return runs_filter(queryset=queryset, **query(s.RunFilterSerializer, self.request))

    @extend_schema(
        summary="Create a run from a dataset version and a profile version",
        parameters=[IDEMPOTENCY],
        request=s.RunCreateSerializer,
        responses={
            201: s.RunDetailSerializer,
            200: OpenApiResponse(s.RunDetailSerializer, description="the run this Idempotency-Key created before"),
            **WRITE_ERRORS,
            **CONFLICT,
            **THROTTLED,
        },
    )
    def create(self, request: Request) -> Response:
        key = request.headers.get("Idempotency-Key")
        if key is not None and (not key.strip() or len(key) > 200 or not key.isprintable()):
            raise exceptions.ValidationError({"Idempotency-Key": ["1 to 200 printable characters"]})
        ser = s.RunCreateSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = ser.validated_data
        options = {"chunk_size": data["chunk_size"]} if data.get("chunk_size") else {}
        if data.get("target") is not None:
            options["target"] = data["target"]
        run, created = run_create(
            dataset_version=data["dataset_version"],
            profile_version=data["profile_version"],
            name=data.get("name", ""),
            idempotency_key=key,
            options=options,
        )
        run = self.get_queryset().get(pk=run.pk)
        return Response(s.RunDetailSerializer(run).data, status=201 if created else 200)

    @extend_schema(
        summary="Cancel a pending or running run",
        request=None,
        responses={200: s.RunDetailSerializer, **READ_ERRORS, **CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        run = self.get_object()
        run_cancel(run_id=run.id, reason="cancelled through the API")
        return Response(s.RunDetailSerializer(self.get_object()).data)

    @extend_schema(
        summary="The run's verdict, with its state and gate", responses={200: s.VerdictSerializer, **READ_ERRORS}
    )
    @action(detail=True, methods=["get"])
    def verdict(self, request: Request, pk: str) -> Response:
        run = self.get_object()
        return Response(
            s.VerdictSerializer(
                {
                    "run": run.id,
                    "state": run.state,
                    "gate": run.gate,
                    "failure_reason": run.failure_reason,
                    "verdict": run.verdict,
                }
            ).data
        )

    @extend_schema(
        summary="Compare with a baseline run: per-case status changes, per-dimension mean deltas",
        parameters=[OpenApiParameter("baseline", OpenApiTypes.UUID, required=True)],
        responses={200: s.CompareSerializer, **ERRORS},
    )
    @action(detail=True, methods=["get"])
    def compare(self, request: Request, pk: str) -> Response:
        run = self.get_object()
        q = query(s.CompareQuerySerializer, request)
        baseline = Run.objects.filter(pk=q["baseline"]).first()
        if baseline is None:
            raise exceptions.ValidationError({"baseline": [f"no run {q['baseline']}"]})
        return Response(s.CompareSerializer(run_compare(run=run, baseline=baseline)).data)

    @extend_schema(
        summary="The JSON report (run, verdict, executions with results), as vigilo_run --json writes it",
        responses={200: OpenApiTypes.OBJECT, **READ_ERRORS},
    )
    @action(detail=True, methods=["get"], url_path="report.json")
    def report_json(self, request: Request, pk: str) -> Response:
        return Response(json_report(run=self.get_object()))

    @extend_schema(
        summary="JUnit XML: one testcase per execution",
        responses={(200, "application/xml"): OpenApiTypes.STR, **READ_ERRORS},
    )
    @action(detail=True, methods=["get"], url_path="junit.xml", renderer_classes=[renderers.JSONRenderer, XMLRenderer])
    def junit(self, request: Request, pk: str) -> HttpResponse:
        return HttpResponse(junit_xml(run=self.get_object()), content_type="application/xml")


@extend_schema_view(
    list=extend_schema(
        summary="A run's executions with their results, findings and logs",
        parameters=EXECUTION_FILTERS,
        responses={200: s.ExecutionSerializer, **ERRORS},
    ),
    retrieve=extend_schema(summary="One execution", responses={200: s.ExecutionSerializer, **READ_ERRORS}),
)
class ExecutionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.ExecutionSerializer
    pagination_class = ByOrdinal
    permission_classes = [ReadScope]
    lookup_value_regex = "[^/]+"

    def _run(self) -> Run:
        run = Run.objects.select_related("profile_version").filter(pk=uuid_or_404(self.kwargs["run_pk"])).first()
        if run is None:
            raise exceptions.NotFound(f"no run {self.kwargs['run_pk']}")
        return run

    def get_queryset(self) -> QuerySet[Execution]:
        return Execution.objects.filter(run=self._run()).select_related("aggregate")

    # Any rows, as GenericAPIView.filter_queryset is generic in them; list requests pass get_queryset()'s rows.
    def filter_queryset(self, queryset: QuerySet[Execution, Any]) -> QuerySet[Execution, Any]:
        if self.action != "list":
            return queryset
        return executions_filter(run=self._run(), queryset=queryset, **query(s.ExecutionFilterSerializer, self.request))

    def get_object(self) -> Execution:
        return one_or_404(self.get_queryset(), self.kwargs["pk"], "execution")

    def get_serializer(self, *args, **kwargs):
        instance = args[0] if args else None
        items = list(instance) if isinstance(instance, list | QuerySet) else [instance] if instance else []
        kwargs.setdefault("context", self.get_serializer_context())
        kwargs["context"]["results"] = result_current(execution_ids=[e.id for e in items])
        return self.serializer_class(*args, **kwargs)
