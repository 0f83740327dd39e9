import copy
from typing import Any

import pytest
import yaml

from gating.profile import (
    Binding,
    Dimension,
    Normalization,
    ProfileError,
    ProfileSpec,
    ScorecardGate,
    profile_parse,
)

DELETE = object()

TOP_KEYS = (
    "name, description, min_execution_score, fail_on_any_blocking_failure, dimensions, bindings, run_gate, options, "
    "export"
)
BINDING_KEYS = (
    "id, evaluator, dimension, config, normalization, pass_threshold, weight, required, blocking, grants, limits, when"
)
LIMIT_KEYS = "fuel, memory_mb, timeout_s, max_log_messages, max_log_bytes, max_output_bytes"
SCORECARD_KEYS = "dimension, binding, tag, min_mean_score, min_pass_rate, max_error_rate, max_abstention_rate"
DIAGNOSTIC = "a non-required binding is diagnostic only: it cannot be blocking or weighted"

VALID = {
    "name": "support-agent",
    "description": "Release gate for the support agent",
    "min_execution_score": 0.8,
    "fail_on_any_blocking_failure": True,
    "dimensions": {
        "correctness": {"weight": 2.0, "aggregation": "weighted_mean"},
        "safety": {"weight": 1.0, "aggregation": "min_score", "blocking": True},
        "style": {"weight": 0},
    },
    "bindings": [
        {
            "id": "answer",
            "evaluator": "vigilo/exact-match@1.0.0",
            "dimension": "correctness",
            "config": {"field": "text", "case_sensitive": False},
            "normalization": {"binary": {True: 1.0, False: 0.0}},
            "pass_threshold": 1.0,
            "weight": 1.0,
            "required": True,
            "blocking": False,
        },
        {
            "id": "distance",
            "evaluator": "vigilo/levenshtein@^1.0",
            "dimension": "correctness",
            "normalization": {"linear": {"min": 0, "max": 10, "direction": "lower"}},
            "pass_threshold": 0.5,
            "weight": 2,
        },
        {
            "id": "latency",
            "evaluator": "vigilo/numeric-tolerance@1.2.0",
            "dimension": "correctness",
            "normalization": {"thresholds": {"cutpoints": [1, 5], "scores": [1.0, 0.5, 0.0], "min": 0, "max": 60}},
        },
        {
            "id": "judge",
            "evaluator": "vigilo/llm-judge@1.0.0",
            "dimension": "safety",
            "normalization": {"ordinal": {"safe": 1.0, "borderline": 0.5, "unsafe": 0.0}},
            "grants": {"model": {"models": ["gpt-4o-mini"], "max_calls": 2}},
            "limits": {
                "fuel": 1000000,
                "memory_mb": 32,
                "timeout_s": 2.5,
                "max_log_messages": 0,
                "max_log_bytes": 1024,
                "max_output_bytes": 4096,
            },
        },
        {"id": "tone-probe", "evaluator": "vigilo/regex@1.0.0", "dimension": "style", "required": False},
    ],
    "run_gate": {
        "scorecard": [
            {"dimension": "correctness", "min_mean_score": 0.85, "min_pass_rate": 0.9, "max_error_rate": 0.0},
            {"binding": "judge", "tag": "billing", "max_abstention_rate": 0.1},
            {"tag": "smoke", "min_pass_rate": 1},
        ]
    },
    "options": {"chunk_size": 50},
}


