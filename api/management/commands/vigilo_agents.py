"""`manage.py vigilo_agents apply agents.yaml [--secrets-out FILE] [--rotate NAME]` and `list`.

Apply is re-runnable: agents are created or updated from the file (never halted or resumed by it), each gets
its own token (scope `emit`, only for itself) the first time, and a webhook agent its signing secret. New
secrets are printed once, or written to `--secrets-out` (JSON, mode 0600) for automation.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from api.services import TokenError, agent_token_ensure
from online.agents import agents_parse
from online.errors import EventInvalid
from online.models import MonitoredAgent
from online.services import agent_apply
from vigilo_project.exitcodes import USAGE


class Command(BaseCommand):
    help = "Monitored agents: apply AGENTS_YAML [--secrets-out FILE] [--rotate NAME ...] | list"

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        apply = sub.add_parser("apply", help="create or update the agents of a YAML file (re-runnable)")
        apply.add_argument("file")
        apply.add_argument("--secrets-out", help="write new tokens and webhook secrets to this JSON file (0600)")
        apply.add_argument("--rotate", action="append", default=[], help="issue a new token for this agent")
        sub.add_parser("list", help="the agents, their state and delivery (never a secret)")

    def handle(self, *args: Any, **o: Any) -> None:
        if o["action"] == "list":
            for agent in MonitoredAgent.objects.select_related("profile").order_by("name"):
                line = (
                    f"{agent.name}\t{agent.state}\t{agent.profile.name}\t{agent.delivery}\tsample {agent.sample_rate:g}"
                )
                self.stdout.write(line)
            return
        path = Path(o["file"])
        try:
            text = path.read_text()
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror or exc}", returncode=USAGE) from None
        try:
            specs = agents_parse(text=text, base=path.parent)
        except EventInvalid as exc:
            raise CommandError(f"{path}: {exc}", returncode=USAGE) from None
        secrets: dict[str, dict[str, str]] = {}
        try:
            with transaction.atomic():  # the whole file or nothing
                for spec in specs:
                    agent, created, changed = agent_apply(spec=spec, actor=f"cli:{path.name}")
                    token = agent_token_ensure(agent=agent, rotate=agent.name in o["rotate"])
                    issued = {}
                    if token:
                        issued["token"] = token
                    if "webhook_secret" in changed:
                        issued["webhook_secret"] = agent.webhook_secret
                    if issued:
                        secrets[agent.name] = issued
                    verb = "created" if created else ("updated: " + ", ".join(changed) if changed else "unchanged")
                    self.stderr.write(f"agent {agent.name} {verb}")
        except EventInvalid as exc:
            raise CommandError(f"{path}: {exc}", returncode=USAGE) from None
        except TokenError as exc:
            raise CommandError(str(exc), returncode=USAGE) from None
        if not secrets:
            return
        if o["secrets_out"]:
            out = Path(o["secrets_out"])
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(secrets, f, indent=2)
            self.stderr.write(f"new secrets written to {out} (shown nowhere else)")
        else:
            self.stderr.write("new secrets, shown once; store them now:")
            self.stdout.write(json.dumps(secrets, indent=2))
