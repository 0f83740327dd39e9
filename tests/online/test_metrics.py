"""/metrics shows live evaluation's families, read from the database at scrape time, in a few GROUP BY queries."""

from __future__ import annotations

import socket

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from prometheus_client.parser import text_string_to_metric_families

from online.ingest import event_parse
from online.models import CorrectionSignal, EvalEvent, MonitoredAgent, WebhookDelivery
from online.services import correction_ack, event_submit_sync, events_accept, events_evaluate
from online.webhooks import webhook_deliver
from tests.support.online import agent_make, event, leaking, off_topic, unreferenced

pytestmark = pytest.mark.django_db

ONLINE = (
    "vigilo_online_events",
    "vigilo_online_events_pending",
    "vigilo_online_corrections",
    "vigilo_online_corrections_unacked",
    "vigilo_online_agents",
    "vigilo_online_webhook_deliveries",
)


def scrape(client) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """The online families: family name -> {sorted labels: value} (counters by their `_total` sample)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        if family.name not in ONLINE:
            continue
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            found.setdefault(family.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def test_the_online_families_count_events_corrections_acks_agents_and_webhooks(client, published, settings):
    settings.VIGILO_WEBHOOK_MAX_ATTEMPTS = 1
    bot, _ = agent_make("support-bot", max_corrections_per_window=2)
    bot = MonitoredAgent.objects.get(pk=bot.pk)
    accept = events_accept(
        agent=bot,
        events=[event_parse(b) for b in (unreferenced(), unreferenced(), unreferenced(), off_topic(), event())],
        path="http",
    )
    events_evaluate(event_ids=list(EvalEvent.objects.values_list("id", flat=True)))
    assert len(accept) == 5
    sampled, _ = agent_make("sampled-bot", event_types=("tool_call",))
    events_accept(agent=MonitoredAgent.objects.get(pk=sampled.pk), events=[event_parse(event())], path="http")
    hook, _ = agent_make("hook-bot", delivery="webhook", webhook_url=closed_port_url())
    hook = MonitoredAgent.objects.get(pk=hook.pk)
    events_accept(agent=hook, events=[event_parse(event())], path="http")
    halt = event_submit_sync(agent=hook, event=event_parse(leaking()))
    assert halt.correction is not None
    correction_ack(agent=hook, delivery_id=halt.correction["delivery_id"])
    event_submit_sync(agent=MonitoredAgent.objects.get(pk=bot.pk), event=event_parse(leaking()))
    assert webhook_deliver(delivery_id=WebhookDelivery.objects.get().pk) == "dead"  # the limit is 1

    metrics = scrape(client)

    def by(family: str, **labels: str) -> float:
        return metrics[family][tuple(sorted(labels.items()))]

    events = metrics["vigilo_online_events"]
    assert len(events) == 3 * 3  # every agent, every status an event keeps, zeros included
    assert by("vigilo_online_events", agent="support-bot", status="evaluated") == 6
    assert by("vigilo_online_events", agent="support-bot", status="unsampled") == 0
    assert by("vigilo_online_events", agent="sampled-bot", status="filtered") == 1
    assert by("vigilo_online_events", agent="hook-bot", status="evaluated") == 1
    assert by("vigilo_online_events_pending", agent="hook-bot") == 1  # accepted, not evaluated yet
    assert by("vigilo_online_events_pending", agent="support-bot") == 0
    assert sum(events.values()) + sum(metrics["vigilo_online_events_pending"].values()) == EvalEvent.objects.count()
    assert EvalEvent.objects.count() == 9

    corrections = metrics["vigilo_online_corrections"]
    assert len(corrections) == 3 * 3 * 2
    expected = {
        ("support-bot", "nudge", "delivered"): 2,
        ("support-bot", "nudge", "dropped"): 1,  # the third nudge, past the limit of 2 a minute
        ("support-bot", "redirect", "dropped"): 1,
        ("support-bot", "halt", "delivered"): 1,  # a halt is never dropped
        ("hook-bot", "halt", "delivered"): 1,
    }
    assert {
        (dict(k)["agent"], dict(k)["severity"], dict(k)["outcome"]): v for k, v in corrections.items() if v
    } == expected
    assert sum(corrections.values()) == CorrectionSignal.objects.count()

    assert metrics["vigilo_online_corrections_unacked"] == {
        (("agent", "hook-bot"),): 0.0,  # acked
        (("agent", "sampled-bot"),): 0.0,
        (("agent", "support-bot"),): 3.0,
    }
    assert metrics["vigilo_online_agents"] == {(("state", "active"),): 1.0, (("state", "halted"),): 2.0}
    assert metrics["vigilo_online_webhook_deliveries"] == {
        (("status", "dead"),): 1.0,
        (("status", "delivered"),): 0.0,
        (("status", "pending"),): 0.0,
    }


def test_the_online_families_are_declared_with_no_agent_and_cost_the_same_queries_with_more(client, published):
    text = client.get("/metrics").content.decode()
    for family, kind in [
        ("vigilo_online_events_total", "counter"),
        ("vigilo_online_corrections_total", "counter"),
        ("vigilo_online_events_pending", "gauge"),
        ("vigilo_online_corrections_unacked", "gauge"),
        ("vigilo_online_agents", "gauge"),
        ("vigilo_online_webhook_deliveries", "gauge"),
    ]:
        assert f"# TYPE {family} {kind}" in text
    assert 'vigilo_online_agents{state="active"} 0.0' in text
    agent_make("one-bot")
    with CaptureQueriesContext(connection) as one:
        client.get("/metrics")
    for i in range(3):
        agent_make(f"bot-{i}")

    with CaptureQueriesContext(connection) as four:
        response = client.get("/metrics")

    assert 'vigilo_online_corrections_unacked{agent="bot-2"} 0.0' in response.content.decode()
    assert len(four.captured_queries) == len(one.captured_queries)
    # the agents' names and by state, events, corrections, unacked corrections, webhook deliveries
    assert len([q for q in four.captured_queries if '"online_' in q["sql"]]) == 6
