"""Profiles that several test modules share."""

from __future__ import annotations


def exact_match_profile(name: str, *, config: str = "", more_bindings: str = "", options: str = "") -> str:
    """One required exact-match binding (`answer`, the case's `expected` against the output's text): an execution
    passes exactly when the agent said what was expected.

    The variants: `config` is the `answer` binding's config as a YAML flow mapping (`{case_sensitive: false}`);
    `more_bindings` is YAML text appended to `bindings:` (items indented as `  - id: ...`); `options` is the
    profile's options as a YAML flow mapping (`{chunk_size: 2}`).
    """
    text = f"""\
name: {name}
min_execution_score: 1.0
dimensions:
  correctness: {{weight: 1.0}}
bindings:
  - id: answer
    evaluator: vigilo/exact-match@^1.0
    dimension: correctness
"""
    if config:
        text += f"    config: {config}\n"
    text += more_bindings
    if options:
        text += f"options: {options}\n"
    return text


# The idempotency tests' profile (tests/runs): exact-match and contains("o"), in chunks of 2.
IDEM_PROFILE = exact_match_profile(
    "idem",
    more_bindings="""\
  - id: mentions
    evaluator: vigilo/contains@^1.0
    dimension: correctness
    config: {value: "o"}
""",
    options="{chunk_size: 2}",
)

# The API and admin tests' profile: the case's `expected.contains` must appear in the output.
API_PROFILE = """\
name: api-test
min_execution_score: 1.0
dimensions:
  correctness: {weight: 1.0}
bindings:
  - id: mentions
    evaluator: vigilo/contains@1.0.0
    dimension: correctness
    config: {expected_path: contains}
"""

# One LLM judge (binary correctness) with a grant of two calls to `judge-default`.
JUDGE_PROFILE = """
name: judged
min_execution_score: 1.0
dimensions:
  quality: {weight: 1.0}
bindings:
  - id: judge
    evaluator: vigilo/llm-judge@^1.0
    dimension: quality
    config: {rubric: correctness, scoring: binary}
    grants: {model: {models: [judge-default], max_calls: 2}}
"""
