"""The `model` capability end to end: llm-judge in the real sandbox -> broker -> HTTP -> a real OpenAI-compatible
server on loopback (tests/support/openai_provider.py)."""

from __future__ import annotations

import time

import pytest

from evaluators.build import BUNDLED_DIR, component_build
from evaluators.model_broker import broker_for_binding, providers_parse, usage_summary
from evaluators.sandbox import CapabilityDenied, Limits, ModelCallFailed
from tests.support.openai_provider import PRICE_IN, PRICE_OUT, configure_providers
from tests.support.paths import BUILD_CACHE
from tests.support.wasm import load

DIGEST = "d" * 64
GRANT = {"models": ["judge-default"], "max_calls": 2, "max_tokens": 4096}


@pytest.fixture(autouse=True)
def providers(settings, monkeypatch, provider, db):  # db: the response cache's shared level
    configure_providers(settings, monkeypatch, provider)


@pytest.fixture(scope="module")
def judge(host):
    src = BUNDLED_DIR / "llm-judge"
    return load(host, component_build(source_dir=src, cache_dir=BUILD_CACHE, world="model-evaluator").read_bytes())


def judge_run(host, judge, *, text="The capital is Paris. PINEAPPLE", grant=GRANT, cache=True, limits=None, **config):
    config.setdefault("rubric", "correctness")
    data = {
        "run_id": "run-1",
        "execution_id": "execution-1",
        "attempt": 1,
        "case": {"id": "case-1", "input": "What is the capital of France?", "expected": None},
        "output": {"text": text},
        "config": config,
    }
    broker = broker_for_binding(grant=grant, evaluator_digest=judge.digest, cache=cache)
    return host.evaluate(judge, data=data, limits=limits, model=broker)


def request_body(text: str = "hello", **extra) -> dict:
    import json

    return {
        "model": "judge-default",
        "messages_json": json.dumps([{"role": "user", "content": text}]),
        "response_schema_json": None,
        "temperature": None,
        "max_tokens": None,
        **extra,
    }


def test_judge_call_goes_over_http_with_structured_output(host, judge, provider):
    inv = judge_run(host, judge)
    assert (inv.outcome, inv.kind, inv.measurement) == ("completed", "binary", True), inv.error_message
    assert inv.explanation == "The answer meets the criteria."
    [request] = provider.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test-123"
    body = request["body"]
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("gpt-test", 0.0, 1024)
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "What is the capital of France?" in body["messages"][1]["content"]
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "judgment",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {
                    "reasoning": {"type": "string"},
                    "verdict": {"type": "boolean", "description": "true when the output meets the criteria"},
                },
                "required": ["reasoning", "verdict"],
                "additionalProperties": False,
            },
        },
    }
    [usage] = inv.model_usage
    prompt_words = sum(len(m["content"].split()) for m in body["messages"])
    assert usage == {
        "content": '{"reasoning": "The answer meets the criteria.", "verdict": true}',
        "model": "gpt-test-2024",
        "input_tokens": prompt_words,
        "output_tokens": 8,
        "cached": False,
        "cost_usd": pytest.approx((prompt_words * PRICE_IN + 8 * PRICE_OUT) / 1e6),
        "logical_model": "judge-default",
    }


def test_unfavourable_judgment_fails_with_the_reasoning_as_finding(host, judge):
    inv = judge_run(host, judge, text="The capital is Lyon.")
    assert (inv.outcome, inv.measurement) == ("completed", False)
    [only] = inv.findings
    assert (only["category"], only["message"]) == ("correctness", "The answer does not meet the criteria.")


def test_second_identical_call_is_served_from_the_cache(host, judge, provider):
    first = judge_run(host, judge)
    second = judge_run(host, judge)
    assert (first.measurement, second.measurement) == (True, True)
    assert [u["cached"] for u in first.model_usage + second.model_usage] == [False, True]
    assert second.model_usage[0]["cost_usd"] == 0.0
    assert len(provider.requests) == 1


def test_cache_off_or_sampling_temperature_asks_the_provider_again(host, judge, provider):
    judge_run(host, judge)
    again = judge_run(host, judge, cache=False)
    assert again.model_usage[0]["cached"] is False
    hot = [judge_run(host, judge, temperature=0.7) for _ in range(2)]
    assert [inv.model_usage[0]["cached"] for inv in hot] == [False, False]
    assert len(provider.requests) == 4


def test_cache_is_keyed_by_evaluator_digest(provider):
    for digest in ("a" * 64, "b" * 64, "a" * 64):
        broker = broker_for_binding(grant=GRANT, evaluator_digest=digest)
        broker.complete(request=request_body(), deadline=time.monotonic() + 5)
    assert len(provider.requests) == 2


