"""The embedded mode's export relay, as real processes: `vigilo_run` starts a relay child that delivers every
result and the verdict before the command exits, and `vigilo_export_relay --follow-stdin` wakes on a kick and
drains and exits at the end of its input (the parent closed it, or died)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter

import pytest
from django.db import transaction

from exporters.models import ExportBatch
from exporters.services import exports_write
from runs.models import EvaluatorResult, Run
from tests.support.datasets import hello_cases
from tests.support.distributed import test_database_url
from tests.support.exports import records
from tests.support.paths import REPO
from tests.support.profiles import IDEM_PROFILE
from tests.support.receivers.otlp import OtlpReceiver

pytestmark = pytest.mark.django_db(transaction=True)


def command_env(receiver: OtlpReceiver) -> dict[str, str]:
    return {
        **os.environ,
        "VIGILO_EMBEDDED": "true",
        "DATABASE_URL": test_database_url(),
        "VIGILO_EXPORT_OTLP_URL": receiver.origin,
    }


def test_an_embedded_run_has_every_result_and_its_verdict_exported_when_it_exits(published, receiver, tmp_path):
    dataset, profile = tmp_path / "cases.jsonl", tmp_path / "profile.yaml"
    dataset.write_text(hello_cases(9) + "\n")
    profile.write_text(IDEM_PROFILE)
    done = subprocess.run(
        [sys.executable, "manage.py", "vigilo_run", "--dataset", str(dataset), "--profile", str(profile)],
        cwd=REPO,
        env=command_env(receiver),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr  # every third case answers "bye": the gate fails
    run = Run.objects.get()
    results = EvaluatorResult.objects.filter(run=run).count()
    assert results == 18  # 9 cases, 2 bindings
    seen = receiver.records_by_id()
    assert Counter(len(copies) for copies in seen.values()) == {1: results + 1}  # each result and the verdict, once
    assert not ExportBatch.objects.exclude(status=ExportBatch.Status.DELIVERED).exists()


def test_the_relay_wakes_on_a_kick_and_drains_and_exits_at_the_end_of_its_input(db, receiver):
    relay = subprocess.Popen(
        [sys.executable, "manage.py", "vigilo_export_relay", "--follow-stdin"],
        cwd=REPO,
        env=command_env(receiver),
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert relay.stdin is not None
    try:
        with transaction.atomic():
            exports_write(records=records(40), destinations=["otlp"], source_key="kicked")
        relay.stdin.write(b"k")
        relay.stdin.flush()
        deadline = time.monotonic() + 30
        while len(receiver.records_by_id()) < 40 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(receiver.records_by_id()) == 40
        with transaction.atomic():  # written just before the end of input: the drain takes it
            exports_write(
                records=records(7, run_id="77777777-2222-3333-4444-555555555555"),
                destinations=["otlp"],
                source_key="last",
            )
        relay.stdin.close()
        assert relay.wait(timeout=30) == 0
    finally:
        if relay.poll() is None:
            relay.kill()
    assert len(receiver.records_by_id()) == 47
    assert ExportBatch.objects.filter(status=ExportBatch.Status.DELIVERED).count() == 2
    assert b"Traceback" not in (relay.stderr.read() if relay.stderr else b"")


def test_without_a_destination_the_relay_says_so_and_exits(db):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGILO_EXPORT_")}
    done = subprocess.run(
        [sys.executable, "manage.py", "vigilo_export_relay"],
        cwd=REPO,
        env={**env, "VIGILO_EMBEDDED": "true", "DATABASE_URL": test_database_url()},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert "no destination is configured" in done.stderr
    assert done.stdout == ""
