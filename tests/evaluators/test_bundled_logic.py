"""Logic of the bundled evaluators (evaluators/bundled/<name>/app.py), run natively without a build.

Each app module ends with `WitWorld = evaluator.world()`, which imports the bindings generated at build
time; the tests execute the module without that last line and call `evaluator.run(...)`.
"""

from __future__ import annotations

import importlib
import random
import sys
import types
from pathlib import Path

import pytest

EVALUATORS_DIR = Path(__file__).resolve().parents[2] / "evaluators"
BUNDLED_DIR = EVALUATORS_DIR / "bundled"
for _path in (EVALUATORS_DIR / "guest", BUNDLED_DIR / "_common"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

_sdk = importlib.import_module("vigilo_sdk")
_schema = importlib.import_module("vigilo_sdk.schema")
Evaluation = _sdk.Evaluation
EvaluatorError = _sdk.EvaluatorError

NAMES = ["exact-match", "contains", "regex", "json-schema", "json-match", "numeric-tolerance", "levenshtein"]
WORLD_LINE = "WitWorld = evaluator.world()"
_loaded: dict[str, object] = {}


def load(name: str):
    """The `evaluator` of a bundled app module, executed without its final `WitWorld = ...` line."""
    if name not in _loaded:
        path = BUNDLED_DIR / name / "app.py"
        lines = path.read_text(encoding="utf-8").rstrip("\n").split("\n")
        assert lines[-1] == WORLD_LINE
        module = types.ModuleType(f"bundled_{name.replace('-', '_')}")
        module.__file__ = str(path)
        exec(compile("\n".join(lines[:-1]) + "\n", str(path), "exec"), module.__dict__)
        _loaded[name] = module.evaluator
    return _loaded[name]


def case(expected=None, **extra) -> dict:
    return {
        "id": "case-1",
        "input": {"q": "?"},
        "expected": expected,
        "context": None,
        "tags": [],
        "metadata": {},
        **extra,
    }


def output(text=None, structured=None) -> dict:
    return {"text": text, "structured": structured, "tool_calls": [], "trace": [], "metadata": {}}


def run(name: str, *, expected=None, text=None, structured=None, **config) -> Evaluation:
    return load(name).run(case=case(expected), actual=output(text, structured), config=config)


def error(name: str, *, expected=None, text=None, structured=None, **config) -> EvaluatorError:
    with pytest.raises(EvaluatorError) as info:
        run(name, expected=expected, text=text, structured=structured, **config)
    return info.value


def only_finding(result: Evaluation):
    assert len(result.findings) == 1, result.findings
    return result.findings[0]


# --- common behaviour -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_metadata_and_config_schema(name):
    evaluator = load(name)
    assert evaluator.name == f"vigilo/{name}"
    assert evaluator.version == "1.0.0"
    assert evaluator.description
    schema = evaluator.config_schema
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert {"field", "value", "expected_path"} <= set(schema["properties"])
    assert _schema.schema_check(schema) == []


@pytest.mark.parametrize("name", NAMES)
def test_unknown_config_key_is_refused(name):
    err = error(name, expected="x", text="x", fiedl="text")
    assert err.code == "invalid_config"
    assert "additional property 'fiedl' is not allowed" in err.message


@pytest.mark.parametrize(
    ("name", "config", "message"),
    [
        ("exact-match", {"case_sensitive": "no"}, "$.case_sensitive: \"no\" is not of type 'boolean'"),
        ("exact-match", {"strip": 1}, "$.strip: 1 is not of type 'boolean'"),
        (
            "exact-match",
            {"normalize_whitespace": None},
            "$.normalize_whitespace: null is not of type 'boolean'",
        ),
        ("contains", {"mode": "some"}, '$.mode: "some" is not one of ["all", "any", "none"]'),
        (
            "regex",
            {"flags": ["verbose"]},
            '$.flags[0]: "verbose" is not one of ["dotall", "ignorecase", "multiline"]',
        ),
        ("regex", {"flags": "ignorecase"}, "$.flags: \"ignorecase\" is not of type 'array'"),
        ("regex", {"mode": "match"}, '$.mode: "match" is not one of ["search", "fullmatch"]'),
        ("regex", {"negate": "yes"}, "$.negate: \"yes\" is not of type 'boolean'"),
        ("regex", {"value": 5}, "$.value: 5 is not of type 'string'"),
        ("json-schema", {"value": "schema"}, "$.value: \"schema\" is not of type 'object', 'boolean'"),
        (
            "json-match",
            {"list_mode": "sorted"},
            '$.list_mode: "sorted" is not one of ["ordered", "same_elements", "subset", "superset"]',
        ),
        ("json-match", {"numeric_tolerance": -1}, "$.numeric_tolerance: -1 is less than the minimum of 0"),
        ("json-match", {"keys": "a.b"}, "$.keys: \"a.b\" is not of type 'array'"),
        ("json-match", {"keys": []}, "$.keys: has 0 items, fewer than the minimum of 1"),
        ("json-match", {"score": "percent"}, '$.score: "percent" is not one of ["fraction", "binary"]'),
        ("json-match", {"ignore_extra_keys": 0}, "$.ignore_extra_keys: 0 is not of type 'boolean'"),
        ("numeric-tolerance", {"abs_tol": "0.1"}, "$.abs_tol: \"0.1\" is not of type 'number'"),
        ("numeric-tolerance", {"rel_tol": -0.1}, "$.rel_tol: -0.1 is less than the minimum of 0"),
        ("numeric-tolerance", {"value": "42"}, "$.value: \"42\" is not of type 'number'"),
        ("numeric-tolerance", {"pattern": 1}, "$.pattern: 1 is not of type 'string'"),
        ("levenshtein", {"case_sensitive": 1}, "$.case_sensitive: 1 is not of type 'boolean'"),
        ("levenshtein", {"field": "output"}, '$.field: "output" does not match'),
        ("contains", {"field": "structured."}, '$.field: "structured." does not match'),
        ("exact-match", {"expected_path": 3}, "$.expected_path: 3 is not of type 'string'"),
    ],
)
def test_config_of_the_wrong_type_is_refused(name, config, message):
    err = error(name, expected="1", text="1", **config)
    assert err.code == "invalid_config"
    assert message in err.message


def test_contains_config_value_must_be_strings():
    err = error("contains", text="x", value=[1])
    assert err.code == "invalid_config"
    assert err.message.startswith("$.value: [1] is not valid under any of the anyOf schemas")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("exact-match", "a"),
        ("contains", "a"),
        ("regex", "a"),
        ("numeric-tolerance", 1),
        ("levenshtein", "a"),
    ],
)
def test_missing_output_text_fails_the_measurement(name, expected):
    result = run(name, expected=expected, text=None)
    f = only_finding(result)
    assert (f.severity, f.category, f.message) == (
        "high",
        "missing_output",
        "the agent produced no output text",
    )
    assert f.evidence == {"field": "text"}
    if name == "levenshtein":
        assert (result.kind, result.value) == ("numeric", 0.0)
    else:
        assert (result.kind, result.value) == ("binary", False)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("json-schema", {"type": "object"}), ("json-match", {"a": 1})],
)
def test_missing_output_for_json_evaluators(name, expected):
    result = (
        run(name, expected=expected, text=None, score="binary")
        if name == "json-match"
        else run(name, expected=expected, text=None)
    )
    assert (result.kind, result.value) == ("binary", False)
    assert only_finding(result).category == "missing_output"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("exact-match", "a"), ("contains", "a"), ("regex", "a"), ("levenshtein", "a"), ("json-schema", True)],
)
def test_missing_structured_output(name, expected):
    result = run(name, expected=expected, text="a", field="structured")
    f = only_finding(result)
    assert (f.category, f.message) == ("missing_output", "the agent produced no structured output")
    assert result.value in (False, 0.0)


