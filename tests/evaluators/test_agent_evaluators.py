"""The agent evaluators (trajectory-match, tool-call, code-exec, llm-judge) as real components in Wasmtime."""

from __future__ import annotations

import pytest

from evaluators.build import BUNDLED_DIR, component_build
from evaluators.management.commands.evaluator_build import world_of
from evaluators.sandbox import Limits
from tests.support.paths import BUILD_CACHE
from tests.support.wasm import load


def build(host, folder: str):
    src = BUNDLED_DIR / folder
    return load(host, component_build(source_dir=src, cache_dir=BUILD_CACHE, world=world_of(src)).read_bytes())


@pytest.fixture(scope="module")
def trajectory(host):
    return build(host, "trajectory-match")


@pytest.fixture(scope="module")
def tool_call(host):
    return build(host, "tool-call")


def evaluate(host, loaded, *, expected=None, calls=(), text=None, limits=None, model=None, context=None, **config):
    data = {
        "run_id": "run-1",
        "execution_id": "execution-1",
        "attempt": 1,
        "case": {"id": "case-1", "input": {"q": "?"}, "expected": expected, "context": context, "metadata": {}},
        "output": {
            "text": text,
            "tool_calls": [{"name": name, "arguments": args} for name, args in calls],
            "metadata": {},
        },
        "config": config,
    }
    return host.evaluate(loaded, data=data, limits=limits, model=model)


def call(name, **arguments):
    return {"name": name, "arguments": arguments}


def measured(inv):
    assert inv.outcome == "completed", (inv.error_code, inv.error_message)
    return inv.kind, inv.measurement


# --- trajectory-match -----------------------------------------------------------------------------------

PLAN = [call("search", q="refund policy"), call("lookup_order", id=42), call("refund", id=42, amount=10)]
DONE = [("search", {"q": "refund policy"}), ("lookup_order", {"id": 42}), ("refund", {"id": 42, "amount": 10})]


def test_trajectory_describe(host, trajectory):
    info = host.describe(trajectory)
    assert (info["name"], info["version"]) == ("vigilo/trajectory-match", "1.0.0")
    assert info["config_schema"]["additionalProperties"] is False
    assert trajectory.contract.world == "evaluator"


def test_strict_passes_on_the_same_calls_in_the_same_order(host, trajectory):
    inv = evaluate(host, trajectory, expected=PLAN, calls=DONE)
    assert measured(inv) == ("binary", True)
    assert inv.findings == []
    assert inv.explanation == "strict: 3 of 3 calls match"


def test_strict_fails_on_reordered_calls_naming_the_first_divergence(host, trajectory):
    inv = evaluate(host, trajectory, expected=PLAN, calls=[DONE[1], DONE[0], DONE[2]])
    assert measured(inv) == ("binary", False)
    [only] = inv.findings
    assert only["category"] == "trajectory_divergence"
    assert only["message"] == "call 0: tool 'lookup_order' instead of 'search'"
    assert only["evidence"] == {
        "index": 0,
        "expected": {"name": "search", "arguments": {"q": "refund policy"}},
        "actual": {"name": "lookup_order", "arguments": {"id": 42}},
        "expected_length": 3,
        "actual_length": 3,
    }


def test_strict_reports_a_missing_tail_and_an_extra_call(host, trajectory):
    short = evaluate(host, trajectory, expected=PLAN, calls=DONE[:2])
    assert measured(short) == ("binary", False)
    assert short.findings[0]["message"] == 'call 2: expected refund({"amount": 10, "id": 42}), but the trajectory ended'
    extra = evaluate(host, trajectory, expected=PLAN[:1], calls=DONE[:2])
    assert extra.findings[0]["message"] == 'call 1: unexpected extra call lookup_order({"id": 42})'


def test_strict_fraction_scores_matched_positions(host, trajectory):
    inv = evaluate(host, trajectory, expected=PLAN, calls=[DONE[0], DONE[2]], score="fraction")
    assert measured(inv) == ("numeric", pytest.approx(1 / 3))