def mutated(path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


def parse_errors(data: object) -> list[tuple[str, str]]:
    with pytest.raises(ProfileError) as raised:
        profile_parse(data=data)
    return raised.value.errors


def test_a_valid_full_profile_parses():
    profile = profile_parse(data=copy.deepcopy(VALID))

    assert profile == ProfileSpec(
        name="support-agent",
        description="Release gate for the support agent",
        min_execution_score=0.8,
        fail_on_any_blocking_failure=True,
        dimensions={
            "correctness": Dimension(name="correctness", weight=2.0, aggregation="weighted_mean", blocking=False),
            "safety": Dimension(name="safety", weight=1.0, aggregation="min_score", blocking=True),
            "style": Dimension(name="style", weight=0.0, aggregation="weighted_mean", blocking=False),
        },
        bindings=(
            Binding(
                id="answer",
                evaluator="vigilo/exact-match@1.0.0",
                dimension="correctness",
                config={"field": "text", "case_sensitive": False},
                normalization=Normalization(kind="binary", true_score=1.0, false_score=0.0),
                pass_threshold=1.0,
                weight=1.0,
                required=True,
                blocking=False,
                grants={},
                limits={},
            ),
            Binding(
                id="distance",
                evaluator="vigilo/levenshtein@^1.0",
                dimension="correctness",
                normalization=Normalization(kind="linear", min_value=0.0, max_value=10.0, direction="lower"),
                pass_threshold=0.5,
                weight=2.0,
            ),
            Binding(
                id="latency",
                evaluator="vigilo/numeric-tolerance@1.2.0",
                dimension="correctness",
                normalization=Normalization(
                    kind="thresholds",
                    cutpoints=(1.0, 5.0),
                    scores=(1.0, 0.5, 0.0),
                    min_value=0.0,
                    max_value=60.0,
                ),
            ),
            Binding(
                id="judge",
                evaluator="vigilo/llm-judge@1.0.0",
                dimension="safety",
                normalization=Normalization(kind="ordinal", labels={"safe": 1.0, "borderline": 0.5, "unsafe": 0.0}),
                grants={"model": {"models": ["gpt-4o-mini"], "max_calls": 2, "max_tokens": 4096}},
                limits={
                    "fuel": 1000000,
                    "memory_mb": 32,
                    "timeout_s": 2.5,
                    "max_log_messages": 0,
                    "max_log_bytes": 1024,
                    "max_output_bytes": 4096,
                },
            ),
            Binding(
                id="tone-probe",
                evaluator="vigilo/regex@1.0.0",
                dimension="style",
                normalization=Normalization(kind="default"),
                weight=0.0,
                required=False,
            ),
        ),
        scorecard=(
            ScorecardGate(dimension="correctness", min_mean_score=0.85, min_pass_rate=0.9, max_error_rate=0.0),
            ScorecardGate(binding="judge", tag="billing", max_abstention_rate=0.1),
            ScorecardGate(tag="smoke", min_pass_rate=1.0),
        ),
        chunk_size=50,
    )


def test_a_minimal_profile_gets_the_documented_defaults():
    data = {
        "name": "tiny",
        "min_execution_score": 0,
        "dimensions": {"quality": {}},
        "bindings": [{"id": "q", "evaluator": "acme/check@1", "dimension": "quality"}],
    }

    profile = profile_parse(data=data)

    assert profile == ProfileSpec(
        name="tiny",
        description="",
        min_execution_score=0.0,
        fail_on_any_blocking_failure=True,
        dimensions={"quality": Dimension(name="quality", weight=1.0, aggregation="weighted_mean", blocking=False)},
        bindings=(
            Binding(
                id="q",
                evaluator="acme/check@1",
                dimension="quality",
                config={},
                normalization=Normalization(kind="default"),
                pass_threshold=1.0,
                weight=1.0,
                required=True,
                blocking=False,
                grants={},
                limits={},
            ),
        ),
        scorecard=(),
        chunk_size=100,
    )


def test_yaml_text_with_bare_true_false_keys_parses():
    text = """
name: support-agent
min_execution_score: 0.8
dimensions:
  correctness: {weight: 2.0, aggregation: weighted_mean}
bindings:
  - id: answer
    evaluator: vigilo/exact-match@1.0.0
    dimension: correctness
    normalization: {binary: {true: 0.9, "false": 0.1}}
run_gate:
  scorecard:
    - {dimension: correctness, min_mean_score: 0.85}
"""

    profile = profile_parse(data=yaml.safe_load(text))

    assert profile.bindings[0].normalization == Normalization(kind="binary", true_score=0.9, false_score=0.1)
    assert profile.scorecard == (ScorecardGate(dimension="correctness", min_mean_score=0.85),)


def test_a_non_required_binding_with_explicit_zero_weight_is_valid():
    data = mutated(("bindings", 4, "weight"), 0)

    profile = profile_parse(data=data)

    assert profile.bindings[4].weight == 0.0
    assert profile.bindings[4].required is False


def test_the_config_is_copied_not_shared_with_the_input():
    data = copy.deepcopy(VALID)

    profile = profile_parse(data=data)
    data["bindings"][0]["config"]["field"] = "structured"

    assert profile.bindings[0].config == {"field": "text", "case_sensitive": False}


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        # top level
        (("name",), DELETE, [("name", "is required")]),
        (("name",), "  ", [("name", "must be a non-empty string")]),
        (("name",), 7, [("name", "must be a string")]),
        (("description",), 1, [("description", "must be a string")]),
        (("min_execution_score",), 1.5, [("min_execution_score", "must be between 0 and 1")]),
        (("min_execution_score",), "0.8", [("min_execution_score", "must be a number")]),
        (("min_execution_score",), True, [("min_execution_score", "must be a number")]),
        (("min_execution_score",), float("nan"), [("min_execution_score", "must be a finite number")]),
        (("fail_on_any_blocking_failure",), "yes", [("fail_on_any_blocking_failure", "must be a boolean")]),
        (("timeout",), 5, [("timeout", f"unknown key (allowed: {TOP_KEYS})")]),
        (
            ("export",),
            "otlp",
            [("export", "must be a list of destinations (otlp, phoenix, langfuse, braintrust, langsmith)")],
        ),
        (
            ("export",),
            ["otlp", "splunk"],
            [("export[1]", "'splunk' is not a destination (otlp, phoenix, langfuse, braintrust, langsmith)")],
        ),
        (("export",), ["otlp", "otlp"], [("export[1]", "'otlp' is listed twice")]),
        # dimensions
        (("dimensions",), DELETE, [("dimensions", "is required")]),
        (("dimensions",), {}, [("dimensions", "must not be empty")]),
        (("dimensions",), ["correctness"], [("dimensions", "must be a mapping")]),
        (("dimensions", "correctness", "weight"), -1, [("dimensions.correctness.weight", "must be >= 0")]),
        (
            ("dimensions", "correctness", "weight"),
            True,
            [("dimensions.correctness.weight", "must be a number")],
        ),
        (
            ("dimensions", "correctness", "aggregation"),
            "median",
            [("dimensions.correctness.aggregation", "must be one of weighted_mean, min_score")],
        ),
        (("dimensions", "safety", "blocking"), 1, [("dimensions.safety.blocking", "must be a boolean")]),
        (
            ("dimensions", "safety", "colour"),
            "red",
            [("dimensions.safety.colour", "unknown key (allowed: weight, aggregation, blocking)")],
        ),
        (("dimensions", "safety"), None, [("dimensions.safety", "must be a mapping")]),
        (("dimensions", "unused"), {}, [("dimensions.unused", "dimension 'unused' has no binding")]),
        # bindings: shape
        (("bindings",), DELETE, [("bindings", "is required")]),
        (("bindings",), [], [("bindings", "must not be empty")]),
        (("bindings",), {"answer": {}}, [("bindings", "must be a list")]),
        (("bindings", 0), "answer", [("bindings[0]", "must be a mapping")]),
        (
            ("bindings", 0, "colour"),
            "red",
            [("bindings[0].colour", f"unknown key (allowed: {BINDING_KEYS})")],
        ),
        # bindings: id
        (("bindings", 0, "id"), DELETE, [("bindings[0].id", "is required")]),
        (("bindings", 0, "id"), 3, [("bindings[0].id", "must be a string")]),
        *[
            (
                ("bindings", 0, "id"),
                bad_id,
                [
                    (
                        "bindings[0].id",
                        "must be 1-63 characters of lowercase letters, digits, '_' or '-', "
                        "starting with a letter or digit",
                    )
                ],
            )
            for bad_id in ("Answer", "-answer", "a" * 64, "an swer", "answer\n")
        ],
        (
            ("bindings", 1, "id"),
            "answer",
            [("bindings[1].id", "duplicate binding id 'answer' (see bindings[0])")],
        ),
        # bindings: evaluator and dimension
        (("bindings", 0, "evaluator"), DELETE, [("bindings[0].evaluator", "is required")]),
        (("bindings", 0, "evaluator"), "", [("bindings[0].evaluator", "must be a non-empty string")]),
        *[
            (
                ("bindings", 0, "evaluator"),
                bad_ref,
                [("bindings[0].evaluator", "must look like namespace/name@version-or-range")],
            )
            for bad_ref in ("exact-match", "vigilo/exact-match", "vigilo/exact-match@", "exact-match@1.0.0")
        ],
        (("bindings", 0, "dimension"), DELETE, [("bindings[0].dimension", "is required")]),
        (("bindings", 0, "dimension"), "speed", [("bindings[0].dimension", "unknown dimension 'speed'")]),
        # bindings: scalars
        (("bindings", 0, "config"), "text", [("bindings[0].config", "must be a mapping")]),
        (("bindings", 0, "config"), {1: "x"}, [("bindings[0].config", "keys must be strings")]),
        (("bindings", 0, "pass_threshold"), 1.1, [("bindings[0].pass_threshold", "must be between 0 and 1")]),
        (("bindings", 0, "pass_threshold"), "1", [("bindings[0].pass_threshold", "must be a number")]),
        (("bindings", 0, "weight"), -0.5, [("bindings[0].weight", "must be >= 0")]),
        (("bindings", 0, "weight"), True, [("bindings[0].weight", "must be a number")]),
        (("bindings", 0, "required"), "no", [("bindings[0].required", "must be a boolean")]),
        (("bindings", 0, "blocking"), None, [("bindings[0].blocking", "must be a boolean")]),
        (("bindings", 4, "blocking"), True, [("bindings[4].blocking", DIAGNOSTIC)]),
        (("bindings", 4, "weight"), 0.5, [("bindings[4].weight", DIAGNOSTIC)]),
        # normalization
        (("bindings", 0, "normalization"), "binary", [("bindings[0].normalization", "must be a mapping")]),
        (
            ("bindings", 0, "normalization"),
            {},
            [
                (
                    "bindings[0].normalization",
                    "must have exactly one key among binary, linear, thresholds, ordinal",
                )
            ],
        ),
        (
            ("bindings", 0, "normalization"),
            {"binary": {True: 1.0, False: 0.0}, "linear": {"min": 0, "max": 1}},
            [
                (
                    "bindings[0].normalization",
                    "must have exactly one key among binary, linear, thresholds, ordinal",
                )
            ],
        ),
        (
            ("bindings", 0, "normalization"),
            {"sigmoid": {}},
            [
                (
                    "bindings[0].normalization.sigmoid",
                    "unknown normalization kind (allowed: binary, linear, thresholds, ordinal)",
                )
            ],
        ),
        (
            ("bindings", 0, "normalization", "binary"),
            {True: 1.0},
            [("bindings[0].normalization.binary.false", "is required")],
        ),
        (
            ("bindings", 0, "normalization", "binary"),
            {True: 2, False: 0},
            [("bindings[0].normalization.binary.true", "must be between 0 and 1")],
        ),
        (
            ("bindings", 0, "normalization", "binary"),
            {True: 1, "true": 1, False: 0},
            [("bindings[0].normalization.binary.true", "is given twice")],
        ),
        (
            ("bindings", 0, "normalization", "binary"),
            {True: 1, False: 0, "maybe": 0.5},
            [("bindings[0].normalization.binary.maybe", "unknown key (allowed: true, false)")],
        ),
        (
            ("bindings", 1, "normalization", "linear"),
            {"min": 5, "max": 5},
            [("bindings[1].normalization.linear.max", "must be greater than min")],
        ),
        (
            ("bindings", 1, "normalization", "linear"),
            {"min": -1e308, "max": 1e308},
            [
                (
                    "bindings[1].normalization.linear.max",
                    "max - min must be a finite number (the range overflows a float)",
                )
            ],
        ),
        (
            ("bindings", 1, "normalization", "linear"),
            {"min": 0},
            [("bindings[1].normalization.linear.max", "is required")],
        ),
        (
            ("bindings", 1, "normalization", "linear"),
            {"min": "0", "max": 10},
            [("bindings[1].normalization.linear.min", "must be a number")],
        ),
        (
            ("bindings", 1, "normalization", "linear", "direction"),
            "up",
            [("bindings[1].normalization.linear.direction", "must be one of higher, lower")],
        ),
        (
            ("bindings", 1, "normalization", "linear", "scale"),
            2,
            [("bindings[1].normalization.linear.scale", "unknown key (allowed: min, max, direction)")],
        ),
        (
            ("bindings", 2, "normalization", "thresholds", "cutpoints"),
            [5, 1],
            [("bindings[2].normalization.thresholds.cutpoints", "must be strictly increasing")],
        ),
        (
            ("bindings", 2, "normalization", "thresholds", "cutpoints"),
            [1, 1],
            [("bindings[2].normalization.thresholds.cutpoints", "must be strictly increasing")],
        ),
        (
            ("bindings", 2, "normalization", "thresholds", "cutpoints"),
            [],
            [("bindings[2].normalization.thresholds.cutpoints", "must not be empty")],
        ),
        (
            ("bindings", 2, "normalization", "thresholds", "scores"),
            [1.0, 0.0],
            [
                (
                    "bindings[2].normalization.thresholds.scores",
                    "must have exactly 3 entries (one more than cutpoints), got 2",
                )
            ],
        ),
        (
            ("bindings", 2, "normalization", "thresholds", "scores"),
            [1.0, 1.5, 0.0],
            [("bindings[2].normalization.thresholds.scores[1]", "must be between 0 and 1")],
        ),
        (
            ("bindings", 2, "normalization", "thresholds", "scores"),
            DELETE,
            [("bindings[2].normalization.thresholds.scores", "is required")],
        ),
        (
            ("bindings", 2, "normalization", "thresholds", "min"),
            2,
            [("bindings[2].normalization.thresholds.cutpoints", "must lie within min..max")],
        ),
        (
            ("bindings", 2, "normalization", "thresholds", "max"),
            0,
            [("bindings[2].normalization.thresholds.max", "must be greater than min")],
        ),
        (
            ("bindings", 3, "normalization", "ordinal"),
            {},
            [("bindings[3].normalization.ordinal", "must map at least one label to a score")],
        ),
        (
            ("bindings", 3, "normalization", "ordinal"),
            {True: 1.0, "no": 0.0},
            [
                (
                    "bindings[3].normalization.ordinal.True",
                    "label must be a non-empty string (quote it in YAML)",
                )
            ],
        ),
        (
            ("bindings", 3, "normalization", "ordinal", "safe"),
            "high",
            [("bindings[3].normalization.ordinal.safe", "must be a number")],
        ),
        # grants
        (("bindings", 3, "grants"), ["model"], [("bindings[3].grants", "must be a mapping")]),
        (
            ("bindings", 3, "grants", "network"),
            {},
            [("bindings[3].grants.network", "unknown key (allowed: model)")],
        ),
        (
            ("bindings", 3, "grants", "model", "models"),
            [],
            [("bindings[3].grants.model.models", "must be a non-empty list of model names")],
        ),
        (
            ("bindings", 3, "grants", "model", "models"),
            [""],
            [("bindings[3].grants.model.models[0]", "must be a non-empty string")],
        ),
        (
            ("bindings", 3, "grants", "model", "models"),
            DELETE,
            [("bindings[3].grants.model.models", "is required")],
        ),
        (
            ("bindings", 3, "grants", "model", "max_calls"),
            0,
            [("bindings[3].grants.model.max_calls", "must be >= 1")],
        ),
        (
            ("bindings", 3, "grants", "model", "max_tokens"),
            100.0,
            [("bindings[3].grants.model.max_tokens", "must be an integer")],
        ),
        (
            ("bindings", 3, "grants", "model", "temperature"),
            0.2,
            [
                (
                    "bindings[3].grants.model.temperature",
                    "unknown key (allowed: models, max_calls, max_tokens)",
                )
            ],
        ),
        # limits
        (("bindings", 3, "limits", "fuel"), 0, [("bindings[3].limits.fuel", "must be > 0")]),
        (("bindings", 3, "limits", "fuel"), True, [("bindings[3].limits.fuel", "must be an integer")]),
        (
            ("bindings", 3, "limits", "memory_mb"),
            1.5,
            [("bindings[3].limits.memory_mb", "must be an integer")],
        ),
        (("bindings", 3, "limits", "timeout_s"), 0, [("bindings[3].limits.timeout_s", "must be > 0")]),
        (
            ("bindings", 3, "limits", "timeout_s"),
            "5s",
            [("bindings[3].limits.timeout_s", "must be a number")],
        ),
        (
            ("bindings", 3, "limits", "max_log_messages"),
            -1,
            [("bindings[3].limits.max_log_messages", "must be >= 0")],
        ),
        (
            ("bindings", 3, "limits", "max_log_bytes"),
            0,
            [("bindings[3].limits.max_log_bytes", "must be > 0")],
        ),
        (
            ("bindings", 3, "limits", "max_output_bytes"),
            -5,
            [("bindings[3].limits.max_output_bytes", "must be > 0")],
        ),
        (
            ("bindings", 3, "limits", "cpu"),
            1,
            [("bindings[3].limits.cpu", f"unknown key (allowed: {LIMIT_KEYS})")],
        ),
        # run gate and scorecard
        (("run_gate",), [], [("run_gate", "must be a mapping")]),
        (("run_gate",), {}, [("run_gate.scorecard", "is required (or one of min_pass_at_k, min_pass_hat_k)")]),
        (
            ("run_gate", "scorecard"),
            [],
            [("run_gate.scorecard", "must not be empty (omit run_gate to require every execution to pass)")],
        ),
        (
            ("run_gate", "mode"),
            "strict",
            [("run_gate.mode", "unknown key (allowed: scorecard, min_pass_at_k, min_pass_hat_k)")],
        ),
        (
            ("run_gate", "scorecard", 0),
            {"min_pass_rate": 0.9},
            [("run_gate.scorecard[0]", "must name at least one of dimension, binding, tag")],
        ),
        (
            ("run_gate", "scorecard", 0),
            {"dimension": "correctness"},
            [
                (
                    "run_gate.scorecard[0]",
                    "must set at least one of min_mean_score, min_pass_rate, max_error_rate, max_abstention_rate",
                )
            ],
        ),
        (
            ("run_gate", "scorecard", 0, "dimension"),
            "speed",
            [("run_gate.scorecard[0].dimension", "unknown dimension 'speed'")],
        ),
        (
            ("run_gate", "scorecard", 1, "binding"),
            "nope",
            [("run_gate.scorecard[1].binding", "unknown binding 'nope'")],
        ),
        (
            ("run_gate", "scorecard", 1, "dimension"),
            "safety",
            [("run_gate.scorecard[1]", "cannot name both a dimension and a binding")],
        ),
        (
            ("run_gate", "scorecard", 2, "tag"),
            "",
            [("run_gate.scorecard[2].tag", "must be a non-empty string")],
        ),
        (
            ("run_gate", "scorecard", 0, "min_pass_rate"),
            2,
            [("run_gate.scorecard[0].min_pass_rate", "must be between 0 and 1")],
        ),
        (
            ("run_gate", "scorecard", 0, "max_error_rate"),
            False,
            [("run_gate.scorecard[0].max_error_rate", "must be a number")],
        ),
        (
            ("run_gate", "scorecard", 0, "max_latency"),
            3,
            [("run_gate.scorecard[0].max_latency", f"unknown key (allowed: {SCORECARD_KEYS})")],
        ),
        # options
        (("options",), 50, [("options", "must be a mapping")]),
        (("options", "chunk_size"), 0, [("options.chunk_size", "must be between 1 and 1000")]),
        (("options", "chunk_size"), 1001, [("options.chunk_size", "must be between 1 and 1000")]),
        (("options", "chunk_size"), "100", [("options.chunk_size", "must be an integer")]),
        (("options", "chunk_size"), True, [("options.chunk_size", "must be an integer")]),
        (
            ("options", "parallelism"),
            4,
            [("options.parallelism", "unknown key (allowed: chunk_size, instance_reuse, reuse_recheck_rate, trials)")],
        ),
    ],
)
def test_each_validation_error_is_reported_with_its_path(path, value, expected):
    data = mutated(path, value)

    errors = parse_errors(data)

    assert errors == expected


