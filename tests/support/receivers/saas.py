"""Loopback stand-ins for Langfuse, Braintrust and LangSmith, which cannot run here: each checks every request
against the platform's published API definition (auth header, required fields, types, enums, ranges) and answers
as the platform does, refusing what it would refuse. Accepted items are kept by the platform's id (`items`), and
every accepted write is counted (`writes`), so a resend shows as an upsert, never as a second item."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

from tests.support.loopback import LoopbackJsonServer, Reply

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Platform(LoopbackJsonServer):
    def __init__(self) -> None:
        super().__init__()
        self.items: dict[str, dict[str, Any]] = {}
        self.writes = 0
        self.auth_headers: list[str] = []

    def keep(self, key: str, item: dict[str, Any]) -> None:
        with self._lock:
            self.items[key] = item
            self.writes += 1


class LangfuseReceiver(_Platform):
    """fern/apis/server/definition: ingestion.yml (score-create, 207 multi-status) and scores.yml."""

    name = "langfuse"
    MAX_BYTES = 3_500_000
    EVENT_TYPES = {
        "trace-create",
        "score-create",
        "span-create",
        "span-update",
        "generation-create",
        "generation-update",
        "event-create",
        "sdk-log",
        "observation-create",
        "observation-update",
    }

    def __init__(self, public_key: str, secret_key: str) -> None:
        super().__init__()
        self.expected = "Basic " + base64.b64encode(f"{public_key}:{secret_key}".encode()).decode()

    def handle(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        self.auth_headers.append(auth)
        if auth != self.expected:
            return 401, {"message": "Invalid credentials. Confirm that you've configured the correct host."}, {}
        if int({k.lower(): v for k, v in headers.items()}.get("content-length", 0)) > self.MAX_BYTES:
            return 413, {"message": "Request body exceeds 3.5 MB"}, {}
        if path == "/api/public/scores":
            problem = self.score_problem(body)
            if problem:
                return 400, {"message": "Invalid request data", "error": [problem]}, {}
            self.keep(body.get("id") or str(uuid.uuid4()), body)
            return 200, {"id": body.get("id")}, {}
        if path != "/api/public/ingestion":
            return 404, {"message": "Not found"}, {}
        if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
            return 400, {"message": "Invalid request data", "error": ["batch: Required"]}, {}
        successes, errors = [], []
        for event in body["batch"]:
            problem = self.event_problem(event)
            event_id = event.get("id") if isinstance(event, dict) else None
            if problem:
                errors.append(
                    {"id": event_id or "", "status": 400, "message": "Invalid request data", "error": problem}
                )
                continue
            self.keep(event["body"]["id"], event["body"])
            successes.append({"id": event_id, "status": 201})
        return 207, {"successes": successes, "errors": errors}, {}

    def event_problem(self, event: Any) -> str:
        if not isinstance(event, dict):
            return "an event is an object"
        if not isinstance(event.get("id"), str) or not event["id"]:
            return "id: Required"
        if event.get("type") not in self.EVENT_TYPES:
            return f"type: Invalid discriminator value {event.get('type')!r}"
        if not isinstance(event.get("timestamp"), str) or not ISO.match(event["timestamp"]):
            return "timestamp: Invalid datetime"
        if event["type"] != "score-create":
            return ""
        return self.score_problem(event.get("body"))

    @staticmethod
    def score_problem(score: Any) -> str:
        if not isinstance(score, dict):
            return "body: Required"
        if not isinstance(score.get("name"), str) or not score["name"]:
            return "name: Required"
        if not any(isinstance(score.get(key), str) and score[key] for key in ("traceId", "sessionId", "datasetRunId")):
            return "one of traceId, sessionId or datasetRunId is required"
        if "id" in score and not isinstance(score["id"], str):
            return "id: Expected string"
        kind = score.get("dataType", "NUMERIC")
        value = score.get("value")
        if kind not in ("NUMERIC", "BOOLEAN", "CATEGORICAL"):
            return f"dataType: Invalid enum value {kind!r}"
        if kind == "NUMERIC" and not _number(value):
            return "value: numeric scores take a number"
        if kind == "BOOLEAN" and value not in (0, 1):
            return "value: boolean scores take 1 or 0"
        if kind == "CATEGORICAL" and not isinstance(value, str):
            return "value: categorical scores take a string"
        for key in ("comment", "observationId", "environment"):
            if key in score and not isinstance(score[key], str):
                return f"{key}: Expected string"
        if "metadata" in score and not isinstance(score["metadata"], (dict, list, str, int, float, bool)):
            return "metadata: invalid"
        return ""


class BraintrustReceiver(_Platform):
    """Braintrust's REST API: /v1/project_logs/{project_id}/insert and /feedback, Bearer API key."""

    name = "braintrust"
    SOURCES = ("app", "api", "external")

    def __init__(self, api_key: str, project_id: str) -> None:
        super().__init__()
        self.api_key, self.project_id = api_key, project_id

    def handle(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        self.auth_headers.append(auth)
        if auth != f"Bearer {self.api_key}":
            return 401, {"error": "Invalid authorization token"}, {}
        match = re.fullmatch(r"/v1/project_logs/([^/]+)/(insert|feedback)", path)
        if not match:
            return 404, {"error": "Not found"}, {}
        if match.group(1) != self.project_id:
            return 403, {"error": f"Missing read access to project {match.group(1)}"}, {}
        items = body.get((match.group(2) == "insert" and "events") or "feedback") if isinstance(body, dict) else None
        if not isinstance(items, list):
            return 400, {"error": f"{'events' if match.group(2) == 'insert' else 'feedback'}: Required"}, {}
        problems = [self.item_problem(item, feedback=match.group(2) == "feedback") for item in items]
        if any(problems):
            return 400, {"error": next(p for p in problems if p)}, {}
        ids = []
        for item in items:
            key = item.get("id") or str(uuid.uuid4())
            self.keep(key, item)
            ids.append(key)
        return 200, ({"row_ids": ids} if match.group(2) == "insert" else {"status": "success"}), {}

    def item_problem(self, item: Any, *, feedback: bool) -> str:
        if not isinstance(item, dict):
            return "an item is an object"
        if feedback and not (isinstance(item.get("id"), str) and item["id"]):
            return "feedback[].id: Required"
        if "id" in item and not isinstance(item["id"], str):
            return "id: Expected string"
        scores = item.get("scores", {})
        if not isinstance(scores, dict):
            return "scores: Expected object"
        for name, value in scores.items():
            if value is not None and not (_number(value) and 0 <= value <= 1):
                return f"scores.{name}: must be a number between 0 and 1, or null"
        if "metadata" in item and not isinstance(item["metadata"], dict):
            return "metadata: Expected object"
        if feedback and item.get("source", "external") not in self.SOURCES:
            return f"source: Invalid enum value {item.get('source')!r}"
        return ""


class LangSmithReceiver(_Platform):
    """LangSmith's REST API: POST /api/v1/feedback (FeedbackCreateSchema), `x-api-key`; an existing id is 409."""

    name = "langsmith"
    SOURCE_TYPES = ("api", "model", "app")

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key

    def handle(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        key = {k.lower(): v for k, v in headers.items()}.get("x-api-key", "")
        self.auth_headers.append(key)
        if key != self.api_key:
            return 401, {"detail": "Invalid token"}, {}
        if path != "/api/v1/feedback":
            return 404, {"detail": "Not Found"}, {}
        problem = self.problem(body)
        if problem:
            return 422, {"detail": [{"loc": ["body", problem.split(":")[0]], "msg": problem}]}, {}
        feedback_id = body.get("id") or str(uuid.uuid4())
        with self._lock:
            if feedback_id in self.items:
                return 409, {"detail": f"Feedback {feedback_id} already exists"}, {}
        self.keep(feedback_id, body)
        return 200, {**body, "id": feedback_id}, {}

    def problem(self, body: Any) -> str:
        if not isinstance(body, dict):
            return "body: Expected object"
        if not isinstance(body.get("key"), str) or not body["key"]:
            return "key: field required"
        for field in ("id", "run_id", "trace_id", "session_id"):
            if field in body and body[field] is not None and not _uuid(body[field]):
                return f"{field}: value is not a valid uuid"
        if (
            "score" in body
            and body["score"] is not None
            and not (_number(body["score"]) or isinstance(body["score"], bool))
        ):
            return "score: value is not a valid number"
        if "comment" in body and not isinstance(body["comment"], str):
            return "comment: str type expected"
        source = body.get("feedback_source")
        if source is not None and (not isinstance(source, dict) or source.get("type") not in self.SOURCE_TYPES):
            return "feedback_source: type must be api, model or app"
        return ""
