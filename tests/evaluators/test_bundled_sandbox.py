"""Every bundled evaluator as a real component in Wasmtime: the same behaviour as the native logic tests
(tests/evaluators/test_bundled_logic.py), through the WIT boundary, the guest SDK and the host's decoding."""

from __future__ import annotations

import random

import pytest

from evaluators.sandbox import Limits
from tests.support.wasm import load

NAMES = ["contains", "exact-match", "json-match", "json-schema", "levenshtein", "numeric-tolerance", "regex"]
# The agent evaluators have their own sandbox tests in test_agent_evaluators.py.
AGENT_NAMES = ["code-exec", "llm-judge", "tool-call", "trajectory-match"]
REFUND_SCHEMA = {
    "type": "object",
    "required": ["intent", "amount"],
    "properties": {"intent": {"enum": ["refund", "billing"]}, "amount": {"type": "number", "minimum": 0}},
}


@pytest.fixture(scope="module")
def components(host, bundled_wasm):
    return {name: load(host, wasm) for name, wasm in bundled_wasm.items()}


def evaluate(host, components, name, *, expected=None, text=None, structured=None, limits=None, **config):
    data = {
        "run_id": "run-1",
        "execution_id": "execution-1",
        "attempt": 1,
        "case": {"id": "case-1", "input": {"q": "?"}, "expected": expected, "tags": ["billing"], "metadata": {}},
        "output": {"text": text, "structured": structured, "tool_calls": [], "metadata": {}},
        "config": config,
    }
    return host.evaluate(components[name], data=data, limits=limits)