def test_a_429_is_retried_and_the_result_completes(host, judge, provider):
    provider.fail_next = 1
    inv = judge_run(host, judge)
    assert (inv.outcome, inv.measurement) == ("completed", True), inv.error_message
    assert len(provider.requests) == 2


def test_persistent_429_gives_up_after_the_retries(host, judge, provider, settings):
    provider.fail_next = 100
    inv = judge_run(host, judge, limits=Limits(timeout_s=10))
    assert inv.error_code == "evaluator_error"
    assert inv.error_message == "model_call_failed: provider answered HTTP 429 (gave up after 4 attempts)"
    assert len(provider.requests) == settings.VIGILO_MODEL_MAX_RETRIES + 1


def test_a_retry_after_past_the_deadline_fails_at_once(host, judge, provider):
    provider.fail_next, provider.retry_after = 1, "30"
    inv = judge_run(host, judge, limits=Limits(timeout_s=2))
    assert inv.error_message == (
        "model_call_failed: provider answered HTTP 429; retrying after 30.00 s would pass the evaluation deadline"
    )
    assert len(provider.requests) == 1


def test_a_5xx_is_retried_but_a_4xx_is_not(host, judge, provider):
    provider.fail_next, provider.fail_status = 1, 503
    assert judge_run(host, judge).measurement is True
    provider.reset()
    provider.fail_next, provider.fail_status = 1, 400
    inv = judge_run(host, judge, cache=False)
    assert inv.error_message.startswith("model_call_failed: provider answered HTTP 400:")
    assert len(provider.requests) == 1


def test_a_slow_provider_ends_as_an_error_within_the_invocation_deadline(host, judge, provider):
    provider.delay_s = 3.0
    started = time.monotonic()
    inv = judge_run(host, judge, limits=Limits(timeout_s=1.0))
    elapsed = time.monotonic() - started
    assert inv.error_code == "evaluator_error"
    assert inv.error_message == "model_call_failed: model call to 'judge-default' ran into the evaluation deadline"
    assert elapsed < 1.0
    assert inv.model_usage == []


def test_no_grant_is_capability_denied(host, judge, provider):
    assert broker_for_binding(grant=None, evaluator_digest=DIGEST) is None
    inv = judge_run(host, judge, grant=None)
    assert inv.error_code == "capability_denied"
    assert provider.requests == []


def test_a_model_outside_the_grant_is_capability_denied(host, judge, provider):
    inv = judge_run(host, judge, model="judge-big")
    assert inv.error_code == "capability_denied"
    assert inv.error_message == "model 'judge-big' is not granted to this binding (granted: judge-default)"
    assert provider.requests == []


def test_calls_past_max_calls_are_capability_denied(provider):
    broker = broker_for_binding(grant={"models": ["judge-default"], "max_calls": 1}, evaluator_digest=DIGEST)
    broker.complete(request=request_body("one"), deadline=time.monotonic() + 5)
    with pytest.raises(CapabilityDenied, match="at most 1 model call"):
        broker.complete(request=request_body("two"), deadline=time.monotonic() + 5)
    assert len(provider.requests) == 1


def test_the_token_budget_caps_max_tokens_and_then_denies(provider):
    broker = broker_for_binding(grant={"models": ["judge-default"], "max_tokens": 50}, evaluator_digest=DIGEST)
    done = broker.complete(request=request_body("a b c", max_tokens=1000), deadline=time.monotonic() + 5)
    assert provider.requests[0]["body"]["max_tokens"] == 50
    assert done["input_tokens"] == 3
    broker.tokens = 50
    with pytest.raises(CapabilityDenied, match="budget of 50 model tokens"):
        broker.complete(request=request_body("x"), deadline=time.monotonic() + 5)


def test_a_granted_model_without_a_provider_fails_the_call(settings, provider):
    settings.VIGILO_MODEL_PROVIDERS = {}
    broker = broker_for_binding(grant=GRANT, evaluator_digest=DIGEST)
    with pytest.raises(ModelCallFailed, match=r"no provider is configured for model 'judge-default'"):
        broker.complete(request=request_body(), deadline=time.monotonic() + 5)


def test_a_missing_api_key_fails_the_call_without_a_request(monkeypatch, provider):
    monkeypatch.delenv("VIGILO_TEST_PROVIDER_KEY")
    broker = broker_for_binding(grant=GRANT, evaluator_digest=DIGEST)
    with pytest.raises(ModelCallFailed, match=r"needs an API key in \$VIGILO_TEST_PROVIDER_KEY"):
        broker.complete(request=request_body(), deadline=time.monotonic() + 5)
    assert provider.requests == []


