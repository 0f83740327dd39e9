"""`Invocation`: what one call of an evaluator produced, the one representation of what it reported.

The gate reads these fields unchanged, through a structural protocol of its own (gating knows nothing of the
sandbox); the engine stores them as an `EvaluatorResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evaluators.sandbox.limits import ErrorCode


@dataclass
class Invocation:
    """What one call of `evaluate` produced: an outcome, or an error with a stable code."""

    outcome: str  # completed | abstained | error
    kind: str | None = None  # binary | numeric | ordinal
    measurement: bool | float | str | None = None
    abstention: dict[str, Any] | None = None
    findings: list[dict[str, Any]] = field(default_factory=list)
    explanation: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    logs: list[dict[str, str]] = field(default_factory=list)
    logs_truncated: bool = False
    duration_ms: float = 0.0
    fuel_used: int = 0
    model_usage: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def error(cls, code: ErrorCode, message: str) -> Invocation:
        return cls(outcome="error", error_code=str(code), error_message=message)
