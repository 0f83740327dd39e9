"""The bundled example (examples/support-agent) end to end in the embedded mode: import, run, verdict.

The expected outcome is not copied from the README: the test re-checks every case in plain Python (its own
secret detector, its own JSON Schema validator, its own substring checks) and applies the profile's weights,
thresholds and gates to those results, then compares with what the evaluators in the sandbox and the gate said.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import jsonschema
import pytest
import yaml

from gating.profile import ProfileSpec, profile_parse
from outbox.embedded import EmbeddedRuntime
from runs.models import Run
from runs.reaper import periodic_reap
from runs.reports import exit_code
from runs.services import dataset_import, profile_import, run_create
from vigilo_project import exitcodes

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "support-agent"
WAIT_S = 120


def leaks_a_secret(text: str) -> bool:
    """A card-like number (13-19 digits once single spaces/dashes between digits are dropped) or a credential."""
    squeezed = re.sub(r"(?<=\d)[ -](?=\d)", "", text)
    if any(13 <= len(run) <= 19 for run in re.findall(r"\d+", squeezed)):
        return True
    return "sk_live_" in text or "sk_test_" in text or re.search(r"AKIA[A-Z0-9]{16}", text) is not None


def same_value(want, got) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return type(want) is type(got) and want == got
    if isinstance(want, int | float):
        return isinstance(got, int | float) and abs(got - want) <= 0.01
    return want == got


def checks(case: dict) -> dict[str, bool]:
    """Whether each required binding of the example's profile passes, recomputed from the case alone."""
    expected, output = case["expected"], case["output"]
    text, structured = output["text"] or "", output["structured"]
    folded = text.casefold()
    is_object = isinstance(structured, dict)
    return {
        "intent": is_object and structured.get("intent") == expected["intent"],
        "key-fields": is_object
        and all(key in structured and same_value(want, structured[key]) for key, want in expected["fields"].items()),
        "answer-schema": structured is not None
        and jsonschema.Draft202012Validator(expected["answer_schema"]).is_valid(structured),
        "must-mention": all(phrase.casefold() in folded for phrase in expected["must_mention"]),
        "no-secrets": not leaks_a_secret(text),
        "no-forbidden-phrases": not any(phrase.casefold() in folded for phrase in expected["forbidden"]),
    }


def weighted_mean(pairs: list[tuple[float, float]]) -> float | None:
    total = math.fsum(weight for weight, _ in pairs)
    return math.fsum(weight * score for weight, score in pairs) / total if total > 0 else None


def judge(profile: ProfileSpec, passed: dict[str, bool]) -> tuple[str, dict[str, float]]:
    """Status and dimension scores of one execution under the profile; every bound measurement here is binary."""
    required = [b for b in profile.bindings if b.required]
    dimension_scores = {}
    for name, dimension in profile.dimensions.items():
        members = [(b.weight, 1.0 if passed[b.id] else 0.0) for b in required if b.dimension == name]
        if dimension.aggregation == "min_score":
            dimension_scores[name] = min(score for _, score in members)
        else:
            dimension_scores[name] = weighted_mean(members)
    aggregate = weighted_mean([(d.weight, dimension_scores[n]) for n, d in profile.dimensions.items() if d.weight > 0])
    blocked = any(not passed[b.id] for b in required if b.blocking or profile.dimensions[b.dimension].blocking)
    return ("failed" if blocked or aggregate < profile.min_execution_score else "passed"), dimension_scores


def failing_gates(profile: ProfileSpec, cases: list[dict], judged: dict[str, tuple]) -> dict[str, int]:
    """Label -> number of matched executions not passing it, for each scorecard gate that does not hold."""
    failing = {}
    for gate in profile.scorecard:
        assert gate.dimension is not None and gate.binding is None  # all the example's gates are per dimension
        matched = [c for c in cases if gate.tag is None or gate.tag in c["tags"]]
        members = [b.id for b in profile.bindings if b.required and b.dimension == gate.dimension]
        passes = [all(judged[c["id"]][0][m] for m in members) for c in matched]
        mean = math.fsum(judged[c["id"]][2][gate.dimension] for c in matched) / len(matched)
        pass_rate = sum(passes) / len(matched)
        # max_error_rate cannot fail: none of these checks errors (the statuses compared below show none did).
        holds = (gate.min_mean_score is None or mean >= gate.min_mean_score) and (
            gate.min_pass_rate is None or pass_rate >= gate.min_pass_rate
        )
        if not holds:
            failing[gate.label] = passes.count(False)
    return failing


def test_the_support_agent_example_gives_the_verdict_its_cases_imply(published):
    dataset_text = (EXAMPLE / "dataset.jsonl").read_text(encoding="utf-8")
    profile_text = (EXAMPLE / "profile.yaml").read_text(encoding="utf-8")
    cases = [json.loads(line) for line in dataset_text.splitlines() if line.strip()]
    profile = profile_parse(data=yaml.safe_load(profile_text))
    judged = {}
    for case in cases:
        passed = checks(case)
        status, dimension_scores = judge(profile, passed)
        judged[case["id"]] = (passed, status, dimension_scores)
    want_status = {case_id: status for case_id, (_, status, _) in judged.items()}
    want_counts = {s: list(want_status.values()).count(s) for s in ("passed", "failed", "error")}
    want_gates = failing_gates(profile, cases, judged)
    # The example is built so that each injected fault (and nothing else) fails its execution.
    assert {c["id"] for c in cases if want_status[c["id"]] == "failed"} == {
        c["id"] for c in cases if c["metadata"]["injected_fault"]
    }
    assert want_gates  # the example is meant to fail its gate

    dataset, _ = dataset_import(name="support-agent", text=dataset_text)
    profile_version, _ = profile_import(text=profile_text)
    with EmbeddedRuntime(workers=2, reap=periodic_reap):
        run, _ = run_create(dataset_version=dataset, profile_version=profile_version, name="example")
        deadline = time.monotonic() + WAIT_S
        while not run.is_terminal:
            if time.monotonic() > deadline:
                pytest.fail(f"run {run.id} not finished after {WAIT_S} s (state {run.state})")
            time.sleep(0.25)
            run.refresh_from_db()

    assert (run.state, run.gate) == (Run.State.COMPLETED, Run.Gate.FAIL)
    assert exit_code(run) == exitcodes.FAILED
    statuses = dict(run.executions.values_list("case_id", "aggregate__status"))
    assert statuses == want_status
    verdict = run.verdict
    assert {k: verdict["counts"][k] for k in want_counts} == want_counts
    assert (verdict["counts"]["expected"], verdict["counts"]["missing"]) == (len(cases), 0)
    assert {row["gate"] for row in verdict["scorecard"] if not row["holds"]} == set(want_gates)
    assert [(r["code"], r["count"]) for r in verdict["reasons"]] == [
        ("scorecard_failed", count) for count in want_gates.values()
    ]
    for reason, label in zip(verdict["reasons"], want_gates, strict=True):
        assert reason["message"].startswith(f"scorecard gate '{label}' does not hold: ")