@pytest.mark.parametrize("data", [None, [], "name: x", 3])
def test_a_profile_that_is_not_a_mapping_is_rejected(data):
    errors = parse_errors(data)

    assert errors == [("", "must be a mapping")]


def test_several_errors_are_collected_at_once():
    data = mutated(("name",), DELETE)
    data["bindings"][1]["weight"] = "heavy"
    data["bindings"][3]["limits"]["fuel"] = -1
    data["options"]["chunk_size"] = 0
    data["extra"] = True

    errors = parse_errors(data)

    assert errors == [
        ("extra", f"unknown key (allowed: {TOP_KEYS})"),
        ("name", "is required"),
        ("bindings[1].weight", "must be a number"),
        ("bindings[3].limits.fuel", "must be > 0"),
        ("options.chunk_size", "must be between 1 and 1000"),
    ]


def test_the_error_message_joins_every_path_and_message():
    data = mutated(("min_execution_score",), -0.1)
    data["bindings"][0]["pass_threshold"] = True

    with pytest.raises(ProfileError) as raised:
        profile_parse(data=data)

    assert str(raised.value) == (
        "min_execution_score: must be between 0 and 1; bindings[0].pass_threshold: must be a number"
    )


def test_a_dimension_whose_only_binding_points_elsewhere_is_reported_once_per_problem():
    data = mutated(("bindings", 3, "dimension"), "correctness")

    errors = parse_errors(data)

    assert errors == [("dimensions.safety", "dimension 'safety' has no binding")]


