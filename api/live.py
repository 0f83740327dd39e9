"""The live-evaluation endpoints (docs/live.md): agents emit events and read their corrections with their own
token; operators (the `operate` scope, never an agent's token) resume halted agents.

    POST /api/v1/online/events                 one event, evaluated inline: 200 with its correction or none,
                                               202 when handed to the workers (`deferred`)
    POST /api/v1/online/events                 with `Prefer: respond-async`, or a batch {"events": [...]}: 202
    GET  /api/v1/online/corrections?after=&wait=&unacked=   the long-poll
    POST /api/v1/online/corrections/{delivery_id}/ack
    GET  /api/v1/online/agents/{name}
    POST /api/v1/online/agents/{name}/resume   {"reason": "..."}
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api import serializers as s
from api.auth import BearerTokenAuthentication
from api.http import CONFLICT, ERRORS, READ_ERRORS, WRITE_ERRORS, PlainTextParser, uuid_or_404
from api.models import ApiToken
from online.errors import EventInvalid, NotPermitted
from online.ingest import EventIn, body_decode, event_parse, events_parse
from online.models import EvalEvent, MonitoredAgent
from online.selectors import agent_view, corrections_after
from online.services import agent_resume, correction_ack, event_submit_sync, events_accept

POLL_EVERY_S = 0.1


class AgentToken(permissions.BasePermission):
    """An agent's own token with the `emit` scope."""

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return False
        if token.agent_id is None or "emit" not in token.scopes:
            raise exceptions.PermissionDenied("this endpoint takes an agent's token (scope `emit`)")
        return True


class AgentOrReader(permissions.BasePermission):
    """An agent's token (for itself), or a `read` token (for any agent, named with `agent=`)."""

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return False
        if token.agent_id is None and "read" not in token.scopes:
            raise exceptions.PermissionDenied("this token lacks the `read` scope")
        return True


class Operator(permissions.BasePermission):
    """The `operate` scope, on a token that is not an agent's: an agent never resumes itself."""

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return False
        if token.agent_id is not None:
            raise exceptions.PermissionDenied("an agent's token cannot resume an agent, not even itself")
        if "operate" not in token.scopes:
            raise exceptions.PermissionDenied("this token lacks the `operate` scope")
        return True


def _own_agent(token: ApiToken, named: str | None) -> MonitoredAgent:
    assert token.agent_id is not None  # AgentToken / AgentOrReader checked it
    agent = token.agent  # loaded with the token, in this request (api.services.token_authenticate)
    assert agent is not None
    if named is not None and named != agent.name:
        raise NotPermitted(f"this token is agent {agent.name!r}'s: it cannot act as {named!r}")
    return agent


def _agent_named(request: Request, name: str | None) -> MonitoredAgent:
    token = request.auth
    assert isinstance(token, ApiToken)
    if token.agent_id is not None:
        return _own_agent(token, name)
    if not name:
        raise exceptions.ValidationError({"agent": ["required with a token that is not an agent's"]})
    agent = MonitoredAgent.objects.select_related("profile").filter(name=name).first()
    if agent is None:
        raise exceptions.NotFound(f"no agent named {name!r}")
    return agent


def _as_agent(agent: MonitoredAgent, events: list[EventIn]) -> None:
    for i, event in enumerate(events):
        if event.agent_name is not None and event.agent_name != agent.name:
            raise NotPermitted(
                f"events[{i}].agent_name: this token is agent {agent.name!r}'s: it cannot emit as {event.agent_name!r}"
            )


class EventsView(APIView):
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [AgentToken]
    parser_classes = [PlainTextParser]  # the raw body: online/ingest.py names what is wrong

    @extend_schema(
        summary="Emit an event (sync), or events (async)",
        request={"application/json": s.LiveEventSerializer},
        parameters=[OpenApiParameter("Prefer", str, OpenApiParameter.HEADER, description="`respond-async`: 202")],
        responses={
            200: s.LiveAnswerSerializer,
            202: OpenApiResponse(s.LiveAcceptedSerializer, description="accepted for the workers (or deferred)"),
            **WRITE_ERRORS,
            **CONFLICT,
        },
    )
    def post(self, request: Request) -> Response:
        token = request.auth
        assert isinstance(token, ApiToken)
        agent = _own_agent(token, None)
        data = body_decode(request.data["_raw"])  # type: ignore[call-overload]  # PlainTextParser's dict
        if isinstance(data, dict) and "events" in data:
            events = events_parse(data)
            asynchronous = True
        else:
            events = [event_parse(data)]
            asynchronous = "respond-async" in request.headers.get("Prefer", "").lower()
        _as_agent(agent, events)
        if asynchronous:
            accepted = events_accept(agent=agent, events=events, path=EvalEvent.Path.HTTP)
            return Response(
                {
                    "accepted": [
                        {"message_id": a.message_id, "status": a.status, "duplicate": a.duplicate} for a in accepted
                    ]
                },
                status=202,
            )
        answer = event_submit_sync(agent=agent, event=events[0])
        body: dict[str, Any] = {
            "message_id": answer.message_id,
            "status": answer.status,
            "correction": answer.correction,
            "results": answer.results,
            "duplicate": answer.duplicate,
        }
        if answer.status == EvalEvent.Status.PENDING:
            body["deferred"] = answer.deferred or "being evaluated by a worker"
            return Response(body, status=202)
        return Response(body, status=200)


