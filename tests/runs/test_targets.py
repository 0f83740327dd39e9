"""Runs with a target: a real agent endpoint on loopback produces the outputs, once per case, and its failures
become `agent_error` results that the verdict reports."""

from __future__ import annotations

import json

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from runs.engine import chunk_evaluate
from runs.errors import ValidationFailed
from runs.models import Chunk, EvaluatorResult, Execution, Run
from runs.reports import json_report
from runs.services import dataset_import, profile_import, run_create
from runs.shutdown import stop_request, stop_reset
from runs.targets import PROTOCOLS, Target, output_from_answer, target_parse
from tests.support.agent_server import AgentServer
from tests.support.profiles import exact_match_profile
from vigilo_project.httpjson import CallFailed

PROFILE = exact_match_profile(
    "agent-target",
    more_bindings="""\
  - id: polite
    evaluator: vigilo/contains@^1.0
    dimension: correctness
    required: false
    config: {value: "please"}
""",
    options="{chunk_size: 3}",
)
QUESTIONS = {"2+2": "4", "capital of France": "Paris", "3*3": "9", "10/2": "5", "1+1": "2"}


@pytest.fixture
def agent():
    server = AgentServer(answers={q: a for q, a in QUESTIONS.items() if q != "3*3"})  # it does not know 3*3
    server.start()
    yield server
    server.stop()


def make_run(*, target, with_output=False, name="targets"):
    rows = [
        {"id": f"c{i}", "input": q, "expected": a, **({"output": {"text": "recorded"}} if with_output else {})}
        for i, (q, a) in enumerate(QUESTIONS.items())
    ]
    dataset, _ = dataset_import(name=name, text="\n".join(json.dumps(r) for r in rows))
    profile, _ = profile_import(text=PROFILE)
    run, _ = run_create(dataset_version=dataset, profile_version=profile, options={"target": target})
    return run


def process(run):
    for chunk in Chunk.objects.filter(run=run).order_by("index"):
        chunk_evaluate(chunk_id=chunk.id)
    return Run.objects.get(pk=run.id)


def results(run, binding="answer"):
    rows = EvaluatorResult.objects.filter(run=run, binding_id=binding).order_by("execution__ordinal")
    return {r.execution.case_id: r for r in rows.select_related("execution")}


# -- the target's definition ---------------------------------------------------------------------------


def test_a_target_is_completed_with_its_defaults():
    target = target_parse({"url": "http://agent.internal:8080/run"})
    assert target.as_dict() == {
        "url": "http://agent.internal:8080/run",
        "protocol": "vigilo",
        "model": None,
        "system": None,
        "headers": {},
        "bearer_token_env": None,
        "timeout_s": 60.0,
        "max_retries": 2,
        "concurrency": 4,
        "replace_outputs": False,
    }


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        ("http://x", "target", "must be an object"),
        ({}, "target.url", "required: an http(s) URL"),
        ({"url": "ftp://host/x"}, "target.url", "http(s) URL"),
        ({"url": "http://host:99999/"}, "target.url", "http(s) URL"),
        ({"url": "http://bücher.example/"}, "target.url", "xn-- form"),
        ({"url": "http://h/a b"}, "target.url", "without spaces"),
        ({"url": "http://h/é"}, "target.url", "percent-encode the path"),
        ({"url": "http://h/", "headers": {"X-Team": "équipe"}}, "target.headers.X-Team", "printable ASCII"),
        ({"url": "http://h/", "headers": {"X-Team": "a\r\nX-Evil: 1"}}, "target.headers.X-Team", "not a valid"),
        ({"url": "http://h/", "colour": "red"}, "target.colour", "unknown field"),
        ({"url": "http://h/", "protocol": "grpc"}, "target.protocol", "must be one of vigilo, openai-chat"),
        ({"url": "http://h/", "protocol": "openai-chat"}, "target.model", "required for the openai-chat protocol"),
        ({"url": "http://h/", "model": "gpt"}, "target.model", "only the openai-chat protocol takes it"),
        ({"url": "http://h/", "headers": {"Authorization": "Bearer s3cret"}}, "target.headers.Authorization", "env"),
        ({"url": "http://h/", "headers": {"X-Team": 7}}, "target.headers", "string values"),
        ({"url": "http://h/", "headers": {"Bad Name": "x"}}, "target.headers.Bad Name", "not a valid header"),
        ({"url": "http://h/", "bearer_token_env": "$TOKEN"}, "target.bearer_token_env", "environment variable"),
        ({"url": "http://h/", "timeout_s": 0}, "target.timeout_s", "from 0 to 600"),
        ({"url": "http://h/", "timeout_s": "5"}, "target.timeout_s", "must be a number"),
        ({"url": "http://h/", "max_retries": 1.5}, "target.max_retries", "must be an integer"),
        ({"url": "http://h/", "concurrency": 0}, "target.concurrency", "from 1 to 64, not 0"),
        ({"url": "http://h/", "replace_outputs": "yes"}, "target.replace_outputs", "true or false"),
    ],
)
def test_a_bad_target_is_refused_naming_the_field(raw, field, message):
    with pytest.raises(ValidationFailed) as refused:
        target_parse(raw)
    assert [where for where, _ in refused.value.errors] == [field]
    assert message in refused.value.errors[0][1]


