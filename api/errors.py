"""One error envelope for every 4xx: {"error": {"code", "message", "fields": {field: [messages]}}}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from evaluators.services import PublishError
from online.errors import AgentHalted, EventInvalid, NotPermitted, StateConflict
from runs.errors import IdempotencyConflict, TransitionError, ValidationFailed


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "the request conflicts with the resource's current state"
    default_code = "conflict"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "the request body is too large"
    default_code = "payload_too_large"


def envelope(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested validation detail as {"a.b[0].c": [messages]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = str(key) if not prefix else f"{prefix}.{key}"
            for k, v in _flatten(value, name).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        if all(not isinstance(d, dict | list) for d in detail):
            out[prefix or "non_field_errors"] = [str(d) for d in detail]
        else:
            for i, value in enumerate(detail):
                for k, v in _flatten(value, f"{prefix}[{i}]").items():
                    out.setdefault(k, []).extend(v)
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def validation_failed_fields(exc: ValidationFailed) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for where, message in exc.errors:
        fields.setdefault(where, []).append(message)
    return fields


def _convert(exc: Exception) -> exceptions.APIException | Response | None:
    if isinstance(exc, ValidationFailed):
        first = exc.errors[0] if exc.errors else ("", "")
        message = f"{exc.what} is invalid: {first[0]}: {first[1]}" + (
            f" (and {len(exc.errors) - 1} more)" if len(exc.errors) > 1 else ""
        )
        return Response(envelope("validation_error", message, validation_failed_fields(exc)), status=400)
    if isinstance(exc, EventInvalid):
        first = exc.errors[0] if exc.errors else ("", "")
        more = f" (and {len(exc.errors) - 1} more)" if len(exc.errors) > 1 else ""
        fields: dict[str, list[str]] = {}
        for where, message in exc.errors:
            fields.setdefault(where, []).append(message)
        return Response(envelope("validation_error", f"{first[0]}: {first[1]}{more}", fields), status=400)
    if isinstance(exc, AgentHalted):
        body = envelope("agent_halted", str(exc))
        body["error"].update(agent=exc.agent, reason=exc.reason, halt_id=exc.halt_id)
        return Response(body, status=409)
    if isinstance(exc, NotPermitted):
        return exceptions.PermissionDenied(str(exc))
    if isinstance(exc, StateConflict):
        return Conflict(str(exc))
    if isinstance(exc, IdempotencyConflict):
        return Response(envelope("idempotency_conflict", str(exc), {"Idempotency-Key": [str(exc)]}), status=409)
    if isinstance(exc, TransitionError):
        return Conflict(str(exc))
    if isinstance(exc, PublishError):
        return exceptions.ValidationError({"non_field_errors": [str(exc)]})
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge(str(exc))
    if isinstance(exc, SuspiciousOperation):
        return exceptions.ParseError(str(exc))
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError({"non_field_errors": exc.messages})
    if isinstance(exc, DataError | UnicodeError):
        return exceptions.ParseError(f"the input cannot be stored: {exc}".splitlines()[0])
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    converted = _convert(exc)
    if isinstance(converted, Response):
        return converted
    if converted is not None:
        exc = converted
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django's 500 handler takes it
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        first_field, first = next(iter(fields.items()))
        where = "" if first_field == "non_field_errors" else f"{first_field}: "
        message = f"{where}{first[0]}"
        response.data = envelope("validation_error", message, {k: v for k, v in fields.items()})
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        if not isinstance(code, str):
            code = getattr(exc, "default_code", "error")
        response.data = envelope(code, str(detail))
    return response


def not_found_view(request, *args, **kwargs) -> JsonResponse:
    """Unknown paths under /api/: the envelope, not Django's HTML page."""
    return JsonResponse(envelope("not_found", f"no API endpoint at {request.path}"), status=404)
