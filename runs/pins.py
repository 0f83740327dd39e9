"""Checking a run's profile: parsed (gating.profile) and pinned against the registry (evaluators.pins), every
problem reported as the profile's `ValidationFailed`."""

from __future__ import annotations

from typing import Any

from evaluators.pins import Pin, PinsInvalid, profile_pins
from gating.profile import ProfileError, ProfileSpec, profile_parse
from runs.errors import ValidationFailed

__all__ = ["Pin", "profile_check"]


def profile_check(*, document: Any) -> tuple[ProfileSpec, dict[str, Pin]]:
    """Parse the profile and check every binding against the registry. Returns the profile and the pins."""
    try:
        profile = profile_parse(data=document)
    except ProfileError as exc:
        raise ValidationFailed("profile", list(exc.errors)) from None
    try:
        return profile, profile_pins(profile=profile)
    except PinsInvalid as exc:
        raise ValidationFailed("profile", exc.errors) from None
