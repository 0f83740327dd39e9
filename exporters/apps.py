from django.apps import AppConfig

from exporters.hooks import EXPORT_KICKS


class ExportersConfig(AppConfig):
    name = "exporters"
    verbose_name = "Exports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Commits that wrote export batches wake a distributed relay; the embedded runtime registers its own.
        from exporters.tasks import deliver_kick  # noqa: PLC0415 - imports models: only once the registry is ready

        EXPORT_KICKS.register(deliver_kick)
