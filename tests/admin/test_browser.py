"""The admin in a real browser: a person logs in through the form, finds a finished run, sees its verdict, the
reasons with their case links and the score histogram, and follows a case to its execution.

Playwright drives Debian's chromium (scripts/browser.sh installs it; `make test` runs that); no browser is ever
downloaded. The server is pytest-django's `live_server` (a real HTTP server on loopback, in a thread, on the test
database, serving the admin's static files through the staticfiles finders). Everything the database needs is
built before the browser starts: the ORM refuses to run while Playwright's event loop is running in the thread.
On failure the page is saved to var/test-screenshots/<test name>.png and the assertion says so.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Response, expect, sync_playwright

from runs.models import Execution
from tests.support.paths import REPO

CHROMIUM = Path("/usr/bin/chromium")
# This machine's closed network refuses chromium's background connections: it must not try them.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO / "var" / "test-screenshots"
TIMEOUT_MS = 15_000  # every wait, action and expectation; a test is bounded by a few of these
expect.set_options(timeout=TIMEOUT_MS)


@dataclass(frozen=True)
class Site:
    url: str
    username: str
    password: str
    run_name: str
    run_path: str
    case_id: str
    execution_path: str


@pytest.fixture
def site(live_server, transactional_db, admin_user, finished_run) -> Site:
    """The live server with a superuser (pytest-django's `admin_user`: admin / password) and a finished run whose
    case-1 failed."""
    failed = Execution.objects.get(run=finished_run, case_id="case-1")
    return Site(
        url=live_server.url,
        username=admin_user.username,
        password="password",
        run_name=finished_run.name,
        run_path=reverse("admin:runs_run_change", args=[finished_run.id]),
        case_id=failed.case_id,
        execution_path=reverse("admin:runs_execution_change", args=[failed.id]),
    )


@pytest.fixture
def static_statuses() -> dict[str, int]:
    """The status of every static file the page loads, by URL."""
    return {}


@pytest.fixture
def page(site: Site, static_statuses: dict[str, int], request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh headless chromium (its own user-data dir) logged in to the admin through the login form."""
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
            tab = context.pages[0] if context.pages else context.new_page()

            def record(response: Response) -> None:
                if "/static/" in response.url:
                    static_statuses[response.url] = response.status

            tab.on("response", record)
            with screenshot_on_failure(tab, request):
                tab.goto(f"{site.url}/admin/login/?next=/admin/")
                tab.fill("#id_username", site.username)
                tab.fill("#id_password", site.password)
                tab.click("input[type=submit]")
                expect(tab).to_have_url(f"{site.url}/admin/")
            yield tab
        finally:
            context.close()


@contextmanager
def screenshot_on_failure(page: Page, request: pytest.FixtureRequest) -> Iterator[None]:
    """Re-raise a failed check or browser step with the path of a screenshot of the page as it was."""
    try:
        yield
    except (AssertionError, PlaywrightError) as exc:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', request.node.name)}.png"
        try:
            page.screenshot(path=path, full_page=True)
            saved = f"screenshot: {path}"
        except PlaywrightError as shot_error:
            saved = f"no screenshot ({shot_error})"
        raise AssertionError(f"{exc}\n{saved}\npage: {page.url}") from exc


def test_a_person_finds_the_run_and_sees_its_verdict_reasons_and_histogram(
    page: Page, site: Site, static_statuses: dict[str, int], request: pytest.FixtureRequest
) -> None:
    with screenshot_on_failure(page, request):
        page.locator(f"a[href='{reverse('admin:runs_run_changelist')}']").first.click()
        page.locator(f"#result_list a[href='{site.run_path}']").click()
        expect(page).to_have_url(site.url + site.run_path)

        verdict = page.locator(".vg-verdict")
        expect(verdict.locator("h2").first).to_have_text(re.compile(r"Verdict\s+fail"))
        reason = verdict.locator(".vg-reason", has_text="[executions_failed]")
        expect(reason).to_have_text(
            f"[executions_failed] 1 of 3 executions failed — count 1; e.g. cases {site.case_id}"
        )
        expect(reason.get_by_role("link", name=site.case_id)).to_have_attribute("href", site.execution_path)
        expect(verdict).not_to_contain_text("e.g. executions")

        chart = verdict.locator("svg[aria-label='score histogram']")
        expect(chart).to_have_count(1)  # one dimension: correctness
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box is not None and box["width"] > 0 and box["height"] > 0, f"the histogram has no size: {box}"
        bars = [chart.locator("rect").nth(i).bounding_box() for i in range(chart.locator("rect").count())]
        drawn = [b for b in bars if b is not None and b["width"] > 0 and b["height"] > 0]
        assert len(drawn) == 2, f"two bins hold scores (0.0: case-1, 1.0: the other two), drawn: {drawn}"

        assert static_statuses, "the admin loaded no static files"
        failed = {url: code for url, code in static_statuses.items() if code != 200}
        assert not failed, f"static files did not load: {failed}"


def test_a_case_link_opens_that_execution_with_its_case_id_and_results(
    page: Page, site: Site, request: pytest.FixtureRequest
) -> None:
    with screenshot_on_failure(page, request):
        page.goto(site.url + site.run_path)

        page.locator(".vg-reason").get_by_role("link", name=site.case_id).click()

        expect(page).to_have_url(site.url + site.execution_path)
        expect(page.locator("#content h2").first).to_have_text(f"case {site.case_id}")
        expect(page.locator(".field-case_id .readonly")).to_have_text(site.case_id)
        expect(page.locator(".field-status_badge .readonly")).to_have_text("failed")
        results = page.locator(".inline-group")
        expect(results).to_contain_text("mentions")
        expect(results).to_contain_text("missing_content")
        expect(page.locator(".breadcrumbs").get_by_role("link", name=site.run_name)).to_have_attribute(
            "href", site.run_path
        )
