"""vigilo_run / vigilo_status / vigilo_cancel on the embedded default, with their exit codes and reports."""

from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import pytest
from django.core.management import call_command

from runs.models import Run

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