def test_cases_without_output_need_a_target_and_nothing_is_written(published):
    rows = [{"id": "c0", "input": "2+2", "expected": "4"}, {"id": "c1", "input": "1+1", "output": {"text": "2"}}]
    dataset, _ = dataset_import(name="no-output", text="\n".join(json.dumps(r) for r in rows))
    profile, _ = profile_import(text=PROFILE)
    with pytest.raises(ValidationFailed) as refused:
        run_create(dataset_version=dataset, profile_version=profile)
    assert refused.value.errors == [
        (
            "dataset",
            "1 case(s) have no output ('c0'); record the agent's outputs in the dataset, or give the run a target "
            "(an agent endpoint) that produces them",
        )
    ]
    assert not Run.objects.exists() and not Execution.objects.exists()


def test_a_bad_target_refuses_the_run_and_nothing_is_written(published):
    with pytest.raises(ValidationFailed, match=r"target\.concurrency"):
        make_run(target={"url": "http://127.0.0.1:9/agent", "concurrency": 1000})
    assert not Run.objects.exists() and not Execution.objects.exists()


# -- the vigilo protocol ---------------------------------------------------------------------------------


def test_the_agent_answers_every_case_once_and_its_outputs_are_evaluated(published, agent):
    run = process(make_run(target={"url": agent.url}))

    assert run.state == Run.State.COMPLETED and run.gate == Run.Gate.FAIL
    assert agent.asked() == {f"c{i}": 1 for i in range(5)}
    answer = results(run)
    assert {cid: r.judgment for cid, r in answer.items()} == {
        "c0": "passed",
        "c1": "passed",
        "c2": "failed",  # the agent does not know 3*3
        "c3": "passed",
        "c4": "passed",
    }
    assert run.verdict["counts"]["passed"] == 4 and run.verdict["counts"]["failed"] == 1
    assert run.verdict["agent"] == {"url": agent.url, "protocol": "vigilo", "outputs": 5, "failed": 0}
    snapshots = dict(Execution.objects.filter(run=run).values_list("case_id", "snapshot"))
    assert snapshots["c2"]["output"]["text"] == "I don't know"
    assert snapshots["c1"]["output"] == {
        "text": "Paris",
        "structured": None,
        "tool_calls": [],
        "trace": [],
        "metadata": {},
    }
    calls = dict(Execution.objects.filter(run=run).values_list("case_id", "agent_call"))
    assert {c["status"] for c in calls.values()} == {"ok"} and {c["attempts"] for c in calls.values()} == {1}


def test_the_agent_is_sent_the_case_without_its_expected_answer(published, agent):
    run = make_run(target={"url": agent.url, "headers": {"X-Team": "support"}})
    process(run)
    first = next(r for r in agent.requests if r["body"]["case"]["id"] == "c1")
    execution = Execution.objects.get(run=run, case_id="c1")
    assert first["body"] == {
        "run_id": str(run.id),
        "execution_id": execution.id,
        "case": {"id": "c1", "input": "capital of France", "context": None, "tags": [], "metadata": {}},
    }
    assert first["headers"]["Idempotency-Key"] == f"{run.id}:c1"
    assert first["headers"]["X-Team"] == "support"
    assert "Authorization" not in first["headers"]


