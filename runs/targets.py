"""Run targets: the agent endpoint a run calls to produce the output of a case that has none.

A run's target is part of its request (`options["target"]`), checked and completed with its defaults at run
creation, so the run pins exactly how its outputs were produced. Workers call the endpoint for each such case
before evaluating it (runs/engine.py); an answer is recorded on the execution at once, so a retried chunk
never asks the agent again for a case it already answered.

Two protocols:
- `vigilo`: POST the case (`id`, `input`, `context`, `tags`, `metadata`; never `expected`) as
  `{"run_id", "execution_id", "case": {...}}`, with an `Idempotency-Key` header of run and case; the answer is an
  output object, checked like a dataset's (`text`, `structured`, `tool_calls`, `trace`, `metadata`).
- `openai-chat`: POST an OpenAI chat-completions request built from the case's input (a string becomes the user
  message; a list of messages, or an object with `messages`, is sent as the conversation; anything else is sent
  as JSON text); the answer's message becomes `text` and `tool_calls`, with model, finish reason and usage in
  `metadata`.

Secrets never enter the run: `bearer_token_env` names an environment variable of the workers.

Every call is held to the workers' network policy (`VIGILO_NETWORK_POLICY`; by default the target's own host,
never a link-local or cloud metadata address), narrowed by the target's `network` field when it has one
(vigilo_project/netpolicy.py). A refusal is the case's `agent_error`, and no request is sent.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from runs.errors import ValidationFailed
from runs.ingest import case_size, output_normalized, output_problems, unstorable_values
from vigilo_project.httpjson import ERROR_BODY_CHARS, CallFailed, JsonClient
from vigilo_project.netpolicy import AllOf, Policy, PolicyInvalid, policy_parse, policy_resolve, url_host_port

PROTOCOLS = ("vigilo", "openai-chat")
AGENT_ERROR = "agent_error"  # the error code of every binding's result when the agent gave no output
FORBIDDEN_HEADERS = {"authorization", "content-length", "content-type", "host", "idempotency-key"}
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,100}$")


@dataclass(frozen=True)
class Target:
    url: str
    protocol: str = "vigilo"
    model: str | None = None
    system: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    bearer_token_env: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 2
    concurrency: int = 4
    replace_outputs: bool = False
    network: str | dict[str, list[str]] | None = None  # narrows the workers' policy for this target's calls

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.network is None:  # a target without one is stored (and identifies its run) as before the field
            del out["network"]
        return out

    def needs_call(self, *, output: Any) -> bool:
        return output is None or self.replace_outputs


@dataclass(frozen=True)
class Answer:
    output: dict[str, Any]
    attempts: int
    duration_ms: float


def _number(
    raw: dict[str, Any],
    key: str,
    errors: list[tuple[str, str]],
    *,
    default: float,
    low: float,
    high: float,
    integer: bool,
) -> Any:
    value = raw.get(key, default)
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        errors.append((f"target.{key}", f"must be {kind} from {low:g} to {high:g}"))
        return default
    if not low <= value <= high or (not integer and value == 0):
        errors.append((f"target.{key}", f"must be {kind} from {low:g} to {high:g}, not {value}"))
        return default
    return int(value) if integer else float(value)


def target_parse(raw: Any) -> Target:
    """A target from a run request; ValidationFailed naming every field that is wrong."""
    if not isinstance(raw, dict):
        raise ValidationFailed("run", [("target", "must be an object with at least a 'url'")])
    errors: list[tuple[str, str]] = []
    known = set(Target.__dataclass_fields__)
    errors += [(f"target.{key}", "unknown field") for key in sorted(set(raw) - known, key=str)]
    url = raw.get("url")
    parts = urlsplit(url) if isinstance(url, str) and len(url) <= 2000 else None
    try:
        port_ok = parts is not None and (parts.port or 1) > 0
    except ValueError:
        port_ok = False
    host = parts.hostname if parts is not None else None
    if parts is None or parts.scheme not in ("http", "https") or not host or not port_ok or parts.fragment:
        errors.append(("target.url", "required: an http(s) URL with a host, at most 2000 characters"))
    elif isinstance(url, str) and (not (url.isascii() and url.isprintable()) or " " in url):
        errors.append(
            (
                "target.url",
                "must be printable ASCII without spaces: percent-encode the path, and write an internationalized "
                "host in its xn-- form",
            )
        )
    protocol = raw.get("protocol", "vigilo")
    if protocol not in PROTOCOLS:
        errors.append(("target.protocol", f"must be one of {', '.join(PROTOCOLS)}"))
    model, system = raw.get("model"), raw.get("system")
    if protocol == "openai-chat":
        if not isinstance(model, str) or not model.strip():
            errors.append(("target.model", "required for the openai-chat protocol: the model to ask"))
        if system is not None and not isinstance(system, str):
            errors.append(("target.system", "must be a string"))
    else:
        for key in ("model", "system"):
            if raw.get(key) is not None:
                errors.append((f"target.{key}", "only the openai-chat protocol takes it"))
    headers = raw.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        errors.append(("target.headers", "must be an object of header names to string values"))
        headers = {}
    for name, value in headers.items():
        if not _HEADER_NAME.match(name) or not (value.isascii() and value.isprintable()):
            errors.append((f"target.headers.{name}", "not a valid header: a token name and a printable ASCII value"))
        elif name.lower() in FORBIDDEN_HEADERS:
            hint = "; put the token in a worker environment variable named by bearer_token_env" * (
                name.lower() == "authorization"
            )
            errors.append((f"target.headers.{name}", f"is set by Vigilo and cannot be given{hint}"))
    token_env = raw.get("bearer_token_env")
    if token_env is not None and (not isinstance(token_env, str) or not _ENV_NAME.match(token_env)):
        errors.append(("target.bearer_token_env", "must be an environment variable name"))
    replace = raw.get("replace_outputs", False)
    if not isinstance(replace, bool):
        errors.append(("target.replace_outputs", "must be true or false"))
    timeout_s = _number(raw, "timeout_s", errors, default=60.0, low=0, high=600, integer=False)
    max_retries = _number(raw, "max_retries", errors, default=2, low=0, high=10, integer=True)
    concurrency = _number(raw, "concurrency", errors, default=4, low=1, high=64, integer=True)
    network = _network(raw.get("network"), url if not any(where == "target.url" for where, _ in errors) else None)
    errors += network[1]
    if errors:
        raise ValidationFailed("run", errors)
    return Target(
        url=url,  # type: ignore[arg-type]
        protocol=protocol,
        model=model if protocol == "openai-chat" else None,
        system=system if protocol == "openai-chat" else None,
        headers=dict(headers),
        bearer_token_env=token_env,
        timeout_s=timeout_s,
        max_retries=max_retries,
        concurrency=concurrency,
        replace_outputs=replace,
        network=network[0],
    )


def _network(raw: Any, url: Any) -> tuple[str | dict[str, list[str]] | None, list[tuple[str, str]]]:
    """The target's `network` policy in canonical form, and what is wrong with it: its entries, or that it
    refuses the target's own URL whatever the name resolves to."""
    if raw is None:
        return None, []
    try:
        policy = policy_parse(raw, source="target.network")
    except PolicyInvalid as exc:
        return None, [(f"target.network{where}", message) for where, message in exc.problems]
    if isinstance(url, str):
        refusal = policy.refusal_before_dns(*url_host_port(url))
        if refusal is not None:
            return None, [("target.network", f"refuses the target's own url: {refusal}")]
    return policy.as_value(), []


