#!/usr/bin/env python3
"""Screenshot a run's admin page with headless Chromium, for docs and reviews.

    .venv/bin/python scripts/screenshot_run_page.py [--run RUN_ID] [--out var/screenshots/run.png]

Renders the page in-process with Django's test client as a throwaway superuser (created and rolled back in one
transaction: nothing is written), points its /static/ links at the files on disk, and has Chromium photograph
the HTML file. No server, no login. Uses the database the settings point at (DATABASE_URL or the embedded
SQLite file); without --run it takes the newest run. Needs `chromium` (apt-get install -y chromium).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vigilo_project.settings")


def render(run_id: str | None) -> tuple[str, str]:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.staticfiles import finders
    from django.db import transaction
    from django.test import Client
    from django.urls import reverse

    from runs.models import Run

    run = Run.objects.filter(pk=run_id).first() if run_id else Run.objects.order_by("-created_at").first()
    if run is None:
        sys.exit("no run to show: pass --run, or create one first (make demo)")
    with transaction.atomic():
        user = get_user_model().objects.create_superuser("screenshot-tmp", "shot@example.invalid", None)
        client = Client()
        client.force_login(user)
        response = client.get(reverse("admin:runs_run_change", args=[run.id]))
        transaction.set_rollback(True)
    if response.status_code != 200:
        sys.exit(f"the run page answered {response.status_code}")
    html = response.content.decode()

    def local(match: re.Match) -> str:
        path = finders.find(match.group(2))
        return f'{match.group(1)}="{Path(path).as_uri() if path else ""}"'

    return str(run.id), re.sub(r'(href|src)="/static/([^"]+)"', local, html)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=None, help="run id (default: the newest run)")
    parser.add_argument("--out", default=None, help="PNG path (default: var/screenshots/run-<id>.png)")
    parser.add_argument("--size", default="1400,1700", help="window size WIDTH,HEIGHT")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        sys.exit("chromium not found: apt-get install -y chromium")
    run_id, html = render(args.run)
    out = Path(args.out) if args.out else REPO / "var" / "screenshots" / f"run-{run_id}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "run.html"
        page.write_text(html, encoding="utf-8")
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--hide-scrollbars",
                "--allow-file-access-from-files",
                f"--user-data-dir={tmp}/profile",
                f"--window-size={args.size}",
                f"--screenshot={out.resolve()}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
    print(out)


if __name__ == "__main__":
    main()