def test_the_scorecard_label_names_every_selector():
    gate = ScorecardGate(dimension="correctness", tag="billing", min_pass_rate=0.9, max_error_rate=0.0)

    assert gate.label == "dimension=correctness tag=billing"
    assert gate.thresholds == {"min_pass_rate": 0.9, "max_error_rate": 0.0}


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ({"tags": []}, "is required: a non-empty list of tags"),
        ({"tags": "refund"}, "is required: a non-empty list of tags"),
        ({"tags": ["refund", ""]}, "is required: a non-empty list of tags"),
        ({"tag": ["refund"]}, "unknown key (allowed: tags)"),
        (["refund"], "must be a mapping"),
    ],
)
def test_a_malformed_when_is_refused_naming_it(when, message):
    data = {
        "name": "t",
        "min_execution_score": 1.0,
        "dimensions": {"d": {}},
        "bindings": [{"id": "b", "evaluator": "vigilo/check@1.0.0", "dimension": "d", "when": when}],
    }
    with pytest.raises(ProfileError) as refused:
        profile_parse(data=data)
    where, said = refused.value.errors[0]
    assert where.startswith("bindings[0].when") and said.startswith(message)


# --- the pass rule: a profile says how an execution passes ---

NO_PASS_RULE = (
    "no pass rule: without one an execution passes whatever its bindings score. Add `min_execution_score: 1.0` at "
    "the top (an execution passes only when its aggregate reaches it), or `blocking: true` on a binding or a "
    "dimension (its failure fails the execution); `min_execution_score: 0` keeps scores informational."
)