def test_unordered_accepts_any_order_but_not_a_different_multiset(host, trajectory):
    ok = evaluate(host, trajectory, expected=PLAN, calls=[DONE[2], DONE[0], DONE[1]], mode="unordered")
    assert measured(ok) == ("binary", True)
    twice = evaluate(host, trajectory, expected=PLAN, calls=[DONE[0], DONE[0], DONE[1]], mode="unordered")
    assert measured(twice) == ("binary", False)
    assert [(f["category"], f["message"]) for f in twice.findings] == [
        ("missing_call", 'expected call 2 refund({"amount": 10, "id": 42}) was not made'),
        ("unexpected_call", 'call 1 search({"q": "refund policy"}) is not in the expected trajectory'),
    ]


def test_subset_passes_when_every_actual_call_is_planned(host, trajectory):
    ok = evaluate(host, trajectory, expected=PLAN, calls=[DONE[0], DONE[2]], mode="subset")
    assert measured(ok) == ("binary", True)
    bad = evaluate(host, trajectory, expected=PLAN, calls=[DONE[0], ("delete_account", {"id": 42})], mode="subset")
    assert measured(bad) == ("binary", False)
    [only] = bad.findings
    assert only["category"] == "unexpected_call"
    assert only["evidence"] == {"actual_index": 1, "actual": {"name": "delete_account", "arguments": {"id": 42}}}


def test_superset_passes_with_extra_calls_and_fails_on_a_missing_one(host, trajectory):
    extra = [("ping", {}), *DONE]
    assert measured(evaluate(host, trajectory, expected=PLAN, calls=extra, mode="superset")) == ("binary", True)
    missing = evaluate(host, trajectory, expected=PLAN, calls=extra[:3], mode="superset", score="fraction")
    assert measured(missing) == ("numeric", pytest.approx(2 / 3))
    assert [f["category"] for f in missing.findings] == ["missing_call"]


def test_argument_modes(host, trajectory):
    expected = [call("search", q="refund", lang="en")]

    def verdict(args, mode):
        return evaluate(host, trajectory, expected=expected, calls=[("search", args)], args=mode).measurement

    assert verdict({"lang": "en", "q": "refund"}, "exact") is True
    assert verdict({"q": "refund"}, "exact") is False
    assert verdict({"q": "anything", "page": 2}, "ignore") is True
    assert verdict({"q": "refund"}, "subset") is True
    assert verdict({"q": "refund", "page": 2}, "subset") is False
    assert verdict({"q": "refund", "lang": "en", "page": 2}, "superset") is True
    assert verdict({"q": "refund"}, "superset") is False


def test_argument_mismatch_finding_names_the_keys(host, trajectory):
    inv = evaluate(host, trajectory, expected=[call("search", q="refund", lang="en")], calls=[("search", {"q": "x"})])
    assert inv.findings[0]["message"] == "call 0: search arguments (exact): arguments differ"
    sup = evaluate(
        host,
        trajectory,
        expected=[call("search", q="refund", lang="en")],
        calls=[("search", {"q": "x"})],
        args="superset",
    )
    assert sup.findings[0]["message"] == "call 0: search arguments (superset): missing lang; different q"


def test_per_tool_argument_override(host, trajectory):
    calls = [("search", {"q": "whatever the agent typed"}), ("lookup_order", {"id": 42}), DONE[2]]
    ok = evaluate(host, trajectory, expected=PLAN, calls=calls, tool_args={"search": "ignore"})
    assert measured(ok) == ("binary", True)
    strict = evaluate(host, trajectory, expected=PLAN, calls=calls)
    assert measured(strict) == ("binary", False)


def test_expected_calls_without_arguments_and_numbers_compare_as_json(host, trajectory):
    inv = evaluate(
        host,
        trajectory,
        expected=[{"name": "search"}, call("refund", amount=10)],
        calls=[
            ("search", {"q": "x"}),
            ("refund", {"amount": 10.0}),
        ],
    )
    assert measured(inv) == ("binary", True)
    flag = evaluate(host, trajectory, expected=[call("set", on=1)], calls=[("set", {"on": True})])
    assert measured(flag) == ("binary", False)


def test_trajectory_from_expected_path_and_from_value(host, trajectory):
    inv = evaluate(host, trajectory, expected={"answer": "x", "tools": PLAN}, calls=DONE, expected_path="tools")
    assert measured(inv) == ("binary", True)
    inv = evaluate(host, trajectory, calls=DONE[:1], value=[{"name": "search"}])
    assert measured(inv) == ("binary", True)


