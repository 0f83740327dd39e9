"""The embedded mode's single-process server: the relay and worker threads inside the web process.

In the embedded mode `manage.py runserver` (or gunicorn) processes the runs created through the API without a
separate worker: it is on by default there (`VIGILO_EMBEDDED_RUNTIME_IN_SERVER=false` turns it off, for a web
process that only serves reads). In the distributed mode the Celery workers do this and the setting is ignored.
vigilo_project/wsgi.py calls this once the app registry is ready; management commands start their own runtime
when they need one.
"""

from __future__ import annotations

import atexit
import logging

from django.conf import settings

from exporters.embedded import ExportRelayProcess
from online.services import events_redispatch_stale
from outbox.embedded import EmbeddedRuntime
from runs.reaper import periodic_reap
from vigilo_project.env import env_bool

log = logging.getLogger(__name__)


def server_reap() -> dict[str, int]:
    """The server runtime's periodic pass: the runs reaper, and live events whose evaluation message was lost."""
    stale = events_redispatch_stale(older_than_s=settings.VIGILO_ONLINE_STALE_SECONDS)
    return {**periodic_reap(), "online_redispatched": stale}


def server_runtime_start() -> EmbeddedRuntime | None:
    """Start the in-process runtime when asked for (and stop it at exit); None when not asked for."""
    if not settings.VIGILO_EMBEDDED:
        if env_bool("VIGILO_EMBEDDED_RUNTIME_IN_SERVER", False):
            log.warning("VIGILO_EMBEDDED_RUNTIME_IN_SERVER is ignored outside the embedded mode")
        return None
    if not env_bool("VIGILO_EMBEDDED_RUNTIME_IN_SERVER", True):
        return None
    runtime = EmbeddedRuntime(workers=settings.VIGILO_EMBEDDED_WORKERS, reap=server_reap)
    runtime.__enter__()
    atexit.register(runtime.stop)
    exports = ExportRelayProcess().__enter__()
    atexit.register(exports.stop)
    return runtime
