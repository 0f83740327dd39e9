"""The direct C-API path: lowering the contract's input, lifting results, and checking them against the contract."""

from __future__ import annotations

import pytest
from wasmtime import _ffi as ffi

from evaluators.sandbox import abi
from evaluators.sandbox.decode import decode_evaluation
from tests.support.wasm import load

CASE = {
    "run_id": "r-1",
    "execution_id": "42",
    "attempt": 3,
    "case": {"id": "c-1", "input": {"q": "é"}, "expected": ["a", 1], "tags": ["x", "ünï"], "metadata": {"k": 1}},
    "output": {
        "text": "héllo",
        "tool_calls": [{"name": "lookup", "arguments": {"id": 7}}],
        "trace": [{"kind": "message", "payload": "hi"}, {"kind": "tool", "name": "lookup", "payload": None}],
    },
    "config": {"value": "o"},
}


def roundtrip(tree):
    val = abi.Val()
    abi._fill(val, tree)
    try:
        return abi.lift(val)
    finally:
        ffi.wasmtime_component_val_delete(val)


def test_the_input_tree_lowers_to_the_contracts_record_and_lifts_back():
    lifted = roundtrip(abi.input_tree(CASE))
    assert list(lifted) == ["run-id", "execution-id", "attempt", "test-case", "actual", "config-json"]
    assert (lifted["run-id"], lifted["execution-id"], lifted["attempt"]) == ("r-1", "42", 3)
    case = lifted["test-case"]
    assert case["id"] == "c-1" and case["tags"] == ["x", "ünï"] and case["context-json"] is None
    assert case["input-json"] == '{"q": "\\u00e9"}' and case["expected-json"] == '["a", 1]'
    actual = lifted["actual"]
    assert actual["text"] == "héllo" and actual["structured-json"] is None
    assert actual["tool-calls"] == [{"name": "lookup", "arguments-json": '{"id": 7}', "result-json": None}]
    assert actual["trace"] == [
        {"kind": "message", "name": None, "payload-json": '"hi"'},
        {"kind": "tool", "name": "lookup", "payload-json": "null"},
    ]
    assert lifted["config-json"] == '{"value": "o"}'


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"output": {"text": "\ud800"}}, "surrogates not allowed"),
        ({"attempt": -1}, "is not a u32"),
        ({"case": {"input": {1, 2}}}, "not JSON serializable"),
    ],
)
def test_input_that_cannot_be_lowered_is_refused_before_anything_is_allocated(data, message):
    with pytest.raises((ValueError, TypeError), match=message):
        abi.input_tree(data)


def test_an_unencodable_case_is_an_error_result_not_a_crash(host, bundled_wasm):
    inv = host.evaluate(load(host, bundled_wasm["contains"]), data={"output": {"text": "\ud800"}, "config": {}})
    assert (inv.outcome, inv.error_code) == ("error", "invalid_output")
    assert "input cannot be encoded" in inv.error_message


def ok(outcome, findings=(), explanation=None):
    return ("ok", {"outcome": outcome, "findings": list(findings), "explanation": explanation})


def finding(severity="info", category="c", message="m", evidence=None):
    return {"severity": severity, "category": category, "message": message, "evidence-json": evidence}


def test_well_formed_results_decode_to_invocations():
    binary = decode_evaluation(ok(("completed", ("binary", True)), [finding(evidence='{"a": 1}')], "why"), 1000)
    assert (binary.outcome, binary.kind, binary.measurement, binary.explanation) == ("completed", "binary", True, "why")
    assert binary.findings == [{"severity": "info", "category": "c", "message": "m", "evidence": {"a": 1}}]
    numeric = decode_evaluation(ok(("completed", ("numeric", 0.25))), 1000)
    assert (numeric.kind, numeric.measurement) == ("numeric", 0.25)
    abstained = decode_evaluation(ok(("abstained", {"category": "n/a", "reason": None})), 1000)
    assert (abstained.outcome, abstained.abstention) == ("abstained", {"category": "n/a", "reason": None})
    err = decode_evaluation(("err", {"code": "bad_config", "message": "no value"}), 1000)
    assert (err.error_code, err.error_message) == ("evaluator_error", "bad_config: no value")


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (True, "the result is not one of err, ok"),
        (("ok", {"outcome": ("completed", ("binary", True))}), "not the contract's record"),
        (ok(("completed", ("binary", 1.0))), "the binary measurement is a float"),
        (ok(("completed", ("percent", 1.0))), "the measurement is not one of"),
        (ok(("completed", ("numeric", float("nan")))), "is not finite"),
        (ok(("completed", ("binary", True)), [finding(severity="fatal")]), "unknown finding severity"),
        (ok(("completed", ("binary", True)), [finding(message=None)]), "message is not a string"),
        (ok(("completed", ("binary", True)), explanation="x" * 2000), "exceeds the limit of 1000 bytes"),
        (("err", {"code": "x"}), "not the contract's record"),
    ],
)
def test_results_outside_the_contract_are_invalid_output(result, message):
    inv = decode_evaluation(result, 1000)
    assert (inv.outcome, inv.error_code) == ("error", "invalid_output")
    assert message in inv.error_message


def test_a_case_is_lowered_once_and_each_binding_swaps_in_its_config():
    with abi.CaseInput(CASE) as case:
        first = abi.lift(case.params({"value": "a"})[0])
        second = abi.lift(case.params({"mode": "any"})[0])
    assert (first["config-json"], second["config-json"]) == ('{"value": "a"}', '{"mode": "any"}')
    assert first["test-case"] == second["test-case"] and first["actual"]["text"] == "héllo"
    case.close()  # closing twice is harmless


def test_one_lowered_case_serves_several_evaluators_with_their_own_configs(host, bundled_wasm):
    contains, regex = load(host, bundled_wasm["contains"]), load(host, bundled_wasm["regex"])
    with abi.CaseInput({"case": {"id": "c"}, "output": {"text": "hello"}}) as case:
        found = host.evaluate(contains, case=case, config={"value": "ell"})
        missing = host.evaluate(contains, case=case, config={"value": "xyz"})
        anchored = host.evaluate(regex, case=case, config={"value": "^h"})
    assert (found.measurement, missing.measurement, anchored.measurement) == (True, False, True)
    broken = abi.CaseInput({"output": {"text": "\ud800"}})
    inv = host.evaluate(contains, case=broken, config={"value": "x"})
    assert inv.error_code == "invalid_output" and "input cannot be encoded" in inv.error_message


def test_values_the_contract_cannot_hold_are_refused_when_lifted():
    val = abi.Val()
    val.kind = ffi.WASMTIME_COMPONENT_RESOURCE.value  # a resource handle: no contract type carries one
    with pytest.raises(abi.LiftError, match="does not accept values of kind"):
        abi.lift(val)