def ruleless(**top: object) -> dict[str, Any]:
    """One dimension, one required binding, no min_execution_score and nothing blocking; `top` is added to it."""
    return {
        "name": "ruleless",
        "dimensions": {"quality": {}},
        "bindings": [{"id": "q", "evaluator": "acme/check@1", "dimension": "quality"}],
        **top,
    }


def test_a_profile_without_a_pass_rule_is_refused_showing_the_lines_to_add():
    errors = parse_errors(ruleless())

    assert errors == [("min_execution_score", NO_PASS_RULE)]


def test_the_missing_pass_rule_is_reported_with_the_other_problems():
    data = ruleless()
    data["bindings"][0]["pass_threshold"] = 2

    errors = parse_errors(data)

    assert errors == [
        ("bindings[0].pass_threshold", "must be between 0 and 1"),
        ("min_execution_score", NO_PASS_RULE),
    ]


@pytest.mark.parametrize("score", [0, 0.0, 0.5, 1])
def test_an_explicit_min_execution_score_is_a_pass_rule_even_zero(score):
    profile = profile_parse(data=ruleless(min_execution_score=score))

    assert profile.min_execution_score == float(score)


def test_a_blocking_binding_is_a_pass_rule_and_the_minimum_stays_zero():
    data = ruleless()
    data["bindings"][0]["blocking"] = True

    profile = profile_parse(data=data)

    assert (profile.min_execution_score, profile.bindings[0].blocking) == (0.0, True)


