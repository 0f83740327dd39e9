"""The errors callers of runs handle: input that was refused, an idempotency key used for another request, a
state change the row's state does not allow."""

from __future__ import annotations

MAX_ERRORS = 50


class ValidationFailed(ValueError):
    """Input was refused. `errors` is a list of (where, message); str() is readable on its own."""

    def __init__(self, what: str, errors: list[tuple[str, str]]) -> None:
        self.what = what
        self.errors = errors[:MAX_ERRORS]
        more = f" (and {len(errors) - MAX_ERRORS} more)" if len(errors) > MAX_ERRORS else ""
        lines = "\n".join(f"  {where}: {message}" for where, message in self.errors)
        super().__init__(f"{what} is invalid:\n{lines}{more}")


class IdempotencyConflict(ValueError):
    """The idempotency key was used before with a different request."""


class TransitionError(RuntimeError):
    """The row was not in a state (or lease) that allows the change; nothing was written."""
