"""Dataset and profile validation: every problem is named by line/field, and nothing is written on failure."""

from __future__ import annotations

import json

import pytest

from runs.errors import MAX_ERRORS, ValidationFailed
from runs.ingest import dataset_parse
from runs.models import Case, Dataset, DatasetVersion, Profile, ProfileVersion
from runs.services import dataset_import, profile_import
from runs.targets import output_from_answer
from tests.support.profiles import exact_match_profile
from vigilo_project.httpjson import CallFailed

GOOD = {"id": "a", "input": "hi", "expected": "hello", "output": {"text": "hello"}}


def jsonl(*rows) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n"


@pytest.mark.django_db
def test_a_valid_dataset_is_imported_once_by_content():
    text = jsonl(GOOD, {**GOOD, "id": "b", "tags": ["x"]})
    first, created = dataset_import(name="ds", text=text)
    again, created_again = dataset_import(name="ds", text=text)
    assert (created, created_again) == (True, False)
    assert first.pk == again.pk and first.case_count == 2
    assert list(Case.objects.filter(dataset_version=first).values_list("case_id", flat=True)) == ["a", "b"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("rows", "where", "message"),
    [
        (['{"id": "a", "input": 1', GOOD], "line 1", "not valid JSON"),
        ([GOOD, GOOD], "line 2 field 'id'", "duplicate case id 'a' (first on line 1)"),
        ([{"input": "x"}], "line 1 field 'id'", "required"),
        ([{"id": "a"}], "line 1 field 'input'", "required"),
        ([{**GOOD, "colour": 1}], "line 1 field 'colour'", "unknown field"),
        ([{**GOOD, "tags": "x"}], "line 1 field 'tags'", "list of strings"),
        ([{**GOOD, "output": {"text": 5}}], "line 1 field 'output.text'", "string or null"),
        (
            [{**GOOD, "output": {"tool_calls": [{"arguments": {}}]}}],
            "line 1 field 'output.tool_calls[0].name'",
            "non-empty string",
        ),
        ([{**GOOD, "output": []}], "line 1 field 'output'", "object or null"),
        (["[1, 2]"], "line 1", "must be a JSON object"),
        ([], "file", "empty"),
    ],
)
def test_invalid_datasets_name_the_line_and_field_and_write_nothing(rows, where, message):
    with pytest.raises(ValidationFailed) as info:
        dataset_import(name="bad", text=jsonl(*rows) if rows else "\n")
    assert any(w == where and message in m for w, m in info.value.errors), info.value.errors
    assert (Dataset.objects.count(), DatasetVersion.objects.count(), Case.objects.count()) == (0, 0, 0)


@pytest.mark.django_db
def test_all_dataset_errors_are_reported_at_once():
    with pytest.raises(ValidationFailed) as info:
        dataset_import(name="bad", text=jsonl("nope", {"id": "a"}, {**GOOD, "x": 1}))
    # Line 3 also reuses the id of line 2: an id belongs to the first line that has it, valid or not.
    assert [w for w, _ in info.value.errors] == [
        "line 1",
        "line 2 field 'input'",
        "line 3 field 'x'",
        "line 3 field 'id'",
    ]


PROFILE = exact_match_profile("p", config="{case_sensitive: false}")


def test_profile_with_unknown_evaluator_is_refused(db):
    with pytest.raises(ValidationFailed) as info:
        profile_import(text=PROFILE.replace("vigilo/exact-match@^1.0", "vigilo/nope@1.0.0"))
    assert info.value.errors == [("bindings[0] (answer).evaluator", "no evaluator named vigilo/nope is published")]
    assert (Profile.objects.count(), ProfileVersion.objects.count()) == (0, 0)


def test_profile_config_is_checked_against_the_evaluator_schema(published):
    with pytest.raises(ValidationFailed) as info:
        profile_import(text=PROFILE.replace("{case_sensitive: false}", "{case_sensitive: maybe, colour: red}"))
    wheres = sorted(w for w, _ in info.value.errors)
    assert wheres == ["bindings[0] (answer).config", "bindings[0] (answer).config.case_sensitive"]
    assert ProfileVersion.objects.count() == 0


