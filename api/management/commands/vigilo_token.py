from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from api.models import SCOPES, ApiToken
from api.services import TokenError, token_create, token_revoke
from vigilo_project.exitcodes import USAGE


class Command(BaseCommand):
    help = "Manage API tokens: create NAME --scopes read,write [--expires-days N] | revoke NAME | list"

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a token and print its secret (shown once)")
        create.add_argument("name")
        scopes = ", ".join(s for s in SCOPES if s != "emit")  # emit: an agent's own token (vigilo_agents)
        create.add_argument("--scopes", default="read", help=f"comma separated: {scopes}")
        create.add_argument("--expires-days", type=int, default=None)
        revoke = sub.add_parser("revoke", help="revoke a token by name")
        revoke.add_argument("name")
        sub.add_parser("list", help="list tokens (never their secrets)")

    def handle(self, *args: Any, **o: Any) -> None:
        try:
            if o["action"] == "create":
                scopes = [s.strip() for s in o["scopes"].split(",") if s.strip()]
                row, secret = token_create(name=o["name"], scopes=scopes, expires_days=o["expires_days"])
                self.stderr.write(f"token {row.name} created with scopes {','.join(row.scopes)}")
                if row.expires_at:
                    self.stderr.write(f"expires {row.expires_at.isoformat()}")
                self.stderr.write("the secret is shown once; store it now:")
                self.stdout.write(secret)
            elif o["action"] == "revoke":
                row = token_revoke(name=o["name"])
                assert row.revoked_at is not None  # token_revoke sets it (or it was set before)
                self.stdout.write(f"token {row.name} revoked at {row.revoked_at.isoformat()}")
            else:
                for row in ApiToken.objects.order_by("name"):
                    status = "active" if row.is_active else ("revoked" if row.revoked_at else "expired")
                    expires = row.expires_at.isoformat() if row.expires_at else "never"
                    used = row.last_used_at.isoformat() if row.last_used_at else "never"
                    self.stdout.write(
                        f"{row.name}\t{row.prefix}…\t{','.join(row.scopes)}\t{status}\texpires {expires}\tused {used}"
                    )
        except TokenError as exc:
            raise CommandError(str(exc), returncode=USAGE) from None
