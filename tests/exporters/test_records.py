"""EvalRecord's storage and ids (pure): what is stored is what comes back, and the ids are the documented
uuid5s, so a resend carries the id the receiver already has."""

from __future__ import annotations

import json
import uuid

import pytest

from exporters.records import NAMESPACE, EvalRecord, record_id
from tests.support.exports import record


@pytest.mark.parametrize(
    "key",
    ["11111111-2222-3333-4444-555555555555:1:correctness", "support-bot:m-1:card-number", "", "é:ü:🙂", "x" * 500],
)
@pytest.mark.parametrize("source", ["run", "live"])
def test_record_ids_are_the_uuid5_of_the_source_and_key(source, key):
    assert record_id(source, key) == str(uuid.uuid5(NAMESPACE, f"{source}:{key}"))


def test_a_record_survives_storage_unchanged_and_defaults_are_not_stored():
    errored = EvalRecord(id="e", source="live", name="n", outcome="error", error_type="timeout", score=0.0)
    for original in (record(), record(judge=True, passed=False, value=False), errored):
        stored = json.loads(json.dumps(original.as_dict()))
        assert EvalRecord.from_dict(stored) == original
    assert errored.as_dict() == {
        "id": "e",
        "source": "live",
        "name": "n",
        "outcome": "error",
        "error_type": "timeout",
        "score": 0.0,  # 0.0 is a value, not the default None
    }


def test_a_stored_record_with_a_newer_writers_key_is_read_and_one_missing_a_required_field_is_not():
    original = record()
    assert EvalRecord.from_dict({**original.as_dict(), "added_later": 1}) == original
    with pytest.raises(TypeError, match="missing name, outcome"):
        EvalRecord.from_dict({"id": "x", "source": "run"})
