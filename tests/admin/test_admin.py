"""The admin renders every list, detail and action for a superuser; domain rows are read-only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from evaluators.models import EvaluatorVersion
from outbox.models import OutboxEvent
from runs.admin import example_cases
from runs.models import Execution, Run
from runs.services import run_create
from tests.support.processing import process

pytestmark = pytest.mark.django_db


def _messages(response) -> str:
    from django.contrib.messages import get_messages

    shown = " | ".join(str(m) for m in get_messages(response.wsgi_request))
    return shown + response.content.decode()


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def runs(versions):
    dataset, profile = versions
    done, _ = run_create(dataset_version=dataset, profile_version=profile, name="done")
    process(done)
    pending, _ = run_create(dataset_version=dataset, profile_version=profile, name="pending")
    return done, pending


def test_every_changelist_renders(admin_client, runs):
    for model in [
        "runs_run",
        "runs_execution",
        "runs_dataset",
        "runs_datasetversion",
        "runs_case",
        "runs_profile",
        "runs_profileversion",
        "evaluators_evaluator",
        "evaluators_evaluatorversion",
        "outbox_outboxevent",
        "api_apitoken",
    ]:
        response = admin_client.get(reverse(f"admin:{model}_changelist"))
        assert response.status_code == 200, model


def test_run_list_shows_gate_badge_progress_and_duration(admin_client, runs):
    response = admin_client.get(reverse("admin:runs_run_changelist"))

    html = response.content.decode()
    assert ">fail</span>" in html
    assert ">pending</span>" in html
    assert "3 / 3" in html
    assert " s</td>" in html


def test_run_page_shows_reasons_dimensions_and_an_svg_histogram(admin_client, runs):
    done, _ = runs

    response = admin_client.get(reverse("admin:runs_run_change", args=[done.id]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "[executions_failed]</strong> 1 of 3 executions failed" in html
    assert "<svg" in html
    assert "correctness" in html
    assert "0.667" in html
    assert 'name="_save"' not in html  # read-only


def test_run_page_reasons_name_their_example_cases_as_links_to_the_execution_page(admin_client, runs):
    done, _ = runs
    failed = Execution.objects.get(run=done, case_id="case-1")

    html = admin_client.get(reverse("admin:runs_run_change", args=[done.id])).content.decode()

    url = reverse("admin:runs_execution_change", args=[failed.id])
    assert (
        f'[executions_failed]</strong> 1 of 3 executions failed — count 1; e.g. cases <a href="{url}">case-1</a></div>'
        in html
    )
    assert "e.g. executions" not in html


def test_reasons_and_warnings_of_a_stored_verdict_link_this_runs_cases_escaped_and_skip_empty_examples(
    admin_client, runs
):
    done, pending = runs
    failed = Execution.objects.get(run=done, case_id="case-1")
    passed = Execution.objects.get(run=done, case_id="case-2")
    elsewhere = Execution.objects.get(run=pending, case_id="case-0")
    Execution.objects.filter(pk=passed.pk).update(case_id="<b>c&2</b>")
    # A verdict as older versions stored it: examples are execution ids, no case ids beside them.
    Run.objects.filter(pk=done.pk).update(
        verdict={
            "gate": "fail",
            "reasons": [
                {"code": "chunks_failed", "message": "1 chunk(s) failed", "count": 1, "examples": []},
                {
                    "code": "executions_failed",
                    "message": "<i>two</i> failed",
                    "count": 2,
                    "examples": [str(passed.id), str(elsewhere.id), "not-an-id", str(failed.id)],
                },
            ],
            "warnings": [{"code": "slow_agent", "message": "the agent was slow", "count": 1, "examples": [failed.id]}],
        }
    )

    html = admin_client.get(reverse("admin:runs_run_change", args=[done.id])).content.decode()

    def link(e: Execution, text: str) -> str:
        return f'<a href="{reverse("admin:runs_execution_change", args=[e.id])}">{text}</a>'

    assert "[chunks_failed]</strong> 1 chunk(s) failed — count 1</div>" in html
    assert (
        "[executions_failed]</strong> &lt;i&gt;two&lt;/i&gt; failed — count 2; e.g. cases "
        f"{link(passed, '&lt;b&gt;c&amp;2&lt;/b&gt;')}, {link(failed, 'case-1')}</div>"
    ) in html
    assert "<h2>Warnings</h2>" in html
    assert (
        f'vg-warning"><strong>[slow_agent]</strong> the agent was slow — count 1; e.g. cases {link(failed, "case-1")}'
        in html
    )
    assert reverse("admin:runs_execution_change", args=[elsewhere.id]) not in html
    assert "<b>c&2</b>" not in html


def test_the_example_cases_of_every_reason_are_looked_up_in_one_query(runs, django_assert_num_queries):
    done, _ = runs
    ids = {e.case_id: str(e.id) for e in Execution.objects.filter(run=done)}
    entries = [{"examples": [ids["case-0"], ids["case-1"]]}, {"examples": [ids["case-2"]]}, {"examples": []}, {}]

    with django_assert_num_queries(1):
        cases = example_cases(run=done, entries=entries)

    assert cases == {ids["case-0"]: "case-0", ids["case-1"]: "case-1", ids["case-2"]: "case-2"}


def test_execution_page_is_named_by_its_case_and_leads_back_to_its_run(admin_client, runs):
    done, _ = runs
    failed = Execution.objects.get(run=done, case_id="case-1")

    html = admin_client.get(reverse("admin:runs_execution_change", args=[failed.id])).content.decode()

    assert "<h2>case case-1</h2>" in html
    assert f'<a href="{reverse("admin:runs_run_change", args=[done.id])}">done</a>\n&rsaquo; case case-1' in html
    assert f"Execution object ({failed.id})" not in html


def test_execution_page_shows_results_with_measurement_and_findings(admin_client, runs):
    done, _ = runs
    failed = Execution.objects.get(run=done, case_id="case-1")

    response = admin_client.get(reverse("admin:runs_execution_change", args=[failed.id]))

    html = response.content.decode()
    assert response.status_code == 200
    assert "mentions" in html
    assert "missing_content" in html
    assert ">failed</span>" in html


def test_cancel_action_cancels_only_what_can_be(admin_client, runs):
    done, pending = runs

    response = admin_client.post(
        reverse("admin:runs_run_changelist"),
        {"action": "cancel_runs", "index": 0, "_selected_action": [str(done.id), str(pending.id)]},
        follow=True,
    )

    assert response.status_code == 200
    assert "cancelled 1 run(s)" in _messages(response)
    assert Run.objects.get(pk=pending.pk).state == "cancelled"
    assert Run.objects.get(pk=done.pk).state == "completed"


def test_evaluator_pages_and_state_actions(admin_client, published):
    version = published["regex"]
    assert (
        admin_client.get(reverse("admin:evaluators_evaluator_change", args=[version.evaluator_id])).status_code == 200
    )
    assert admin_client.get(reverse("admin:evaluators_evaluatorversion_change", args=[version.id])).status_code == 200
    url = reverse("admin:evaluators_evaluatorversion_changelist")

    for action, state in [
        ("make_deprecated", "deprecated"),
        ("make_yanked", "yanked"),
        ("make_disabled", "disabled"),
        ("make_active", "active"),
    ]:
        response = admin_client.post(url, {"action": action, "index": 0, "_selected_action": [version.id]}, follow=True)
        assert response.status_code == 200
        assert EvaluatorVersion.objects.get(pk=version.pk).state == state

    refused = admin_client.post(
        url, {"action": "make_active", "index": 0, "_selected_action": [version.id]}, follow=True
    )
    assert "cannot go from active to active" in _messages(refused)


def test_outbox_dead_filter_and_retry_action(admin_client, runs):
    event = OutboxEvent.objects.first()
    OutboxEvent.objects.filter(pk=event.pk).update(status="dead", attempts=10, last_error="broker down")
    url = reverse("admin:outbox_outboxevent_changelist")

    dead = admin_client.get(url + "?status__exact=dead")
    detail = admin_client.get(reverse("admin:outbox_outboxevent_change", args=[event.id]))
    retried = admin_client.post(url, {"action": "retry_dead", "index": 0, "_selected_action": [event.id]}, follow=True)

    assert "broker down" in dead.content.decode()
    assert detail.status_code == 200
    assert "1 dead row(s) queued" in _messages(retried)
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("pending", 0)


def test_domain_rows_cannot_be_added_or_deleted(admin_client, runs):
    done, _ = runs

    assert admin_client.get(reverse("admin:runs_run_add")).status_code == 403
    assert admin_client.post(reverse("admin:runs_run_delete", args=[done.id])).status_code == 403
    assert admin_client.get(reverse("admin:outbox_outboxevent_add")).status_code == 403


def test_token_admin_creates_a_token_and_shows_the_secret_once(admin_client):
    from api.models import ApiToken

    response = admin_client.post(
        reverse("admin:api_apitoken_add"), {"name": "ci", "scopes": ["read", "write"], "expires_days": "7"}, follow=True
    )

    row = ApiToken.objects.get(name="ci")
    assert "it is not shown again: vgt_" in _messages(response)
    assert row.scopes == ["read", "write"]
    assert admin_client.get(reverse("admin:api_apitoken_change", args=[row.id])).status_code == 200
    admin_client.post(
        reverse("admin:api_apitoken_changelist"), {"action": "revoke", "index": 0, "_selected_action": [row.id]}
    )
    row.refresh_from_db()
    assert row.revoked_at is not None