def test_missing_structured_path():
    result = run("exact-match", expected="a", structured={"answer": {"x": 1}}, field="structured.answer.text")
    assert result.value is False
    f = only_finding(result)
    assert (f.severity, f.category) == ("high", "missing_output")
    assert f.message == "the structured output has no value at 'answer.text'"
    assert f.evidence == {"field": "structured.answer.text", "structured": {"answer": {"x": 1}}}


@pytest.mark.parametrize("name", ["exact-match", "contains", "regex", "json-schema", "json-match", "levenshtein"])
@pytest.mark.parametrize(
    ("expected", "config", "names"),
    [
        (None, {}, "the case has no expected value"),
        ({"other": "x"}, {"expected_path": "answer"}, "the case's expected value has nothing at 'answer'"),
        ({"answer": None}, {"expected_path": "answer"}, "the case's expected value has nothing at 'answer'"),
        (
            {"items": ["a"]},
            {"expected_path": "items.3"},
            "the case's expected value has nothing at 'items.3'",
        ),
    ],
)
def test_missing_expected_is_an_error(name, expected, config, names):
    err = error(name, expected=expected, text='"a"', **config)
    assert err.code == "missing_expected"
    assert names in err.message
    assert "case 'case-1'" in err.message


def test_value_takes_precedence_over_expected_path():
    assert run("exact-match", expected={"answer": "no"}, text="yes", value="yes", expected_path="answer").value is True
    assert run("exact-match", expected={"answer": "no"}, text="yes", expected_path="answer").value is False


def test_expected_path_with_list_index():
    expected = {"answers": [{"text": "zero"}, {"text": "one"}]}
    assert run("exact-match", expected=expected, text="one", expected_path="answers.1.text").value is True


