"""Dataset and profile validation: every problem is named by line/field, and nothing is written on failure."""

from __future__ import annotations

import json

import pytest

from runs.ingest import ValidationFailed, dataset_import, profile_import
from runs.models import Case, Dataset, DatasetVersion, Profile, ProfileVersion

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
        ([{**GOOD, "output": {"tool_calls": [{"arguments": {}}]}}], "line 1 field 'output.tool_calls[0]'", "name"),
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
    assert [w for w, _ in info.value.errors] == ["line 1", "line 2 field 'input'", "line 3 field 'x'"]


PROFILE = """
name: p
min_execution_score: 1.0
dimensions:
  correctness: {weight: 1.0}
bindings:
  - id: answer
    evaluator: vigilo/exact-match@^1.0
    dimension: correctness
    config: {case_sensitive: false}
"""


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
