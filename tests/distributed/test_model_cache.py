"""The model response cache between real worker processes: a judge's deterministic answers, once asked, are
served to workers started afterwards (empty memory) from the shared table, without asking the provider again."""

from __future__ import annotations

import json

import pytest

from evaluators.models import ModelResponse
from runs.models import EvaluatorResult, Run
from runs.services import dataset_import, profile_import, run_create
from tests.support.distributed import assert_exactly_once, wait_terminal
from tests.support.openai_provider import OpenAIProvider
from tests.support.profiles import JUDGE_PROFILE

pytestmark = [pytest.mark.distributed, pytest.mark.django_db(transaction=True)]
CASES = 40


@pytest.fixture
def provider():
    server = OpenAIProvider(marker="PINEAPPLE")
    server.start()
    yield server
    server.stop()


def test_answers_outlive_the_workers_that_asked_for_them(cluster, provider):
    env = {
        "VIGILO_MODEL_PROVIDERS": json.dumps({"judge-default": {"base_url": provider.base_url, "model": "gpt-test"}})
    }
    rows = [
        {"id": f"c{i}", "input": "What is 2+2?", "output": {"text": f"answer {i % 10} PINEAPPLE" if i % 4 else "5"}}
        for i in range(CASES)
    ]
    dataset, _ = dataset_import(name="shared-cache", text="\n".join(json.dumps(r) for r in rows))
    profile, _ = profile_import(text=JUDGE_PROFILE)

    def judged_run(tag):
        workers = [cluster.worker(f"{tag}-1", env=env), cluster.worker(f"{tag}-2", env=env)]
        run, _ = run_create(dataset_version=dataset, profile_version=profile, name=tag, options={"chunk_size": 5})
        run = wait_terminal(cluster, run.id, timeout_s=120)
        for worker in workers:
            worker.stop()
        assert run.state == Run.State.COMPLETED, cluster.logs()
        assert_exactly_once(run)
        return run

    cluster.beat(env=env)
    first = judged_run("first")
    asked = len(provider.requests)
    distinct = len({json.dumps(r["body"], sort_keys=True) for r in provider.requests})
    second = judged_run("second")  # new processes: nothing in memory

    assert distinct == ModelResponse.objects.count() == 11  # ten PINEAPPLE answers and "5"
    assert asked >= distinct  # two workers may ask the same question at the same moment, before either stored it
    assert len(provider.requests) == asked  # the second run asked nothing
    usage = [u for r in EvaluatorResult.objects.filter(run=second) for u in r.model_usage]
    assert len(usage) == CASES and all(u["cached"] for u in usage)
    assert second.verdict["counts"] == first.verdict["counts"]
    assert second.verdict["model_usage"]["cost_usd"] == 0
