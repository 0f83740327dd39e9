"""Sandbox limits and the stable error codes an invocation can end with."""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields, replace
from typing import Any


class ErrorCode(enum.StrEnum):
    TIMEOUT = "timeout"
    FUEL_EXHAUSTED = "fuel_exhausted"
    MEMORY_LIMIT = "memory_limit"
    TRAP = "trap"
    INVALID_OUTPUT = "invalid_output"
    EVALUATOR_ERROR = "evaluator_error"
    CAPABILITY_DENIED = "capability_denied"


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 64
    fuel: int = 2_000_000_000
    timeout_s: float = 5.0
    max_log_messages: int = 128
    max_log_bytes: int = 4096
    max_output_bytes: int = 1 << 20

    def override(self, overrides: dict[str, Any] | None) -> Limits:
        """These limits with a binding's `limits` applied (keys are the field names)."""
        if not overrides:
            return self
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown limit(s): {', '.join(sorted(unknown))}")
        return replace(self, **overrides)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