def test_structural_profile_errors_carry_their_path(published):
    text = PROFILE.replace("weight: 1.0}", "weight: -1}")
    with pytest.raises(ValidationFailed) as info:
        profile_import(text=text)
    assert any(w == "dimensions.correctness.weight" for w, _ in info.value.errors), info.value.errors


def test_yaml_syntax_errors_name_the_line(db):
    with pytest.raises(ValidationFailed) as info:
        profile_import(text="name: p\ndimensions: {a: [1,\n")
    assert info.value.errors[0][0].startswith("line ")


def test_a_valid_profile_is_stored_once_by_content(published):
    first, created = profile_import(text=PROFILE)
    again, created_again = profile_import(text=PROFILE)
    assert (created, created_again, first.pk) == (True, False, again.pk)
    assert first.document["bindings"][0]["config"] == {"case_sensitive": False}


# -- the case-size limit (VIGILO_MAX_CASE_BYTES) -------------------------------------------------------------


@pytest.mark.django_db
def test_a_case_over_the_size_limit_is_refused_by_line_before_it_is_parsed(settings):
    settings.VIGILO_MAX_CASE_BYTES = 4096
    big = '{"id": "big", "input": "' + "x" * 5000  # not even JSON: the size is all that is said about it
    with pytest.raises(ValidationFailed) as info:
        dataset_import(name="big", text=jsonl(GOOD, big, {**GOOD, "id": "b"}))
    assert info.value.errors == [("line 2", "the case is 5,024 bytes; the limit is 4,096 (VIGILO_MAX_CASE_BYTES)")]
    assert (Dataset.objects.count(), DatasetVersion.objects.count(), Case.objects.count()) == (0, 0, 0)


@pytest.mark.django_db
def test_the_case_size_counts_utf8_bytes_and_a_case_at_the_limit_is_accepted(settings):
    settings.VIGILO_MAX_CASE_BYTES = 4096
    line = json.dumps({"id": "a", "input": "é" * 2000}, ensure_ascii=False)  # 2,024 characters, 4,024 bytes
    over = json.dumps({"id": "b", "input": "x" + "é" * 2036}, ensure_ascii=False)
    at_limit = json.dumps({"id": "c", "input": "x" * (4096 - len(json.dumps({"id": "c", "input": ""})))})
    assert (len(line), len(line.encode()), len(over.encode()), len(at_limit)) == (2024, 4024, 4097, 4096)
    with pytest.raises(ValidationFailed) as info:
        dataset_import(name="utf8", text=jsonl(line, over, at_limit))
    assert info.value.errors == [("line 2", "the case is 4,097 bytes; the limit is 4,096 (VIGILO_MAX_CASE_BYTES)")]
    version, _ = dataset_import(name="utf8", text=jsonl(line, at_limit))
    assert version.case_count == 2


def test_the_case_size_limit_defaults_to_one_mebibyte(settings):
    assert settings.VIGILO_MAX_CASE_BYTES == 1 << 20


@pytest.mark.parametrize(
    ("protocol", "answer"),
    [
        ("vigilo", {"text": "x" * 5000}),
        ("openai-chat", {"choices": [{"message": {"content": "x" * 5000}}]}),
    ],
)
def test_an_agent_output_over_the_case_size_limit_is_refused(settings, protocol, answer):
    settings.VIGILO_MAX_CASE_BYTES = 4096
    with pytest.raises(CallFailed) as info:
        output_from_answer(protocol=protocol, data=answer)
    assert str(info.value).startswith("the agent's output is 5,")
    assert str(info.value).endswith(" bytes as JSON; the limit is 4,096 (VIGILO_MAX_CASE_BYTES)")
    settings.VIGILO_MAX_CASE_BYTES = 8192
    assert output_from_answer(protocol=protocol, data=answer)["text"] == "x" * 5000


