"""A small, real OpenAI-compatible chat-completions server on loopback for tests (no mocks of the provider).

`POST /v1/chat/completions` answers deterministically. With `response_format.json_schema` it returns JSON that
matches the schema: the judgment is favourable when any message contains `provider.marker`. Booleans become that
judgment, numbers 1.0 / 0.0, enums their first / last choice, other strings a short reasoning. Without a schema it
answers "PASS" or "FAIL". Usage counts words. Knobs: `fail_next` answers that many requests with `fail_status`
(429 by default) and `Retry-After: retry_after`; `delay_s` sleeps before answering; `reply` forces the content.
Every request is logged in `requests` (path, headers, body).
"""

from __future__ import annotations

import json
import time
from typing import Any

from tests.support.loopback import LoopbackJsonServer, Reply


def _words(text: str) -> int:
    return len(text.split())


class OpenAIProvider(LoopbackJsonServer):
    name = "openai-provider"

    def __init__(self, *, marker: str = "PINEAPPLE") -> None:
        super().__init__()
        self.marker = marker
        self.reset()

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.fail_next, self.fail_status, self.retry_after = 0, 429, "0"
            self.delay_s: float = 0.0
            self.reply: str | None = None

    # -- protocol ----------------------------------------------------------------------------------------
    def handle(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        with self._lock:
            failing = self.fail_next > 0
            if failing:
                self.fail_next -= 1
            delay, reply = self.delay_s, self.reply
        if path != "/v1/chat/completions":
            return 404, {"error": {"message": f"no route {path}", "type": "not_found"}}, {}
        if failing:
            extra = {} if self.retry_after is None else {"Retry-After": self.retry_after}
            return self.fail_status, {"error": {"message": "slow down", "type": "rate_limit"}}, extra
        if delay:
            time.sleep(delay)
        messages = body.get("messages") or []
        prompt = "\n".join(str(m.get("content", "")) for m in messages)
        favourable = self.marker in prompt
        schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema")
        if reply is not None:
            content = reply
        elif schema is not None:
            content = json.dumps(self._fill(schema, favourable))
        else:
            content = "PASS" if favourable else "FAIL"
        return (
            200,
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": f"{body.get('model')}-2024",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": {
                    "prompt_tokens": _words(prompt),
                    "completion_tokens": _words(content),
                    "total_tokens": _words(prompt) + _words(content),
                },
            },
            {},
        )

    def _fill(self, schema: dict, favourable: bool) -> Any:
        kind = schema.get("type")
        if "enum" in schema:
            return schema["enum"][0] if favourable else schema["enum"][-1]
        if kind == "object":
            return {key: self._fill(sub, favourable) for key, sub in (schema.get("properties") or {}).items()}
        if kind == "boolean":
            return favourable
        if kind in ("number", "integer"):
            return 1 if favourable else 0
        if kind == "array":
            return []
        return f"The answer {'meets' if favourable else 'does not meet'} the criteria."


PRICE_IN, PRICE_OUT = 0.15, 0.6


def configure_providers(settings: Any, monkeypatch: Any, provider: OpenAIProvider) -> None:
    """Route "judge-default" (and "judge-big") to `provider` in Django settings and clear the response cache."""
    from evaluators.model_broker import response_cache

    monkeypatch.setenv("VIGILO_TEST_PROVIDER_KEY", "sk-test-123")
    settings.VIGILO_MODEL_PROVIDERS = {
        name: {
            "base_url": provider.base_url,
            "api_key_env": "VIGILO_TEST_PROVIDER_KEY",
            "model": model,
            "price_in_per_mtok": PRICE_IN,
            "price_out_per_mtok": PRICE_OUT,
        }
        for name, model in (("judge-default", "gpt-test"), ("judge-big", "gpt-test-big"))
    }
    response_cache().clear()
    provider.reset()