def test_empty_actual_against_a_non_empty_plan_fails_with_a_finding(host, trajectory):
    for mode in ("strict", "unordered", "subset", "superset"):
        inv = evaluate(host, trajectory, expected=PLAN, calls=[], mode=mode)
        assert measured(inv) == ("binary", False), mode
        [only] = inv.findings
        assert only["category"] == "no_tool_calls"
        assert only["severity"] == "high"


def test_empty_plan_and_empty_trajectory(host, trajectory):
    assert measured(evaluate(host, trajectory, expected=[], calls=[])) == ("binary", True)
    inv = evaluate(host, trajectory, expected=[], calls=DONE[:1], score="fraction")
    assert measured(inv) == ("numeric", 0.0)
    assert measured(evaluate(host, trajectory, expected=[], calls=DONE, mode="superset")) == ("binary", True)


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        ({"name": "search"}, "the expected trajectory must be a list of calls, not dict"),
        ([{"arguments": {}}], "call 0 must be an object with a non-empty string 'name'"),
        ([42], "call 0 must be an object with a non-empty string 'name'"),
        ([{"name": "search", "args": {}}], "call 0 has unknown key(s) args"),
    ],
)
def test_malformed_expected_trajectory_is_an_evaluator_error(host, trajectory, expected, message):
    inv = evaluate(host, trajectory, expected=expected, calls=DONE)
    assert inv.error_code == "evaluator_error"
    assert inv.error_message == f"invalid_expected: the case's expected value: {message}"


def test_malformed_trajectory_in_config_is_a_config_error(host, trajectory):
    inv = evaluate(host, trajectory, calls=DONE, value=[{"arguments": {}}])
    assert (
        inv.error_message == "invalid_config: config 'value': call 0 must be an object with a non-empty string 'name'"
    )
    bad_mode = evaluate(host, trajectory, expected=PLAN, calls=DONE, args="fuzzy")
    assert bad_mode.error_code == "evaluator_error" and bad_mode.error_message.startswith("invalid_config:")


def test_missing_expectation_is_an_evaluator_error(host, trajectory):
    inv = evaluate(host, trajectory, calls=DONE)
    assert inv.error_message.startswith("missing_expected:")


# --- tool-call ------------------------------------------------------------------------------------------


def test_tool_call_passes_when_every_rule_holds(host, tool_call):
    inv = evaluate(
        host,
        tool_call,
        calls=DONE,
        required=["search", "refund"],
        forbidden=["delete_account"],
        schemas={
            "refund": {"type": "object", "required": ["id", "amount"], "properties": {"amount": {"maximum": 100}}}
        },
        counts={"refund": {"min": 1, "max": 1}},
        order=[["lookup_order", "refund"]],
    )
    assert measured(inv) == ("binary", True)
    assert inv.findings == []
    assert inv.explanation == "all tool-call rules hold (3 calls)"


def test_required_and_forbidden_tools(host, tool_call):
    inv = evaluate(
        host,
        tool_call,
        calls=[*DONE, ("delete_account", {}), ("delete_account", {})],
        required=["search", "escalate"],
        forbidden=["delete_account"],
    )
    assert measured(inv) == ("binary", False)
    assert [(f["category"], f["message"]) for f in inv.findings] == [
        ("required_tool_missing", "required tool 'escalate' was not called"),
        ("forbidden_tool_called", "forbidden tool 'delete_account' was called 2 time(s), first as call 3"),
    ]
    assert inv.findings[1]["evidence"] == {"tool": "delete_account", "indexes": [3, 4]}


def test_argument_schema_violations_are_one_finding_per_call(host, tool_call):
    schema = {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}
    inv = evaluate(
        host,
        tool_call,
        calls=[("lookup_order", {"id": "42"}), ("lookup_order", {}), ("lookup_order", {"id": 1})],
        schemas={"lookup_order": schema},
    )
    assert measured(inv) == ("binary", False)
    assert [f["evidence"]["index"] for f in inv.findings] == [0, 1]
    assert all(f["category"] == "invalid_arguments" for f in inv.findings)
    assert inv.findings[0]["evidence"]["errors"] == ["$.id: \"42\" is not of type 'integer'"]


