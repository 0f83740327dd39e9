"""Profiles that several test modules share."""

from __future__ import annotations


def exact_match_profile(name: str) -> str:
    """One required exact-match binding (`answer`, the case's `expected` against the output's text): an execution
    passes exactly when the agent said what was expected."""
    return f"""\
name: {name}
min_execution_score: 1.0
dimensions:
  correctness: {{weight: 1.0}}
bindings:
  - id: answer
    evaluator: vigilo/exact-match@^1.0
    dimension: correctness
"""
