"""The Celery app for the distributed mode (`celery -A vigilo_project worker|beat|flower`).

Configuration lives in settings.py (the CELERY_* block); worker lifecycle (graceful SIGTERM) in runs/shutdown.py,
installed by runs/apps.py.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vigilo_project.settings")

app = Celery("vigilo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
