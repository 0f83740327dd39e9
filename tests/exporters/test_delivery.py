"""Export delivery through the real relay, database and OTLP receiver: every result of a run or a live event
reaches the receiver exactly once, across refusals, retries and an outage, and no secret leaks on the way."""

from __future__ import annotations

import logging
from collections import Counter

import pytest
from django.db import transaction
from prometheus_client.parser import text_string_to_metric_families

from exporters.models import ExportBatch
from exporters.platforms import EXPORTERS
from exporters.protocol import Destination
from exporters.relay import deliver_due, deliver_once
from exporters.services import exports_retry_dead, exports_write
from gating.profile import EXPORT_KINDS
from online.ingest import event_parse
from online.models import MonitoredAgent, OnlineResult
from online.services import event_submit_sync
from runs.models import EvaluatorResult
from runs.services import dataset_import, profile_import, run_create
from tests.support.datasets import hello_cases
from tests.support.exports import records
from tests.support.online import agent_make, event, leaking
from tests.support.processing import process
from tests.support.profiles import IDEM_PROFILE

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "sekret-0tlp-T0KEN-7781"


@pytest.fixture
def otlp(settings, receiver):
    """The OTLP destination, configured as the environment would, with an authorization header secret."""
    destination = Destination(
        name="otlp",
        kind="otlp",
        url=receiver.origin,
        secrets={"headers": f"authorization=Bearer {SECRET}"},
        options={"spans": "true", "service_name": "vigilo"},
        timeout_s=5.0,
    )
    settings.VIGILO_EXPORT_DESTINATIONS = {"otlp": destination}
    settings.VIGILO_EXPORT_BACKOFF_BASE_S = 0.001
    settings.VIGILO_EXPORT_BACKOFF_MAX_S = 0.002
    return destination


