"""The CI client end to end: a real server process, real uploads, real runs, every exit code."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from runs.models import Run
from tests.support.agent_server import AgentServer
from tests.support.profiles import exact_match_profile

CLIENT = Path(__file__).resolve().parents[2] / "client" / "vigilo_gate.py"
live = pytest.mark.django_db(transaction=True)


def gate(*args: str, timeout: float = 240, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CLIENT), *args], check=False, capture_output=True, text=True, timeout=timeout, env=env
    )


def api(url: str, token: str, method: str, path: str) -> dict:
    req = urllib.request.Request(f"{url}{path}", method=method, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


@live
def test_exit_0_when_the_gate_passes_with_reports(live_server_url, token, bench_cases, profiles, tmp_path):
    junit, report = tmp_path / "junit.xml", tmp_path / "report.json"

    result = gate(
        "--url",
        live_server_url,
        "--token",
        token,
        "--dataset",
        str(bench_cases[20]),
        "--profile",
        str(profiles["passing"]),
        "--name",
        "pass",
        "--wait",
        "--junit",
        str(junit),
        "--json",
        str(report),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "gate PASS" in result.stdout
    assert "progress: 60/60 results (100%)" in result.stdout  # plain lines: stdout is not a TTY
    assert "scorecard ok" in result.stdout
    run = Run.objects.get()
    assert (run.state, run.gate) == ("completed", "pass")
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == "20"
    assert len(suite.findall("testcase")) == 20
    assert len(suite.findall("testcase/failure")) == 2  # round(20 * 10%) cases fail one check
    data = json.loads(report.read_text())
    assert data["run"]["id"] == str(run.id)
    assert data["verdict"]["gate"] == "pass"
    assert len(data["executions"]) == 20


@live
def test_exit_1_when_the_gate_fails_and_a_retried_step_reuses_the_run(live_server_url, token, bench_cases, profiles):
    args = [
        "--url",
        live_server_url,
        "--token",
        token,
        "--dataset",
        str(bench_cases[20]),
        "--profile",
        str(profiles["failing"]),
        "--wait",
    ]
    env = {**__import__("os").environ, "GITHUB_RUN_ID": "4242"}

    first = gate(*args, env=env)
    again = gate(*args, env=env)

    assert first.returncode == 1, first.stdout + first.stderr
    assert "gate FAIL" in first.stdout
    assert "[executions_failed] 2 of 20 executions failed (count 2; e.g. cases " in first.stdout
    assert "e.g. executions" not in first.stdout
    assert again.returncode == 1
    assert "created before" in again.stdout
    assert Run.objects.count() == 1


@live
def test_exit_1_with_a_baseline_comparison(live_server_url, token, bench_cases, profiles):
    base = gate(
        "--url",
        live_server_url,
        "--token",
        token,
        "--dataset",
        str(bench_cases[20]),
        "--profile",
        str(profiles["failing"]),
        "--name",
        "base",
        "--wait",
    )
    baseline = Run.objects.get().id

    result = gate(
        "--url",
        live_server_url,
        "--token",
        token,
        "--dataset",
        str(bench_cases[20]),
        "--profile",
        str(profiles["failing"]),
        "--name",
        "next",
        "--baseline",
        str(baseline),
    )

    assert base.returncode == 1
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"compared with baseline {baseline}: 0 of 20 cases changed status" in result.stdout
    assert "delta +0.000" in result.stdout


@live
def test_exit_2_when_the_run_is_cancelled_while_waiting(live_server_url, token, bench_cases, profiles):
    proc = subprocess.Popen(
        [
            sys.executable,
            str(CLIENT),
            "--url",
            live_server_url,
            "--token",
            token,
            "--dataset",
            str(bench_cases[3000]),
            "--profile",
            str(profiles["failing"]),
            "--wait",
            "--poll",
            "0.2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (runs := api(live_server_url, token, "GET", "/api/v1/runs/")["results"]):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        cancelled = api(live_server_url, token, "POST", f"/api/v1/runs/{runs[0]['id']}/cancel/")
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()

    assert cancelled["state"] == "cancelled"
    assert proc.returncode == 2, out + err
    assert "state cancelled, gate FAIL" in out
    assert "cancelled through the API" in out


@live
def test_exit_3_for_a_bad_token_a_bad_url_or_a_malformed_file(live_server_url, token, bench_cases, profiles, tmp_path):
    bad_token = gate(
        "--url",
        live_server_url,
        "--token",
        "vgt_wrong",
        "--dataset",
        str(bench_cases[20]),
        "--profile",
        str(profiles["passing"]),
    )
    bad_url = gate(
        "--url",
        "http://127.0.0.1:1",
        "--token",
        token,
        "--dataset",
        str(bench_cases[20]),
        "--profile",
        str(profiles["passing"]),
        timeout=120,
    )
    not_a_url = gate(
        "--url",
        "vigilo.example",
        "--token",
        token,
        "--dataset",
        str(bench_cases[20]),
        "--profile",
        str(profiles["passing"]),
    )
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "a", "input": 1, "output": {"text": "x"}}\n{not json\n')
    malformed = gate(
        "--url", live_server_url, "--token", token, "--dataset", str(broken), "--profile", str(profiles["passing"])
    )
    missing = gate(
        "--url",
        live_server_url,
        "--token",
        token,
        "--dataset",
        str(tmp_path / "nope.jsonl"),
        "--profile",
        str(profiles["passing"]),
    )
    no_args = gate("--url", live_server_url)

    assert bad_token.returncode == 3
    assert "HTTP 401 authentication_failed" in bad_token.stderr
    assert bad_url.returncode == 3
    assert "cannot reach http://127.0.0.1:1" in bad_url.stderr
    assert not_a_url.returncode == 3
    assert malformed.returncode == 3
    assert "line 2: not valid JSON" in malformed.stderr
    assert missing.returncode == 3
    assert "nope.jsonl" in missing.stderr
    assert no_args.returncode == 3
    assert not Run.objects.exists()


@live
def test_exit_4_when_waiting_times_out(live_server_url, token, bench_cases, profiles):
    result = gate(
        "--url",
        live_server_url,
        "--token",
        token,
        "--dataset",
        str(bench_cases[3000]),
        "--profile",
        str(profiles["failing"]),
        "--wait",
        "--timeout",
        "0.1",
    )

    assert result.returncode == 4, result.stdout + result.stderr
    assert "timed out after 0.1s" in result.stderr
    run = Run.objects.get()
    assert run.expected_executions == 3000


@live
def test_a_target_produces_the_outputs_and_a_bad_one_exits_3(live_server_url, token, tmp_path):
    dataset, profile = tmp_path / "asks.jsonl", tmp_path / "target.yaml"
    rows = [{"id": "c0", "input": "2+2", "expected": "4"}, {"id": "c1", "input": "3*3", "expected": "9"}]
    dataset.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    profile.write_text(exact_match_profile("ci-target"))
    common = ["--url", live_server_url, "--token", token, "--dataset", str(dataset), "--profile", str(profile)]
    agent = AgentServer(answers={"2+2": "4"})
    agent.start()
    try:
        result = gate(*common, "--wait", "--target-url", agent.url, "--target-option", "max_retries=0")
        bad_option = gate(*common, "--target-url", agent.url, "--target-option", "fast")
        bad_target = gate(*common, "--target-url", agent.url, "--target-option", "protocol=grpc")
    finally:
        agent.stop()

    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed, 1 failed, 0 error" in result.stdout
    assert f"agent (vigilo at {agent.url}): 2 output(s) produced, 0 case(s) without output" in result.stdout
    assert agent.asked() == {"c0": 1, "c1": 1}
    run = Run.objects.get()
    assert run.options["target"]["max_retries"] == 0
    assert bad_option.returncode == 3 and "--target-option 'fast': expected KEY=VALUE" in bad_option.stderr
    assert bad_target.returncode == 3 and "target.protocol" in bad_target.stderr
    assert Run.objects.count() == 1


@live
def test_exit_3_for_a_profile_without_a_pass_rule_showing_the_lines_to_add(live_server_url, token, tmp_path):
    dataset, profile = tmp_path / "cases.jsonl", tmp_path / "ruleless.yaml"
    dataset.write_text(json.dumps({"id": "c0", "input": "q", "expected": "yes", "output": {"text": "no"}}) + "\n")
    profile.write_text(exact_match_profile("ci-ruleless").replace("min_execution_score: 1.0\n", ""))

    result = gate("--url", live_server_url, "--token", token, "--dataset", str(dataset), "--profile", str(profile))

    assert result.returncode == 3, result.stdout + result.stderr
    assert "HTTP 400" in result.stderr
    assert "  min_execution_score: no pass rule: without one an execution passes" in result.stderr
    assert "Add `min_execution_score: 1.0` at the top" in result.stderr
    assert not Run.objects.exists()
