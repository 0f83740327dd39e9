"""vigilo_run / vigilo_status / vigilo_cancel on the embedded default, with their exit codes and reports."""

from __future__ import annotations

import io
import json
from xml.etree import ElementTree as ET

import pytest
from django.core.management import call_command

from runs.models import DatasetVersion, Profile, ProfileVersion, Run
from runs.reports import verdict_table
from tests.support.agent_server import AgentServer
from tests.support.cli import run_cli
from tests.support.profiles import exact_match_profile

PROFILE = exact_match_profile("cli", config="{case_sensitive: false}")


def write_dataset(path, answers):
    rows = [{"id": f"c{i}", "input": "q", "expected": "Yes", "output": {"text": a}} for i, a in enumerate(answers)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


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


@pytest.mark.parametrize("flag", ["--json", "--junit"])
def test_a_report_into_a_missing_folder_is_a_usage_error_before_the_run_starts(published, tmp_path, capsys, flag):
    """Exit 3 naming the folder, and no run: a report that cannot be written must not read as "gate failed"."""
    dataset = write_dataset(tmp_path / "d.jsonl", ["yes"])
    (tmp_path / "p.yaml").write_text(PROFILE)
    missing = tmp_path / "no-such-folder" / "report.out"
    code, out = run_cli(capsys, "--dataset", str(dataset), "--profile", str(tmp_path / "p.yaml"), flag, str(missing))
    assert code == 3, out
    assert f"{flag} {missing}: the folder {missing.parent} does not exist" in out
    assert Run.objects.count() == 0


def test_a_report_path_that_is_a_folder_is_a_usage_error(published, tmp_path, capsys):
    dataset = write_dataset(tmp_path / "d.jsonl", ["yes"])
    (tmp_path / "p.yaml").write_text(PROFILE)
    code, out = run_cli(
        capsys, "--dataset", str(dataset), "--profile", str(tmp_path / "p.yaml"), "--json", str(tmp_path)
    )
    assert code == 3, out
    assert "is a folder" in out
    assert Run.objects.count() == 0


# --- first impressions (issue 21) ---

RULELESS_PROFILE = """\
name: ruleless
dimensions:
  correctness: {weight: 1.0}
bindings:
  - id: answer
    evaluator: vigilo/exact-match@^1.0
    dimension: correctness
"""


def test_a_profile_without_a_pass_rule_exits_3_showing_the_lines_to_add_and_stores_nothing(published, tmp_path, capsys):
    dataset = write_dataset(tmp_path / "d.jsonl", ["yes", "no"])
    (tmp_path / "p.yaml").write_text(RULELESS_PROFILE)

    code, out = run_cli(capsys, "--dataset", str(dataset), "--profile", str(tmp_path / "p.yaml"))

    assert code == 3, out
    assert "profile is invalid:\n  min_execution_score: no pass rule: without one an execution passes" in out
    assert "Add `min_execution_score: 1.0` at the top" in out and "`blocking: true` on a binding or a dimension" in out
    assert "`min_execution_score: 0` keeps scores informational" in out
    assert not Profile.objects.exists() and not ProfileVersion.objects.exists()
    assert not DatasetVersion.objects.exists()  # imported with the profile, in one transaction
    assert not Run.objects.exists()


def test_reasons_name_cases_and_a_lenient_pass_is_warned_about(published, tmp_path, capsys):
    # `answer` must match, `mentions` wants an "e": "yeah" fails `answer` yet scores 0.5 and passes.
    profile = exact_match_profile(
        "lenient",
        config="{case_sensitive: false}",
        more_bindings="""\
  - id: mentions
    evaluator: vigilo/contains@^1.0
    dimension: correctness
    config: {value: "e"}
""",
    ).replace("min_execution_score: 1.0", "min_execution_score: 0.5")
    rows = [
        {"id": f"refund-{i}", "input": "q", "expected": "Yes", "output": {"text": answer}}
        for i, answer in ((17, "no"), (22, "nah"), (30, "yes"), (31, "yeah"))
    ]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "p.yaml").write_text(profile)

    code, out = run_cli(capsys, "--dataset", str(tmp_path / "d.jsonl"), "--profile", str(tmp_path / "p.yaml"))

    assert code == 1, out
    assert "  - [executions_failed] 2 of 4 executions failed (count 2; e.g. cases refund-17, refund-22)\n" in out
    assert (
        "\n  warnings:\n  - [passed_with_failed_bindings] 1 execution(s) passed although a binding failed "
        "(min_execution_score 0.5 lets them pass) (count 1; e.g. cases refund-31)\n"
    ) in out
    assert "e.g. executions" not in out
    assert "model usage" not in out  # no model was called
    verdict = Run.objects.get().verdict
    assert verdict["reasons"][0]["cases"] == ["refund-17", "refund-22"]
    assert verdict["warnings"][0]["cases"] == ["refund-31"]