def test_a_failing_case_becomes_an_agent_error_and_the_rest_is_evaluated(published, agent):
    agent.broken = {"c3"}
    run = process(make_run(target={"url": agent.url, "max_retries": 1}))

    assert agent.asked()["c3"] == 2  # the first attempt and one retry
    errored = [r for r in EvaluatorResult.objects.filter(run=run, execution__case_id="c3")]
    assert sorted(r.binding_id for r in errored) == ["answer", "polite"]
    assert {(r.outcome, r.error_code, r.error_message) for r in errored} == {
        ("error", "agent_error", "agent answered HTTP 500 (gave up after 2 attempts)")
    }
    assert run.verdict["counts"]["error"] == 1 and run.verdict["counts"]["passed"] == 3
    assert run.verdict["agent"]["outputs"] == 4 and run.verdict["agent"]["failed"] == 1
    assert "executions_errored" in {r["code"] for r in run.verdict["reasons"]}
    call = Execution.objects.get(run=run, case_id="c3").agent_call
    assert call["status"] == "error" and call["error"] == "agent answered HTTP 500 (gave up after 2 attempts)"
    report = {e["case_id"]: e for e in json_report(run=run)["executions"]}
    assert report["c3"]["output"] is None and report["c1"]["output"]["text"] == "Paris"


def test_a_busy_agent_is_asked_again(published, agent):
    agent.fail_next = 2  # HTTP 503 twice, then answers
    run = process(make_run(target={"url": agent.url}))
    assert run.verdict["agent"]["failed"] == 0 and run.verdict["counts"]["passed"] == 4
    attempts = sorted(c["attempts"] for c in Execution.objects.filter(run=run).values_list("agent_call", flat=True))
    assert sum(attempts) == 5 + 2


def test_an_answer_that_is_not_an_output_is_an_agent_error_naming_the_field(published, agent):
    agent.answer = {"text": 4, "mood": "happy"}
    run = process(make_run(target={"url": agent.url}))
    messages = set(EvaluatorResult.objects.filter(run=run).values_list("error_message", flat=True))
    assert messages == {
        "the agent's answer is not a valid output: 'output.mood': unknown field; 'output.text': must be a "
        "string or null"
    }
    assert run.verdict["counts"]["error"] == 5


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"<html>oops</html>", "agent answered with invalid JSON: <html>oops</html>"),
        (["text"], "the agent's answer must be an output object, not list"),
        ({"text": "x" * (5 << 20)}, "agent response larger than 4194304 bytes"),
    ],
)
def test_an_unreadable_answer_is_an_agent_error(published, agent, answer, message):
    agent.answer = answer
    run = process(make_run(target={"url": agent.url}))
    assert set(EvaluatorResult.objects.filter(run=run).values_list("error_message", flat=True)) == {message}
    assert run.state == Run.State.COMPLETED and run.verdict["counts"]["error"] == 5


def test_a_slow_agent_times_out_into_an_agent_error(published, agent):
    agent.delay_s = 2.0
    run = process(make_run(target={"url": agent.url, "timeout_s": 0.3, "max_retries": 0, "concurrency": 5}))
    messages = set(EvaluatorResult.objects.filter(run=run).values_list("error_message", flat=True))
    assert messages == {"agent call ran into the call's deadline"}


def test_the_token_comes_from_the_workers_environment(published, agent, monkeypatch):
    monkeypatch.setenv("AGENT_TOKEN", "tok-123")
    run = process(make_run(target={"url": agent.url, "bearer_token_env": "AGENT_TOKEN"}))
    assert {r["headers"]["Authorization"] for r in agent.requests} == {"Bearer tok-123"}
    assert "tok-123" not in json.dumps(run.options)

    monkeypatch.delenv("AGENT_TOKEN")
    again = process(make_run(target={"url": agent.url, "bearer_token_env": "AGENT_TOKEN"}, name="no-token"))
    assert set(EvaluatorResult.objects.filter(run=again).values_list("error_message", flat=True)) == {
        "the target needs a token in $AGENT_TOKEN, which the worker does not have"
    }


def test_recorded_outputs_are_kept_unless_the_target_replaces_them(published, agent):
    kept = process(make_run(target={"url": agent.url}, with_output=True))
    assert agent.requests == [] and kept.verdict["counts"]["failed"] == 5
    assert kept.verdict["agent"]["outputs"] == 0

    replaced = process(make_run(target={"url": agent.url, "replace_outputs": True}, with_output=True, name="re"))
    assert agent.asked() == {f"c{i}": 1 for i in range(5)}
    assert replaced.verdict["counts"]["passed"] == 4