def test_call_counts(host, tool_call):
    calls = [("search", {}), ("search", {}), ("search", {})]
    inv = evaluate(host, tool_call, calls=calls, counts={"search": {"max": 2}, "refund": {"min": 1}})
    assert [f["message"] for f in inv.findings] == [
        "tool 'search' was called 3 time(s); expected at most 2",
        "tool 'refund' was called 0 time(s); expected at least 1",
    ]
    ok = evaluate(host, tool_call, calls=calls, counts={"search": {"min": 2, "max": 3}})
    assert measured(ok) == ("binary", True)


def test_order_constraints_compare_first_calls(host, tool_call):
    calls = [("refund", {}), ("lookup_order", {}), ("refund", {})]
    inv = evaluate(host, tool_call, calls=calls, order=[["lookup_order", "refund"], ["search", "refund"]])
    assert measured(inv) == ("binary", False)
    assert [f["message"] for f in inv.findings] == [
        "'refund' (call 0) was called before 'lookup_order' (call 1)",
        "'refund' (call 0) was called without a preceding 'search'",
    ]
    # A constraint about tools that were never called holds: `required` is how presence is demanded.
    assert measured(evaluate(host, tool_call, calls=[], order=[["a", "b"]])) == ("binary", True)


def test_tool_call_config_errors(host, tool_call):
    none = evaluate(host, tool_call, calls=DONE)
    assert (
        none.error_message
        == "invalid_config: no rules: give at least one of required, forbidden, schemas, counts, order"
    )
    inverted = evaluate(host, tool_call, calls=DONE, counts={"x": {"min": 3, "max": 1}})
    assert inverted.error_message == "invalid_config: counts.x: min is greater than max"
    unknown = evaluate(host, tool_call, calls=DONE, required=["x"], requried=["y"])
    assert unknown.error_code == "evaluator_error" and unknown.error_message.startswith("invalid_config:")


def test_limits_are_respected(host, trajectory):
    inv = evaluate(host, trajectory, expected=PLAN, calls=DONE, limits=Limits(timeout_s=2))
    assert measured(inv) == ("binary", True)


# --- llm-judge (scoring modes and prompts; the HTTP path is in test_model_broker.py) ----------------------


@pytest.fixture
def judge(host, settings, monkeypatch, provider, db):  # db: the response cache's shared level
    from tests.support.openai_provider import configure_providers

    configure_providers(settings, monkeypatch, provider)
    return build(host, "llm-judge")


def judged(host, judge, *, text="Paris. PINEAPPLE", **kwargs):
    from evaluators.model_broker import broker_for_binding

    broker = broker_for_binding(grant={"models": ["judge-default"]}, evaluator_digest=judge.digest)
    return evaluate(host, judge, text=text, model=broker, **kwargs)


def test_judge_describe_and_world(host, judge):
    info = host.describe(judge)
    assert (info["name"], info["version"]) == ("vigilo/llm-judge", "1.0.0")
    assert judge.contract.world == "model-evaluator"
    assert set(info["config_schema"]["properties"]["rubric"]["enum"]) == {
        "correctness", "correctness_with_reference", "hallucination", "groundedness", "answer_relevance",
        "conciseness", "toxicity", "pii_leakage", "prompt_injection", "tool_selection", "trajectory_accuracy",
        "plan_adherence",
    }  # fmt: skip


def test_judge_continuous_and_choice_scoring(host, judge, provider):
    assert measured(judged(host, judge, rubric="conciseness", scoring="continuous")) == ("numeric", 1.0)
    low = judged(host, judge, text="Paris", rubric="conciseness", scoring="continuous")
    assert measured(low) == ("numeric", 0.0)
    assert low.findings[0]["evidence"]["score"] == 0.0
    choices = ["good", "fair", "poor"]
    assert measured(judged(host, judge, rubric="correctness", scoring="choice", choices=choices)) == ("ordinal", "good")
    schema = provider.requests[-1]["body"]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["choice"] == {"type": "string", "enum": choices}


def test_judge_groundedness_uses_the_case_context_and_abstains_without_it(host, judge, provider):
    inv = judged(host, judge, rubric="groundedness", context=["Doc about Paris.", "PINEAPPLE facts"], text="Paris")
    assert measured(inv) == ("binary", True)
    prompt = provider.requests[-1]["body"]["messages"][1]["content"]
    assert "[1] Doc about Paris.\n\n[2] PINEAPPLE facts" in prompt
    missing = judged(host, judge, rubric="groundedness")
    assert missing.outcome == "abstained"
    assert missing.abstention == {
        "category": "missing_context",
        "reason": "the groundedness rubric needs the case's context, and there is none",
    }