@pytest.mark.parametrize(
    ("structured", "field", "expected", "passed"),
    [
        ({"b": 1, "a": [1, "é"]}, "structured", '{"a": [1, "é"], "b": 1}', True),
        ({"answer": "Paris"}, "structured.answer", "Paris", True),
        ({"answer": {"city": "Paris"}}, "structured.answer.city", "Paris", True),
        ({"steps": ["a", "b"]}, "structured.steps.1", "b", True),
        ({"n": 3}, "structured.n", "3", True),
        ({"n": None}, "structured.n", "null", True),
        ({"n": 3}, "structured.n", "4", False),
    ],
)
def test_text_evaluators_read_structured_fields(structured, field, expected, passed):
    assert run("exact-match", expected=expected, text="ignored", structured=structured, field=field).value is passed


def test_long_evidence_is_truncated():
    result = run("exact-match", expected="a", text="b" * 1000)
    evidence = only_finding(result).evidence
    assert evidence["actual"] == "b" * 200 + "... (1000 chars)"


# --- exact-match ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "text", "config", "passed"),
    [
        ("Paris", "Paris", {}, True),
        ("Paris", "  Paris\n", {}, True),
        ("Paris", "  Paris\n", {"strip": False}, False),
        ("Paris", "paris", {}, False),
        ("Paris", "PARIS", {"case_sensitive": False}, True),
        ("Straße", "STRASSE", {"case_sensitive": False}, True),
        ("a b c", "a  b\n\tc", {}, False),
        ("a b c", "a  b\n\tc", {"normalize_whitespace": True}, True),
        ("a b", "  a   b  ", {"normalize_whitespace": True, "strip": False}, False),
        (" a b ", "  a   b  ", {"normalize_whitespace": True, "strip": False}, True),
        (42, "42", {}, True),
        ({"b": 1, "a": 2}, '{"a": 2, "b": 1}', {}, True),
        ({"b": 1, "a": 2}, '{"b": 1, "a": 2}', {}, False),
        ("", "   ", {}, True),
    ],
)
def test_exact_match(expected, text, config, passed):
    result = run("exact-match", expected=expected, text=text, **config)
    assert result.kind == "binary"
    assert result.value is passed
    assert (result.findings == []) is passed


def test_exact_match_failure_finding():
    result = run("exact-match", expected="The answer is 42.", text="The answer is 41.")
    assert result.value is False
    f = only_finding(result)
    assert (f.severity, f.category) == ("medium", "mismatch")
    assert f.message == "output does not match the expected value (first difference at character 15)"
    assert f.evidence == {
        "expected": "The answer is 42.",
        "actual": "The answer is 41.",
        "first_difference_at": 15,
    }
    assert result.explanation == f.message


def test_exact_match_prefix_difference_position():
    f = only_finding(run("exact-match", expected="abc", text="abcdef"))
    assert f.evidence["first_difference_at"] == 3


# --- contains ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "text", "config", "passed"),
    [
        ("Paris", "The capital is Paris.", {}, True),
        ("paris", "The capital is Paris.", {}, False),
        ("paris", "The capital is Paris.", {"case_sensitive": False}, True),
        (["Paris", "France"], "Paris, France", {}, True),
        (["Paris", "France"], "Paris, Texas", {}, False),
        (["Paris", "France"], "Paris, Texas", {"mode": "any"}, True),
        (["Lyon", "France"], "Paris, Texas", {"mode": "any"}, False),
        (["LYON", "texas"], "Paris, Texas", {"mode": "any", "case_sensitive": False}, True),
        (["password", "ssn"], "all good", {"mode": "none"}, True),
        (["password", "ssn"], "your password is", {"mode": "none"}, False),
        (["PASSWORD"], "your password is", {"mode": "none"}, True),
        (["PASSWORD"], "your password is", {"mode": "none", "case_sensitive": False}, False),
    ],
)
def test_contains(expected, text, config, passed):
    result = run("contains", expected=expected, text=text, **config)
    assert (result.kind, result.value) == ("binary", passed)
    assert (result.findings == []) is passed


def test_contains_all_lists_the_missing_substrings():
    result = run("contains", expected=["Paris", "France", "Seine"], text="Paris is on the Seine")
    f = only_finding(result)
    assert (f.severity, f.category) == ("medium", "missing_content")
    assert f.message == "output is missing 1 of 3 expected substrings"
    assert f.evidence == {"mode": "all", "missing": ["France"], "output": "Paris is on the Seine"}


def test_contains_any_lists_all_expected():
    f = only_finding(run("contains", expected=["a", "b"], text="xyz", mode="any"))
    assert f.message == "output contains none of the 2 expected substrings"
    assert f.evidence == {"mode": "any", "missing": ["a", "b"], "output": "xyz"}


def test_contains_none_lists_the_forbidden_substrings_present():
    result = run("contains", expected=["secret", "token", "key"], text="the secret token", mode="none")
    f = only_finding(result)
    assert (f.severity, f.category) == ("high", "forbidden_content")
    assert f.message == "output contains 2 forbidden substrings"
    assert f.evidence == {"mode": "none", "present": ["secret", "token"], "output": "the secret token"}


def test_contains_value_in_config():
    assert run("contains", value=["a", "b"], text="ab").value is True


