"""API tokens in the admin: create (the secret is shown once), revoke. Secrets are never stored or shown again."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from api.models import SCOPES, ApiToken
from api.services import TokenError, token_create


class TokenCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=[(s, s) for s in SCOPES], widget=forms.CheckboxSelectMultiple)
    expires_days = forms.IntegerField(min_value=1, required=False, help_text="empty: never expires")

    class Meta:
        model = ApiToken
        fields = ["name"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "scopes", "agent", "status", "expires_at", "last_used_at", "created_at"]
    search_fields = ["name", "prefix", "agent__name"]
    list_select_related = ["agent"]
    actions = ["revoke"]
    readonly_fields = ["name", "prefix", "scopes", "agent", "created_at", "expires_at", "revoked_at", "last_used_at"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = TokenCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        return ["name", "scopes", "expires_days"] if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        try:
            row, secret = token_create(
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_days=form.cleaned_data.get("expires_days"),
            )
        except TokenError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        obj.pk = row.pk
        self.message_user(
            request, f"Token {row.name} created. Copy the secret now; it is not shown again: {secret}", messages.WARNING
        )

    def log_addition(self, request, obj, message):
        if obj.pk:
            super().log_addition(request, obj, message)

    @admin.display(description="status")
    def status(self, token: ApiToken) -> str:
        if token.revoked_at:
            return "revoked"
        return "active" if token.is_active else "expired"

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"revoked {count} token(s)", messages.SUCCESS)