def test_judge_reference_and_trajectory_rubrics(host, judge, provider):
    inv = judged(host, judge, rubric="correctness_with_reference", expected="PINEAPPLE Paris", text="Paris")
    assert measured(inv) == ("binary", True)
    assert (
        "### REFERENCE (the expected answer or plan)\nPINEAPPLE Paris"
        in provider.requests[-1]["body"]["messages"][1]["content"]
    )
    no_ref = judged(host, judge, rubric="correctness_with_reference")
    assert no_ref.error_message.startswith("missing_expected:")
    tools = judged(host, judge, rubric="tool_selection", calls=[("search", {"q": "PINEAPPLE"})])
    assert measured(tools) == ("binary", True)
    assert '1. search({"q": "PINEAPPLE"})' in provider.requests[-1]["body"]["messages"][1]["content"]
    assert judged(host, judge, rubric="tool_selection").abstention["category"] == "missing_trajectory"


def test_judge_custom_prompt_replaces_placeholders(host, judge, provider):
    inv = judged(
        host, judge, text="an answer", prompt="Is {output} about {input}? Marker: {reference}", value="PINEAPPLE"
    )
    assert measured(inv) == ("binary", True)
    assert provider.requests[-1]["body"]["messages"][1]["content"] == 'Is an answer about {"q": "?"}? Marker: PINEAPPLE'


def test_malformed_judge_output_abstains(host, judge, provider):
    provider.reply = "I think it is fine."
    inv = judged(host, judge, rubric="correctness")
    assert inv.outcome == "abstained"
    assert inv.abstention["category"] == "judge_output_invalid"
    assert inv.abstention["reason"].startswith("the judge's answer is not JSON:")
    provider.reply = '{"reasoning": "ok", "score": 7}'
    bad = judged(host, judge, rubric="correctness", scoring="continuous", text="other")
    assert bad.abstention == {"category": "judge_output_invalid", "reason": "the judge's score 7 is outside [0, 1]"}
    provider.reply = '{"reasoning": "ok"}'
    bad = judged(host, judge, rubric="toxicity", text="again")
    assert bad.abstention["reason"].startswith("the judge's answer does not match the schema:")


def test_judge_missing_output_fails_without_a_model_call(host, judge, provider):
    inv = judged(host, judge, text=None, rubric="correctness")
    assert measured(inv) == ("binary", False)
    assert inv.findings[0]["category"] == "missing_output"
    assert provider.requests == []


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "invalid_config: give exactly one of 'rubric' and 'prompt'"),
        ({"rubric": "correctness", "prompt": "x"}, "invalid_config: give exactly one of 'rubric' and 'prompt'"),
        (
            {"rubric": "correctness", "scoring": "choice"},
            "invalid_config: 'choices' goes with scoring 'choice', and only with it",
        ),
    ],
)
def test_judge_config_errors(host, judge, config, message):
    assert judged(host, judge, **config).error_message == message


# --- code-exec --------------------------------------------------------------------------------------------

ADD_TESTS = [
    {"call": "add", "args": [1, 2], "returns": 3},
    {"call": "add", "args": [-1], "kwargs": {"b": 1}, "returns": 0},
]


@pytest.fixture(scope="module")
def code_exec(host):
    return build(host, "code-exec")


def run_code(host, loaded, code, tests=ADD_TESTS, limits=None, **config):
    return evaluate(host, loaded, expected=tests, text=code, limits=limits, **config)