@pytest.mark.parametrize(
    ("expected", "code"), [(5, "invalid_expected"), (["a", 1], "invalid_expected"), ([], "invalid_expected")]
)
def test_contains_unusable_expected(expected, code):
    err = error("contains", expected=expected, text="a")
    assert err.code == code
    assert err.message.startswith("the case's expected value: ")


# --- regex ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "text", "config", "passed"),
    [
        (r"\d{3}", "call 555 now", {}, True),
        (r"\d{3}", "call now", {}, False),
        (r"\d{3}", "call 555 now", {"mode": "fullmatch"}, False),
        (r"call \d+ now", "call 555 now", {"mode": "fullmatch"}, True),
        ("hello", "HELLO", {}, False),
        ("hello", "HELLO", {"flags": ["ignorecase"]}, True),
        ("^b$", "a\nb\nc", {}, False),
        ("^b$", "a\nb\nc", {"flags": ["multiline"]}, True),
        ("a.b", "a\nb", {}, False),
        ("a.b", "a\nb", {"flags": ["dotall"]}, True),
        ("^B.C$", "a\nb\nc", {"flags": ["multiline", "dotall", "ignorecase"]}, True),
        ("sorry", "Here you go", {"negate": True}, True),
        ("sorry", "I am sorry", {"negate": True}, False),
        ("x+", "xxx", {"mode": "fullmatch", "negate": True}, False),
    ],
)
def test_regex(pattern, text, config, passed):
    result = run("regex", expected=pattern, text=text, **config)
    assert (result.kind, result.value) == ("binary", passed)
    assert (result.findings == []) is passed


def test_regex_failure_finding():
    f = only_finding(run("regex", value=r"^\d+$", text="abc", flags=["multiline"]))
    assert (f.severity, f.category, f.message) == (
        "medium",
        "pattern_mismatch",
        "output does not match the pattern",
    )
    assert f.evidence == {"pattern": r"^\d+$", "mode": "search", "flags": ["multiline"], "output": "abc"}


def test_regex_fullmatch_failure_message():
    f = only_finding(run("regex", value="ab", text="abc", mode="fullmatch"))
    assert f.message == "output does not fully match the pattern"


def test_regex_negated_failure_shows_the_match():
    f = only_finding(run("regex", value=r"\bsorry\b", text="I am sorry about that", negate=True))
    assert (f.category, f.message) == (
        "forbidden_pattern",
        "output matches the forbidden pattern at character 5",
    )
    assert f.evidence["match"] == "sorry"
    assert f.evidence["at"] == 5


@pytest.mark.parametrize(
    ("config", "expected", "source"),
    [({"value": "(unclosed"}, None, "config 'value'"), ({}, {"p": "[a-"}, "expected_path 'p'")],
)
def test_regex_invalid_pattern_is_a_config_error(config, expected, source):
    if expected is not None:
        config = {**config, "expected_path": "p"}
    err = error("regex", expected=expected, text="x", **config)
    assert err.code == "invalid_config"
    assert err.message.startswith(f"{source}: invalid pattern")


def test_regex_non_string_pattern_from_case():
    err = error("regex", expected=5, text="5")
    assert (err.code, err.message) == (
        "invalid_expected",
        "the case's expected value: the pattern must be a string",
    )


# --- json-schema ------------------------------------------------------------------------------------

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "citations": {"type": "array", "items": {"type": "string"}}},
    "required": ["name"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("text", "passed"),
    [
        ('{"name": "Ada", "citations": ["a"]}', True),
        ('{"name": "Ada"}', True),
        ('{"citations": []}', False),
        ('{"name": "Ada", "age": 3}', False),
        ("[]", False),
    ],
)
def test_json_schema(text, passed):
    result = run("json-schema", expected=PERSON, text=text)
    assert (result.kind, result.value) == ("binary", passed)
    assert (result.findings == []) is passed


def test_json_schema_failure_lists_the_errors():
    result = run("json-schema", value=PERSON, text='{"citations": ["a", "b", 7], "extra": 1}')
    assert result.value is False
    assert [(f.severity, f.category, f.message) for f in result.findings] == [
        ("medium", "schema_violation", "$: 'name' is a required property"),
        ("medium", "schema_violation", "$.citations[2]: 7 is not of type 'string'"),
        ("medium", "schema_violation", "$: additional property 'extra' is not allowed"),
    ]
    assert result.findings[0].evidence == {"errors": 3, "output": {"citations": ["a", "b", 7], "extra": 1}}
    assert result.explanation == "output violates the JSON Schema (3 errors)"


def test_json_schema_caps_the_listed_errors():
    schema = {"type": "array", "items": {"type": "string"}}
    result = run("json-schema", value=schema, text=str(list(range(25))))
    assert len(result.findings) == 11
    assert result.findings[9].message == "$[9]: 9 is not of type 'string'"
    last = result.findings[10]
    assert (last.severity, last.message) == ("info", "15 more schema errors not shown")
    assert result.explanation == "output violates the JSON Schema (25 errors)"


