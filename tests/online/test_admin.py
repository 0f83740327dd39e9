"""Live evaluation in the admin, for a staff user, with data made through the real services: every page renders,
the agent list counts with annotations, the chart counts violations per hour, the resume needs a reason and is
audited as `admin:<user>`, settings go through agent_apply, and the webhook secret is never on a page."""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from online.ingest import event_parse
from online.models import AgentAudit, CorrectionSignal, EvalEvent, MonitoredAgent, WebhookDelivery
from online.services import event_submit_sync, events_accept, events_evaluate
from online.webhooks import webhook_deliver
from outbox.models import OutboxEvent
from tests.support.online import agent_make, event, leaking, off_topic, unreferenced

pytestmark = pytest.mark.django_db

ONLINE_MODELS = [
    "monitoredagent",
    "evalevent",
    "correctionsignal",
    "agentaudit",
    "webhookdelivery",
    "onlineprofile",
]


def sync(agent, body):
    return event_submit_sync(agent=MonitoredAgent.objects.get(pk=agent.pk), event=event_parse(body))


def accept(agent, *bodies):
    return events_accept(
        agent=MonitoredAgent.objects.get(pk=agent.pk), events=[event_parse(b) for b in bodies], path="http"
    )


def shown(response) -> str:
    """The messages the response's request left, then its HTML."""
    return " | ".join(str(m) for m in get_messages(response.wsgi_request)) + "\n" + response.content.decode()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def staff(django_user_model, username: str, *codenames: str):
    """A staff user (not a superuser) holding exactly these permissions (app_label.codename)."""
    user = django_user_model.objects.create_user(username, f"{username}@example.com", "pw", is_staff=True)
    query = Q()
    for name in codenames:
        app_label, codename = name.split(".")
        query |= Q(content_type__app_label=app_label, codename=codename)
    user.user_permissions.set(Permission.objects.filter(query))
    return user


OPERATOR_PERMS = (
    *(f"online.view_{m}" for m in ONLINE_MODELS),
    "online.change_monitoredagent",
    "online.change_webhookdelivery",
    "api.view_apitoken",
)


@pytest.fixture
def operator(client, django_user_model):
    user = staff(django_user_model, "ops", *OPERATOR_PERMS)
    client.force_login(user)
    return client


@pytest.fixture
def live(published):
    """support-bot: a passing event, two nudges, a redirect, then a halt (halted); hook-bot: a webhook agent
    whose receiver is down, so its delivery is pending with one failed attempt; quiet-bot: nothing."""
    bot, _ = agent_make("support-bot")
    sync(bot, event(message_id="ok-1"))
    accept(bot, unreferenced(message_id="n-1"), unreferenced(message_id="n-2"), off_topic(message_id="r-1"))
    events_evaluate(event_ids=list(EvalEvent.objects.filter(agent=bot).values_list("id", flat=True)))
    sync(bot, leaking(message_id="leak-1"))
    hook, _ = agent_make("hook-bot", delivery="webhook", webhook_url=closed_port_url())
    sync(hook, unreferenced(message_id="h-1"))
    webhook_deliver(delivery_id=WebhookDelivery.objects.get(correction__agent=hook).pk)
    agent_make("quiet-bot")
    return {a.name: a for a in MonitoredAgent.objects.all()}


def test_every_page_renders_for_a_staff_operator(operator, live):
    bot = live["support-bot"]
    pages = [reverse(f"admin:online_{m}_changelist") for m in ONLINE_MODELS]
    pages += [
        reverse("admin:online_monitoredagent_changelist") + "?state__exact=halted",
        reverse("admin:online_monitoredagent_changelist") + "?delivery__exact=webhook",
        reverse("admin:online_evalevent_changelist") + f"?agent__id__exact={bot.pk}&status__exact=evaluated",
        reverse("admin:online_evalevent_changelist") + "?path__exact=sync&event_type=llm_output",
        reverse("admin:online_correctionsignal_changelist") + "?ack=unacked&severity__exact=nudge",
        reverse("admin:online_correctionsignal_changelist") + "?dropped__exact=1",
        reverse("admin:online_webhookdelivery_changelist") + "?status__exact=pending",
        reverse("admin:online_agentaudit_changelist") + "?action__exact=halt",
        reverse("admin:api_apitoken_changelist"),
    ]
    for agent in live.values():
        pages += [
            reverse("admin:online_monitoredagent_change", args=[agent.pk]),
            reverse("admin:online_monitoredagent_change", args=[agent.pk]) + "?window=7d",
            reverse("admin:online_monitoredagent_history", args=[agent.pk]),
        ]
    pages += [
        reverse("admin:online_evalevent_change", args=[pk]) for pk in EvalEvent.objects.values_list("pk", flat=True)
    ]
    pages += [
        reverse("admin:online_correctionsignal_change", args=[pk])
        for pk in CorrectionSignal.objects.values_list("pk", flat=True)
    ]
    pages += [
        reverse("admin:online_agentaudit_change", args=[pk]) for pk in AgentAudit.objects.values_list("pk", flat=True)
    ]
    pages += [
        reverse("admin:online_webhookdelivery_change", args=[pk])
        for pk in WebhookDelivery.objects.values_list("pk", flat=True)
    ]
    pages.append(reverse("admin:online_onlineprofile_change", args=[bot.profile_id]))

    statuses = {page: operator.get(page).status_code for page in pages}

    assert {page: status for page, status in statuses.items() if status != 200} == {}
    assert (EvalEvent.objects.count(), CorrectionSignal.objects.count(), WebhookDelivery.objects.count()) == (6, 5, 1)