def test_the_verdict_table_prints_no_e_g_without_examples_and_the_model_usage_when_a_model_was_called():
    run = Run(
        name="judged",
        state=Run.State.COMPLETED,
        gate=Run.Gate.FAIL,
        verdict={
            "gate": "fail",
            "reasons": [
                {"code": "chunks_failed", "message": "1 chunk(s) failed", "count": 1, "examples": [], "cases": []}
            ],
            "warnings": [],
            "model_usage": {
                "calls": 3,
                "cached_calls": 1,
                "input_tokens": 1500,
                "output_tokens": 120,
                "total_tokens": 1620,
                "cost_usd": 0.0125,
                "by_model": {},
            },
        },
    )
    out = io.StringIO()

    verdict_table(run=run, out=out)

    text = out.getvalue()
    assert "  - [chunks_failed] 1 chunk(s) failed (count 1)\n" in text
    assert "e.g." not in text and "warnings" not in text
    assert "\n  model usage: 3 call(s) (1 cached), 1,620 tokens (1,500 in, 120 out), cost $0.0125\n" in text


def test_baseline_prints_the_comparison_after_the_verdict_and_keeps_the_gates_exit_code(published, tmp_path, capsys):
    (tmp_path / "p.yaml").write_text(PROFILE)
    before = write_dataset(tmp_path / "before.jsonl", ["yes", "no", "maybe"])
    code, _ = run_cli(capsys, "--dataset", str(before), "--profile", str(tmp_path / "p.yaml"), "--dataset-name", "d")
    assert code == 1
    baseline = Run.objects.get()
    after = write_dataset(tmp_path / "after.jsonl", ["yes", "YES", "no"])

    code, out = run_cli(
        capsys, "--dataset", str(after), "--profile", str(tmp_path / "p.yaml"), "--baseline", str(baseline.id)
    )

    assert code == 1, out  # c2 still fails: the comparison does not change the gate's code
    table = out[out.index("gate FAIL") :]
    assert (
        f"  compared with baseline {baseline.id}: 1 of 3 cases changed status\n"
        "    failed->passed: 1\n"
        "    correctness        mean 0.667 (baseline 0.333, delta +0.333)\n"
        "    c1: failed -> passed\n"
    ) in table


@pytest.mark.parametrize(
    ("baseline", "message"),
    [
        ("run-42", "error: --baseline 'run-42': not a run id"),
        ("00000000-0000-4000-8000-000000000000", "error: --baseline 00000000-0000-4000-8000-000000000000: no such run"),
    ],
)
def test_an_unknown_baseline_is_a_usage_error_before_the_run_starts(published, tmp_path, capsys, baseline, message):
    dataset = write_dataset(tmp_path / "d.jsonl", ["yes"])
    (tmp_path / "p.yaml").write_text(PROFILE)
    code, out = run_cli(
        capsys, "--dataset", str(dataset), "--profile", str(tmp_path / "p.yaml"), "--baseline", baseline
    )
    assert code == 3, out
    assert message in out
    assert not Run.objects.exists() and not ProfileVersion.objects.exists()


def test_baseline_with_no_wait_is_a_usage_error(published, tmp_path, capsys):
    dataset = write_dataset(tmp_path / "d.jsonl", ["yes"])
    (tmp_path / "p.yaml").write_text(PROFILE)
    call_command("vigilo_run", "--dataset", str(dataset), "--profile", str(tmp_path / "p.yaml"), "--no-wait")
    baseline = Run.objects.get()
    args = [
        "--dataset",
        str(dataset),
        "--profile",
        str(tmp_path / "p.yaml"),
        "--no-wait",
        "--baseline",
        str(baseline.id),
    ]
    code, out = run_cli(capsys, *args)
    assert code == 3 and "error: --baseline compares the verdict, which --no-wait does not wait for" in out
    assert Run.objects.count() == 1


@pytest.mark.parametrize("outcome", [("yes", 0, "pass"), ("no", 1, "fail")], ids=["pass", "fail"])
def test_vigilo_status_exits_4_until_the_run_has_ended_then_with_the_gates_code(published, tmp_path, capsys, outcome):
    answer, code, gate = outcome
    dataset = write_dataset(tmp_path / "d.jsonl", [answer])
    (tmp_path / "p.yaml").write_text(PROFILE)
    call_command("vigilo_run", "--dataset", str(dataset), "--profile", str(tmp_path / "p.yaml"), "--no-wait")
    run = Run.objects.get()
    capsys.readouterr()

    with pytest.raises(SystemExit) as info:
        call_command("vigilo_status", str(run.id))  # embedded: nothing processes the run without --wait
    assert info.value.code == 4 and f"run {run.id}: state pending, gate pending" in capsys.readouterr().out

    with pytest.raises(SystemExit) as info:
        call_command("vigilo_status", str(run.id), "--wait")
    assert info.value.code == code and f"state completed, gate {gate.upper()}" in capsys.readouterr().out

    with pytest.raises(SystemExit) as info:
        call_command("vigilo_status", str(run.id))
    assert info.value.code == code and f"run {run.id}: state completed, gate {gate}" in capsys.readouterr().out


def test_vigilo_status_of_no_such_run_exits_3(db, capsys):
    with pytest.raises(SystemExit) as info:
        call_command("vigilo_status", "00000000-0000-4000-8000-000000000000")
    assert info.value.code == 3 and "no run '00000000-0000-4000-8000-000000000000'" in capsys.readouterr().err
