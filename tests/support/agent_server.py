"""A small, real agent endpoint on loopback for run-target tests: it speaks both of Vigilo's target protocols.

`POST /agent` is the `vigilo` protocol: it answers `{"text": answers[input]}` (or "I don't know"). `POST
/v1/chat/completions` is `openai-chat`: the last user message is looked up the same way, and `tool_calls` (name ->
arguments) are added to the message. Knobs: `fail_next` answers that many requests with `fail_status`; cases in
`broken` (by case id, or by their input for chat) always get HTTP 500; `delay_s` sleeps before answering; `answer`
replaces the whole answer body of `/agent`. Every request is logged in `requests`.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from tests.support.loopback import LoopbackJsonServer, Reply


class AgentServer(LoopbackJsonServer):
    name = "agent-server"

    def __init__(self, answers: dict[str, str] | None = None) -> None:
        super().__init__()
        self.answers = dict(answers or {})
        self.fail_next = 0
        self.fail_status = 503
        self.broken: set[str] = set()
        self.delay_s = 0.0
        self.answer: Any = None
        self.tool_calls: dict[str, dict[str, Any]] = {}

    @property
    def url(self) -> str:
        return f"{self.origin}/agent"

    @property
    def chat_url(self) -> str:
        return f"{self.origin}/v1/chat/completions"

    def asked(self) -> Counter[str]:
        """How many times each case was asked (by case id, or by the last user message for chat)."""
        with self._lock:
            return Counter(_key(r["path"], r["body"]) for r in self.requests)

    def handle(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        with self._lock:
            failing = self.fail_next > 0
            if failing:
                self.fail_next -= 1
        if path not in ("/agent", "/v1/chat/completions"):
            return 404, {"error": f"no route {path}"}, {}
        if failing:
            return self.fail_status, {"error": "busy"}, {}
        if _key(path, body) in self.broken:
            return 500, {"error": "the agent crashed"}, {}
        if self.delay_s:
            time.sleep(self.delay_s)
        if path == "/agent":
            question = body["case"]["input"]
            return 200, self.answer if self.answer is not None else {"text": self._reply(question)}, {}
        question = _key(path, body)
        message: dict[str, Any] = {"role": "assistant", "content": self._reply(question)}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
                for i, (name, args) in enumerate(self.tool_calls.items())
            ]
        return (
            200,
            {
                "id": "chatcmpl-agent",
                "object": "chat.completion",
                "model": f"{body.get('model')}-2024",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
            },
            {},
        )

    def _reply(self, question: Any) -> str:
        return self.answers.get(question if isinstance(question, str) else json.dumps(question), "I don't know")


def _key(path: str, body: Any) -> str:
    if path == "/agent":
        return str(body["case"]["id"])
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    return str(users[-1]["content"]) if users else ""
