"""Host side of the `model` capability: LLM calls a `model-evaluator` guest makes through `vigilo_sdk.complete`.

One `GrantedModelBroker` per invocation enforces the binding's grant (allowed logical models, max calls, a token
budget) and raises `CapabilityDenied` past it. Logical names are routed to OpenAI-compatible providers configured
in `VIGILO_MODEL_PROVIDERS`. The HTTP client is shared by the process: a concurrency semaphore, and the retries
and deadline of vigilo_project/httpjson.py, whose every wait respects the invocation's deadline, because epoch
interruption cannot stop a blocked host function.
Deterministic requests (temperature 0 or unset) are served from a cache keyed by the evaluator digest and the
request content: an in-process LRU in front of a table every worker process shares (`SharedResponses`). A hit
comes back with `cached: true` and costs nothing.
Every provider call is held to `VIGILO_NETWORK_POLICY` (vigilo_project/netpolicy.py): by default the hosts and
ports of the configured providers' `base_url`s, never a link-local or cloud metadata address. A refusal fails the
call (`ModelCallFailed`) with the policy's reason, without a request and without a retry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from evaluators.models import ModelResponse
from evaluators.sandbox import CapabilityDenied, ModelCallFailed
from vigilo_project.httpjson import ERROR_BODY_CHARS, CallFailed, JsonClient
from vigilo_project.netpolicy import DENY_ALL, Policy, policy_parse, policy_resolve

log = logging.getLogger(__name__)
# Stop waiting this long before the invocation's deadline, so the guest still has time to turn the failure
# into its own result instead of being cut off by the epoch deadline.
DEADLINE_MARGIN_S = 0.25


@dataclass(frozen=True)
class Provider:
    """Where one logical model name goes: an OpenAI-compatible endpoint and a model id there."""

    name: str
    base_url: str
    model: str
    api_key_env: str | None = None
    price_in_per_mtok: float = 0.0
    price_out_per_mtok: float = 0.0

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.price_in_per_mtok + output_tokens * self.price_out_per_mtok) / 1_000_000


def providers_parse(raw: dict[str, Any]) -> dict[str, Provider]:
    """Providers from the settings JSON; ValueError naming the entry when one is malformed."""
    known = {"base_url", "model", "api_key_env", "price_in_per_mtok", "price_out_per_mtok"}
    out = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict):
            raise ValueError(f"VIGILO_MODEL_PROVIDERS[{name!r}] must be an object")
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ValueError(f"VIGILO_MODEL_PROVIDERS[{name!r}] has unknown key(s): {', '.join(unknown)}")
        url = urlsplit(str(entry.get("base_url", "")))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"VIGILO_MODEL_PROVIDERS[{name!r}].base_url must be an http(s) URL")
        if not isinstance(entry.get("model"), str) or not entry["model"]:
            raise ValueError(f"VIGILO_MODEL_PROVIDERS[{name!r}].model must be a non-empty string")
        prices = {}
        for key in ("price_in_per_mtok", "price_out_per_mtok"):
            value = entry.get(key, 0.0)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"VIGILO_MODEL_PROVIDERS[{name!r}].{key} must be a number >= 0")
            prices[key] = float(value)
        out[name] = Provider(
            name=name,
            base_url=entry["base_url"].rstrip("/"),
            model=entry["model"],
            api_key_env=entry.get("api_key_env") or None,
            **prices,
        )
    return out


class SharedResponses:
    """The second level of the response cache: the database, shared by every worker process for
    `VIGILO_MODEL_CACHE_TTL_S` (0: nothing is shared).

    A cache must never fail an evaluation: a database error is logged and taken as a miss (or a lost write).
    """

    def get(self, key: str) -> dict[str, Any] | None:
        ttl_s = settings.VIGILO_MODEL_CACHE_TTL_S
        if ttl_s <= 0:
            return None
        fresh_since = timezone.now() - timedelta(seconds=ttl_s)
        rows = ModelResponse.objects.filter(key=key, created_at__gte=fresh_since).values_list("response", flat=True)
        try:
            with transaction.atomic():  # a failed read must not break a caller's transaction
                return rows.first()
        except DatabaseError as exc:
            log.warning("shared model response cache unavailable, asking the provider: %s", exc)
            return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        if settings.VIGILO_MODEL_CACHE_TTL_S <= 0:
            return
        try:
            with transaction.atomic():
                ModelResponse.objects.update_or_create(
                    key=key, defaults={"response": value, "created_at": timezone.now()}
                )
        except IntegrityError:
            pass  # another process stored the same request's answer at the same moment
        except DatabaseError as exc:
            log.warning("shared model response cache unavailable, answer not shared: %s", exc)


class ResponseCache:
    """A thread-safe LRU of completions (without the `cached` flag), in front of an optional shared level."""

    def __init__(self, size: int, shared: SharedResponses | None = None) -> None:
        self.size = size
        self.shared = shared
        self._items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return dict(hit)
        shared = self.shared.get(key) if self.shared is not None else None
        if shared is not None:
            self._remember(key, shared)
        return shared

    def put(self, key: str, value: dict[str, Any]) -> None:
        self._remember(key, value)
        if self.shared is not None:
            self.shared.put(key, value)

    def _remember(self, key: str, value: dict[str, Any]) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = dict(value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class ProviderClient:
    """The process's HTTP client for chat completions: bounded concurrency, retries, deadlines."""

    def __init__(self, *, timeout_s: float, max_retries: int, concurrency: int) -> None:
        self.http = JsonClient(
            timeout_s=timeout_s,
            max_retries=max_retries,
            concurrency=concurrency,
            peer="provider",
            deadline_name="evaluation deadline",
        )

    def chat(self, *, provider: Provider, body: dict[str, Any], deadline: float, policy: Policy) -> dict[str, Any]:
        """POST {base_url}/chat/completions and return the decoded response; ModelCallFailed on failure (a
        refusal of `policy` included)."""
        headers = {}
        if provider.api_key_env:
            key = os.environ.get(provider.api_key_env)
            if not key:
                raise ModelCallFailed(
                    f"provider for {provider.name!r} needs an API key in ${provider.api_key_env}, which is not set"
                )
            headers["Authorization"] = f"Bearer {key}"
        try:
            data, _attempts = self.http.post(
                url=f"{provider.base_url}/chat/completions",
                body=body,
                headers=headers,
                deadline=deadline,
                call=f"model call to {provider.name!r}",
                policy=policy,
            )
        except CallFailed as exc:
            raise ModelCallFailed(str(exc)) from None
        return data