def test_code_exec_correct_code_from_markdown_passes(host, code_exec):
    text = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```\nand a usage example:\n```\nadd(1, 2)\n```"
    inv = run_code(host, code_exec, text)
    assert measured(inv) == ("numeric", 1.0)
    assert inv.explanation == "2 of 2 tests passed"


def test_code_exec_wrong_answer_is_a_per_test_finding(host, code_exec):
    inv = run_code(host, code_exec, "def add(a, b):\n    return a + b + (a < 0)\n", extract="raw")
    assert measured(inv) == ("numeric", 0.5)
    [only] = inv.findings
    assert (only["category"], only["message"]) == ("wrong_answer", "test 1: add(...) returned 1, expected 0")


def test_code_exec_stdin_stdout_tests(host, code_exec):
    tests = [{"stdin": "2 3\n", "stdout": "5\n"}, {"stdin": "10 -4\n", "stdout": "6"}, {"stdin": "1 1", "stdout": "3"}]
    inv = run_code(host, code_exec, "a, b = map(int, input().split())\nprint(a + b)", tests)
    assert measured(inv) == ("numeric", pytest.approx(2 / 3))
    assert inv.findings[0]["evidence"] == {"test": 2, "stdin": "1 1", "expected": "3", "actual": "2\n"}


def test_code_exec_syntax_error_and_exceptions(host, code_exec):
    syntax = run_code(host, code_exec, "def add(a, b)\n    return a + b")
    assert measured(syntax) == ("numeric", 0.0)
    assert syntax.findings[0]["category"] == "syntax_error"
    assert "line 1" in syntax.findings[0]["message"]
    crash = run_code(host, code_exec, "def add(a, b):\n    return {}[a]")
    assert measured(crash) == ("numeric", 0.0)
    assert [f["message"] for f in crash.findings] == ["test 0: KeyError: 1", "test 1: KeyError: -1"]
    missing = run_code(host, code_exec, "def plus(a, b):\n    return a + b")
    assert missing.findings[0]["message"] == "test 0: the code defines no function 'add'"
    raises = run_code(
        host, code_exec, "def inv(x):\n    return 1 / x", [{"call": "inv", "args": [0], "raises": "ZeroDivisionError"}]
    )
    assert measured(raises) == ("numeric", 1.0)


def test_code_exec_infinite_loop_is_a_failed_test(host, code_exec):
    code = (
        "def add(a, b):\n    while True:\n        try:\n            pass\n        except Exception:\n            pass\n"
    )
    inv = run_code(host, code_exec, code, max_steps=10_000, score="binary")
    assert measured(inv) == ("binary", False)
    assert [f["category"] for f in inv.findings] == ["step_limit", "step_limit"]
    assert inv.findings[0]["message"] == "test 0: exceeded the step budget of 10000 lines (an infinite loop?)"


def test_code_exec_infinite_loop_at_module_level_and_recursion(host, code_exec):
    inv = run_code(host, code_exec, "while True:\n    pass", [{"stdin": "", "stdout": ""}])
    assert inv.findings[0]["category"] == "step_limit"
    deep = run_code(host, code_exec, "def add(a, b):\n    return add(a, b)")
    assert deep.findings[0]["message"] == "test 0: RecursionError: maximum recursion depth exceeded"


@pytest.mark.parametrize(
    "bomb",
    [
        "x = [0] * 10**9",
        "s = 'a' * 10**10",
        "l = []\nwhile True:\n    l.append('x' * 10**6)",
        "l = []\nwhile True:\n    l.append([0] * 1000)",
    ],
)
def test_code_exec_memory_bombs_are_failed_tests(host, code_exec, bomb):
    code = f"def add(a, b):\n    {bomb.replace(chr(10), chr(10) + '    ')}\n    return a + b"
    inv = run_code(host, code_exec, code, limits=Limits(memory_mb=64, timeout_s=10))
    assert measured(inv) == ("numeric", 0.0), inv.logs
    first = inv.findings[0]
    assert first["category"] in ("memory_error", "exception"), inv.findings
    assert "MemoryError" in first["message"] or "OverflowError" in first["message"], inv.findings


def test_code_exec_candidate_state_does_not_leak_between_tests(host, code_exec):
    code = "seen = []\ndef add(a, b):\n    seen.append(1)\n    return len(seen)"
    tests = [{"call": "add", "args": [0, 0], "returns": 1}, {"call": "add", "args": [0, 0], "returns": 1}]
    assert measured(run_code(host, code_exec, code, tests)) == ("numeric", 1.0)


def test_code_exec_malformed_tests_are_evaluator_errors(host, code_exec):
    inv = run_code(host, code_exec, "x = 1", [{"call": "add"}])
    assert inv.error_message == (
        "invalid_expected: the case's expected value: test 0 needs a function name in 'call' and 'returns' or 'raises'"
    )
    empty = run_code(host, code_exec, "x = 1", [])
    assert empty.error_message == "invalid_expected: the case's expected value: the tests must be a non-empty list"
