"""What wakes an export relay after a commit that wrote batches (registered by `ExportersConfig.ready` and the
embedded runtime; see outbox.hooks)."""

from __future__ import annotations

from outbox.hooks import KickHooks

EXPORT_KICKS = KickHooks("exports")
