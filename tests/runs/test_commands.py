"""vigilo_run / vigilo_status / vigilo_cancel on the embedded default, with their exit codes and reports."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import pytest
from django.core.management import call_command

from runs.models import Run
from tests.support.agent_server import AgentServer

PROFILE = """
name: cli
min_execution_score: 1.0
dimensions:
  correctness: {weight: 1.0}
bindings:
  - id: answer
    evaluator: vigilo/exact-match@^1.0
    dimension: correctness
    config: {case_sensitive: false}
"""


def write_dataset(path, answers):
    rows = [{"id": f"c{i}", "input": "q", "expected": "Yes", "output": {"text": a}} for i, a in enumerate(answers)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def run_cli(capsys, *args) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        call_command("vigilo_run", *args)
    captured = capsys.readouterr()
    return info.value.code, captured.out + captured.err


pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


def test_a_passing_run_exits_0_and_writes_both_reports(published, tmp_path, capsys):
    dataset = write_dataset(tmp_path / "d.jsonl", ["yes", "YES", "Yes"])
    (tmp_path / "p.yaml").write_text(PROFILE)
    code, out = run_cli(
        capsys,
        "--dataset",
        str(dataset),
        "--profile",
        str(tmp_path / "p.yaml"),
        "--json",
        str(tmp_path / "r.json"),
        "--junit",
        str(tmp_path / "r.xml"),
    )
    assert code == 0, out
    assert "gate PASS" in out and "3 expected, 3 passed, 0 failed, 0 error" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["verdict"]["gate"] == "pass"
    assert [e["case_id"] for e in report["executions"]] == ["c0", "c1", "c2"]
    assert report["executions"][0]["results"][0]["binding"] == "answer"
    suite = ET.parse(tmp_path / "r.xml").getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "0", "0")


def test_a_failing_gate_exits_1_and_explains_why(published, tmp_path, capsys):
    dataset = write_dataset(tmp_path / "d.jsonl", ["yes", "no", "maybe"])
    (tmp_path / "p.yaml").write_text(PROFILE)
    code, out = run_cli(
        capsys, "--dataset", str(dataset), "--profile", str(tmp_path / "p.yaml"), "--junit", str(tmp_path / "r.xml")
    )
    assert code == 1, out
    assert "gate FAIL" in out and "[executions_failed] 2 of 3 executions failed" in out
    failures = [tc.get("name") for tc in ET.parse(tmp_path / "r.xml").getroot() if tc.find("failure") is not None]
    assert failures == ["c1", "c2"]
    run = Run.objects.get()
    assert (run.state, run.gate) == ("completed", "fail")

    with pytest.raises(SystemExit) as info:
        call_command("vigilo_status", str(run.id))
    assert info.value.code == 1 and "state completed, gate fail" in capsys.readouterr().out


def test_a_malformed_dataset_exits_3_naming_the_line_and_creates_nothing(published, tmp_path, capsys):
    (tmp_path / "d.jsonl").write_text('{"id": "a", "input": 1, "output": {"text": "x"}}\n{"id": "b", "input": \n')
    (tmp_path / "p.yaml").write_text(PROFILE)
    code, out = run_cli(capsys, "--dataset", str(tmp_path / "d.jsonl"), "--profile", str(tmp_path / "p.yaml"))
    assert code == 3
    assert "line 2: not valid JSON" in out
    assert Run.objects.count() == 0


def test_a_missing_file_or_bad_profile_exits_3(published, tmp_path, capsys):
    code, out = run_cli(capsys, "--dataset", str(tmp_path / "none.jsonl"), "--profile", str(tmp_path / "p.yaml"))
    assert code == 3 and "no such file" in out
    dataset = write_dataset(tmp_path / "d.jsonl", ["yes"])
    (tmp_path / "p.yaml").write_text(PROFILE.replace("exact-match@^1.0", "exact-match@^9.0"))
    code, out = run_cli(capsys, "--dataset", str(dataset), "--profile", str(tmp_path / "p.yaml"))
    assert code == 3 and "bindings[0] (answer).evaluator: no active version of vigilo/exact-match" in out


def test_no_wait_then_cancel_gives_exit_2(published, tmp_path, capsys):
    dataset = write_dataset(tmp_path / "d.jsonl", ["yes"])
    (tmp_path / "p.yaml").write_text(PROFILE)
    call_command("vigilo_run", "--dataset", str(dataset), "--profile", str(tmp_path / "p.yaml"), "--no-wait")
    run = Run.objects.get()
    call_command("vigilo_cancel", str(run.id))
    with pytest.raises(SystemExit) as info:
        call_command("vigilo_status", str(run.id))
    assert info.value.code == 2
    assert "state cancelled" in capsys.readouterr().out


def test_a_target_answers_cases_without_output_in_the_embedded_mode(published, tmp_path, capsys):
    rows = [{"id": f"c{i}", "input": q, "expected": "Yes"} for i, q in enumerate(["ok?", "sure?", "really?"])]
    dataset = tmp_path / "d.jsonl"
    dataset.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "p.yaml").write_text(PROFILE)
    agent = AgentServer(answers={"ok?": "yes", "sure?": "YES"})
    agent.start()
    try:
        args = ["--dataset", str(dataset), "--profile", str(tmp_path / "p.yaml"), "--target-url", agent.url]
        code, out = run_cli(capsys, *args, "--target-option", "concurrency=2", "--json", str(tmp_path / "r.json"))
    finally:
        agent.stop()
    assert code == 1, out
    assert "3 expected, 2 passed, 1 failed, 0 error" in out
    assert f"agent (vigilo at {agent.url}): 3 output(s) produced, 0 case(s) without output" in out
    assert agent.asked() == {"c0": 1, "c1": 1, "c2": 1}
    report = {e["case_id"]: e for e in json.loads((tmp_path / "r.json").read_text())["executions"]}
    assert report["c2"]["output"]["text"] == "I don't know" and report["c2"]["agent_call"]["status"] == "ok"
    assert Run.objects.get().options["target"]["concurrency"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target-option", "concurrency=2"], "error: --target-option needs --target-url"),
        (["--target-url", "http://127.0.0.1:9/a", "--target-option", "fast"], "expected KEY=VALUE"),
        (["--target-url", "ftp://agent/"], "target.url: required: an http(s) URL"),
        (["--target-url", "http://127.0.0.1:9/a", "--target-option", "concurrency=0"], "target.concurrency"),
    ],
)
def test_a_bad_target_is_a_usage_error_and_no_run_is_made(published, tmp_path, capsys, args, message):
    dataset = write_dataset(tmp_path / "d.jsonl", ["yes"])
    (tmp_path / "p.yaml").write_text(PROFILE)
    code, out = run_cli(capsys, "--dataset", str(dataset), "--profile", str(tmp_path / "p.yaml"), *args)
    assert code == 3 and message in out
    assert not Run.objects.exists()
