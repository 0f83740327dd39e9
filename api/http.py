"""HTTP plumbing the API's views share: the error responses of the schema, the raw-text parser and XML renderer,
reading uploads and query parameters, and id lookups that answer 404 (never 500) on a malformed id."""

from __future__ import annotations

import uuid
from typing import Any
from xml.etree import ElementTree as ET

from django.conf import settings
from django.db.models import Model, QuerySet
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, renderers
from rest_framework.parsers import FileUploadParser
from rest_framework.request import Request

from api import serializers as s
from api.errors import PayloadTooLarge

ERRORS = {
    400: OpenApiResponse(s.ErrorSerializer, description="invalid input; `fields` names each problem"),
    401: OpenApiResponse(s.ErrorSerializer, description="no token, or an invalid, expired or revoked one"),
    403: OpenApiResponse(s.ErrorSerializer, description="the token lacks the scope"),
    404: OpenApiResponse(s.ErrorSerializer, description="not found"),
    406: OpenApiResponse(s.ErrorSerializer, description="not acceptable"),
}
READ_ERRORS = {k: v for k, v in ERRORS.items() if k != 400}
BAD_REQUEST_READ = ERRORS
WRITE_ERRORS = {
    **ERRORS,
    405: OpenApiResponse(s.ErrorSerializer, description="method not allowed"),
    413: OpenApiResponse(s.ErrorSerializer, description="body too large"),
    415: OpenApiResponse(s.ErrorSerializer, description="unsupported media type"),
}
CONFLICT = {409: OpenApiResponse(s.ErrorSerializer, description="conflicts with the current state")}
THROTTLED = {429: OpenApiResponse(s.ErrorSerializer, description="rate limited")}


class PlainTextParser(FileUploadParser):
    """A raw request body (JSONL or YAML text) instead of a multipart file."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise PayloadTooLarge(f"the body is {length} bytes; the limit is {settings.DATA_UPLOAD_MAX_MEMORY_SIZE}")
        body = stream.read(settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1) if stream is not None else b""
        if len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise PayloadTooLarge(f"the body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes")
        return {"_raw": body}


class XMLRenderer(renderers.BaseRenderer):
    media_type = "application/xml"
    format = "xml"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes | str):
            return data
        # An error envelope for a client that only accepts XML.
        error = (data or {}).get("error", {}) if isinstance(data, dict) else {}
        element = ET.Element("error", code=str(error.get("code", "error")))
        element.text = str(error.get("message", ""))
        return ET.tostring(element, encoding="utf-8", xml_declaration=True)


def upload_text(request: Request, field: str = "file") -> str:
    """The uploaded text: the multipart `file`, or the raw body. Must be UTF-8."""
    upload = request.data.get(field) if hasattr(request.data, "get") else None
    if upload is not None and hasattr(upload, "read"):
        if upload.size > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
            raise PayloadTooLarge(
                f"the file is {upload.size} bytes; the limit is {settings.DATA_UPLOAD_MAX_MEMORY_SIZE}"
            )
        raw = upload.read()
    else:
        raw = request.data.get("_raw", b"") if hasattr(request.data, "get") else b""
    if not isinstance(raw, bytes):
        raw = str(raw).encode()
    if not raw.strip():
        raise exceptions.ValidationError({field: ["required: upload a file (multipart `file`) or send it as the body"]})
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise exceptions.ValidationError({field: [f"not UTF-8 text: {exc}"]})


def query(serializer_class: type, request: Request) -> dict[str, Any]:
    params = {k: v for k, v in request.query_params.items() if k in serializer_class().fields}
    for key, value in params.items():
        if "\x00" in value:
            raise exceptions.ValidationError({key: ["must not contain NUL characters"]})
    ser = serializer_class(data=params)
    ser.is_valid(raise_exception=True)
    return ser.validated_data


def mark_created(row: Model, created: bool) -> None:
    """Set `created` for an upload or publish result serializer: a flag of this response, not a model field."""
    response_row: Any = row
    response_row.created = created


def uuid_or_404(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise exceptions.NotFound("not a run id (a UUID)")


def one_or_404(queryset: QuerySet, pk: str, what: str):
    """The row with integer id `pk`, or a 404 naming what was looked for (never a 500 on a malformed id)."""
    obj = queryset.filter(pk=int_or_404(pk)).first()
    if obj is None:
        raise exceptions.NotFound(f"no {what} {pk}")
    return obj


def int_or_404(value: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise exceptions.NotFound("not an id (an integer)")
    if not 0 < number < 2**62:
        raise exceptions.NotFound("no such id")
    return number