def test_json_schema_invalid_json_output():
    result = run("json-schema", expected=PERSON, text='{"name": "Ada",}')
    assert (result.kind, result.value) == ("binary", False)
    f = only_finding(result)
    assert (f.severity, f.category) == ("high", "invalid_json")
    assert f.message.startswith("output is not valid JSON: ")
    assert f.evidence == {"field": "text", "text": '{"name": "Ada",}'}


def test_json_schema_on_structured_output():
    assert run("json-schema", expected=PERSON, structured={"name": "Ada"}, field="structured").value is True
    nested = {"result": {"name": 5}}
    result = run("json-schema", expected=PERSON, structured=nested, field="structured.result")
    assert [f.message for f in result.findings] == ["$.name: 5 is not of type 'string'"]


def test_json_schema_from_expected_path_and_boolean_schema():
    assert run("json-schema", expected={"schema": {"type": "integer"}}, text="3", expected_path="schema").value is True
    assert run("json-schema", value=True, text="null").value is True
    assert run("json-schema", value=False, text="1").value is False


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "int"}, "config 'value': invalid JSON Schema: #/type: unknown type 'int'"),
        (
            {"required": "name"},
            "config 'value': invalid JSON Schema: #/required: must be a list of property names",
        ),
        ({"$ref": "#/$defs/x"}, "config 'value': invalid JSON Schema: #/$ref: '#/$defs/x' does not resolve"),
        (
            {"pattern": "("},
            "config 'value': invalid JSON Schema: #/pattern: '(' is not a valid regular expression",
        ),
    ],
)
def test_json_schema_invalid_schema_is_a_config_error(schema, message):
    err = error("json-schema", value=schema, text="{}")
    assert err.code == "invalid_config"
    assert err.message.startswith(message)


def test_json_schema_invalid_schema_from_the_case():
    err = error("json-schema", expected={"type": "int"}, text="{}")
    assert err.code == "invalid_config"
    assert err.message.startswith("the case's expected value: invalid JSON Schema: #/type: unknown type 'int'")
    err = error("json-schema", expected="a string", text="{}")
    assert (err.code, err.message) == (
        "invalid_expected",
        "the case's expected value: a JSON Schema must be an object or a boolean",
    )


# --- json-match -------------------------------------------------------------------------------------

ORDER = {"id": 7, "customer": {"name": "Ada", "city": "London"}, "items": ["tea", "cake"], "total": 12.5}


def json_match(expected, actual, **config) -> Evaluation:
    return run("json-match", expected=expected, structured=actual, field="structured", **config)


def test_json_match_full_match():
    result = json_match(ORDER, dict(ORDER))
    assert (result.kind, result.value, result.findings) == ("numeric", 1.0, [])
    assert result.explanation == "5 of 5 compared keys match"


def test_json_match_fraction_and_findings():
    got = {"id": 7, "customer": {"name": "Ada", "city": "Paris"}, "items": ["cake", "tea"]}
    result = json_match(ORDER, got)
    assert (result.kind, result.value) == ("numeric", 0.4)
    assert [(f.severity, f.category, f.message) for f in result.findings] == [
        ("medium", "mismatch", 'customer.city: expected "London", got "Paris"'),
        ("medium", "mismatch", 'items: expected ["tea", "cake"], got ["cake", "tea"]'),
        ("medium", "mismatch", "total: missing (expected 12.5)"),
    ]
    assert result.findings[0].evidence == {"path": "customer.city", "expected": "London", "actual": "Paris"}
    assert result.findings[1].evidence == {
        "path": "items",
        "expected": ["tea", "cake"],
        "actual": ["cake", "tea"],
        "list_mode": "ordered",
        "first_difference_at": 0,
    }
    assert result.findings[2].evidence == {"path": "total", "expected": 12.5}
    assert result.explanation == "2 of 5 compared keys match"


def test_json_match_binary_score():
    assert json_match(ORDER, dict(ORDER), score="binary").value is True
    result = json_match(ORDER, {**ORDER, "id": 8}, score="binary")
    assert (result.kind, result.value) == ("binary", False)
    assert [f.message for f in result.findings] == ["id: expected 7, got 8"]


def test_json_match_parses_text():
    result = run("json-match", expected={"a": 1, "b": 2}, text='{"a": 1, "b": 3}')
    assert result.value == 0.5


@pytest.mark.parametrize(("score", "kind", "value"), [("fraction", "numeric", 0.0), ("binary", "binary", False)])
def test_json_match_invalid_json_output(score, kind, value):
    result = run("json-match", expected={"a": 1}, text="not json", score=score)
    assert (result.kind, result.value) == (kind, value)
    f = only_finding(result)
    assert (f.severity, f.category) == ("high", "invalid_json")
    assert f.message.startswith("output is not valid JSON: ")