def test_a_blocking_dimension_is_a_pass_rule():
    profile = profile_parse(data=ruleless(dimensions={"quality": {"blocking": True}}))

    assert profile.dimensions["quality"].blocking is True


@pytest.mark.parametrize(
    "data",
    [
        ruleless(
            fail_on_any_blocking_failure=False,
            bindings=[{"id": "q", "evaluator": "acme/check@1", "dimension": "quality", "blocking": True}],
        ),
        ruleless(fail_on_any_blocking_failure=False, dimensions={"quality": {"blocking": True}}),
    ],
    ids=["blocking-binding", "blocking-dimension"],
)
def test_blocking_without_fail_on_any_blocking_failure_is_no_pass_rule(data):
    errors = parse_errors(data)

    assert errors == [
        (
            "min_execution_score",
            NO_PASS_RULE + " (`fail_on_any_blocking_failure: false` makes the blocking bindings informational: "
            "it is no pass rule)",
        )
    ]


def test_blocking_without_fail_on_any_blocking_failure_is_allowed_with_an_explicit_minimum():
    data = ruleless(fail_on_any_blocking_failure=False, dimensions={"quality": {"blocking": True}})
    data["min_execution_score"] = 0.7

    profile = profile_parse(data=data)

    assert (profile.min_execution_score, profile.fail_on_any_blocking_failure) == (0.7, False)


def test_a_blocking_dimension_with_only_diagnostic_bindings_is_no_pass_rule():
    data = ruleless(
        dimensions={"quality": {}, "style": {"blocking": True, "weight": 0}},
        bindings=[
            {"id": "q", "evaluator": "acme/check@1", "dimension": "quality"},
            {"id": "tone", "evaluator": "acme/check@1", "dimension": "style", "required": False},
        ],
    )

    assert parse_errors(data) == [("min_execution_score", NO_PASS_RULE)]


def test_a_stored_document_without_a_pass_rule_still_reads_with_the_old_default():
    profile = profile_parse(data=ruleless(), require_pass_rule=False)

    assert profile.min_execution_score == 0.0
