"""A run target with real worker processes: a worker killed while it asks the agent loses no recorded answer,
asks again only what was in flight, and the results are written exactly once."""

from __future__ import annotations

import json
import signal

import pytest

from runs.models import Chunk, Execution, Run
from runs.services import dataset_import, profile_import, run_create
from tests.support.agent_server import AgentServer
from tests.support.distributed import assert_exactly_once, wait_terminal
from tests.support.profiles import exact_match_profile

pytestmark = [pytest.mark.distributed, pytest.mark.django_db(transaction=True)]
CASES = 60


@pytest.fixture
def agent():
    server = AgentServer(answers={f"q{i}": f"a{i}" for i in range(CASES) if i % 10})  # it gets every 10th wrong
    server.delay_s = 0.2
    server.start()
    yield server
    server.stop()


def _answered(run_id) -> set[str]:
    return set(Execution.objects.filter(run_id=run_id, agent_call__status="ok").values_list("case_id", flat=True))


def _collecting(run_id) -> int | None:
    """A leased chunk of the run that has some, not all, of its answers."""
    for chunk in Chunk.objects.filter(run_id=run_id, state=Chunk.State.LEASED):
        done = Execution.objects.filter(chunk=chunk, agent_call__status="ok").count()
        if 0 < done < chunk.executions.count():
            return chunk.id
    return None


def test_a_worker_killed_while_asking_the_agent_loses_no_answer(cluster, agent):
    rows = [{"id": f"c{i}", "input": f"q{i}", "expected": f"a{i}"} for i in range(CASES)]
    dataset, _ = dataset_import(name="distributed-target", text="\n".join(json.dumps(r) for r in rows))
    profile, _ = profile_import(text=exact_match_profile("distributed-target"))
    target = {"url": agent.url, "concurrency": 2}
    run, _ = run_create(dataset_version=dataset, profile_version=profile, options={"chunk_size": 20, "target": target})
    doomed = cluster.worker("doomed")
    cluster.beat()
    chunk_id = cluster.wait_for(lambda: _collecting(run.id), timeout_s=60, what="a chunk asking the agent")

    doomed.signal_group(signal.SIGKILL)
    doomed.popen.wait(timeout=10)
    kept = _answered(run.id)
    cluster.worker("survivor")
    run = wait_terminal(cluster, run.id, timeout_s=120)

    assert run.state == Run.State.COMPLETED, cluster.logs()
    assert Chunk.objects.get(pk=chunk_id).recovery_count == 1
    assert_exactly_once(run)
    asked = agent.asked()
    assert set(asked) == {f"c{i}" for i in range(CASES)}
    assert all(asked[case_id] == 1 for case_id in kept)  # recorded answers are never asked for again
    assert max(asked.values()) <= 2  # only a call in flight at the kill is made twice
    assert run.verdict["agent"] == {"url": agent.url, "protocol": "vigilo", "outputs": CASES, "failed": 0}
    assert (run.verdict["counts"]["passed"], run.verdict["counts"]["failed"]) == (54, 6)