# -- every problem of a line, and of a profile ---------------------------------------------------------------


def test_every_problem_of_a_line_is_reported():
    bad = {
        "id": 5,
        "colour": 1,
        "tags": "x",
        "metadata": [],
        "output": {
            "zz": 1,
            "text": 5,
            "tool_calls": [{"arguments": 1, "x": 2}],
            "trace": [{"kind": 1, "name": 2}, "nope"],
            "metadata": 1,
        },
    }
    with pytest.raises(ValidationFailed) as info:
        dataset_parse(text=jsonl(bad))
    assert info.value.errors == [
        ("line 1 field 'colour'", "unknown field"),
        ("line 1 field 'id'", "required: a non-empty string of at most 200 characters"),
        ("line 1 field 'input'", "required (any JSON value)"),
        ("line 1 field 'tags'", "must be a list of strings"),
        ("line 1 field 'metadata'", "must be an object"),
        ("line 1 field 'output.zz'", "unknown field"),
        ("line 1 field 'output.text'", "must be a string or null"),
        ("line 1 field 'output.tool_calls[0].name'", "required: a non-empty string"),
        ("line 1 field 'output.tool_calls[0].x'", "unknown field (a tool call has name, arguments and result)"),
        ("line 1 field 'output.trace[0].kind'", "required: a string"),
        ("line 1 field 'output.trace[0].name'", "must be a string or null"),
        ("line 1 field 'output.trace[1]'", "must be an object with a string 'kind'"),
        ("line 1 field 'output.metadata'", "must be an object"),
    ]


def test_a_duplicate_id_is_reported_with_the_other_problems_of_its_line():
    with pytest.raises(ValidationFailed) as info:
        dataset_parse(text=jsonl(GOOD, {**GOOD, "tags": [1]}, {**GOOD, "colour": 1}))
    assert info.value.errors == [
        ("line 2 field 'id'", "duplicate case id 'a' (first on line 1)"),
        ("line 2 field 'tags'", "must be a list of strings"),
        ("line 3 field 'colour'", "unknown field"),
        ("line 3 field 'id'", "duplicate case id 'a' (first on line 1)"),
    ]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(constant):
    with pytest.raises(ValidationFailed) as info:
        dataset_parse(text=jsonl(GOOD, '{"id": "b", "input": {"x": ' + constant + "}}"))
    assert info.value.errors == [("line 2", f"not valid JSON: {constant} is not a JSON value (use null or a string)")]


def test_lines_are_split_at_newlines_only():
    """U+2028 and friends are allowed raw in JSON strings (json.dumps(ensure_ascii=False) writes them so): they
    do not end a line, and the lines named are the ones an editor shows."""
    raw = json.dumps({**GOOD, "input": "one\u2028two\u2029three\x85four"}, ensure_ascii=False)
    assert "\u2028" in raw and len(raw.splitlines()) == 4
    with pytest.raises(ValidationFailed) as info:
        dataset_parse(text=f"{raw}\r\nnope\r\n")
    assert [w for w, _ in info.value.errors] == ["line 2"]
    (case,) = dataset_parse(text=f"{raw}\r\n")
    assert case["input"] == "one\u2028two\u2029three\x85four"


def test_errors_past_the_cap_are_counted_not_listed():
    with pytest.raises(ValidationFailed) as info:
        dataset_parse(text=jsonl(*[{"id": f"c{i}", "input": 1, "x": 1, "tags": 1} for i in range(40)]))
    assert len(info.value.errors) == MAX_ERRORS
    assert str(info.value).endswith(f"(and {80 - MAX_ERRORS} more)")


