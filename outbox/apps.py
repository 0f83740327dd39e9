from django.apps import AppConfig

from outbox.hooks import kick_hook_register


class OutboxConfig(AppConfig):
    name = "outbox"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Commits wake the distributed relay with a Celery task; the hook itself does nothing in the embedded
        # mode, whose runtime registers its own wake-up (outbox.embedded).
        from outbox.tasks import relay_kick  # noqa: PLC0415 - imports models: only once the app registry is ready

        kick_hook_register(relay_kick)