@pytest.mark.parametrize("replace", [False, True])
def test_a_chunk_taken_over_does_not_ask_the_agent_again_for_what_it_answered(published, agent, replace):
    run = make_run(target={"url": agent.url, "concurrency": 1, "replace_outputs": replace}, with_output=replace)
    first = Chunk.objects.get(run=run, index=0)
    stop_request(grace_s=0)  # the worker is stopping: it gives the chunk back after the first answer
    try:
        assert chunk_evaluate(chunk_id=first.id) == "released"
    finally:
        stop_reset()
    recorded = set(Execution.objects.filter(chunk=first, agent_call__status="ok").values_list("case_id", flat=True))
    assert recorded and recorded < {"c0", "c1", "c2"}
    asked_before = agent.asked()

    run = process(run)
    assert run.state == Run.State.COMPLETED
    asked = agent.asked()
    for case_id in recorded:
        assert asked[case_id] == asked_before[case_id] == 1
    assert set(asked) == {f"c{i}" for i in range(5)}
    assert EvaluatorResult.objects.filter(run=run).count() == 5 * 2
    assert run.verdict["agent"]["outputs"] == 5


# -- the openai-chat protocol ----------------------------------------------------------------------------


def test_an_openai_chat_agent_answers_with_text_and_tool_calls(published, agent):
    agent.tool_calls = {"lookup": {"q": "capital"}}
    target = {"url": agent.chat_url, "protocol": "openai-chat", "model": "agent-v2", "system": "Be brief."}
    run = process(make_run(target=target))

    assert run.verdict["counts"]["passed"] == 4
    request = next(r for r in agent.requests if r["body"]["messages"][-1]["content"] == "capital of France")
    assert request["body"] == {
        "model": "agent-v2",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "capital of France"}],
    }
    output = Execution.objects.get(run=run, case_id="c1").snapshot["output"]
    assert output["text"] == "Paris"
    assert output["tool_calls"] == [{"name": "lookup", "arguments": {"q": "capital"}, "result": None}]
    assert output["metadata"] == {
        "model": "agent-v2-2024",
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }


def test_an_openai_chat_input_can_be_a_conversation(published, agent):
    conversation = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    rows = [
        {"id": "conv", "input": {"messages": [*conversation, {"role": "user", "content": "2+2"}]}, "expected": "4"},
        {"id": "json", "input": {"question": "2+2"}, "expected": "4"},
    ]
    dataset, _ = dataset_import(name="chat", text="\n".join(json.dumps(r) for r in rows))
    profile, _ = profile_import(text=PROFILE)
    target = {"url": agent.chat_url, "protocol": "openai-chat", "model": "m"}
    run, _ = run_create(dataset_version=dataset, profile_version=profile, options={"target": target})
    run = process(run)
    sent = sorted((r["body"]["messages"] for r in agent.requests), key=len)
    assert sent == [
        [{"role": "user", "content": '{"question": "2+2"}'}],
        [*conversation, {"role": "user", "content": "2+2"}],
    ]
    assert {cid: r.judgment for cid, r in results(run).items()} == {"conv": "passed", "json": "failed"}


def test_the_admin_execution_page_shows_the_agent_call(published, agent, admin_client):
    agent.broken = {"c0"}
    run = process(make_run(target={"url": agent.url, "max_retries": 0}))
    execution = Execution.objects.get(run=run, case_id="c0")

    page = admin_client.get(f"/admin/runs/execution/{execution.id}/change/")

    assert page.status_code == 200
    assert "agent answered HTTP 500 (gave up after 1 attempt)" in page.content.decode()


# -- any input: a target or a clear refusal, an output or a clear failure -----------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
TARGET_KEYS = st.sampled_from([*Target.__dataclass_fields__, "colour"])


NEAR_VALID = st.fixed_dictionaries(
    {"url": st.sampled_from(["http://agent/run", "https://agent.internal:8443/v1/chat/completions?x=1"])},
    optional={
        "protocol": st.sampled_from(["vigilo", "openai-chat"]),
        "model": st.text(max_size=8),
        "headers": st.dictionaries(st.sampled_from(["X-Team", "Authorization", "Bad Name"]), JSON, max_size=2),
        "timeout_s": st.one_of(st.floats(0.1, 600), JSON),
        "max_retries": st.integers(-2, 12),
        "concurrency": st.integers(-1, 70),
        "replace_outputs": st.one_of(st.booleans(), JSON),
    },
)
CHAT_ANSWERS = st.fixed_dictionaries(
    {
        "choices": st.lists(
            st.fixed_dictionaries(
                {
                    "message": st.fixed_dictionaries(
                        {},
                        optional={
                            "content": st.one_of(st.text(max_size=10), JSON),
                            "refusal": JSON,
                            "tool_calls": st.lists(
                                st.fixed_dictionaries(
                                    {"function": st.fixed_dictionaries({"name": JSON}, optional={"arguments": JSON})}
                                ),
                                max_size=2,
                            ),
                        },
                    )
                },
                optional={"finish_reason": JSON},
            ),
            max_size=2,
        )
    },
    optional={"model": JSON, "usage": JSON},
)


