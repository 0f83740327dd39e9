"""The Celery app for the distributed mode (`celery -A vigilo_project worker|beat`)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vigilo_project.settings")

app = Celery("vigilo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
