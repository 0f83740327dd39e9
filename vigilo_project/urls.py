from django.contrib import admin
from django.urls import include, path

from vigilo_project import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", health.metrics, name="metrics"),
    path("", include("api.urls")),
]
