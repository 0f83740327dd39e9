"""What a platform exporter is: it translates a batch of records into the HTTP requests its platform takes.

Delivery (retries, backoff, dead-lettering, progress) is the relay's (`exporters.relay`), the same for every
platform: an exporter only translates, and says how many records fit in one request. Plain Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from exporters.records import EvalRecord


@dataclass(frozen=True, kw_only=True)
class Destination:
    """One configured receiver (settings: VIGILO_EXPORT_<KIND>_*; exporters.config).

    `secrets` hold credentials (API keys); they go into request headers only, never into a body, a log line or
    an error message. `options` are the platform's non-secret settings (project names, ids, flags).
    """

    name: str  # the kind, e.g. "otlp" (one destination per kind)
    kind: str
    url: str  # base URL, without a trailing slash
    secrets: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    default: bool = True  # receives the results of profiles and agents that do not name their destinations
    timeout_s: float = 10.0


@dataclass(frozen=True, kw_only=True)
class HttpRequest:
    """One request of a batch: `records` is how many of the batch's records it carries (in order), so the relay
    can record progress after each request and resume after the last one that was accepted."""

    method: str
    url: str  # absolute
    body: bytes
    headers: Mapping[str, str]
    records: int


class EvalExporter(Protocol):
    kind: str
    max_batch: int  # records per request the platform accepts comfortably
    # Read by exporters.config from VIGILO_EXPORT_<KIND>_<NAME> (NAME upper-cased; a secret also from
    # <...>_FILE): the credentials, and the non-secret options with their defaults.
    secret_names: tuple[str, ...]
    option_defaults: Mapping[str, str]
    # Statuses that mean "already there" (a resend of an id the platform refuses to create twice): taken.
    duplicate_statuses: frozenset[int]
    # Statuses that mean "not yet" for this platform (beyond 408/425/429/5xx): retried with backoff.
    retry_statuses: frozenset[int]

    def options_problems(self, options: Mapping[str, str]) -> list[str]:
        """What is wrong with a destination's options (checked at start-up; exporters.config)."""
        ...

    def requests(self, records: Sequence[EvalRecord], destination: Destination) -> list[HttpRequest]:
        """The requests that deliver `records`, in order, each saying how many of them it carries (0 when it only
        prepares the next, e.g. spans before their annotations). When every request is answered, all `records`
        count as delivered: a record the platform has no place for may be left out."""
        ...

    def accepted(self, status: int, body: bytes) -> str:
        """'' when a 2xx answer means every record of the request was taken, else why not (a platform that
        answers 207 or 200 with per-item errors). Called for 2xx answers only."""
        ...
