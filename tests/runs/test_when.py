"""Bindings with `when`: evaluated only for the cases whose tags they name, required only there, and refused when
they would check nothing."""

from __future__ import annotations

import json

import pytest

from runs.engine import chunk_evaluate
from runs.errors import ValidationFailed
from runs.models import Chunk, EvaluatorResult, Execution, ExecutionAggregate, Run
from runs.selectors import run_progress
from runs.services import dataset_import, profile_import, run_create

pytestmark = pytest.mark.embedded  # the tag lookups run on SQLite too

PROFILE = """
name: when
min_execution_score: 1.0
dimensions:
  correctness: {weight: 1.0}
  refunds: {weight: 1.0}
bindings:
  - id: answer
    evaluator: vigilo/exact-match@^1.0
    dimension: correctness
    config: {field: text, expected_path: text}
  - id: amount
    evaluator: vigilo/numeric-tolerance@^1.0
    dimension: refunds
    config: {field: structured.amount, expected_path: amount, abs_tol: 0.01}
    when: {tags: [refund]}
run_gate:
  scorecard:
    - {binding: amount, min_pass_rate: 0.5}
    - {dimension: correctness, min_pass_rate: 1.0}
options: {chunk_size: 2}
"""

CASES = [
    {"id": "r1", "tags": ["refund"], "expected": {"text": "ok", "amount": 10}, "out": ("ok", 10.0)},
    {"id": "r2", "tags": ["refund", "vip"], "expected": {"text": "ok", "amount": 5}, "out": ("ok", 7.0)},
    {"id": "q1", "tags": ["question"], "expected": {"text": "ok"}, "out": ("ok", None)},
    {"id": "q2", "tags": [], "expected": {"text": "ok"}, "out": ("ok", None)},
    {"id": "q3", "tags": ["question"], "expected": {"text": "ok"}, "out": ("ok", None)},
]


def import_inputs(profile_text=PROFILE, cases=CASES):
    rows = [
        {
            "id": c["id"],
            "input": "x",
            "tags": c["tags"],
            "expected": c["expected"],
            "output": {"text": c["out"][0], "structured": {"amount": c["out"][1]}},
        }
        for c in cases
    ]
    dataset, _ = dataset_import(name="when", text="\n".join(json.dumps(r) for r in rows))
    profile, _ = profile_import(text=profile_text)
    return dataset, profile


def test_a_binding_with_when_evaluates_only_the_cases_with_its_tags(published):
    dataset, profile = import_inputs()
    run, _ = run_create(dataset_version=dataset, profile_version=profile)
    assert run.expected_results == 5 + 2

    for chunk in Chunk.objects.filter(run=run):
        chunk_evaluate(chunk_id=chunk.id)
    run = Run.objects.get(pk=run.id)

    results = sorted(EvaluatorResult.objects.filter(run=run).values_list("execution__case_id", "binding_id"))
    assert [r for r in results if r[1] == "amount"] == [("r1", "amount"), ("r2", "amount")]
    assert len(results) == run.expected_results
    assert run_progress(run=run)["results_written"] == run_progress(run=run)["results_expected"] == 7
    statuses = dict(ExecutionAggregate.objects.filter(run=run).values_list("execution__case_id", "status"))
    assert statuses == {"r1": "passed", "r2": "failed", "q1": "passed", "q2": "passed", "q3": "passed"}
    q1 = ExecutionAggregate.objects.get(run=run, execution__case_id="q1")
    assert q1.dimension_scores == {"correctness": 1.0} and set(q1.binding_scores) == {"answer"}
    assert run.verdict["bindings"]["amount"]["count"] == 2
    assert run.verdict["bindings"]["amount"]["pass_rate"] == 0.5
    assert [(row["gate"], row["matched"], row["holds"]) for row in run.verdict["scorecard"]] == [
        ("binding=amount", 2, True),
        ("dimension=correctness", 5, True),
    ]
    assert run.gate == Run.Gate.PASS


def test_a_when_that_matches_no_case_refuses_the_run_and_nothing_is_written(published):
    dataset, profile = import_inputs(PROFILE.replace("tags: [refund]", "tags: [refnud]"))
    with pytest.raises(ValidationFailed) as refused:
        run_create(dataset_version=dataset, profile_version=profile)
    assert refused.value.errors == [("profile binding 'amount'", "when.tags (refnud) matches no case of the dataset")]
    assert not Run.objects.exists() and not Execution.objects.exists()


def test_cases_no_binding_applies_to_refuse_the_run(published):
    only_refunds = PROFILE.replace(
        "    config: {field: text, expected_path: text}\n",
        "    config: {field: text, expected_path: text}\n    when: {tags: [refund, question]}\n",
    ).split("run_gate:")[0]
    dataset, profile = import_inputs(only_refunds)
    with pytest.raises(ValidationFailed) as refused:
        run_create(dataset_version=dataset, profile_version=profile)
    assert refused.value.errors == [
        (
            "dataset",
            "1 case(s) have no binding that applies to them ('q2'): give them a tag a binding's `when` names, "
            "or add a binding without `when`",
        )
    ]
    assert not Run.objects.exists()
