"""Bearer token authentication and per-scope permissions."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling

from api.models import ApiToken
from api.services import token_authenticate


class TokenPrincipal:
    """The `request.user` of a token request; `pk` keys per-token throttling."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    def __init__(self, token: ApiToken) -> None:
        self.token = token
        self.pk = self.id = token.pk

    def __str__(self) -> str:
        return f"token {self.token.name}"


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request)
        if not header:
            return None
        try:
            keyword, secret = header.decode("latin-1").split(None, 1)
        except ValueError:
            raise exceptions.AuthenticationFailed("malformed Authorization header: use `Bearer <token>`")
        if keyword.lower() != "bearer":
            raise exceptions.AuthenticationFailed("unsupported authorization scheme: use `Bearer <token>`")
        secret = secret.strip()
        if not secret or len(secret) > 200 or "\x00" in secret:
            raise exceptions.AuthenticationFailed("invalid token")
        token = token_authenticate(secret=secret)
        if token is None:
            raise exceptions.AuthenticationFailed("invalid, expired or revoked token")
        return TokenPrincipal(token), token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="vigilo"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API token: `Authorization: Bearer vgt_...`"}


class _Scope(permissions.BasePermission):
    scope = ""
    message = ""

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return False
        if self.scope not in token.scopes:
            raise exceptions.PermissionDenied(f"this token lacks the `{self.scope}` scope")
        return True


class ReadScope(_Scope):
    scope = "read"


class WriteScope(_Scope):
    scope = "write"


class PublishScope(_Scope):
    scope = "publish"


class TokenOrStaffSession(permissions.BasePermission):
    """The schema and docs page: any valid token, or a staff user logged in to the admin (for the browser)."""

    def has_permission(self, request, view) -> bool:
        if isinstance(request.auth, ApiToken):
            return True
        user = getattr(request, "user", None)
        return bool(user and user.is_authenticated and user.is_staff)


class RunCreateThrottle(throttling.SimpleRateThrottle):
    """Run creation per token, at VIGILO_RUN_CREATE_RATE (read at request time so it can be changed in tests)."""

    scope = "run_create"

    def get_rate(self) -> str:
        return settings.VIGILO_RUN_CREATE_RATE

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, ApiToken):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