def _completion(provider: Provider, data: Any) -> dict[str, Any]:
    """The parts of an OpenAI chat-completions response the contract returns."""
    try:
        message = data["choices"][0]["message"]
        content = message.get("content")
        if content is None and message.get("refusal"):
            raise ModelCallFailed(f"the model refused: {str(message['refusal'])[:ERROR_BODY_CHARS]}")
        if not isinstance(content, str):
            raise TypeError("no content")
        usage = data.get("usage") or {}
        input_tokens = int(usage.get("prompt_tokens") or 0)
        output_tokens = int(usage.get("completion_tokens") or 0)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        raise ModelCallFailed(
            f"provider response has no choices[0].message.content: {json.dumps(data)[:ERROR_BODY_CHARS]}"
        ) from None
    return {
        "content": content,
        "model": str(data.get("model") or provider.model),
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cached": False,
        "cost_usd": round(provider.cost(input_tokens, output_tokens), 10),
        "logical_model": provider.name,
    }


class GrantedModelBroker:
    """The `ModelBroker` of one invocation: a grant, an evaluator digest, the network policy its calls are held to,
    and the shared client and cache.

    Create one per invocation (it counts calls and tokens for the grant).
    """

    def __init__(
        self,
        *,
        grant: dict[str, Any],
        evaluator_digest: str,
        providers: dict[str, Provider],
        client: ProviderClient,
        cache: ResponseCache | None,
        network: Policy,
        config_problem: str | None = None,
    ) -> None:
        self.config_problem = config_problem
        self.network = network
        self.models = list(grant.get("models") or [])
        self.max_calls = int(grant.get("max_calls", 4))
        self.max_tokens = int(grant.get("max_tokens", 4096))
        self.evaluator_digest = evaluator_digest
        self.providers = providers
        self.client = client
        self.cache = cache
        self.calls = 0
        self.tokens = 0
        self._lock = threading.Lock()

    def complete(self, *, request: dict[str, Any], deadline: float) -> dict[str, Any]:
        name = request["model"]
        with self._lock:
            if name not in self.models:
                raise CapabilityDenied(
                    f"model {name!r} is not granted to this binding (granted: {', '.join(self.models) or 'none'})"
                )
            if self.calls >= self.max_calls:
                raise CapabilityDenied(f"the binding grants at most {self.max_calls} model call(s) per evaluation")
            if self.tokens >= self.max_tokens:
                raise CapabilityDenied(f"the binding's budget of {self.max_tokens} model tokens is spent")
            self.calls += 1
            budget = self.max_tokens - self.tokens
        provider = self.providers.get(name)
        if self.config_problem:
            raise ModelCallFailed(self.config_problem)
        if provider is None:
            raise ModelCallFailed(f"no provider is configured for model {name!r} (VIGILO_MODEL_PROVIDERS)")
        try:
            messages = json.loads(request["messages_json"])
            schema = (
                None if request.get("response_schema_json") is None else json.loads(request["response_schema_json"])
            )
        except ValueError as exc:
            raise ModelCallFailed(f"request is not valid JSON: {exc}") from None
        if not isinstance(messages, list) or not messages:
            raise ModelCallFailed("messages must be a non-empty list of {role, content} objects")
        max_tokens = min(int(request["max_tokens"]), budget) if request.get("max_tokens") else budget
        body: dict[str, Any] = {"model": provider.model, "messages": messages, "max_tokens": max_tokens}
        temperature = request.get("temperature")
        if temperature is not None:
            body["temperature"] = round(float(temperature), 6)
        if schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "judgment", "schema": schema, "strict": True},
            }
        deterministic = temperature is None or float(temperature) == 0.0
        key = None
        if self.cache is not None and deterministic:
            key = hashlib.sha256(
                json.dumps(
                    [self.evaluator_digest, name, provider.base_url, body], sort_keys=True, separators=(",", ":")
                ).encode()
            ).hexdigest()
            hit = self.cache.get(key)
            if hit is not None:
                self._spend(hit)
                return {**hit, "cached": True, "cost_usd": 0.0}
        done = _completion(
            provider,
            self.client.chat(provider=provider, body=body, deadline=deadline - DEADLINE_MARGIN_S, policy=self.network),
        )
        if key is not None:
            self.cache.put(key, done)  # type: ignore[union-attr]
        self._spend(done)
        return done

    def _spend(self, done: dict[str, Any]) -> None:
        with self._lock:
            self.tokens += int(done["input_tokens"]) + int(done["output_tokens"])