def test_json_match_missing_output_fraction_is_zero():
    result = run("json-match", expected={"a": 1}, text=None)
    assert (result.kind, result.value) == ("numeric", 0.0)
    assert only_finding(result).category == "missing_output"


def test_json_match_extra_keys():
    got = {**ORDER, "note": "x", "customer": {**ORDER["customer"], "vip": True}}
    assert json_match(ORDER, got).value == 1.0
    result = json_match(ORDER, got, ignore_extra_keys=False)
    assert result.value == 5 / 7
    assert [f.message for f in result.findings] == [
        'note: unexpected key (value "x")',
        "customer.vip: unexpected key (value true)",
    ]


def test_json_match_ignore_extra_keys_inside_list_elements():
    expected = {"rows": [{"a": 1}]}
    got = {"rows": [{"a": 1, "b": 2}]}
    assert json_match(expected, got).value == 1.0
    assert json_match(expected, got, ignore_extra_keys=False).value == 0.0


@pytest.mark.parametrize(
    ("want", "got", "mode", "passed", "detail"),
    [
        ([1, 2, 3], [1, 2, 3], "ordered", True, {}),
        ([1, 2, 3], [3, 2, 1], "ordered", False, {"first_difference_at": 0}),
        ([1, 2], [1, 2, 3], "ordered", False, {"expected_length": 2, "actual_length": 3}),
        ([1, 2, 2], [2, 1, 2], "same_elements", True, {}),
        ([1, 2, 2], [2, 1, 1], "same_elements", False, {"missing": [2], "unexpected": [1]}),
        ([1, 2], [1, 2, 3], "same_elements", False, {"unexpected": [3]}),
        ([1, 2, 3], [3, 1], "subset", True, {}),
        ([1, 2, 3], [], "subset", True, {}),
        ([1, 2], [1, 4], "subset", False, {"unexpected": [4]}),
        ([1, 2], [2, 1, 5], "superset", True, {}),
        ([1, 2], [1, 5], "superset", False, {"missing": [2]}),
        ([{"k": "a"}], [{"k": "a", "x": 1}, {"k": "b"}], "superset", True, {}),
    ],
)
def test_json_match_list_modes(want, got, mode, passed, detail):
    result = json_match({"l": want}, {"l": got}, list_mode=mode)
    assert result.value == (1.0 if passed else 0.0)
    if not passed:
        evidence = only_finding(result).evidence
        assert evidence == {"path": "l", "expected": want, "actual": got, "list_mode": mode, **detail}


def test_json_match_numeric_tolerance():
    assert json_match({"x": 1.0}, {"x": 1.05}).value == 0.0
    assert json_match({"x": 1.0}, {"x": 1.05}, numeric_tolerance=0.1).value == 1.0
    assert json_match({"x": 1}, {"x": 1.0}).value == 1.0
    assert (
        json_match({"x": [1.0, 2.0]}, {"x": [2.01, 0.99]}, numeric_tolerance=0.02, list_mode="same_elements").value
        == 1.0
    )
    assert json_match({"x": 1}, {"x": True}).value == 0.0
    assert json_match({"x": True}, {"x": 1}).value == 0.0
    assert json_match({"x": "1"}, {"x": 1}).value == 0.0


def test_json_match_case_sensitivity():
    assert json_match({"c": "London"}, {"c": "LONDON"}).value == 0.0
    assert json_match({"c": "London", "l": ["A"]}, {"c": "LONDON", "l": ["a"]}, case_sensitive=False).value == 1.0


def test_json_match_keys():
    got = {"id": 9, "customer": {"name": "Ada", "city": "Paris"}, "items": ["tea", "cake"]}
    result = json_match(ORDER, got, keys=["customer.name", "items", "id"])
    assert result.value == 2 / 3
    assert [f.message for f in result.findings] == ["id: expected 7, got 9"]
    result = json_match(ORDER, got, keys=["customer"])
    assert result.value == 0.0
    assert (
        result.findings[0].message
        == 'customer: expected {"city": "London", "name": "Ada"}, got {"city": "Paris", "name": "Ada"}'
    )
    assert json_match({"rows": [{"n": 1}, {"n": 2}]}, {"rows": [{"n": 0}, {"n": 2}]}, keys=["rows.1.n"]).value == 1.0


def test_json_match_key_missing_from_expected_is_an_error():
    err = error("json-match", expected=ORDER, structured=ORDER, field="structured", keys=["customer.zip"])
    assert (err.code, err.message) == (
        "missing_expected",
        "the case's expected value has no value at key 'customer.zip'",
    )


def test_json_match_non_object_values():
    assert json_match([1, 2], [1, 2]).value == 1.0
    assert json_match("x", "y").findings[0].message == '$: expected "x", got "y"'
    result = json_match({"a": 1, "b": {"c": 2}}, [1, 2])
    assert result.value == 0.0
    assert [f.message for f in result.findings] == ["a: missing (expected 1)", "b.c: missing (expected 2)"]