def test_the_agent_list_shows_state_settings_and_counts_from_annotations(operator, live):
    response = operator.get(reverse("admin:online_monitoredagent_changelist"))

    assert response.status_code == 200
    rows = {a.name: a for a in response.context["cl"].result_list}
    counts = {
        name: (a.events_n, a.nudges_n, a.redirects_n, a.halts_n, a.dropped_n, a.unacked_n) for name, a in rows.items()
    }
    assert counts == {
        "support-bot": (5, 2, 1, 1, 0, 4),
        "hook-bot": (1, 1, 0, 0, 0, 1),
        "quiet-bot": (0, 0, 0, 0, 0, 0),
    }
    html = response.content.decode()
    assert re.search(
        r'<th class="field-name"><a href="[^"]+">support-bot</a></th><td class="field-state_badge">'
        r'<span style="background:#cf222e[^>]*>halted</span>',
        html,
    )
    assert '<td class="field-rate_limit">10 / 60 s</td>' in html
    assert '<td class="field-events_n">5</td>' in html
    assert '<td class="field-unacked_n">4</td>' in html
    assert 'value="resume_agents"' in html and 'name="reason"' in html

    halted = operator.get(reverse("admin:online_monitoredagent_changelist") + "?state__exact=halted")
    assert [a.name for a in halted.context["cl"].result_list] == ["support-bot"]
    webhook = operator.get(reverse("admin:online_monitoredagent_changelist") + "?delivery__exact=webhook")
    assert [a.name for a in webhook.context["cl"].result_list] == ["hook-bot"]


def test_the_agent_list_costs_the_same_queries_whatever_the_number_of_agents(operator, live):
    url = reverse("admin:online_monitoredagent_changelist")
    operator.get(url)  # warm the session and the content types
    with CaptureQueriesContext(connection) as three:
        operator.get(url)
    for i in range(4):
        agent_make(f"more-{i}")
    with CaptureQueriesContext(connection) as seven:
        response = operator.get(url)

    assert response.context["cl"].result_count == 7
    assert len(seven.captured_queries) == len(three.captured_queries)


def _hours(html: str) -> dict[str, dict[str, int]]:
    """The chart's bars: hour -> {nudge, redirect, halt}, read from the SVG."""
    svg = re.search(r'<svg [^>]*aria-label="violations per hour".*?</svg>', html, re.S)
    assert svg is not None, "no chart on the page"
    root = ET.fromstring(svg.group(0))
    bars = {}
    for g in root.iter("{http://www.w3.org/2000/svg}g"):
        bars[g.attrib["data-hour"]] = {s: int(g.attrib[f"data-{s}"]) for s in ("nudge", "redirect", "halt")}
        drawn = {r.attrib["class"] for r in g.iter("{http://www.w3.org/2000/svg}rect")}
        assert drawn == {f"vg-bar-{s}" for s, n in bars[g.attrib["data-hour"]].items() if n}
    return bars


def _totals(html: str) -> dict[str, int]:
    found = re.findall(r'<span class="vg-total" data-severity="(\w+)">.*?<strong>(\d+)</strong>', html)
    return {severity: int(n) for severity, n in found}