# -- process-wide state and the entry points runs/engine.py uses ----------------------------------------
_state_lock = threading.Lock()
_client: ProviderClient | None = None
_cache: ResponseCache | None = None


def provider_client() -> ProviderClient:
    global _client
    with _state_lock:
        if _client is None:
            s = settings
            _client = ProviderClient(
                timeout_s=s.VIGILO_MODEL_TIMEOUT_S,
                max_retries=s.VIGILO_MODEL_MAX_RETRIES,
                concurrency=s.VIGILO_MODEL_CONCURRENCY,
            )
        return _client


def response_cache() -> ResponseCache:
    global _cache
    with _state_lock:
        if _cache is None:
            _cache = ResponseCache(settings.VIGILO_MODEL_CACHE_SIZE, shared=SharedResponses())
        return _cache


def model_responses_expire() -> int:
    """Delete shared responses past `VIGILO_MODEL_CACHE_TTL_S` (the reaper calls it); returns how many."""
    ttl_s = settings.VIGILO_MODEL_CACHE_TTL_S
    if ttl_s <= 0:
        return ModelResponse.objects.all().delete()[0]
    return ModelResponse.objects.filter(created_at__lt=timezone.now() - timedelta(seconds=ttl_s)).delete()[0]


def broker_for_binding(*, grant: dict | None, evaluator_digest: str, cache: bool = True) -> GrantedModelBroker | None:
    """The broker for ONE invocation of a binding (None when the binding grants no `model` capability).

    `grant` is the binding's `grants["model"]` ({models, max_calls, max_tokens}); `cache=False` turns the response
    cache off (repeat trials that must sample the model again).
    """
    if not grant:
        return None
    try:
        providers, problem = providers_parse(settings.VIGILO_MODEL_PROVIDERS), None
    except ValueError as exc:  # reported to the guest on its first call, like any unusable provider
        providers, problem = {}, str(exc)
    try:
        network: Policy = provider_policy(providers)
    except ValueError as exc:  # settings are checked at start-up: only one changed since can be wrong here
        network, problem = policy_parse(DENY_ALL, source="VIGILO_NETWORK_POLICY"), problem or str(exc)
    return GrantedModelBroker(
        grant=grant,
        evaluator_digest=evaluator_digest,
        providers=providers,
        client=provider_client(),
        cache=response_cache() if cache else None,
        network=network,
        config_problem=problem,
    )


def provider_policy(providers: dict[str, Provider]) -> Policy:
    """Where model calls may go: `VIGILO_NETWORK_POLICY`, by default the host and port of every provider's base_url."""
    return policy_resolve(
        settings.VIGILO_NETWORK_POLICY,
        source="VIGILO_NETWORK_POLICY",
        configured=[provider.base_url for provider in providers.values()],
    )


def usage_summary(model_usage: list[dict]) -> dict:
    """Totals over completions as recorded in results' `model_usage` (cached calls cost nothing)."""
    calls = len(model_usage)
    cached = sum(1 for u in model_usage if u.get("cached"))
    input_tokens = sum(int(u.get("input_tokens") or 0) for u in model_usage)
    output_tokens = sum(int(u.get("output_tokens") or 0) for u in model_usage)
    cost = sum(float(u.get("cost_usd") or 0.0) for u in model_usage if not u.get("cached"))
    by_model: dict[str, dict[str, Any]] = {}
    for u in model_usage:
        entry = by_model.setdefault(
            str(u.get("logical_model") or u.get("model")),
            {"calls": 0, "cached_calls": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0},
        )
        entry["calls"] += 1
        entry["cached_calls"] += 1 if u.get("cached") else 0
        entry["input_tokens"] += int(u.get("input_tokens") or 0)
        entry["output_tokens"] += int(u.get("output_tokens") or 0)
        entry["cost_usd"] += 0.0 if u.get("cached") else float(u.get("cost_usd") or 0.0)
    for entry in by_model.values():
        entry["cost_usd"] = round(entry["cost_usd"], 10)
    return {
        "calls": calls,
        "cached_calls": cached,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "cost_usd": round(cost, 10),
        "by_model": by_model,
    }