def test_json_match_empty_object_is_a_leaf():
    assert json_match({"meta": {}}, {"meta": {"x": 1}}).value == 1.0
    assert json_match({"meta": {}}, {"meta": {"x": 1}}, ignore_extra_keys=False).value == 0.0
    assert json_match({"meta": {}}, {}).findings[0].message == "meta: missing (expected {})"


def test_json_match_null_expected_leaf():
    assert json_match({"a": None}, {"a": None}).value == 1.0
    assert json_match({"a": None}, {"a": 0}).value == 0.0


def test_json_match_caps_findings_at_20():
    expected = {f"k{i:02}": i for i in range(30)}
    result = json_match(expected, {})
    assert result.value == 0.0
    assert len(result.findings) == 20
    assert result.findings[-1].message == "k19: missing (expected 19)"
    assert result.explanation == "0 of 30 compared keys match (30 mismatches, the first 20 listed)"


# --- numeric-tolerance ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "text", "config", "passed"),
    [
        (42, "The answer is 42.", {}, True),
        (42, "The answer is 42.0", {}, True),
        (42, "The answer is 43", {}, False),
        (42, "about 41.5", {"abs_tol": 0.5}, True),
        (42, "about 41.4", {"abs_tol": 0.5}, False),
        (100, "105", {"rel_tol": 0.05}, True),
        (100, "106", {"rel_tol": 0.05}, False),
        (100, "106", {"rel_tol": 0.05, "abs_tol": 6}, True),
        (-3, "it is -3 degrees", {}, True),
        (1500, "1.5e3", {}, True),
        (0.1, "0.1", {}, True),
        ("2.5", "2.5", {}, True),
        (7, "items 3, total 7", {}, False),
        (7, "items 3, total 7", {"pattern": r"total (\d+)"}, True),
        (7, "total: 7", {"pattern": r"(?<=total: )\d+"}, True),
    ],
)
def test_numeric_tolerance(expected, text, config, passed):
    result = run("numeric-tolerance", expected=expected, text=text, **config)
    assert (result.kind, result.value) == ("binary", passed)
    assert (result.findings == []) is passed


def test_numeric_tolerance_failure_finding():
    result = run("numeric-tolerance", value=42, text="I think 40", abs_tol=1)
    f = only_finding(result)
    assert (f.severity, f.category) == ("medium", "out_of_tolerance")
    assert f.message == "40 differs from the expected 42 by 2 (allowed: 1)"
    assert f.evidence == {"expected": 42, "actual": 40, "difference": 2, "allowed": 1}


def test_numeric_tolerance_rel_tol_uses_the_expected_magnitude():
    f = only_finding(run("numeric-tolerance", value=-200, text="-190", rel_tol=0.01))
    assert f.evidence["allowed"] == 2.0


def test_numeric_tolerance_structured_number():
    assert (
        run("numeric-tolerance", expected=3.14, structured={"pi": 3.1416}, field="structured.pi", abs_tol=0.01).value
        is True
    )
    assert run("numeric-tolerance", expected=3, structured={"n": "3 apples"}, field="structured.n").value is True
    result = run("numeric-tolerance", expected=3, structured={"n": True}, field="structured.n")
    f = only_finding(result)
    assert (f.category, f.message, f.evidence) == (
        "no_number",
        "the output is not a number",
        {"output": True},
    )


def test_numeric_tolerance_no_number_in_text():
    result = run("numeric-tolerance", expected=3, text="no digits here")
    assert result.value is False
    f = only_finding(result)
    assert (f.severity, f.category, f.message) == ("medium", "no_number", "no number found in the output")
    assert f.evidence == {"output": "no digits here", "pattern": r"(?<![\w-])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"}


def test_numeric_tolerance_ignores_hyphens_glued_to_identifiers():
    result = run("numeric-tolerance", expected=42.5, text="Refund for order A-1234: $42.50")
    assert (result.kind, result.value) == ("binary", True)


def test_numeric_tolerance_pattern_capturing_a_non_number():
    result = run("numeric-tolerance", expected=3, text="total: three", pattern=r"total: (\w+)")
    f = only_finding(result)
    assert (f.category, f.message) == (
        "no_number",
        "the text matched by the pattern is not a number: 'three'",
    )


def test_numeric_tolerance_invalid_pattern():
    err = error("numeric-tolerance", expected=3, text="3", pattern="(")
    assert err.code == "invalid_config"
    assert err.message.startswith("invalid pattern '(': ")


@pytest.mark.parametrize("expected", ["many", True, [3], {"n": 3}])
def test_numeric_tolerance_unusable_expected(expected):
    err = error("numeric-tolerance", expected=expected, text="3")
    assert err.code == "invalid_expected"
    assert err.message.startswith("the case's expected value: expected a number, got ")


