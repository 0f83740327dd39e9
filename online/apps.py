from django.apps import AppConfig


class OnlineConfig(AppConfig):
    name = "online"
    verbose_name = "Live evaluation"
    default_auto_field = "django.db.models.BigAutoField"
