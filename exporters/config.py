"""Destinations from the environment: one per platform kind, enabled by its URL (docs/exporters.md).

    VIGILO_EXPORT_<KIND>_URL        the receiver's base URL: setting it enables the destination
    VIGILO_EXPORT_<KIND>_<SECRET>   each of the exporter's `secret_names` (or <...>_FILE, a mounted file)
    VIGILO_EXPORT_<KIND>_<OPTION>   each of its `option_defaults`
    VIGILO_EXPORT_<KIND>_DEFAULT    whether results of profiles and agents that name no destinations go there (true)

`settings.VIGILO_EXPORT_DESTINATIONS` is read once at start-up with `destinations_from_env`, so a bad value stops
the process with the variable's name. Which destinations one result goes to is `destinations_for`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from exporters.platforms import EXPORTERS
from exporters.platforms.otlp import headers_parse
from exporters.protocol import Destination
from vigilo_project.env import env_bool, env_float, env_str
from vigilo_project.netpolicy import Policy, policy_resolve


def destinations_from_env() -> dict[str, Destination]:
    """Every destination whose URL is set, by name (= kind); ImproperlyConfigured names a bad variable."""
    out: dict[str, Destination] = {}
    for kind, exporter in EXPORTERS.items():
        prefix = f"VIGILO_EXPORT_{kind.upper()}_"
        url = env_str(prefix + "URL", "").strip().rstrip("/")
        if not url:
            continue
        if not url.startswith(("http://", "https://")):
            raise ImproperlyConfigured(f"{prefix}URL={url!r} is not an http(s) URL")
        secrets = {name: env_str(prefix + name.upper(), "") for name in exporter.secret_names}
        options = {name: env_str(prefix + name.upper(), default) for name, default in exporter.option_defaults.items()}
        problems = exporter.options_problems(options)
        if problems:
            raise ImproperlyConfigured(f"{prefix}*: {'; '.join(problems)}")
        if "headers" in exporter.secret_names and secrets.get("headers"):
            try:
                headers_parse(secrets["headers"])
            except ValueError as exc:
                raise ImproperlyConfigured(f"{prefix}HEADERS: {exc}") from None
        out[kind] = Destination(
            name=kind,
            kind=kind,
            url=url,
            secrets={name: value for name, value in secrets.items() if value},
            options=options,
            default=env_bool(prefix + "DEFAULT", True),
            timeout_s=env_float(prefix + "TIMEOUT_S", 10.0, minimum=0.1),
        )
    return out


def configured() -> dict[str, Destination]:
    return dict(settings.VIGILO_EXPORT_DESTINATIONS)


def destinations_for(named: Sequence[str] | None) -> list[str]:
    """Where one result goes: the destinations `named` by its agent or profile that are configured, or, when
    nothing is named (None), every configured destination marked default. An empty list sends nowhere."""
    available = configured()
    if named is None:
        return sorted(name for name, destination in available.items() if destination.default)
    return sorted(name for name in set(named) if name in available)


def destination_policy(destination: Destination) -> Policy:
    """The network policy of calls to a destination: its URL is configured by the operator, so allowed."""
    return policy_resolve(settings.VIGILO_NETWORK_POLICY, source="VIGILO_NETWORK_POLICY", configured=[destination.url])


def secret_values(destinations: Mapping[str, Destination]) -> list[str]:
    """Every configured secret value, for redaction (an error message never carries one), longest first: a
    secret and, for a header list (`key=Bearer token,...`), each header's value and its last word (the token a
    receiver may echo alone)."""
    found: set[str] = set()
    for destination in destinations.values():
        for value in destination.secrets.values():
            found.add(value)
            for item in value.split(","):
                header = item.partition("=")[2].strip()
                found.update({header, header.rsplit(" ", 1)[-1]})
    return sorted((value for value in found if len(value) >= 6), key=len, reverse=True)