def test_usage_summary_sums_tokens_and_cost(host, judge):
    results = [judge_run(host, judge), judge_run(host, judge), judge_run(host, judge, text="wrong")]
    usage = [u for inv in results for u in inv.model_usage]
    summary = usage_summary(usage)
    fresh = [u for u in usage if not u["cached"]]
    input_tokens = sum(u["input_tokens"] for u in usage)
    output_tokens = sum(u["output_tokens"] for u in usage)
    cost = sum(u["input_tokens"] * PRICE_IN + u["output_tokens"] * PRICE_OUT for u in fresh) / 1e6
    assert summary == {
        "calls": 3,
        "cached_calls": 1,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "cost_usd": pytest.approx(cost),
        "by_model": {
            "judge-default": {
                "calls": 3,
                "cached_calls": 1,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cost_usd": pytest.approx(cost),
            }
        },
    }
    assert usage_summary([]) == {
        "calls": 0,
        "cached_calls": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "total_tokens": 0,
        "cost_usd": 0.0,
        "by_model": {},
    }


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"base_url": "ftp://x", "model": "m"}, r"base_url must be an http\(s\) URL"),
        ({"base_url": "http://x", "model": ""}, "model must be a non-empty string"),
        ({"base_url": "http://x", "model": "m", "price_in_per_mtok": -1}, "price_in_per_mtok must be a number >= 0"),
        ({"base_url": "http://x", "model": "m", "key": "sk-..."}, r"unknown key\(s\): key"),
    ],
)
def test_provider_settings_are_validated(entry, message):
    with pytest.raises(ValueError, match=message):
        providers_parse({"judge-default": entry})


# -- the network policy (vigilo_project/netpolicy.py) ------------------------------------------------------


def test_deny_all_refuses_the_model_call_without_a_request(settings, provider):
    settings.VIGILO_NETWORK_POLICY = "deny-all"
    broker = broker_for_binding(grant=GRANT, evaluator_digest=DIGEST, cache=False)
    with pytest.raises(ModelCallFailed) as failed:
        broker.complete(request=request_body(), deadline=time.monotonic() + 5)
    port = provider.origin.rsplit(":", 1)[1]
    assert str(failed.value) == (
        f"network policy refused 127.0.0.1:{port}: VIGILO_NETWORK_POLICY refuses every call (deny-all)"
    )
    assert provider.requests == []


def test_a_refused_model_call_is_the_judges_error_and_is_not_retried(host, judge, provider, settings):
    settings.VIGILO_NETWORK_POLICY = {"allow": ["api.openai.com:443"]}
    inv = judge_run(host, judge, cache=False)
    assert (inv.outcome, inv.error_code) == ("error", "evaluator_error")
    assert inv.error_message == (
        "model_call_failed: network policy refused 127.0.0.1 (loopback address): not allowed by VIGILO_NETWORK_POLICY"
    )
    assert provider.requests == [] and inv.model_usage == []


def test_a_list_naming_the_provider_admits_it(settings, provider):
    port = provider.origin.rsplit(":", 1)[1]
    settings.VIGILO_NETWORK_POLICY = {"allow": ["api.openai.com:443", f"127.0.0.1:{port}"]}
    broker = broker_for_binding(grant=GRANT, evaluator_digest=DIGEST, cache=False)
    assert broker.complete(request=request_body(), deadline=time.monotonic() + 5)["cached"] is False
    assert len(provider.requests) == 1


def test_by_default_model_calls_reach_the_configured_providers_but_never_metadata(settings, provider):
    settings.VIGILO_NETWORK_POLICY = "default"
    broker = broker_for_binding(grant=GRANT, evaluator_digest=DIGEST, cache=False)
    broker.complete(request=request_body(), deadline=time.monotonic() + 5)
    assert len(provider.requests) == 1

    entry = settings.VIGILO_MODEL_PROVIDERS["judge-default"]
    settings.VIGILO_MODEL_PROVIDERS = {"judge-default": {**entry, "base_url": "http://169.254.169.254/latest"}}
    metadata = broker_for_binding(grant=GRANT, evaluator_digest=DIGEST, cache=False)
    with pytest.raises(ModelCallFailed) as failed:
        metadata.complete(request=request_body(), deadline=time.monotonic() + 5)
    assert str(failed.value) == (
        "network policy refused 169.254.169.254 (cloud metadata address): cloud metadata addresses are refused "
        "unless an entry names them (VIGILO_NETWORK_POLICY=default)"
    )
    assert len(provider.requests) == 1