def test_every_structural_problem_of_a_profile_is_reported(db):
    text = """\
name: p
colour: red
min_execution_score: 1.0
dimensions:
  correctness: {weight: -1, aggregation: median}
bindings:
  - id: Answer
    evaluator: nope
    dimension: style
  - id: second
    dimension: correctness
    limits: {fuel: -1}
options: {chunk_size: 0}
"""
    with pytest.raises(ValidationFailed) as info:
        profile_import(text=text)
    assert [w for w, _ in info.value.errors] == [
        "colour",
        "dimensions.correctness.weight",
        "dimensions.correctness.aggregation",
        "bindings[0].id",
        "bindings[0].evaluator",
        "bindings[0].dimension",
        "bindings[1].evaluator",
        "bindings[1].limits.fuel",
        "options.chunk_size",
    ]
    assert (Profile.objects.count(), ProfileVersion.objects.count()) == (0, 0)


def test_every_registry_problem_of_a_profile_is_reported(published):
    text = exact_match_profile(
        "p",
        config="{case_sensitive: maybe}",
        more_bindings="""\
  - id: other
    evaluator: vigilo/nope@^1.0
    dimension: correctness
  - id: judge
    evaluator: vigilo/llm-judge@^1.0
    dimension: correctness
    config: {prompt: "Is {output} polite?"}
""",
    )
    with pytest.raises(ValidationFailed) as info:
        profile_import(text=text)
    assert [w for w, _ in info.value.errors] == [
        "bindings[0] (answer).config.case_sensitive",
        "bindings[1] (other).evaluator",
        "bindings[2] (judge).grants",
    ]
    assert ProfileVersion.objects.count() == 0


# -- what the database cannot store is refused at load time, naming where it is ------------------------------


@pytest.mark.django_db
def test_strings_the_database_cannot_store_are_refused_with_their_field():
    rows = [
        '{"id": "a", "input": {"q": ["ok", "a\\u0000b"]}, "expected": "\\ud800"}',
        '{"id": "b", "input": "fine \\u00e9 \\ud83d\\ude00", "metadata": {"k\\u0000": 1}}',
        '{"id": "c", "input": ' + "[" * 5000 + "]" * 5000 + "}",
    ]
    with pytest.raises(ValidationFailed) as info:
        dataset_import(name="bad", text=jsonl(*rows))
    assert info.value.errors == [
        ("line 1 field 'input.q[1]'", "holds \\u0000 (NUL), which cannot be stored"),
        ("line 1 field 'expected'", "holds a lone surrogate (\\ud800), which is not text"),
        ("line 2 field 'metadata'", "a key holds \\u0000 (NUL), which cannot be stored"),
        ("line 3", "not valid JSON: nested too deeply"),
    ]
    assert (Dataset.objects.count(), DatasetVersion.objects.count(), Case.objects.count()) == (0, 0, 0)


@pytest.mark.parametrize(
    ("config", "where", "message"),
    [
        ("{value: .nan}", "bindings[0].config.value", "nan is not a JSON number (use null or a string)"),
        ("{value: [1, -.inf]}", "bindings[0].config.value[1]", "-inf is not a JSON number (use null or a string)"),
        ('{value: "a\\0b"}', "bindings[0].config.value", "holds \\u0000 (NUL), which cannot be stored"),
        ("&loop {value: *loop}", "bindings[0].config.value", "refers to itself (a YAML alias inside its own anchor)"),
    ],
)
def test_profile_values_the_database_cannot_store_are_refused_with_their_path(db, config, where, message):
    with pytest.raises(ValidationFailed) as info:
        profile_import(text=PROFILE.replace("{case_sensitive: false}", config))
    assert info.value.errors == [(where, message)]
    assert ProfileVersion.objects.count() == 0


def test_a_profile_that_aliases_into_millions_of_values_is_refused(db):
    laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 7)
    )
    with pytest.raises(ValidationFailed) as info:
        profile_import(text=laughs)
    assert info.value.errors == [
        ("file", "the document expands to 12,345,678 values through its YAML aliases; the limit is 100,000")
    ]
    with pytest.raises(ValidationFailed) as info:
        profile_import(text="a: " + "[" * 5000 + "]" * 5000)
    assert info.value.errors == [("file", "not valid YAML: nested too deeply")]
