"""Loopback guardrail engines for the two-way guardrail (exporters.guardrail): one speaking Vigilo's generic
protocol, and a stand-in for Fiddler Guardrails that checks each request as Fiddler's API reference describes it
(Bearer token, `{"data": {...}}` with the documented string fields) and answers with its score fields.

Both decide by a rule on the event's text: it is blocked (or, for Fiddler, scored high) when it contains
`block_word`. `delay_s` holds every answer back (to exceed a latency budget), `fail_with(status)` answers every
further request with that status, and every request is kept in `requests` (LoopbackJsonServer).
"""

from __future__ import annotations

import time
from typing import Any

from tests.support.loopback import LoopbackJsonServer, Reply

FIDDLER_SAFETY = (
    "fdl_harmful",
    "fdl_violent",
    "fdl_unethical",
    "fdl_illegal",
    "fdl_sexual",
    "fdl_racist",
    "fdl_jailbreaking",
    "fdl_harassing",
    "fdl_hateful",
    "fdl_sexist",
    "fdl_roleplaying",
)
GENERIC_KEYS = {"agent", "event_type", "message_id", "trace_id", "span_id", "payload"}


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


class _Engine(LoopbackJsonServer):
    def __init__(self, *, token: str, block_word: str = "forbidden", delay_s: float = 0.0) -> None:
        super().__init__()
        self.token = token
        self.block_word = block_word.lower()
        self.delay_s = delay_s
        self.failing: tuple[int, Any] | None = None

    def fail_with(self, status: int, body: Any = None) -> None:
        self.failing = (status, body if body is not None else {"error": f"failing with {status}"})

    def handle(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.failing is not None:
            return self.failing[0], self.failing[1], {}
        lowered = _lower(headers)
        if not lowered.get("content-type", "").startswith("application/json"):
            return 415, {"detail": "Content-Type must be application/json"}, {}
        if lowered.get("authorization") != f"Bearer {self.token}":
            return 401, {"detail": "missing or invalid Bearer token"}, {}
        return self.answer(path, body)

    def answer(self, path: str, body: Any) -> Reply:
        raise NotImplementedError

    def blocks(self, text: str) -> bool:
        return self.block_word in text.lower()


class GenericGuardrail(_Engine):
    """Vigilo's generic protocol at `path`: blocks an event whose payload text contains `block_word`, scoring
    `block_score`, else allows it with `allow_score`. `answer_with(body)` replaces every further answer."""

    name = "guardrail"

    def __init__(
        self,
        *,
        token: str,
        path: str = "/v1/check",
        block_word: str = "forbidden",
        block_score: float = 0.97,
        allow_score: float = 0.05,
        delay_s: float = 0.0,
    ) -> None:
        super().__init__(token=token, block_word=block_word, delay_s=delay_s)
        self.path = path
        self.block_score, self.allow_score = block_score, allow_score
        self.override: Any = None

    @property
    def url(self) -> str:
        return self.origin + self.path

    def answer_with(self, body: Any) -> None:
        self.override = body

    def answer(self, path: str, body: Any) -> Reply:
        if path != self.path:
            return 404, {"detail": "not found"}, {}
        problem = self.problem(body)
        if problem:
            return 400, {"detail": problem}, {}
        if self.override is not None:
            return 200, self.override, {}
        payload = body["payload"]
        text = payload.get("text") or payload.get("content") or ""
        if isinstance(text, str) and self.blocks(text):
            found = {"word": self.block_word, "message_id": body["message_id"]}
            return (
                200,
                {"action": "block", "score": self.block_score, "reason": "forbidden word", "findings": found},
                {},
            )
        return 200, {"action": "allow", "score": self.allow_score}, {}

    @staticmethod
    def problem(body: Any) -> str:
        if not isinstance(body, dict) or set(body) != GENERIC_KEYS:
            return f"the body is an object with exactly {', '.join(sorted(GENERIC_KEYS))}"
        for key in GENERIC_KEYS - {"payload"}:
            if not isinstance(body[key], str):
                return f"{key} must be a string"
        if not isinstance(body["payload"], dict):
            return "payload must be an object"
        return ""


class FiddlerGuardrails(_Engine):
    """Fiddler Guardrails (docs.fiddler.ai/api/rest-api/guardrails-api-reference): ftl-safety answers every
    safety dimension (`unsafe_score` for `fdl_violent` and `fdl_harmful` when the input holds `block_word`,
    `safe_score` otherwise); ftl-response-faithfulness answers the share of the response's words found in the
    context as `fdl_faithful_score`. Stricter than documented: a `data` key it does not know is refused."""

    name = "fiddler"
    SAFETY = "/v3/guardrails/ftl-safety"
    FAITHFULNESS = "/v3/guardrails/ftl-response-faithfulness"

    def __init__(
        self,
        *,
        token: str,
        block_word: str = "forbidden",
        unsafe_score: float = 0.93,
        safe_score: float = 0.02,
        delay_s: float = 0.0,
    ) -> None:
        super().__init__(token=token, block_word=block_word, delay_s=delay_s)
        self.unsafe_score, self.safe_score = unsafe_score, safe_score

    def answer(self, path: str, body: Any) -> Reply:
        fields = {self.SAFETY: ("input",), self.FAITHFULNESS: ("response", "context")}.get(path)
        if fields is None:
            return 404, {"detail": "Not Found"}, {}
        data = body.get("data") if isinstance(body, dict) and set(body) == {"data"} else None
        if not isinstance(data, dict) or set(data) != set(fields):
            return 400, {"detail": f"the body is {{data: {{{', '.join(fields)}}}}}"}, {}
        if not all(isinstance(data[key], str) and data[key].strip() for key in fields):
            return 400, {"detail": f"{', '.join(fields)} must be non-empty strings"}, {}
        if path == self.SAFETY:
            return 200, self.safety(data["input"]), {}
        return 200, {"fdl_faithful_score": self.faithfulness(data["response"], data["context"])}, {}

    def safety(self, text: str) -> dict[str, float]:
        scores = dict.fromkeys(FIDDLER_SAFETY, self.safe_score)
        if self.blocks(text):
            scores["fdl_violent"] = self.unsafe_score
            scores["fdl_harmful"] = round(self.unsafe_score / 2, 4)
        return scores

    @staticmethod
    def faithfulness(response: str, context: str) -> float:
        words = [word.strip(".,;:!?").lower() for word in response.split()]
        known = {word.strip(".,;:!?").lower() for word in context.split()}
        return round(sum(word in known for word in words) / len(words), 4) if words else 0.0