# --- levenshtein ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "text", "config", "value"),
    [
        ("kitten", "kitten", {}, 1.0),
        ("kitten", "sitting", {}, 1 - 3 / 7),
        ("flaw", "lawn", {}, 0.5),
        ("abc", "", {}, 0.0),
        ("", "", {}, 1.0),
        ("", "   ", {}, 1.0),
        ("", "   ", {"strip": False}, 0.0),
        ("abc", " abc ", {}, 1.0),
        ("abc", " abc ", {"strip": False}, 0.6),
        ("Hello", "hello", {}, 0.8),
        ("Hello", "hello", {"case_sensitive": False}, 1.0),
        ("abcdef", "azcdef", {}, 1 - 1 / 6),
        ("prefix-middle-suffix", "prefix-MIDDLE-suffix", {}, 1 - 6 / 20),
        ([1, 2], "[1, 2]", {}, 1.0),
    ],
)
def test_levenshtein(expected, text, config, value):
    result = run("levenshtein", expected=expected, text=text, **config)
    assert result.kind == "numeric"
    assert result.value == pytest.approx(value)
    assert (result.findings == []) is (value == 1.0)


def test_levenshtein_finding_includes_the_distance():
    result = run("levenshtein", value="kitten", text="sitting")
    f = only_finding(result)
    assert (f.severity, f.category) == ("low", "difference")
    assert f.message == "output differs from the expected value: edit distance 3 (similarity 0.571)"
    assert f.evidence == {
        "distance": 3,
        "similarity": pytest.approx(4 / 7),
        "expected": "kitten",
        "actual": "sitting",
    }


def distance_of():
    return load("levenshtein")._fn.__globals__["distance"]


def dp_distance(a: str, b: str) -> int:
    """The textbook O(n*m) dynamic programme: the oracle the bit-parallel distance is checked against."""
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("", "", 0),
        ("a", "", 1),
        ("", "abc", 3),
        ("abc", "abc", 0),
        ("ab", "ba", 2),
        ("sunday", "saturday", 3),
        ("gumbo", "gambol", 2),
        ("kitten", "sitting", 3),
        ("é\U0001f600ß", "e\U0001f600ss", 3),
    ],
)
def test_levenshtein_distance_function(a, b, distance):
    fn = distance_of()
    assert fn(a, b) == distance
    assert fn(b, a) == distance
    assert dp_distance(a, b) == distance


# Small alphabets make long common runs and many equal-cost paths; the long ones cross 64-bit word edges.
@pytest.mark.parametrize(
    ("seed", "alphabet", "max_length"),
    [
        (1, "ab", 12),
        (2, "abc", 40),
        (3, "abcdefghij", 40),
        (4, "ab", 150),
        (5, "abcd xyz", 200),
        (6, "aé ß\U0001f600", 70),
    ],
)
def test_levenshtein_distance_matches_the_dp_oracle(seed, alphabet, max_length):
    rng = random.Random(seed)
    fn = distance_of()
    for _ in range(300):
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, max_length)))
        b = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, max_length)))
        if rng.random() < 0.3:  # near-duplicates: a few edits of a
            b = list(a)
            for _ in range(rng.randint(1, 5)):
                at = rng.randint(0, len(b))
                b[at : at + 1] = rng.choice([[], [rng.choice(alphabet)], [rng.choice(alphabet), *b[at : at + 1]]])
            b = "".join(b)
        assert fn(a, b) == dp_distance(a, b), (a, b)


def test_levenshtein_distance_of_long_strings():
    rng = random.Random(7)
    a = "".join(rng.choice("abcdefgh") for _ in range(600))
    b = "".join(rng.choice("abcdefgh") for _ in range(550))
    assert distance_of()(a, b) == dp_distance(a, b)
    assert distance_of()("a" * 5000, "b" * 5000) == 5000
    assert distance_of()("a" * 5000, "") == 5000


@pytest.mark.parametrize(
    ("expected", "text", "what"), [("a" * 5_001, "a", "config 'value'"), ("a", "a" * 5_001, "the output")]
)
def test_levenshtein_input_too_large(expected, text, what):
    err = error("levenshtein", value=expected, text=text)
    assert err.code == "input_too_large"
    assert err.message == f"{what} has 5001 characters; the limit is 5000"


def test_levenshtein_input_too_large_from_the_case():
    err = error("levenshtein", expected={"answer": "a" * 5_001}, text="a", expected_path="answer")
    assert (err.code, err.message) == (
        "input_too_large",
        "expected_path 'answer' has 5001 characters; the limit is 5000",
    )


def test_levenshtein_input_too_large_after_case_folding():
    err = error("levenshtein", value="a", text="ß" * 2_501, case_sensitive=False)
    assert (err.code, err.message) == (
        "input_too_large",
        "the output has 5002 characters after case folding; the limit is 5000",
    )


def test_levenshtein_at_the_size_limit():
    assert run("levenshtein", value="a" * 5_000, text="a" * 4_999 + "b").value == pytest.approx(0.9998)
    assert run("levenshtein", value="  " + "a" * 4_998, text="a" * 5_000).value == pytest.approx(0.9996)
