from __future__ import annotations

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authentication import SessionAuthentication
from rest_framework.routers import SimpleRouter

from api import live, views
from api.auth import BearerTokenAuthentication, TokenOrStaffSession
from api.errors import not_found_view


class OptionalSlashRouter(SimpleRouter):
    """`/runs` and `/runs/` both work: no redirects (a POST cannot follow one)."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("datasets", views.DatasetViewSet, basename="dataset")
router.register("profiles", views.ProfileViewSet, basename="profile")
router.register("evaluators", views.EvaluatorViewSet, basename="evaluator")
router.register("runs", views.RunViewSet, basename="run")

# The schema and the docs page: a token, or a staff session from the admin so a browser can open them.
_docs_access = {
    "authentication_classes": [BearerTokenAuthentication, SessionAuthentication],
    "permission_classes": [TokenOrStaffSession],
}

urlpatterns = [
    re_path(
        r"^api/v1/runs/(?P<run_pk>[^/]+)/executions/?$",
        views.ExecutionViewSet.as_view({"get": "list"}),
        name="run-executions",
    ),
    re_path(
        r"^api/v1/runs/(?P<run_pk>[^/]+)/executions/(?P<pk>[^/]+)/?$",
        views.ExecutionViewSet.as_view({"get": "retrieve"}),
        name="run-execution",
    ),
    re_path(r"^api/v1/online/events/?$", live.EventsView.as_view(), name="online-events"),
    re_path(r"^api/v1/online/corrections/?$", live.CorrectionsView.as_view(), name="online-corrections"),
    re_path(
        r"^api/v1/online/corrections/(?P<delivery_id>[^/]+)/ack/?$",
        live.CorrectionAckView.as_view(),
        name="online-correction-ack",
    ),
    re_path(r"^api/v1/online/agents/(?P<name>[^/]+)/?$", live.AgentView.as_view(), name="online-agent"),
    re_path(r"^api/v1/online/agents/(?P<name>[^/]+)/resume/?$", live.AgentResumeView.as_view(), name="online-resume"),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(**_docs_access), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema", **_docs_access), name="api-docs"),
    re_path(r"^api/", not_found_view),
]
