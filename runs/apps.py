from django.apps import AppConfig

from runs import shutdown


class RunsConfig(AppConfig):
    name = "runs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # A Celery worker's pool processes finish or release their chunk on SIGTERM (runs/shutdown.py); in any
        # other process the worker signals never fire.
        shutdown.install()