def write(count: int, *, batches: int = 1, run_id: str = "11111111-2222-3333-4444-555555555555") -> list[str]:
    """`count` records in `batches` stored batches; returns their ids."""
    made = records(count, run_id=run_id)
    size = -(-count // batches)
    with transaction.atomic():
        for index in range(batches):
            exports_write(
                records=made[index * size : (index + 1) * size], destinations=["otlp"], source_key=f"t:{index}"
            )
    return [record.id for record in made]


def drain(times: int = 50) -> None:
    for _ in range(times):
        deliver_due(budget_s=10)
        if not ExportBatch.objects.filter(status=ExportBatch.Status.PENDING).exists():
            return
        ExportBatch.objects.update(available_at="2000-01-01T00:00:00Z")  # skip the (tiny) backoff
    raise AssertionError("exports still pending")


def test_every_platform_kind_has_an_exporter():
    assert sorted(EXPORTERS) == sorted(EXPORT_KINDS)
    for kind, exporter in EXPORTERS.items():
        assert exporter.kind == kind and exporter.max_batch >= 1


def test_the_relay_delivers_every_record_once_and_then_has_nothing_to_send(otlp, receiver):
    ids = write(1200, batches=3)
    drain()
    assert Counter(len(v) for v in receiver.records_by_id().values()) == {1: 1200}
    assert set(receiver.records_by_id()) == set(ids)
    rows = ExportBatch.objects.order_by().values_list("status", "delivered", "count").distinct()
    assert list(rows) == [("delivered", 400, 400)]
    sent = len(receiver.log_records)
    assert deliver_due(budget_s=5) == 0 and len(receiver.log_records) == sent


def test_a_5xx_is_retried_with_an_attempt_counted(otlp, receiver):
    write(10)
    receiver.fail_with(503, times=1)
    assert deliver_once(destination=otlp) == (0, False)
    batch = ExportBatch.objects.get()
    assert (batch.status, batch.attempts, batch.last_status) == ("pending", 1, 503)
    drain()
    batch.refresh_from_db()
    assert batch.status == "delivered" and len(receiver.records_by_id()) == 10


def test_a_batch_past_the_attempt_limit_is_dead(otlp, receiver, settings):
    settings.VIGILO_EXPORT_MAX_ATTEMPTS = 2
    write(5)
    receiver.fail_with(500, times=2)
    for _ in range(2):
        deliver_once(destination=otlp)
        ExportBatch.objects.update(available_at="2000-01-01T00:00:00Z")
    batch = ExportBatch.objects.get()
    assert (batch.status, batch.attempts) == ("dead", 2)
    assert not receiver.records_by_id()


def test_a_4xx_is_dead_lettered_with_its_reason_and_retried_from_admin(otlp, receiver):
    write(10)
    receiver.fail_with(400, times=1)
    deliver_once(destination=otlp)
    batch = ExportBatch.objects.get()
    assert (batch.status, batch.last_status) == ("dead", 400)
    assert batch.last_error.startswith("HTTP 400")
    assert deliver_due(budget_s=5) == 0  # dead stays dead
    assert exports_retry_dead(ids=[batch.id]) == 1
    drain()
    batch.refresh_from_db()
    assert batch.status == "delivered" and len(receiver.records_by_id()) == 10


def export_metrics(client) -> dict[str, float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
        if sample.name.startswith("vigilo_export_") and sample.labels == {"destination": "otlp"}
    }


def test_metrics_show_what_each_destination_owes_what_is_dead_and_the_lag(otlp, receiver, client):
    write(10)
    receiver.fail_with(400, times=1)
    deliver_once(destination=otlp)  # dead: 10 records
    with transaction.atomic():
        exports_write(
            records=records(4, run_id="99999999-2222-3333-4444-555555555555"), destinations=["otlp"], source_key="m"
        )
    ExportBatch.objects.filter(status="pending").update(created_at="2000-01-01T00:00:00Z")
    seen = export_metrics(client)
    assert seen["vigilo_export_pending_records"] == 4
    assert seen["vigilo_export_dead_records"] == 10
    assert seen["vigilo_export_delivered_records_total"] == 0
    assert seen["vigilo_export_lag_seconds"] > 3600  # the oldest pending batch is from 2000
    drain()
    seen = export_metrics(client)
    assert (seen["vigilo_export_pending_records"], seen["vigilo_export_lag_seconds"]) == (0, 0)
    assert seen["vigilo_export_delivered_records_total"] == 4


def test_a_receiver_down_for_the_middle_of_a_10000_result_export_gets_everything_once(otlp, receiver):
    ids = write(10_000, batches=20)
    for _ in range(4):  # some batches go out
        deliver_once(destination=otlp, limit=2)
    before = len(receiver.records_by_id())
    assert 0 < before < 10_000
    receiver.stop()
    for _ in range(5):  # down: nothing goes, nothing is lost or counted
        assert deliver_once(destination=otlp, limit=2)[0] == 0
        ExportBatch.objects.update(available_at="2000-01-01T00:00:00Z")
    pending = ExportBatch.objects.filter(status="pending")
    assert pending.count() == 20 - before // 500 and not pending.exclude(attempts=0).exists()
    assert "export to otlp" in pending.first().last_error
    receiver.start()
    drain()
    assert set(receiver.records_by_id()) == set(ids)
    assert max(len(v) for v in receiver.records_by_id().values()) == 1  # none duplicated
    assert ExportBatch.objects.filter(status="delivered").count() == 20


def test_no_secret_reaches_a_payload_a_stored_error_or_a_log_line(otlp, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    write(3)
    receiver.fail_with(400, times=1, body=f"bad token Bearer {SECRET}".encode())  # a receiver that echoes it
    deliver_once(destination=otlp)
    batch = ExportBatch.objects.get()
    assert batch.status == "dead" and "[redacted]" in batch.last_error and SECRET not in batch.last_error
    exports_retry_dead(ids=[batch.id])
    drain()
    assert SECRET not in caplog.text
    assert all(SECRET.encode() not in body for body in receiver.bodies)
    assert all(h.get("authorization") == f"Bearer {SECRET}" for h in receiver.headers)


def test_an_offline_run_exports_each_result_on_its_execution_span_and_its_verdict(otlp, receiver, published):
    dataset, _ = dataset_import(name="idem", text=hello_cases(5))
    profile, _ = profile_import(text=IDEM_PROFILE)
    run, _ = run_create(dataset_version=dataset, profile_version=profile, name="exported")
    process(run)
    assert run.state == "completed"
    drain()
    logs = receiver.log_records
    results = EvaluatorResult.objects.filter(run=run)
    assert len(logs) == results.count() + 1  # every result and the verdict
    verdict = [log for log in logs if log["attributes"]["gen_ai.evaluation.name"] == "vigilo.gate"]
    assert len(verdict) == 1
    assert verdict[0]["attributes"]["gen_ai.evaluation.score.label"] == run.gate
    spans = {span["span_id"]: span for span in receiver.spans}
    for result in results.select_related("execution"):
        (log,) = [
            entry
            for entry in logs
            if entry["attributes"].get("vigilo.execution.id") == str(result.execution_id)
            and entry["attributes"]["gen_ai.evaluation.name"] == result.binding_id
        ]
        assert log["event_name"] == "gen_ai.evaluation.result"
        assert log["attributes"]["vigilo.case.id"] == result.execution.case_id
        assert log["attributes"]["vigilo.run.id"] == str(run.id)
        assert (
            log["attributes"]["gen_ai.evaluation.score.label"] == {"passed": "pass", "failed": "fail"}[result.judgment]
        )
        span = spans[log["span_id"]]  # the execution's own span was sent, under the run's span
        assert span["trace_id"] == log["trace_id"] and spans[span["parent_span_id"]]["parent_span_id"] == ""


def test_a_rerun_of_a_completed_chunk_writes_no_second_batch(otlp, receiver, published):
    dataset, _ = dataset_import(name="idem", text=hello_cases(2))
    profile, _ = profile_import(text=IDEM_PROFILE)
    run, _ = run_create(dataset_version=dataset, profile_version=profile, name="exported")
    process(run)
    process(run)  # every chunk is already completed: skipped
    assert ExportBatch.objects.filter(source_key__startswith="chunk:").count() == run.chunk_count


def test_a_profile_that_exports_nowhere_writes_no_batch(otlp, published):
    dataset, _ = dataset_import(name="idem", text=hello_cases(2))
    profile, _ = profile_import(text=IDEM_PROFILE + "export: []\n")
    run, _ = run_create(dataset_version=dataset, profile_version=profile, name="quiet")
    process(run)
    assert run.state == "completed" and not ExportBatch.objects.exists()


def test_a_live_event_exports_each_result_on_the_agents_span(otlp, receiver, published):
    agent, _ = agent_make()
    trace_id, span_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    body = leaking(message_id="leak-1", trace_id=trace_id, span_id=span_id)
    body["payload"]["model"] = "gpt-4o-mini"
    answer = event_submit_sync(agent=MonitoredAgent.objects.get(pk=agent.pk), event=event_parse(body))
    assert answer.correction is not None
    drain()
    logs = receiver.log_records
    assert len(logs) == OnlineResult.objects.filter(event__message_id="leak-1").count() == 2
    for log in logs:
        assert (log["trace_id"], log["span_id"]) == (trace_id, span_id)
        assert log["attributes"]["gen_ai.agent.name"] == "support-bot"
        assert log["attributes"]["gen_ai.operation.name"] == "chat"
        assert log["attributes"]["gen_ai.request.model"] == "gpt-4o-mini"
        assert log["attributes"]["vigilo.agent.message_id"] == "leak-1"
    card = next(log for log in logs if log["attributes"]["gen_ai.evaluation.name"] == "card-number")
    assert card["attributes"]["gen_ai.evaluation.score.label"] == "fail"
    assert not receiver.spans  # the agent's span is the agent's: Vigilo sends none of its own


def test_an_agent_that_exports_nowhere_writes_no_batch(otlp, published):
    agent, _ = agent_make(export=())
    event_submit_sync(agent=MonitoredAgent.objects.get(pk=agent.pk), event=event_parse(event(message_id="q-1")))
    assert not ExportBatch.objects.exists()