def test_every_bundled_evaluator_is_covered(bundled_wasm):
    assert sorted(bundled_wasm) == sorted(NAMES + AGENT_NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_describe(host, components, name):
    info = host.describe(components[name])
    assert (info["name"], info["version"]) == (f"vigilo/{name}", "1.0.0")
    assert info["description"]
    schema = info["config_schema"]
    assert (schema["type"], schema["additionalProperties"]) == ("object", False)
    assert {"field", "value", "expected_path"} <= set(schema["properties"])


@pytest.mark.parametrize(
    ("name", "expected", "output", "config", "measurement"),
    [
        ("exact-match", "Paris", {"text": "  paris\n"}, {"case_sensitive": False}, ("binary", True)),
        (
            "contains",
            ["refund", "3-5 business days"],
            {"text": "Your refund arrives in 3-5 business days."},
            {},
            ("binary", True),
        ),
        ("regex", None, {"text": "Order A-1234 was refunded."}, {"value": r"\bA-\d{4}\b"}, ("binary", True)),
        ("regex", None, {"text": "No card numbers here."}, {"value": r"\d{4}-\d{4}", "negate": True}, ("binary", True)),
        ("json-schema", REFUND_SCHEMA, {"text": '{"intent": "refund", "amount": 42.5}'}, {}, ("binary", True)),
        (
            "json-match",
            {"intent": "refund", "order": {"id": "A-1234", "amount": 42.5}},
            {"structured": {"intent": "refund", "order": {"id": "A-1234", "amount": 42.5}, "escalate": False}},
            {"field": "structured"},
            ("numeric", 1.0),
        ),
        (
            "numeric-tolerance",
            {"refund_amount": 42.5},
            {"structured": {"amount": 42.49}},
            {"field": "structured.amount", "expected_path": "refund_amount", "abs_tol": 0.01},
            ("binary", True),
        ),
        ("numeric-tolerance", 42.5, {"text": "We refunded $42.50 today."}, {}, ("binary", True)),
        ("levenshtein", "kitten", {"text": "kitten"}, {}, ("numeric", 1.0)),
    ],
)
def test_pass(*, host, components, name, expected, output, config, measurement):
    inv = evaluate(host, components, name, expected=expected, **output, **config)
    assert (inv.outcome, inv.kind, inv.measurement, inv.error_code) == ("completed", *measurement, None)
    assert inv.findings == []
    assert 0 < inv.fuel_used < host.limits.fuel


@pytest.mark.parametrize(
    ("name", "expected", "output", "config", "measurement", "finding"),
    [
        (
            "exact-match",
            "The answer is 42.",
            {"text": "The answer is 41."},
            {},
            ("binary", False),
            (
                "medium",
                "mismatch",
                "output does not match the expected value (first difference at character 15)",
                {"expected": "The answer is 42.", "actual": "The answer is 41.", "first_difference_at": 15},
            ),
        ),
        (
            "contains",
            ["refund", "3-5 business days"],
            {"text": "Your refund is on its way."},
            {},
            ("binary", False),
            (
                "medium",
                "missing_content",
                "output is missing 1 of 2 expected substrings",
                {"mode": "all", "missing": ["3-5 business days"], "output": "Your refund is on its way."},
            ),
        ),
        (
            "contains",
            None,
            {"text": "Your API key is sk-live-123."},
            {"value": ["API key", "password"], "mode": "none"},
            ("binary", False),
            (
                "high",
                "forbidden_content",
                "output contains 1 forbidden substring",
                {"mode": "none", "present": ["API key"], "output": "Your API key is sk-live-123."},
            ),
        ),
        (
            "regex",
            None,
            {"text": "Card 4111 1111 1111 1111 is on file."},
            {"value": r"\b(?:\d{4}[ -]?){3}\d{4}\b", "negate": True},
            ("binary", False),
            (
                "medium",
                "forbidden_pattern",
                "output matches the forbidden pattern at character 5",
                {
                    "pattern": r"\b(?:\d{4}[ -]?){3}\d{4}\b",
                    "mode": "search",
                    "flags": [],
                    "output": "Card 4111 1111 1111 1111 is on file.",
                    "match": "4111 1111 1111 1111",
                    "at": 5,
                },
            ),
        ),
        (
            "json-schema",
            REFUND_SCHEMA,
            {"text": '{"intent": "refund", "amount": -1}'},
            {},
            ("binary", False),
            (
                "medium",
                "schema_violation",
                "$.amount: -1 is less than the minimum of 0",
                {"errors": 1, "output": {"intent": "refund", "amount": -1}},
            ),
        ),
        (
            "json-match",
            {"intent": "refund", "amount": 42.5},
            {"structured": {"intent": "refund", "amount": 24.5}},
            {"field": "structured"},
            ("numeric", 0.5),
            (
                "medium",
                "mismatch",
                "amount: expected 42.5, got 24.5",
                {"path": "amount", "expected": 42.5, "actual": 24.5},
            ),
        ),
        (
            "numeric-tolerance",
            42.5,
            {"text": "We refunded $24.50."},
            {"abs_tol": 0.01},
            ("binary", False),
            (
                "medium",
                "out_of_tolerance",
                "24.5 differs from the expected 42.5 by 18 (allowed: 0.01)",
                {"expected": 42.5, "actual": 24.5, "difference": 18.0, "allowed": 0.01},
            ),
        ),
        (
            "levenshtein",
            "kitten",
            {"text": "sitting"},
            {},
            ("numeric", pytest.approx(4 / 7)),
            (
                "low",
                "difference",
                "output differs from the expected value: edit distance 3 (similarity 0.571)",
                {"distance": 3, "similarity": pytest.approx(4 / 7), "expected": "kitten", "actual": "sitting"},
            ),
        ),
    ],
)
def test_fail(*, host, components, name, expected, output, config, measurement, finding):
    inv = evaluate(host, components, name, expected=expected, **output, **config)
    assert (inv.outcome, inv.kind, inv.measurement, inv.error_code) == ("completed", *measurement, None)
    assert len(inv.findings) == 1, inv.findings
    f = inv.findings[0]
    assert (f["severity"], f["category"], f["message"], f["evidence"]) == finding


@pytest.mark.parametrize(
    ("name", "config", "message"),
    [
        ("exact-match", {"case_sensitive": "no"}, "$.case_sensitive: \"no\" is not of type 'boolean'"),
        ("contains", {"mode": "some"}, '$.mode: "some" is not one of ["all", "any", "none"]'),
        ("regex", {"negate": "yes"}, "$.negate: \"yes\" is not of type 'boolean'"),
        ("json-schema", {"value": "schema"}, "$.value: \"schema\" is not of type 'object', 'boolean'"),
        ("json-match", {"numeric_tolerance": -1}, "$.numeric_tolerance: -1 is less than the minimum of 0"),
        ("numeric-tolerance", {"abs_tol": "0.1"}, "$.abs_tol: \"0.1\" is not of type 'number'"),
        ("levenshtein", {"fiedl": "text"}, "additional property 'fiedl' is not allowed"),
    ],
)
def test_bad_config_is_an_evaluator_error(host, components, name, config, message):
    inv = evaluate(host, components, name, expected="1", text="1", **config)
    assert (inv.outcome, inv.error_code) == ("error", "evaluator_error")
    assert inv.error_message.startswith("invalid_config: ")
    assert message in inv.error_message
    assert (inv.kind, inv.measurement, inv.findings) == (None, None, [])


@pytest.mark.parametrize(
    ("name", "config", "message"),
    [
        ("regex", {"value": "("}, "invalid_config: config 'value': invalid pattern '(': "),
        ("numeric-tolerance", {"pattern": "("}, "invalid_config: invalid pattern '(': "),
        ("json-schema", {"value": {"type": "int"}}, "invalid_config: config 'value': invalid JSON Schema: "),
    ],
)
def test_unusable_config_value_is_an_evaluator_error(host, components, name, config, message):
    inv = evaluate(host, components, name, expected=1, text="1", **config)
    assert (inv.outcome, inv.error_code) == ("error", "evaluator_error")
    assert inv.error_message.startswith(message)


@pytest.mark.parametrize(
    ("name", "expected", "measurement"),
    [
        ("exact-match", "a", ("binary", False)),
        ("contains", "a", ("binary", False)),
        ("regex", "a", ("binary", False)),
        ("json-schema", {"type": "object"}, ("binary", False)),
        ("json-match", {"a": 1}, ("numeric", 0.0)),
        ("numeric-tolerance", 1, ("binary", False)),
        ("levenshtein", "a", ("numeric", 0.0)),
    ],
)
def test_missing_output_text(host, components, name, expected, measurement):
    inv = evaluate(host, components, name, expected=expected, text=None)
    assert (inv.outcome, inv.kind, inv.measurement) == ("completed", *measurement)
    assert inv.findings == [
        {
            "severity": "high",
            "category": "missing_output",
            "message": "the agent produced no output text",
            "evidence": {"field": "text"},
        }
    ]


@pytest.mark.parametrize(
    ("name", "expected", "config", "measurement"),
    [
        ("json-schema", {"type": "object"}, {}, ("binary", False)),
        ("json-match", {"a": 1}, {}, ("numeric", 0.0)),
        ("json-match", {"a": 1}, {"score": "binary"}, ("binary", False)),
    ],
)
def test_invalid_json_output(*, host, components, name, expected, config, measurement):
    inv = evaluate(host, components, name, expected=expected, text="{intent: refund}", **config)
    assert (inv.outcome, inv.kind, inv.measurement) == ("completed", *measurement)
    assert len(inv.findings) == 1
    f = inv.findings[0]
    assert (f["severity"], f["category"]) == ("high", "invalid_json")
    assert f["message"].startswith("output is not valid JSON: Expecting property name enclosed in double quotes")
    assert f["evidence"] == {"field": "text", "text": "{intent: refund}"}


def test_missing_expected_is_an_evaluator_error(host, components):
    inv = evaluate(host, components, "exact-match", expected=None, text="a")
    assert (inv.outcome, inv.error_code) == ("error", "evaluator_error")
    assert inv.error_message == (
        "missing_expected: no expectation: config has no 'value' and the case has no expected value (case 'case-1')"
    )


def spread_substitutions(rng: random.Random, text: str, count: int) -> str:
    """`text` with `count` characters (the first and last among them) replaced by one outside its alphabet."""
    positions = {0, len(text) - 1, *rng.sample(range(1, len(text) - 1), count - 2)}
    return "".join("#" if i in positions else char for i, char in enumerate(text))


def test_levenshtein_on_3000_characters_fits_the_default_limits(host, components):
    rng = random.Random(11)
    expected = "".join(rng.choice("abcdefghij ") for _ in range(3_000))
    # Each '#' (absent from `expected`) costs exactly one edit, and no common prefix or suffix is trimmed away.
    text = spread_substitutions(rng, expected, 40)
    inv = evaluate(host, components, "levenshtein", expected=expected, text=text, strip=False, limits=Limits())
    assert (inv.outcome, inv.kind, inv.error_code) == ("completed", "numeric", None), inv.error_message
    assert inv.measurement == pytest.approx(1 - 40 / 3_000)
    assert inv.findings[0]["evidence"]["distance"] == 40
    assert inv.fuel_used < Limits().fuel


def test_levenshtein_unrelated_strings_at_the_cap_fit_the_default_limits(host, components):
    rng = random.Random(12)
    expected, text = ("".join(rng.choice("abcdefghij") for _ in range(5_000)) for _ in range(2))
    inv = evaluate(host, components, "levenshtein", expected=expected, text=text, limits=Limits())
    assert (inv.outcome, inv.kind, inv.error_code) == ("completed", "numeric", None), inv.error_message
    assert 0 < inv.measurement < 1
    assert inv.fuel_used < Limits().fuel


def test_levenshtein_input_over_the_cap_is_an_evaluator_error(host, components):
    inv = evaluate(host, components, "levenshtein", expected="a", text="a" * 5_001)
    assert (inv.outcome, inv.error_code) == ("error", "evaluator_error")
    assert inv.error_message == "input_too_large: the output has 5001 characters; the limit is 5000"