@settings(max_examples=500, deadline=None)
@given(st.one_of(JSON, st.dictionaries(TARGET_KEYS, JSON, max_size=6), NEAR_VALID))
def test_any_target_is_accepted_or_refused_with_named_fields(raw):
    try:
        target = target_parse(raw)
    except ValidationFailed as refused:
        assert refused.errors and all(where.startswith("target") for where, _ in refused.errors)
    else:
        event("accepted")
        assert target_parse(target.as_dict()) == target  # what a run stores reads back the same


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(JSON, st.dictionaries(st.sampled_from(["text", "structured", "tool_calls", "trace"]), JSON), CHAT_ANSWERS)
)
def test_any_answer_is_an_output_or_a_call_failure(data):
    for protocol in PROTOCOLS:
        try:
            output = output_from_answer(protocol=protocol, data=data)
        except CallFailed as failed:
            assert str(failed)
        else:
            event(f"an output from a {protocol} answer")
            assert set(output) == {"text", "structured", "tool_calls", "trace", "metadata"}


# -- the network policy (vigilo_project/netpolicy.py) ------------------------------------------------------


@pytest.fixture
def network_policy(settings):  # pytest-django's settings; the module's `settings` is hypothesis'
    def use(value):
        settings.VIGILO_NETWORK_POLICY = value

    return use


def test_by_default_a_run_reaches_its_own_target_on_loopback(published, agent, network_policy):
    network_policy("default")
    run = process(make_run(target={"url": agent.url}))
    assert agent.asked() == {f"c{i}": 1 for i in range(5)}
    assert run.verdict["agent"] == {"url": agent.url, "protocol": "vigilo", "outputs": 5, "failed": 0}


def test_a_target_the_workers_policy_refuses_is_an_agent_error_and_is_never_called(published, agent, network_policy):
    network_policy({"allow": ["127.0.0.2"]})
    run = process(make_run(target={"url": agent.url.replace("127.0.0.1", "localhost"), "max_retries": 3}))

    assert agent.requests == []
    rows = EvaluatorResult.objects.filter(run=run)
    assert {(r.outcome, r.error_code) for r in rows} == {("error", "agent_error")}
    [message] = set(rows.values_list("error_message", flat=True))
    assert message in {  # whichever address localhost resolves to first
        f"network policy refused {address} (loopback address of localhost): not allowed by VIGILO_NETWORK_POLICY"
        for address in ("127.0.0.1", "::1")
    }
    calls = list(Execution.objects.filter(run=run).values_list("agent_call", flat=True))
    assert {(c["status"], c["error"]) for c in calls} == {("error", message)}
    assert run.state == Run.State.COMPLETED and run.gate == Run.Gate.FAIL
    assert run.verdict["agent"]["outputs"] == 0 and run.verdict["agent"]["failed"] == 5


def test_a_target_on_the_metadata_address_is_refused_by_default(published, network_policy):
    network_policy("default")
    run = process(make_run(target={"url": "http://169.254.169.254/latest/meta-data/", "max_retries": 3}))
    assert set(EvaluatorResult.objects.filter(run=run).values_list("error_message", flat=True)) == {
        "network policy refused 169.254.169.254 (cloud metadata address): cloud metadata addresses are refused "
        "unless an entry names them (VIGILO_NETWORK_POLICY=default)"
    }


def test_the_target_network_field_narrows_the_workers_policy(published, agent, network_policy):
    network_policy("default")
    url = agent.url.replace("127.0.0.1", "localhost")
    refused = process(make_run(target={"url": url, "network": {"allow": ["127.0.0.2"]}}))
    [message] = set(EvaluatorResult.objects.filter(run=refused).values_list("error_message", flat=True))
    assert message.endswith("(loopback address of localhost): not allowed by target.network")
    assert agent.requests == []

    pinned = make_run(target={"url": url, "network": {"allow": ["127.0.0.0/8", "::1"]}}, name="pinned")
    assert pinned.options["target"]["network"] == {"allow": ["127.0.0.0/8", "::1"]}
    assert process(pinned).verdict["agent"]["outputs"] == 5