def test_the_chart_counts_violations_per_hour_by_severity(operator, published):
    agent, _ = agent_make("chart-bot")
    for i in range(3):
        sync(agent, unreferenced(message_id=f"n-{i}"))
    sync(agent, off_topic(message_id="r-1"))
    sync(agent, leaking(message_id="leak-1"))
    three_hours_ago = CorrectionSignal.objects.get(event__message_id="leak-1")
    three_hours_ago.created_at -= timedelta(hours=3)
    CorrectionSignal.objects.filter(pk=three_hours_ago.pk).update(created_at=three_hours_ago.created_at)
    two_days_ago = CorrectionSignal.objects.get(event__message_id="n-2")
    two_days_ago.created_at -= timedelta(days=2)
    CorrectionSignal.objects.filter(pk=two_days_ago.pk).update(created_at=two_days_ago.created_at)
    recent = CorrectionSignal.objects.get(event__message_id="n-0").created_at
    # the same instant for the three recent ones, so that an hour's boundary cannot fall between them
    CorrectionSignal.objects.filter(event__message_id__in=["n-1", "r-1"]).update(created_at=recent)
    page = reverse("admin:online_monitoredagent_change", args=[agent.pk])

    day = operator.get(page).content.decode()
    week = operator.get(page + "?window=7d").content.decode()

    bars = _hours(day)
    assert len(bars) == 24
    assert bars[recent.strftime("%Y-%m-%dT%H:00Z")] == {"nudge": 2, "redirect": 1, "halt": 0}
    assert bars[three_hours_ago.created_at.strftime("%Y-%m-%dT%H:00Z")] == {"nudge": 0, "redirect": 0, "halt": 1}
    assert sum(sum(b.values()) for b in bars.values()) == 4
    assert _totals(day) == {"nudge": 2, "redirect": 1, "halt": 1}

    weekly = _hours(week)
    assert len(weekly) == 24 * 7
    assert weekly[two_days_ago.created_at.strftime("%Y-%m-%dT%H:00Z")]["nudge"] == 1
    assert _totals(week) == {"nudge": 3, "redirect": 1, "halt": 1}


def test_the_agent_page_shows_the_halt_recent_events_corrections_and_audit(operator, live):
    bot = live["support-bot"]

    html = operator.get(reverse("admin:online_monitoredagent_change", args=[bot.pk])).content.decode()

    assert '<span class="vg-halt-reason">card number in the agent&#x27;s llm_output: ' in html
    assert 'id="vg-resume-reason"' in html
    events = re.search(r'<table class="vg-events">.*?</table>', html, re.S)
    assert events is not None
    rows = re.findall(
        r"<td>([\w-]+)</td>\s*<td>(\w+)</td>\s*<td>(\w+)</td>\s*<td>(\w+)</td>\s*<td>([\w-]+)</td>", events.group(0)
    )
    assert rows == [
        ("leak-1", "llm_output", "evaluated", "sync", "halt"),
        ("r-1", "tool_call", "evaluated", "http", "redirect"),
        ("n-2", "llm_output", "evaluated", "http", "nudge"),
        ("n-1", "llm_output", "evaluated", "http", "nudge"),
        ("ok-1", "llm_output", "evaluated", "sync", "-"),
    ]
    corrections = re.search(r'<table class="vg-corrections">.*?</table>', html, re.S)
    assert corrections is not None
    assert corrections.group(0).count("unacked") == 4
    audit = re.search(r'<table class="vg-audit">.*?</table>', html, re.S)
    assert audit is not None
    assert re.search(
        r'<tr class="vg-audit-halt"><td>[^<]+</td><td>halt</td><td>supervisor</td><td>card number', audit.group(0)
    )


def test_the_resume_action_with_a_reason_resumes_and_audits_the_admin_user(operator, live):
    bot = live["support-bot"]

    response = operator.post(
        reverse("admin:online_monitoredagent_changelist"),
        {"action": "resume_agents", "_selected_action": [bot.pk], "reason": "false positive: a test card", "index": 0},
        follow=True,
    )

    assert "Resumed support-bot: false positive: a test card" in shown(response)
    bot.refresh_from_db()
    assert (bot.state, bot.halted_reason, bot.halt_correction_id) == ("active", "", None)
    resume = AgentAudit.objects.get(agent=bot, action="resume")
    assert (resume.actor, resume.reason) == ("admin:ops", "false positive: a test card")
    assert OutboxEvent.objects.filter(topic="agent.resumed", payload__actor="admin:ops").count() == 1


@pytest.mark.parametrize("reason", ["", "   "])
def test_the_resume_action_without_a_reason_refuses_and_changes_nothing(operator, live, reason):
    bot = live["support-bot"]

    response = operator.post(
        reverse("admin:online_monitoredagent_changelist"),
        {"action": "resume_agents", "_selected_action": [bot.pk], "reason": reason, "index": 0},
        follow=True,
    )

    assert "Nothing resumed: a reason is required" in shown(response)
    bot.refresh_from_db()
    assert bot.state == "halted"
    assert not AgentAudit.objects.filter(action="resume").exists()
    assert not OutboxEvent.objects.filter(topic="agent.resumed").exists()


