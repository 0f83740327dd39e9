"""examples/agent-target end to end on the embedded default: the toy agent runs as its own process, vigilo_run
calls it as the run's target, and the gate passes as the example's README says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runs.models import EvaluatorResult, Run
from tests.support.cli import run_cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "agent-target"
pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def toy_agent():
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "agent.py"), "0"], stdout=subprocess.PIPE, text=True
    )  # port 0: the system picks a free one, and the ready line names it
    try:
        ready = proc.stdout.readline() if proc.stdout else ""
        assert ready.startswith("toy agent listening on "), ready
        yield ready.split()[-1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_example_passes_its_gate_with_every_output_from_the_agent(published, toy_agent, capsys):
    args = ["--dataset", str(EXAMPLE / "questions.jsonl"), "--profile", str(EXAMPLE / "profile.yaml")]
    code, out = run_cli(capsys, *args, "--target-url", toy_agent)

    assert code == 0, out
    assert "8 cases, 3 bindings, 18 evaluations" in out
    assert "8 expected, 8 passed, 0 failed, 0 error" in out
    assert f"agent (vigilo at {toy_agent}): 8 output(s) produced, 0 case(s) without output" in out
    run = Run.objects.get()
    amounts = EvaluatorResult.objects.filter(run=run, binding_id="refund-amount")
    assert sorted(amounts.values_list("execution__case_id", "judgment")) == [
        ("refund-1", "passed"),
        ("refund-2", "passed"),
    ]


def test_without_the_agent_every_case_is_an_agent_error_and_the_gate_fails(published, capsys):
    args = ["--dataset", str(EXAMPLE / "questions.jsonl"), "--profile", str(EXAMPLE / "profile.yaml")]
    code, out = run_cli(capsys, *args, "--target-url", "http://127.0.0.1:9/agent", "--target-option", "max_retries=0")

    assert code == 1, out
    assert "8 expected, 0 passed, 0 failed, 8 error" in out
    assert "0 output(s) produced, 8 case(s) without output (agent_error)" in out
