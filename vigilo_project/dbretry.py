"""Retrying an idempotent database step after a dropped connection (a restarted or failed-over PostgreSQL)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connection

log = logging.getLogger(__name__)

DB_RETRIES = 4  # attempts of one idempotent database step after a dropped connection
T = TypeVar("T")


def db_retry(fn: Callable[[], T], *, what: str) -> T:
    """Run an idempotent database step, reconnecting after a dropped connection (bounded, with jitter).

    Inside a transaction nothing is retried: the transaction is gone with the connection, so the caller's
    whole step has to be retried instead.
    """
    for attempt in range(DB_RETRIES):
        try:
            return fn()
        except (OperationalError, InterfaceError) as exc:
            if attempt == DB_RETRIES - 1 or connection.in_atomic_block:
                raise
            log.warning("%s: database error, reconnecting (%s/%s): %s", what, attempt + 1, DB_RETRIES, exc)
            connection.close()
            time.sleep(random.uniform(0.5, 1.0) * 2**attempt * 0.25)
    raise AssertionError("unreachable")