def target_policy(target: Target) -> Policy:
    """Where the target's calls may go: the workers' `VIGILO_NETWORK_POLICY` (by default the target's own host and
    port), narrowed by the target's `network`. Read at each call: the policy is the workers', not the run's."""
    workers = policy_resolve(settings.VIGILO_NETWORK_POLICY, source="VIGILO_NETWORK_POLICY", configured=[target.url])
    if target.network is None:
        return workers
    return AllOf((workers, policy_parse(target.network, source="target.network")))


def target_client(target: Target) -> JsonClient:
    """One client per chunk: `concurrency` calls in flight, each attempt at most `timeout_s`."""
    return JsonClient(
        timeout_s=target.timeout_s,
        max_retries=target.max_retries,
        concurrency=target.concurrency,
        peer="agent",
        deadline_name="call's deadline",
    )


def output_fetch(*, target: Target, client: JsonClient, run_id: str, execution_id: int, case: dict[str, Any]) -> Answer:
    """Ask the agent for one case's output; CallFailed with a message for the user when there is none.

    All attempts together take at most (max_retries + 1) x timeout_s.
    """
    started = time.monotonic()
    headers = dict(target.headers)
    if target.bearer_token_env:
        token = os.environ.get(target.bearer_token_env)
        if not token:
            raise CallFailed(f"the target needs a token in ${target.bearer_token_env}, which the worker does not have")
        headers["Authorization"] = f"Bearer {token}"
    if target.protocol == "openai-chat":
        body: dict[str, Any] = {"model": target.model, "messages": _messages(target, case.get("input"))}
    else:
        body = {
            "run_id": run_id,
            "execution_id": execution_id,
            "case": {key: case.get(key) for key in ("id", "input", "context", "tags", "metadata")},
        }
        headers["Idempotency-Key"] = f"{run_id}:{case.get('id')}"
    deadline = started + target.timeout_s * (target.max_retries + 1)
    data, attempts = client.post(
        url=target.url, body=body, headers=headers, deadline=deadline, call="agent call", policy=target_policy(target)
    )
    output = output_from_answer(protocol=target.protocol, data=data)
    return Answer(output=output, attempts=attempts, duration_ms=round((time.monotonic() - started) * 1000, 3))


