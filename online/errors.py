"""The errors callers of online handle."""

from __future__ import annotations

MAX_ERRORS = 50


class EventInvalid(ValueError):
    """An event (or an agents file, an online profile) was refused. `errors` is a list of (where, message)."""

    def __init__(self, what: str, errors: list[tuple[str, str]]) -> None:
        self.what = what
        self.errors = errors[:MAX_ERRORS]
        lines = "\n".join(f"  {where}: {message}" for where, message in self.errors)
        super().__init__(f"{what} is invalid:\n{lines}")


class AgentHalted(RuntimeError):
    """The agent is halted: no event is accepted until an operator resumes it."""

    def __init__(self, *, agent: str, reason: str, halt_id: str | None) -> None:
        self.agent, self.reason, self.halt_id = agent, reason, halt_id
        super().__init__(f"agent {agent!r} is halted: {reason}")


class NotPermitted(PermissionError):
    """The caller may not do this to this agent (another agent's events or corrections, its own resume)."""


class StateConflict(RuntimeError):
    """The agent is not in a state that allows the change (resuming an active agent); nothing was written."""
