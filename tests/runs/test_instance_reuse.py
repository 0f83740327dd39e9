"""Instance reuse: opt-in per profile, only for evaluators published as pure, re-checked in fresh instances."""

from __future__ import annotations

import io
import json

import pytest

from evaluators.models import EvaluatorVersion
from evaluators.sandbox import Limits
from evaluators.services import PublishError, evaluator_version_publish
from gating.profile import ProfileError, profile_parse
from runs.engine import chunk_evaluate
from runs.models import EvaluatorResult, Run
from runs.reports import verdict_table
from runs.services import dataset_import, profile_import, run_create
from tests.support.profiles import exact_match_profile
from tests.support.wasm import load

BASE = exact_match_profile(
    "reuse",
    more_bindings="""\
  - id: mentions
    evaluator: vigilo/contains@^1.0
    dimension: correctness
    config: {value: "o"}
  - id: shape
    evaluator: vigilo/regex@^1.0
    dimension: correctness
    config: {value: "^h"}
""",
)


def cases(n: int) -> str:
    rows = [
        {"id": f"c{i}", "input": i, "expected": "hello", "output": {"text": "hello" if i % 4 else "bye"}}
        for i in range(n)
    ]
    return "\n".join(json.dumps(r) for r in rows)


def run_to_end(*, profile_text: str, dataset_text: str, name: str) -> Run:
    dataset, _ = dataset_import(name=name, text=dataset_text)
    profile, _ = profile_import(text=profile_text)
    run, _ = run_create(dataset_version=dataset, profile_version=profile, name=name)
    for chunk in run.chunks.order_by("index"):
        assert chunk_evaluate(chunk_id=chunk.id) == "completed"
    run.refresh_from_db()
    assert run.state == Run.State.COMPLETED
    return run


def results(run: Run) -> dict[tuple[str, str], tuple]:
    rows = EvaluatorResult.objects.filter(run=run).values_list(
        "execution__case_id", "binding_id", "outcome", "measurement", "score", "findings", "explanation"
    )
    return {(r[0], r[1]): r[2:] for r in rows}


def isolation_of(run: Run) -> list[str]:
    return list(EvaluatorResult.objects.filter(run=run).values_list("isolation", flat=True))


# -- the profile option -------------------------------------------------------------------------------------


def test_reuse_is_off_unless_the_profile_turns_it_on():
    doc = {
        "name": "p",
        "min_execution_score": 0,
        "dimensions": {"d": {}},
        "bindings": [{"id": "b", "evaluator": "a/b@1", "dimension": "d"}],
    }
    assert profile_parse(data=doc).instance_reuse is False
    doc["options"] = {"instance_reuse": True, "reuse_recheck_rate": 0.25}
    parsed = profile_parse(data=doc)
    assert (parsed.instance_reuse, parsed.reuse_recheck_rate) == (True, 0.25)


@pytest.mark.parametrize(
    ("options", "path", "message"),
    [
        ({"instance_reuse": "yes"}, "options.instance_reuse", "must be a boolean"),
        ({"reuse_recheck_rate": 1.5}, "options.reuse_recheck_rate", "must be between 0 and 1"),
        ({"reuse_recheck_rate": "all"}, "options.reuse_recheck_rate", "must be a number"),
        ({"reuse": True}, "options.reuse", "unknown key"),
    ],
)
def test_bad_reuse_options_are_named(options, path, message):
    doc = {
        "name": "p",
        "min_execution_score": 0,
        "dimensions": {"d": {}},
        "bindings": [{"id": "b", "evaluator": "a/b@1", "dimension": "d"}],
    }
    doc["options"] = options
    with pytest.raises(ProfileError) as info:
        profile_parse(data=doc)
    assert any(p == path and message in m for p, m in info.value.errors), info.value.errors


# -- declaring purity ---------------------------------------------------------------------------------------


def test_purity_is_declared_at_publish_and_is_part_of_the_immutable_version(db, hostile_wasm):
    row, _ = evaluator_version_publish(name="tests/hostile", version="1.0.0", wasm=hostile_wasm, pure=True)
    assert row.pure is True
    with pytest.raises(PublishError, match="already published as pure; versions are immutable"):
        evaluator_version_publish(name="tests/hostile", version="1.0.0", wasm=hostile_wasm, pure=False)
    assert EvaluatorVersion.objects.get(pk=row.pk).pure is True


def test_an_evaluator_with_the_model_capability_cannot_be_pure(db, probe_wasm):
    with pytest.raises(PublishError, match="cannot be declared pure: it imports the `model` capability"):
        evaluator_version_publish(name="tests/model-probe", version="1.0.0", wasm=probe_wasm, pure=True)
    assert not EvaluatorVersion.objects.exists()