def output_from_answer(*, protocol: str, data: Any) -> dict[str, Any]:
    """The output in an agent's decoded answer, normalized; CallFailed saying what is wrong with it.

    The output is held to the dataset's case-size limit (`VIGILO_MAX_CASE_BYTES`, measured as compact JSON): it
    is lowered into every evaluator's sandbox with the case, and the answer's own cap (4 MiB) is far above it.
    """
    output = _from_chat(data) if protocol == "openai-chat" else _from_vigilo(data)
    unstorable, _ = unstorable_values(output)  # what a dataset line may not hold either (NUL, NaN, ...)
    if unstorable:
        detail = "; ".join(f"output.{path}: {problem}" if path else problem for path, problem in unstorable[:5])
        raise CallFailed(f"the agent's output cannot be stored: {detail}")
    limit: int = settings.VIGILO_MAX_CASE_BYTES
    size = case_size(json.dumps(output, ensure_ascii=False, separators=(",", ":")))
    if size > limit:
        raise CallFailed(
            f"the agent's output is {size:,} bytes as JSON; the limit is {limit:,} (VIGILO_MAX_CASE_BYTES)"
        )
    return output


def _messages(target: Target, value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        value = value["messages"]
    if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
        messages = list(value)
    elif isinstance(value, str):
        messages = [{"role": "user", "content": value}]
    else:
        messages = [{"role": "user", "content": json.dumps(value)}]
    if target.system:
        messages.insert(0, {"role": "system", "content": target.system})
    return messages


def _from_vigilo(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise CallFailed(f"the agent's answer must be an output object, not {type(data).__name__}")
    problems = output_problems(data, "'output")
    if problems:
        detail = "; ".join(f"{where}: {message}" for where, message in problems[:5])
        raise CallFailed(f"the agent's answer is not a valid output: {detail}")
    return output_normalized(data)


def _from_chat(data: Any) -> dict[str, Any]:
    try:
        choice = data["choices"][0]
        message = choice["message"]
        content = message.get("content")
        calls = message.get("tool_calls") or []
        if content is not None and not isinstance(content, str):
            raise TypeError("content")
        tool_calls = []
        for call in calls:
            function = call["function"]
            name = function["name"]
            if not isinstance(name, str) or not name:
                raise TypeError("name")
            arguments = function.get("arguments")
            try:
                arguments = json.loads(arguments) if isinstance(arguments, str) else arguments
            except ValueError:
                pass  # kept as the text the model produced: a trajectory check can judge it
            tool_calls.append({"name": name, "arguments": arguments, "result": None})
    except (KeyError, IndexError, TypeError, AttributeError):
        raise CallFailed(
            f"the agent's answer has no choices[0].message with content or tool calls: "
            f"{json.dumps(data)[:ERROR_BODY_CHARS]}"
        ) from None
    if content is None and not tool_calls:
        refusal = message.get("refusal")
        if refusal:
            raise CallFailed(f"the agent refused: {str(refusal)[:ERROR_BODY_CHARS]}")
        raise CallFailed("the agent's answer has neither content nor tool calls")
    metadata = {"model": data.get("model"), "finish_reason": choice.get("finish_reason"), "usage": data.get("usage")}
    return output_normalized({"text": content, "tool_calls": tool_calls, "metadata": metadata})
