"""A Celery worker that evaluated trapping cases exits 0 on a warm shutdown: never 134 (SIGABRT).

Wasmtime delivers a guest's output on its own threads, and a callback of a trapped invocation still pending at
interpreter exit made libwasmtime abort the process (evaluators/sandbox/guest_output.py). With the threads
pool the worker's main process is the one that ran the guests, and exits through interpreter shutdown; with
prefork (the default) a pool process did.
"""

from __future__ import annotations

import json
import signal
import uuid

import pytest

from evaluators.services import evaluator_version_publish
from runs.models import Chunk, EvaluatorResult, Run
from runs.services import dataset_import, profile_import, run_create
from tests.support.distributed import CELERY, QUEUES, Cluster, Proc

pytestmark = [pytest.mark.distributed, pytest.mark.django_db(transaction=True)]

ABORT = "panic in a function that cannot unwind"
PROFILE = """
name: worker-traps-{pool}
min_execution_score: 1.0
dimensions:
  safety: {{weight: 1.0}}
bindings:
  - {{id: value-error, evaluator: tests/hostile@^1.0, dimension: safety, config: {{attack: value_error}}}}
  - {{id: open-file, evaluator: tests/hostile@^1.0, dimension: safety, config: {{attack: file}}}}
  - {{id: memory-error, evaluator: tests/hostile@^1.0, dimension: safety, config: {{attack: memory_error}}}}
"""


def worker(cluster: Cluster, pool: str) -> Proc:
    """A worker with `pool` (Cluster.worker starts the default prefork pool), stopped with the cluster."""
    argv = [CELERY, "-A", "vigilo_project", "worker", "-Q", ",".join(QUEUES), "-n", f"traps-{uuid.uuid4().hex[:6]}@%h"]
    argv += ["--pool", pool, "--concurrency", "1", "-l", "info", "--without-gossip", "--without-mingle"]
    env = {**cluster.env, "VIGILO_SHUTDOWN_GRACE_S": "60"}  # the chunk in hand completes before the worker exits
    proc = Proc(f"traps-{pool}", argv, env, cluster.workdir / f"traps-{pool}.log")
    cluster.procs.append(proc)
    cluster.wait_for(lambda: " ready." in proc.text(), timeout_s=60, what=f"worker traps-{pool} ready")
    return proc


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_a_worker_that_ran_trapping_cases_exits_0_on_a_warm_shutdown(cluster, hostile_wasm, pool):
    evaluator_version_publish(name="tests/hostile", version="1.0.0", wasm=hostile_wasm)
    cases = [{"id": f"c{i}", "input": "q", "expected": None, "output": {"text": "ok"}} for i in range(30)]
    dataset, _ = dataset_import(name=f"worker-traps-{pool}", text="".join(json.dumps(c) + "\n" for c in cases))
    profile, _ = profile_import(text=PROFILE.format(pool=pool))
    run, _ = run_create(dataset_version=dataset, profile_version=profile, name=pool, options={"chunk_size": 30})
    leaving = worker(cluster, pool)
    cluster.beat()
    cluster.wait_for(
        lambda: Chunk.objects.filter(run=run, state=Chunk.State.LEASED).exists(), timeout_s=60, what="the chunk"
    )

    leaving.popen.send_signal(signal.SIGTERM)  # a warm shutdown: the chunk in hand completes first
    cluster.wait_for(lambda: not leaving.alive(), timeout_s=90, what="the worker to exit")

    log = leaving.text()
    assert leaving.popen.returncode == 0, log[-4000:]
    assert ABORT not in log and "SIGABRT" not in log and "signal 6" not in log
    run.refresh_from_db()
    assert run.state == Run.State.COMPLETED, log[-4000:]
    codes = set(EvaluatorResult.objects.filter(run=run).values_list("binding_id", "error_code"))
    assert codes == {("value-error", "trap"), ("open-file", "trap"), ("memory-error", "memory_limit")}