def test_bundled_deterministic_evaluators_are_published_pure_and_the_judge_is_not(published):
    assert published["exact-match"].pure and published["regex"].pure and published["json-schema"].pure
    assert not published["llm-judge"].pure and not published["code-exec"].pure


# -- the sandbox --------------------------------------------------------------------------------------------


def test_a_reused_instance_gives_each_call_its_full_fuel(host, bundled_wasm):
    loaded = load(host, bundled_wasm["exact-match"])
    data = {"case": {"id": "c", "expected": "hi"}, "output": {"text": "hi"}, "config": {}}
    one = host.evaluate(loaded, data=data)
    assert one.outcome == "completed"
    # Enough fuel for about two calls: if fuel carried over, the third call would run out.
    limits = Limits(fuel=one.fuel_used * 2 + 1000)
    reused = host.reusable(loaded, limits=limits)
    outcomes = [reused.evaluate(data=data) for _ in range(10)]
    assert [i.outcome for i in outcomes] == ["completed"] * 10
    assert [i.measurement for i in outcomes] == [True] * 10
    assert (reused.instances, reused.calls) == (1, 10)


def test_state_survives_on_a_reused_instance_and_a_trap_starts_a_fresh_one(host, hostile_wasm):
    loaded = load(host, hostile_wasm)
    reused = host.reusable(loaded)
    state = {"case": {"id": "c"}, "output": {"text": "ok"}, "config": {"attack": "state"}}
    assert [reused.evaluate(data=state).explanation for _ in range(3)] == ["1", "2", "3"]
    trapped = reused.evaluate(data={**state, "config": {"attack": "trap"}})
    assert (trapped.outcome, trapped.error_code) == ("error", "trap")
    assert reused.evaluate(data=state).explanation == "1"  # a new instance after the trap
    assert reused.instances == 2


# -- runs ---------------------------------------------------------------------------------------------------


def test_reuse_gives_the_same_results_and_verdict_as_fresh_instances(published):
    fresh = run_to_end(profile_text=BASE, dataset_text=cases(12), name="fresh")
    reused = run_to_end(
        profile_text=BASE.replace("name: reuse", "name: reuse2")
        + "options: {chunk_size: 6, instance_reuse: true, reuse_recheck_rate: 0.5}\n",
        dataset_text=cases(12),
        name="reused",
    )
    assert results(reused) == results(fresh)
    assert reused.verdict["counts"] == fresh.verdict["counts"] and reused.gate == fresh.gate
    iso = reused.verdict["isolation"]
    # 2 chunks x 3 bindings: the first case of each is a fresh instance, the other 5 reuse it.
    assert (iso["fresh"], iso["reused"] + iso["rechecked"], iso["mismatch"]) == (6, 30, 0)
    assert iso["rechecked"] > 0 and iso["instance_reuse"] is True
    assert fresh.verdict["isolation"]["fresh"] == 36 and fresh.verdict["isolation"]["instance_reuse"] is False


def stateful_profile(name: str, recheck_rate: float) -> str:
    """One binding of the hostile guest's `state` attack: it counts its calls, so it is not pure."""
    return f"""
name: {name}
min_execution_score: 0
dimensions: {{main: {{weight: 1.0}}}}
bindings:
  - {{id: counter, evaluator: tests/hostile@1.0.0, dimension: main, config: {{attack: state}}}}
options: {{instance_reuse: true, reuse_recheck_rate: {recheck_rate}}}
"""


def test_without_a_purity_declaration_the_profile_option_changes_nothing(published, hostile_wasm):
    evaluator_version_publish(name="tests/hostile", version="1.0.0", wasm=hostile_wasm)  # not declared pure
    run = run_to_end(profile_text=stateful_profile("impure", 0.0), dataset_text=cases(5), name="impure")
    assert set(isolation_of(run)) == {"fresh"}
    assert {r[4] for r in results(run).values()} == {"1"}


def test_a_wrong_purity_declaration_is_caught_by_the_recheck_and_marks_the_run(published, hostile_wasm):
    evaluator_version_publish(name="tests/hostile", version="1.0.0", wasm=hostile_wasm, pure=True)  # it is not
    run = run_to_end(profile_text=stateful_profile("liar", 1.0), dataset_text=cases(6), name="liar")
    # Case 1 runs on a new instance; case 2 is re-checked, differs ("2" vs "1"), and the fresh "1" is kept;
    # the binding then goes back to fresh instances for the rest of the chunk.
    assert sorted(isolation_of(run)) == ["fresh"] * 5 + ["mismatch"]
    assert {r[4] for r in results(run).values()} == {"1"}
    assert run.verdict["isolation"]["mismatch"] == 1
    out = io.StringIO()
    verdict_table(run=run, out=out)
    assert "1 re-checked result(s) differed between a reused and a fresh instance" in out.getvalue()
