"""A run with an LLM judge: the broker is wired per binding grant, and usage and cost are summed on the run."""

from __future__ import annotations

import json

import pytest

from runs.engine import chunk_evaluate
from runs.models import EvaluatorResult
from runs.services import dataset_import, profile_import, run_create
from tests.support.openai_provider import OpenAIProvider, configure_providers
from tests.support.profiles import JUDGE_PROFILE


@pytest.fixture
def provider(settings, monkeypatch):
    server = OpenAIProvider(marker="PINEAPPLE")
    server.start()
    configure_providers(settings, monkeypatch, server)
    yield server
    server.stop()


def make_run(texts, options=None):
    rows = [{"id": f"c{i}", "input": "What is 2+2?", "output": {"text": t}} for i, t in enumerate(texts)]
    dataset, _ = dataset_import(name="judged", text="\n".join(json.dumps(r) for r in rows))
    profile, _ = profile_import(text=JUDGE_PROFILE)
    run, _ = run_create(dataset_version=dataset, profile_version=profile, options=options)
    return run


def test_judge_results_and_run_usage_come_from_the_provider(published, provider):
    run = make_run(["4 PINEAPPLE", "5", "4 PINEAPPLE"])
    for chunk in run.chunks.all():
        chunk_evaluate(chunk_id=chunk.id)
    run.refresh_from_db()
    assert run.verdict["counts"]["passed"] == 2 and run.verdict["counts"]["failed"] == 1
    usage = [u for r in EvaluatorResult.objects.filter(run=run) for u in r.model_usage]
    # Two distinct judge requests reach the provider; the repeated one is answered from the cache.
    assert len(usage) == 3 and len(provider.requests) == 2
    assert sorted(u["cached"] for u in usage) == [False, False, True]
    summary = run.verdict["model_usage"]
    assert summary["calls"] == 3
    assert summary["input_tokens"] == sum(u["input_tokens"] for u in usage)
    assert summary["output_tokens"] == sum(u["output_tokens"] for u in usage)
    paid = [u for u in usage if not u["cached"]]
    assert summary["cost_usd"] == pytest.approx(sum(u["cost_usd"] for u in paid))
    assert summary["cost_usd"] > 0


def test_identical_judge_calls_are_cached_unless_the_run_turns_the_cache_off(published, provider):
    run = make_run(["4 PINEAPPLE", "4 PINEAPPLE"])
    for chunk in run.chunks.all():
        chunk_evaluate(chunk_id=chunk.id)
    cached = sorted(u["cached"] for r in EvaluatorResult.objects.filter(run=run) for u in r.model_usage)
    asked = len(provider.requests)
    trial = make_run(["4 PINEAPPLE", "4 PINEAPPLE", "4 PINEAPPLE"], options={"model_cache": False})
    for chunk in trial.chunks.all():
        chunk_evaluate(chunk_id=chunk.id)
    assert cached == [False, True]
    assert len(provider.requests) == asked + 3


def test_a_deterministic_answer_is_shared_with_other_processes_until_it_expires(published, provider, settings):
    from datetime import timedelta

    from django.utils import timezone

    from evaluators.model_broker import response_cache
    from evaluators.models import ModelResponse
    from runs.reaper import periodic_reap

    def judged(texts):
        run = make_run(texts)
        for chunk in run.chunks.all():
            chunk_evaluate(chunk_id=chunk.id)
        return sorted(u["cached"] for r in EvaluatorResult.objects.filter(run=run) for u in r.model_usage)

    assert judged(["4 PINEAPPLE", "5"]) == [False, False]
    assert len(provider.requests) == 2 and ModelResponse.objects.count() == 2

    response_cache().clear()  # another worker process: nothing in its memory, the database is shared
    assert judged(["4 PINEAPPLE", "5"]) == [True, True]
    assert len(provider.requests) == 2

    ModelResponse.objects.update(created_at=timezone.now() - timedelta(seconds=settings.VIGILO_MODEL_CACHE_TTL_S + 1))
    response_cache().clear()
    assert judged(["4 PINEAPPLE"]) == [False]  # expired: asked again, and stored afresh
    assert len(provider.requests) == 3
    assert periodic_reap()["model_responses_expired"] == 1  # the "5" answer; the fresh one stays
    assert ModelResponse.objects.count() == 1


def test_a_ttl_of_0_shares_nothing(published, provider, settings):
    from evaluators.model_broker import response_cache
    from evaluators.models import ModelResponse

    settings.VIGILO_MODEL_CACHE_TTL_S = 0
    for _ in range(2):
        response_cache().clear()
        run = make_run(["4 PINEAPPLE"])
        for chunk in run.chunks.all():
            chunk_evaluate(chunk_id=chunk.id)
    assert len(provider.requests) == 2 and not ModelResponse.objects.exists()


def test_an_unusable_shared_cache_never_fails_an_evaluation(published, provider, caplog):
    from django.db import connection

    from evaluators.model_broker import response_cache

    with connection.cursor() as cursor:  # undone with the test's transaction
        cursor.execute("ALTER TABLE evaluators_modelresponse RENAME TO evaluators_modelresponse_gone")
    response_cache().clear()
    run = make_run(["4 PINEAPPLE", "5"])
    for chunk in run.chunks.all():
        chunk_evaluate(chunk_id=chunk.id)
    run.refresh_from_db()

    assert run.verdict["counts"]["passed"] == 1 and run.verdict["counts"]["failed"] == 1
    assert len(provider.requests) == 2
    assert "shared model response cache unavailable, asking the provider" in caplog.text
    assert "shared model response cache unavailable, answer not shared" in caplog.text
