"""A halted agent in a real browser: a person logs in, opens the agent's page, sees why it was halted and the chart
of its violations, resumes it with a reason (from the page, and with the list's action) and sees it active.

As tests/admin/test_browser.py: Playwright drives Debian's chromium (scripts/browser.sh installs it) against
pytest-django's `live_server`; everything the database needs is built before the browser starts, and what the
browser did is checked in the database after it has closed (the ORM refuses to run inside Playwright's loop).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect, sync_playwright

from online.ingest import event_parse
from online.models import AgentAudit, MonitoredAgent
from online.services import event_submit_sync
from tests.admin.test_browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, screenshot_on_failure
from tests.support.online import agent_make, leaking, unreferenced

HALT_REASON = "card number in the agent's llm_output: output matches the forbidden pattern at character 10"


@dataclass(frozen=True)
class Site:
    url: str
    username: str
    password: str
    agent_id: int
    agent_path: str
    list_path: str


@pytest.fixture
def site(live_server, transactional_db, admin_user, published) -> Site:
    """The live server, a superuser (admin / password) and support-bot, nudged once and then halted."""
    agent, _ = agent_make("support-bot")
    for body in (unreferenced(message_id="n-1"), leaking(message_id="leak-1")):
        event_submit_sync(agent=MonitoredAgent.objects.get(pk=agent.pk), event=event_parse(body))
    assert MonitoredAgent.objects.get(pk=agent.pk).halted_reason == HALT_REASON
    return Site(
        url=live_server.url,
        username=admin_user.username,
        password="password",
        agent_id=agent.pk,
        agent_path=reverse("admin:online_monitoredagent_change", args=[agent.pk]),
        list_path=reverse("admin:online_monitoredagent_changelist"),
    )


@contextmanager
def logged_in(site: Site, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh headless chromium logged in to the admin through the login form; closed on leaving."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/browser.sh (make test does)")
    with tempfile.TemporaryDirectory(prefix="vigilo-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            timeout=TIMEOUT_MS * 2,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            context.set_default_timeout(TIMEOUT_MS)
            page = context.pages[0] if context.pages else context.new_page()
            with screenshot_on_failure(page, request):
                page.goto(f"{site.url}/admin/login/?next=/admin/")
                page.fill("#id_username", site.username)
                page.fill("#id_password", site.password)
                page.click("input[type=submit]")
                expect(page).to_have_url(f"{site.url}/admin/")
                yield page
        finally:
            context.close()


def see_halted_with_its_chart(page: Page, site: Site) -> None:
    page.goto(site.url + site.agent_path)
    halt = page.locator(".vg-halt")
    expect(halt).to_contain_text("halted")
    expect(halt.locator(".vg-halt-reason")).to_have_text(HALT_REASON)
    chart = page.locator("svg[aria-label='violations per hour']")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 0 and box["height"] > 0, f"the chart has no size: {box}"
    for severity in ("nudge", "halt"):  # one of each this hour, both drawn
        bar = chart.locator(f"rect.vg-bar-{severity}")
        expect(bar).to_have_count(1)
        drawn = bar.bounding_box()
        assert drawn is not None and drawn["height"] > 0, f"the {severity} bar is not drawn: {drawn}"
    expect(chart.locator("rect.vg-bar-redirect")).to_have_count(0)
    expect(page.locator(".vg-total[data-severity='halt'] strong")).to_have_text("1")
    expect(page.locator(".vg-total[data-severity='nudge'] strong")).to_have_text("1")


def test_a_person_sees_why_the_agent_halted_and_resumes_it_from_its_page(
    site: Site, request: pytest.FixtureRequest
) -> None:
    with logged_in(site, request) as page:
        see_halted_with_its_chart(page, site)

        page.fill("#vg-resume-reason", "false positive: the test card 4111")
        page.get_by_role("button", name="Resume agent").click()

        expect(page).to_have_url(site.url + site.agent_path)
        expect(page.locator(".messagelist")).to_contain_text("Resumed support-bot: false positive: the test card 4111")
        expect(page.locator(".vg-active")).to_have_text("active")
        expect(page.locator(".vg-halt")).to_have_count(0)
        expect(page.locator(".vg-audit tr.vg-audit-resume td").nth(2)).to_have_text("admin:admin")

    agent = MonitoredAgent.objects.get(pk=site.agent_id)
    assert (agent.state, agent.halted_reason) == ("active", "")
    audit = AgentAudit.objects.get(agent=agent, action="resume")
    assert (audit.actor, audit.reason) == ("admin:admin", "false positive: the test card 4111")


def test_a_person_resumes_the_agent_with_the_lists_action_and_a_reason(
    site: Site, request: pytest.FixtureRequest
) -> None:
    with logged_in(site, request) as page:
        see_halted_with_its_chart(page, site)
        page.goto(site.url + site.list_path)
        row = page.locator("#result_list tr", has_text="support-bot")
        expect(row.locator(".field-state_badge")).to_have_text("halted")

        # without a reason: refused, still halted
        row.locator("input.action-select").check()
        page.select_option("select[name=action]", "resume_agents")
        page.get_by_role("button", name="Go").click()
        expect(page.locator(".messagelist")).to_contain_text("Nothing resumed: a reason is required")
        expect(row.locator(".field-state_badge")).to_have_text("halted")

        row.locator("input.action-select").check()
        page.fill("input[name=reason]", "checked with the support team")
        page.select_option("select[name=action]", "resume_agents")
        page.get_by_role("button", name="Go").click()

        expect(page.locator(".messagelist")).to_contain_text("Resumed support-bot: checked with the support team")
        expect(row.locator(".field-state_badge")).to_have_text("active")
        page.locator(f"#result_list a[href='{site.agent_path}']").click()
        expect(page.locator(".vg-active")).to_have_text(re.compile(r"^\s*active\s*$"))

    audit = AgentAudit.objects.get(agent_id=site.agent_id, action="resume")
    assert (audit.actor, audit.reason) == ("admin:admin", "checked with the support team")
