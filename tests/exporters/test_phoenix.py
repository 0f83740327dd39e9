"""The Phoenix exporter against a real Arize Phoenix (`phoenix serve` on loopback), through the real relay:
Vigilo's spans appear in the project, each result is an annotation on its span, read back through Phoenix's
REST API, and a resend updates instead of duplicating."""

from __future__ import annotations

from dataclasses import replace

import pytest
from django.db import transaction

from exporters.models import ExportBatch
from exporters.platforms.phoenix import PHOENIX
from exporters.protocol import Destination, HttpRequest
from exporters.relay import deliver_due
from exporters.services import exports_write
from exporters.spans import spans_body
from tests.support.exports import record, records, send
from tests.support.phoenix import PhoenixServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def phoenix():
    server = PhoenixServer().start()
    yield server
    server.stop()


@pytest.fixture
def destination(settings, phoenix):
    target = Destination(name="phoenix", kind="phoenix", url=phoenix.origin, options={"project": "vigilo-test"})
    settings.VIGILO_EXPORT_DESTINATIONS = {"phoenix": target}
    settings.VIGILO_EXPORT_BACKOFF_BASE_S = 0.05
    settings.VIGILO_EXPORT_BACKOFF_MAX_S = 0.2
    return target


def export(made, key):
    with transaction.atomic():
        exports_write(records=made, destinations=["phoenix"], source_key=key)
    for _ in range(100):  # Phoenix ingests spans asynchronously: an early annotation is a 404, retried
        deliver_due(budget_s=5)
        if not ExportBatch.objects.filter(status="pending").exists():
            break
        ExportBatch.objects.filter(status="pending").update(available_at="2000-01-01T00:00:00Z")
    assert set(ExportBatch.objects.values_list("status", flat=True)) == {"delivered"}


def test_results_are_annotations_on_vigilos_spans_and_a_resend_updates_them(phoenix, destination):
    made = records(20, run_id="aaaaaaaa-2222-3333-4444-555555555555")
    made[3] = replace(made[3], judge=True, label="fail", score=0.1, explanation="the judge disagreed")
    export(made, "first")
    spans = {span["context"]["span_id"]: span for span in phoenix.spans("vigilo-test")}
    for rec in made:
        span = spans[rec.span_id]
        assert span["name"] == f"vigilo.execution {rec.case_id}" and span["context"]["trace_id"] == rec.trace_id
    annotations = phoenix.annotations("vigilo-test", [r.span_id for r in made])
    assert len(annotations) == 20
    by_span = {a["span_id"]: a for a in annotations}
    judged = by_span[made[3].span_id]
    assert (judged["name"], judged["annotator_kind"]) == ("correctness", "LLM")
    assert judged["result"] == {"label": "fail", "score": 0.1, "explanation": "the judge disagreed"}
    assert judged["identifier"] == made[3].id
    assert by_span[made[0].span_id]["annotator_kind"] == "CODE"
    assert by_span[made[0].span_id]["metadata"]["vigilo.case.id"] == made[0].case_id

    export([replace(r, score=0.5) for r in made], "again")  # the same results, sent again
    again = phoenix.annotations("vigilo-test", [r.span_id for r in made])
    assert len(again) == 20 and {a["result"]["score"] for a in again} == {0.5}


def test_a_live_result_lands_on_the_agents_own_span(phoenix, destination):
    agent_span = record(run_id="bbbbbbbb-2222-3333-4444-555555555555", execution_id="7")
    body = spans_body([agent_span], service_name="agent", resource_attributes={"openinference.project.name": "agents"})
    assert (
        send(
            [
                HttpRequest(
                    method="POST",
                    url=f"{phoenix.origin}/v1/traces",
                    body=body,
                    headers={"Content-Type": "application/x-protobuf"},
                    records=0,
                )
            ]
        )[0][0]
        == 200
    )
    live = record(
        source="live",
        own_span=False,
        trace_id=agent_span.trace_id,
        span_id=agent_span.span_id,
        binding_id="card-number",
        run_id="",
        execution_id="",
        case_id="",
        agent="bot",
        message_id="m1",
    )
    (request,) = PHOENIX.requests([live], destination)  # no span of Vigilo's: the annotation only
    assert request.url.endswith("/v1/span_annotations?sync=true")
    export([live], "live")
    (annotation,) = phoenix.annotations("agents", [agent_span.span_id])
    assert annotation["name"] == "card-number" and annotation["metadata"]["vigilo.agent.name"] == "bot"


def test_the_api_key_goes_in_the_authorization_header():
    target = Destination(name="phoenix", kind="phoenix", url="http://127.0.0.1:9", secrets={"api_key": "px-k3y"})
    for request in PHOENIX.requests(records(2), target):
        assert request.headers["Authorization"] == "Bearer px-k3y" and b"px-k3y" not in request.body
