"""The Celery app for the distributed mode (`celery -A vigilo_project worker|beat|flower`).

Configuration lives in settings.py (the CELERY_* block); worker lifecycle (graceful SIGTERM) in runs/worker.py.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vigilo_project.settings")

app = Celery("vigilo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _install_worker_lifecycle() -> None:
    from runs.shutdown import install

    install()


_install_worker_lifecycle()