class CorrectionsView(APIView):
    """The long-poll: the agent's delivered corrections after the cursor, waiting up to `wait` seconds for one."""

    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [AgentOrReader]

    @extend_schema(
        summary="The agent's corrections after a cursor (long-poll)",
        parameters=[
            OpenApiParameter("after", int, description="the last cursor seen (0: from the start)"),
            OpenApiParameter("wait", float, description="seconds to wait for one (capped)"),
            OpenApiParameter("unacked", bool),
            OpenApiParameter("agent", str, description="with a `read` token: whose"),
        ],
        responses={200: s.LiveCorrectionsSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        agent = _agent_named(request, request.query_params.get("agent"))
        problems = {}
        try:
            after = int(request.query_params.get("after", "0"))
        except ValueError:
            problems["after"] = ["an integer: the `cursor` of the last correction seen (0: from the start)"]
        try:
            wait = float(request.query_params.get("wait", "0"))
            if not 0 <= wait <= 3600:
                raise ValueError
        except ValueError:
            problems["wait"] = ["seconds to wait for a correction, 0 to 3600 (capped at VIGILO_ONLINE_POLL_MAX_S)"]
        if problems:
            raise EventInvalid("query", [(k, v[0]) for k, v in problems.items()])
        unacked = request.query_params.get("unacked") in ("1", "true")
        deadline = time.monotonic() + min(wait, settings.VIGILO_ONLINE_POLL_MAX_S)
        while True:
            corrections = corrections_after(agent=agent, after=after, unacked=unacked)
            if corrections or time.monotonic() >= deadline:
                break
            close_old_connections()
            time.sleep(POLL_EVERY_S)
        cursor = corrections[-1]["cursor"] if corrections else after
        return Response({"agent": agent.name, "corrections": corrections, "cursor": cursor})


class CorrectionAckView(APIView):
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [AgentToken]

    @extend_schema(summary="Ack a correction", request=None, responses={200: s.LiveAckSerializer, **READ_ERRORS})
    def post(self, request: Request, delivery_id: str) -> Response:
        token = request.auth
        assert isinstance(token, ApiToken)
        agent = _own_agent(token, None)
        correction = correction_ack(agent=agent, delivery_id=str(uuid_or_404(delivery_id)))
        if correction is None:
            raise exceptions.NotFound(f"agent {agent.name!r} has no correction {delivery_id}")
        assert correction.acked_at is not None
        return Response({"delivery_id": str(correction.delivery_id), "acked_at": correction.acked_at.isoformat()})


class AgentView(APIView):
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [AgentOrReader]

    @extend_schema(summary="A monitored agent", responses={200: s.LiveAgentSerializer, **READ_ERRORS})
    def get(self, request: Request, name: str) -> Response:
        return Response(agent_view(_agent_named(request, name)))


class AgentResumeView(APIView):
    authentication_classes = [BearerTokenAuthentication]
    permission_classes = [Operator]

    @extend_schema(
        summary="Resume a halted agent (operate)",
        request=s.LiveResumeSerializer,
        responses={200: s.LiveAgentSerializer, **ERRORS, **CONFLICT},
    )
    def post(self, request: Request, name: str) -> Response:
        token = request.auth
        assert isinstance(token, ApiToken)
        if not MonitoredAgent.objects.filter(name=name).exists():
            raise exceptions.NotFound(f"no agent named {name!r}")
        reason = request.data.get("reason") if isinstance(request.data, dict) else None
        if not isinstance(reason, str):
            raise EventInvalid("resume", [("reason", "required: say why the agent may go on")])
        audit = agent_resume(agent_name=name, actor=f"token:{token.name}", reason=reason)
        agent = MonitoredAgent.objects.select_related("profile").get(name=name)
        return Response({**agent_view(agent), "audit": {"id": audit.id, "actor": audit.actor, "reason": audit.reason}})
