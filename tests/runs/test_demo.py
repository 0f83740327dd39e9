"""`make demo`, as the README tells a newcomer to run it: it ends with status 0 and says the gate failed on purpose."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.support.paths import REPO

pytestmark = pytest.mark.embedded


def test_make_demo_exits_0_and_says_the_gate_failed_as_intended(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "MAKEFLAGS")}
    env.update(
        VIGILO_DATA_DIR=str(tmp_path / "data"), VIGILO_EMBEDDED="true"
    )  # its own SQLite; the build cache is shared
    reports = tmp_path / "reports"
    done = subprocess.run(
        ["make", "--no-print-directory", "demo", f"DEMO_REPORTS={reports}"],
        cwd=REPO,
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "gate FAIL" in out
    assert "demo: the gate failed, as this example intends (vigilo_run exited 1" in out
    assert "Error" not in out  # no make error line
    report = json.loads((reports / "demo.json").read_text())
    assert report["verdict"]["gate"] == "fail"
    assert (reports / "demo.xml").is_file()