def test_resuming_an_active_agent_is_an_error_and_changes_nothing(operator, live):
    quiet = live["quiet-bot"]
    audit_before = AgentAudit.objects.count()

    response = operator.post(
        reverse("admin:online_monitoredagent_changelist"),
        {"action": "resume_agents", "_selected_action": [quiet.pk], "reason": "why not", "index": 0},
        follow=True,
    )

    assert "Not resumed, nothing changed: agent &#x27;quiet-bot&#x27; is active, not halted" in shown(response)
    assert AgentAudit.objects.count() == audit_before
    assert not OutboxEvent.objects.filter(topic="agent.resumed").exists()


def test_the_agent_page_resumes_with_a_reason_and_comes_back(operator, live):
    bot = live["support-bot"]
    page = reverse("admin:online_monitoredagent_change", args=[bot.pk])
    resume = reverse("admin:online_monitoredagent_resume", args=[bot.pk])

    refused = operator.post(resume, {"reason": ""})
    assert MonitoredAgent.objects.get(pk=bot.pk).state == "halted"
    response = operator.post(resume, {"reason": "checked the transcript"}, follow=True)

    assert refused.status_code == 302
    assert response.redirect_chain == [(page, 302)]
    html = shown(response)
    assert "Resumed support-bot: checked the transcript" in html
    assert '<div class="vg-active"><strong><span style="background:#1a7f37' in html
    assert re.search(r"<td>resume</td><td>admin:ops</td><td>checked the transcript</td>", html)
    assert operator.get(resume).status_code == 405


def test_a_view_only_staff_user_cannot_resume(client, django_user_model, live):
    viewer = staff(django_user_model, "viewer", *(f"online.view_{m}" for m in ONLINE_MODELS))
    client.force_login(viewer)
    bot = live["support-bot"]

    listing = client.get(reverse("admin:online_monitoredagent_changelist")).content.decode()
    page = client.get(reverse("admin:online_monitoredagent_change", args=[bot.pk])).content.decode()
    forbidden = client.post(reverse("admin:online_monitoredagent_resume", args=[bot.pk]), {"reason": "me"})
    action = client.post(
        reverse("admin:online_monitoredagent_changelist"),
        {"action": "resume_agents", "_selected_action": [bot.pk], "reason": "me", "index": 0},
    )

    assert 'value="resume_agents"' not in listing
    assert 'id="vg-resume-reason"' not in page
    assert forbidden.status_code == 403
    assert action.status_code == 200  # Django's "no action selected": the action is not theirs
    assert MonitoredAgent.objects.get(pk=bot.pk).state == "halted"
    assert not AgentAudit.objects.filter(action="resume").exists()


def _settings(agent: MonitoredAgent, **changes):
    data = {
        "sample_rate": agent.sample_rate,
        "event_types": list(agent.event_types),
        "sync_deadline_ms": agent.sync_deadline_ms,
        "max_corrections_per_window": agent.max_corrections_per_window,
        "window_seconds": agent.window_seconds,
        "delivery": agent.delivery,
        "webhook_url": agent.webhook_url,
        "_save": "Save",
    }
    return {**data, **changes}


def test_settings_change_through_agent_apply_and_the_state_is_not_a_field(operator, live):
    bot = live["support-bot"]
    page = reverse("admin:online_monitoredagent_change", args=[bot.pk])

    response = operator.post(
        page,
        _settings(
            bot, sample_rate="0.25", event_types=["llm_output", "tool_call"], window_seconds="30", state="active"
        ),
    )

    assert response.status_code == 302
    bot.refresh_from_db()
    assert (bot.sample_rate, bot.event_types, bot.window_seconds) == (0.25, ["llm_output", "tool_call"], 30)
    assert bot.state == "halted"  # not a form field: only a resume makes it active
    applied = AgentAudit.objects.filter(agent=bot, action="apply").first()
    assert applied is not None
    assert (applied.actor, applied.reason) == ("admin:ops", "changed: sample_rate, event_types, window_seconds")