@pytest.mark.parametrize(
    ("network", "field", "message"),
    [
        ("open", "target.network", 'must be "allow-all", "deny-all" or {"allow": [host, IP or CIDR, ...]}'),
        ({"allow": ["agent.internal", "x:0"]}, "target.network.allow[1]", "the port must be a number from 1"),
        ({"allow": ["agent.internal"], "deny": []}, "target.network.deny", "unknown key (only 'allow')"),
        (
            "deny-all",
            "target.network",
            "refuses the target's own url: network policy refused agent.internal:8080: target.network refuses every "
            "call (deny-all)",
        ),
        (
            {"allow": ["agent.internal:443"]},
            "target.network",
            "refuses the target's own url: network policy refused agent.internal: target.network allows it on port "
            "443 only",
        ),
        (
            {"allow": ["*.agent.internal"]},  # a wildcard is the names under it, not the name itself
            "target.network",
            "refuses the target's own url: network policy refused agent.internal: not allowed by target.network",
        ),
    ],
)
def test_a_bad_target_network_is_refused_naming_the_field(network, field, message):
    with pytest.raises(ValidationFailed) as refused:
        target_parse({"url": "http://agent.internal:8080/run", "network": network})
    assert refused.value.errors == [(field, refused.value.errors[0][1])]
    assert message in refused.value.errors[0][1]


def test_a_target_network_naming_no_address_of_a_literal_url_is_refused():
    with pytest.raises(ValidationFailed) as refused:
        target_parse({"url": "http://10.0.0.5:8080/run", "network": {"allow": ["192.168.0.0/16"]}})
    assert refused.value.errors == [
        (
            "target.network",
            "refuses the target's own url: network policy refused 10.0.0.5 (private address): not allowed by "
            "target.network",
        )
    ]


def test_a_target_network_is_stored_in_canonical_form_and_reads_back():
    target = target_parse(
        {"url": "http://agent.internal:8080/run", "network": {"allow": ["Agent.Internal.", "10.0.0.0/8:8080"]}}
    )
    assert target.as_dict()["network"] == {"allow": ["agent.internal", "10.0.0.0/8:8080"]}
    assert target_parse(target.as_dict()) == target
    assert "network" not in target_parse({"url": "http://agent.internal:8080/run"}).as_dict()


NETWORKS = st.one_of(
    st.sampled_from(["allow-all", "deny-all", "default", None]),
    st.fixed_dictionaries(
        {
            "allow": st.lists(
                st.one_of(
                    st.sampled_from(["agent", "*.agent", "agent:8443", "10.0.0.0/8", "[::1]:80", "fe80::/10"]),
                    st.text(st.characters(codec="ascii"), max_size=12),
                    JSON,
                ),
                max_size=4,
            )
        },
        optional={"deny": JSON},
    ),
    JSON,
)


@settings(max_examples=300, deadline=None)
@given(NETWORKS, st.sampled_from(["http://agent:8443/run", "http://10.1.2.3/run", "https://[::1]/run"]))
def test_any_target_network_is_accepted_or_refused_with_named_fields(network, url):
    try:
        target = target_parse({"url": url, "network": network})
    except ValidationFailed as refused:
        assert refused.errors and all(where.startswith("target.network") for where, _ in refused.errors)
    else:
        event("accepted")
        assert target_parse(target.as_dict()) == target


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ({"text": "a\x00b"}, "output.text: holds \\u0000 (NUL), which cannot be stored"),
        ({"text": "ok", "structured": {"amount": float("nan")}}, "output.structured.amount: nan is not a JSON number"),
        ({"text": "\ud800"}, "output.text: holds a lone surrogate"),
    ],
)
def test_an_answer_the_database_cannot_store_is_an_agent_error_naming_the_field(answer, said):
    """What a dataset line may not hold (PostgreSQL refuses it), an agent's answer may not either."""
    with pytest.raises(CallFailed) as refused:
        output_from_answer(protocol="vigilo", data=answer)
    assert str(refused.value).startswith("the agent's output cannot be stored: ")
    assert said in str(refused.value)
