from __future__ import annotations

import atexit
import logging

from django.apps import AppConfig

log = logging.getLogger(__name__)


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Single-process embedded server mode: `VIGILO_EMBEDDED_RUNTIME_IN_SERVER=true manage.py runserver --noreload`
        # (or one gunicorn worker) runs the relay and worker threads inside the web process, so runs created
        # through the API are processed without a separate worker. Off by default: in the distributed mode the
        # Celery workers do this, and management commands start their own runtime when they need one.
        from django.conf import settings

        from vigilo_project.env import env_bool

        if not env_bool("VIGILO_EMBEDDED_RUNTIME_IN_SERVER", False):
            return
        if not settings.VIGILO_EMBEDDED:
            log.warning("VIGILO_EMBEDDED_RUNTIME_IN_SERVER is ignored outside the embedded mode")
            return
        from outbox.embedded import EmbeddedRuntime

        runtime = EmbeddedRuntime(workers=settings.VIGILO_EMBEDDED_WORKERS)
        runtime.__enter__()
        atexit.register(runtime.stop)