@pytest.mark.parametrize(
    ("changes", "field", "error"),
    [
        ({"sample_rate": "1.5"}, "sample_rate", "Ensure this value is less than or equal to 1.0."),
        ({"sample_rate": "-0.1"}, "sample_rate", "Ensure this value is greater than or equal to 0.0."),
        ({"sample_rate": "nan"}, "sample_rate", "Enter a number."),
        ({"window_seconds": "0"}, "window_seconds", "Ensure this value is greater than or equal to 1."),
        ({"delivery": "webhook", "webhook_url": ""}, "webhook_url", "required with webhook delivery"),
        ({"webhook_url": "ftp://x"}, "webhook_url", "an http(s) URL"),
        ({"event_types": ["llm_output", "smoke_signal"]}, "event_types", "Select a valid choice."),
    ],
)
def test_invalid_settings_are_refused_and_nothing_changes(operator, live, changes, field, error):
    bot = live["support-bot"]
    audit_before = AgentAudit.objects.count()

    response = operator.post(reverse("admin:online_monitoredagent_change", args=[bot.pk]), _settings(bot, **changes))

    assert response.status_code == 200
    assert error in " ".join(response.context["adminform"].form.errors[field])
    fresh = MonitoredAgent.objects.get(pk=bot.pk)
    assert (fresh.sample_rate, fresh.window_seconds, fresh.delivery, fresh.event_types) == (1.0, 60, "poll", [])
    assert AgentAudit.objects.count() == audit_before


def test_the_webhook_secret_never_appears_in_any_admin_page(operator, live):
    hook = live["hook-bot"]
    quiet = live["quiet-bot"]
    # a poll agent switched to webhooks in the admin gets its secret from agent_apply, never shown either
    operator.post(
        reverse("admin:online_monitoredagent_change", args=[quiet.pk]),
        _settings(quiet, delivery="webhook", webhook_url="https://bot.internal/vigilo"),
    )
    quiet.refresh_from_db()
    secrets = [hook.webhook_secret, quiet.webhook_secret]
    assert all(s.startswith("whsec_") for s in secrets)
    pages = [reverse(f"admin:online_{m}_changelist") for m in ONLINE_MODELS]
    pages.append(reverse("admin:api_apitoken_changelist"))
    for agent in (hook, quiet):
        pages += [
            reverse("admin:online_monitoredagent_change", args=[agent.pk]),
            reverse("admin:online_monitoredagent_history", args=[agent.pk]),
        ]
    pages += [reverse("admin:online_correctionsignal_change", args=[c.pk]) for c in CorrectionSignal.objects.all()]
    pages += [reverse("admin:online_webhookdelivery_change", args=[d.pk]) for d in WebhookDelivery.objects.all()]
    pages += [reverse("admin:online_agentaudit_change", args=[a.pk]) for a in AgentAudit.objects.all()]

    for page in pages:
        response = operator.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert not any(s in html for s in secrets), page
    agent_page = operator.get(reverse("admin:online_monitoredagent_change", args=[hook.pk])).content.decode()
    assert 'name="webhook_secret"' not in agent_page  # no field for it (its name shows in the audit)
    assert '<div class="readonly">set (never shown)</div>' in agent_page


def test_retry_dead_deliveries_queues_them_again(operator, live, settings):
    settings.VIGILO_WEBHOOK_MAX_ATTEMPTS = 2
    delivery = WebhookDelivery.objects.get(correction__agent__name="hook-bot")
    assert webhook_deliver(delivery_id=delivery.pk, round_start=0) == "dead"  # the second failed attempt
    pending_one, _ = agent_make("other-hook", delivery="webhook", webhook_url=closed_port_url())
    sync(pending_one, unreferenced())
    other = WebhookDelivery.objects.get(correction__agent=pending_one)

    response = operator.post(
        reverse("admin:online_webhookdelivery_changelist"),
        {"action": "retry_dead", "_selected_action": [delivery.pk, other.pk], "index": 0},
        follow=True,
    )

    assert "1 dead delivery queued again" in shown(response)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("pending", 2, "")
    row = OutboxEvent.objects.get(dedupe_key=f"online-webhook:{delivery.pk}:2")
    assert row.payload["args"] == [delivery.pk, 2]
    assert WebhookDelivery.objects.get(pk=other.pk).status == "pending"
    assert not OutboxEvent.objects.filter(dedupe_key=f"online-webhook:{other.pk}:2").exists()


def test_the_token_list_and_page_show_the_tokens_agent(operator, live):
    hook = live["hook-bot"]
    token = hook.tokens.get()

    listing = operator.get(reverse("admin:api_apitoken_changelist")).content.decode()
    page = operator.get(reverse("admin:api_apitoken_change", args=[token.pk])).content.decode()

    assert re.search(
        r'<th class="field-name"><a href="[^"]+">agent:hook-bot</a></th>.*?<td class="field-agent nowrap">'
        r"[^<]*hook-bot \(active\)</td>",
        listing,
    )
    assert re.search(
        rf'<div class="readonly"><a href="[^"]+/online/monitoredagent/{hook.pk}/change/">hook-bot \(active\)</a>',
        page,
    )
