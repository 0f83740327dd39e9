"""Profile parsing (docs/architecture.md): plain data becomes a structurally valid ProfileSpec.

The input is the plain data a YAML loader returns; the output is a tree of frozen dataclasses. Every problem
is collected before raising, so a user fixes a profile in one round trip instead of one error at a time.
Whether an evaluator reference resolves in the registry is checked elsewhere: this module knows no database.
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

Aggregation = Literal["weighted_mean", "min_score"]
NormalizationKind = Literal["binary", "linear", "thresholds", "ordinal", "default"]
Direction = Literal["higher", "lower"]

AGGREGATIONS: tuple[str, ...] = ("weighted_mean", "min_score")
DIRECTIONS: tuple[str, ...] = ("higher", "lower")
NORMALIZATION_KINDS: tuple[str, ...] = ("binary", "linear", "thresholds", "ordinal")
SCORECARD_THRESHOLDS: tuple[str, ...] = (
    "min_mean_score",
    "min_pass_rate",
    "max_error_rate",
    "max_abstention_rate",
)

BINDING_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
# Only the shape `namespace/name@spec`; the registry decides whether the spec resolves.
EVALUATOR_REF_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*@[^\s@/]+")

CHUNK_SIZE_MAX = 1000
TRIALS_MAX = 100  # evaluations of each case in one run (options.trials, or the run's `trials`)
TRIAL_RULES = ("min_pass_at_k", "min_pass_hat_k")  # run_gate's rules over a run's trials (gating.verdict)
REUSE_RECHECK_RATE_DEFAULT = 0.02
MODEL_GRANT_DEFAULT_MAX_CALLS = 4
MODEL_GRANT_DEFAULT_MAX_TOKENS = 4096

_TOP_KEYS = (
    "name",
    "description",
    "min_execution_score",
    "fail_on_any_blocking_failure",
    "dimensions",
    "bindings",
    "run_gate",
    "options",
    "export",
)
# Where results can be exported (exporters.platforms.EXPORTERS has one exporter per kind; docs/exporters.md).
EXPORT_KINDS = ("otlp", "phoenix", "langfuse", "braintrust", "langsmith")
_OPTION_KEYS = ("chunk_size", "instance_reuse", "reuse_recheck_rate", "trials")
_DIMENSION_KEYS = ("weight", "aggregation", "blocking")
_BINDING_KEYS = (
    "id",
    "evaluator",
    "dimension",
    "config",
    "normalization",
    "pass_threshold",
    "weight",
    "required",
    "blocking",
    "grants",
    "limits",
    "when",
)
_WHEN_KEYS = ("tags",)
_SCORECARD_KEYS = ("dimension", "binding", "tag", *SCORECARD_THRESHOLDS)
_MODEL_GRANT_KEYS = ("models", "max_calls", "max_tokens")
# key -> (integer only, smallest allowed value, whether that value itself is allowed)
_LIMITS: dict[str, tuple[bool, float, bool]] = {
    "fuel": (True, 0, False),
    "memory_mb": (True, 0, False),
    "timeout_s": (False, 0, False),
    "max_log_messages": (True, 0, True),
    "max_log_bytes": (True, 0, False),
    "max_output_bytes": (True, 0, False),
}

_MISSING = object()

NO_PASS_RULE = (
    "no pass rule: without one an execution passes whatever its bindings score. Add `min_execution_score: 1.0` at "
    "the top (an execution passes only when its aggregate reaches it), or `blocking: true` on a binding or a "
    "dimension (its failure fails the execution); `min_execution_score: 0` keeps scores informational."
)
NO_PASS_RULE_BLOCKING_OFF = (
    " (`fail_on_any_blocking_failure: false` makes the blocking bindings informational: it is no pass rule)"
)


class ProfileError(Exception):
    """Every structural problem of a profile, each as (path, message), e.g. ("bindings[2].weight", "...")."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(f"{path}: {message}" if path else message for path, message in self.errors))


@dataclass(frozen=True, kw_only=True)
class Normalization:
    """How a raw measurement becomes a score in [0, 1]. Only the fields of `kind` are meaningful.

    - binary: `true_score`, `false_score`
    - linear: `min_value` < `max_value`, `direction`
    - thresholds: `cutpoints` (strictly increasing), `scores` (one more than cutpoints), optional domain
      `min_value` / `max_value`
    - ordinal: `labels` (label -> score)
    - default: no parameters; booleans map to 1/0 and numbers must already lie in [0, 1]
    """

    kind: NormalizationKind = "default"
    true_score: float | None = None
    false_score: float | None = None
    min_value: float | None = None
    max_value: float | None = None
    direction: Direction = "higher"
    cutpoints: tuple[float, ...] = ()
    scores: tuple[float, ...] = ()
    labels: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Dimension:
    name: str
    weight: float = 1.0
    aggregation: Aggregation = "weighted_mean"
    blocking: bool = False


@dataclass(frozen=True, kw_only=True)
class Binding:
    """One evaluator bound to one dimension. `weight` is the effective weight: 0 when not required."""

    id: str
    evaluator: str
    dimension: str
    config: dict[str, object] = field(default_factory=dict)
    normalization: Normalization = field(default_factory=Normalization)
    pass_threshold: float = 1.0
    weight: float = 1.0
    required: bool = True
    blocking: bool = False
    grants: dict[str, object] = field(default_factory=dict)
    limits: dict[str, float] = field(default_factory=dict)
    when_tags: tuple[str, ...] | None = None  # `when: {tags: [...]}`: only cases with one of these tags

    def applies_to(self, tags: Sequence[str]) -> bool:
        """Whether the binding evaluates a case with these tags (every case, without `when`)."""
        return self.when_tags is None or any(tag in self.when_tags for tag in tags)


@dataclass(frozen=True, kw_only=True)
class ScorecardGate:
    dimension: str | None = None
    binding: str | None = None
    tag: str | None = None
    min_mean_score: float | None = None
    min_pass_rate: float | None = None
    max_error_rate: float | None = None
    max_abstention_rate: float | None = None

    @property
    def label(self) -> str:
        """A stable human name for the gate, e.g. "dimension=correctness tag=billing"."""
        parts = [
            f"{key}={value}"
            for key, value in (("dimension", self.dimension), ("binding", self.binding), ("tag", self.tag))
            if value is not None
        ]
        return " ".join(parts)

    @property
    def thresholds(self) -> dict[str, float]:
        """The thresholds this gate sets, in declaration order of SCORECARD_THRESHOLDS."""
        values = {name: getattr(self, name) for name in SCORECARD_THRESHOLDS}
        return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True, kw_only=True)
class ProfileSpec:
    name: str
    min_execution_score: float = 0.0
    fail_on_any_blocking_failure: bool = True
    dimensions: dict[str, Dimension]
    bindings: tuple[Binding, ...]
    scorecard: tuple[ScorecardGate, ...] = ()
    chunk_size: int = 100
    description: str = ""
    # Instance reuse (opt-in): bindings of evaluators published as pure keep one instance per chunk; a sample
    # of their cases is evaluated again in a fresh instance and any difference marks the run.
    instance_reuse: bool = False
    reuse_recheck_rate: float = REUSE_RECHECK_RATE_DEFAULT
    # `export: [phoenix, otlp]`: the destinations this profile's results go to (the configured ones among them);
    # None (no `export`) sends them to every configured destination marked default, `[]` nowhere.
    export: tuple[str, ...] | None = None
    # `options.trials: k`: each case is evaluated k times (a run's own `trials` overrides it).
    trials: int = 1
    # run_gate's rules over the trials (None: not set). Set, they replace the default "every execution passes".
    min_pass_at_k: float | None = None
    min_pass_hat_k: float | None = None

    @property
    def trial_rules(self) -> dict[str, float]:
        return {
            name: value
            for name, value in (("min_pass_at_k", self.min_pass_at_k), ("min_pass_hat_k", self.min_pass_hat_k))
            if value is not None
        }

    def binding(self, binding_id: str) -> Binding | None:
        return next((binding for binding in self.bindings if binding.id == binding_id), None)

    @cached_property
    def conditional(self) -> bool:
        """Whether any binding has a `when`: without one, every binding applies to every case (the fast path)."""
        return any(binding.when_tags is not None for binding in self.bindings)


def profile_parse(*, data: object, require_pass_rule: bool = True) -> ProfileSpec:
    """Validate `data` (a mapping loaded from YAML) into a ProfileSpec; raise ProfileError with every problem.

    A profile must say how an execution passes: `min_execution_score` (0 is a deliberate "informational only"),
    or a blocking binding or dimension that fails it. `require_pass_rule=False` reads a document stored before
    that was required (a missing `min_execution_score` is 0 there), so a run accepted then can still finish.
    """
    errors = _Errors()
    profile = _profile_parse(errors, data)
    if require_pass_rule and isinstance(data, Mapping):
        _pass_rule_check(errors, data)
    if errors.items or profile is None:
        raise ProfileError(errors.items or [("", "invalid profile")])
    return profile


def _pass_rule_check(errors: _Errors, top: Mapping[Any, Any]) -> None:
    """Record a missing pass rule: no `min_execution_score` and no required binding that blocks (by itself or by
    its dimension) with `fail_on_any_blocking_failure` on. Read from the raw data, so it is reported together
    with every other problem of the profile."""
    if "min_execution_score" in top:
        return
    blocking = _blocking_declared(top)
    if blocking and top.get("fail_on_any_blocking_failure", True) is not False:
        return
    errors.add("min_execution_score", NO_PASS_RULE + (NO_PASS_RULE_BLOCKING_OFF if blocking else ""))


def _blocking_declared(top: Mapping[Any, Any]) -> bool:
    """Whether a required binding is blocking, or belongs to a blocking dimension."""
    dimensions = top.get("dimensions")
    blocking_dimensions = (
        {name for name, body in dimensions.items() if isinstance(body, Mapping) and body.get("blocking") is True}
        if isinstance(dimensions, Mapping)
        else set()
    )
    bindings = top.get("bindings")
    if not isinstance(bindings, list):
        return False
    for raw in bindings:
        if not isinstance(raw, Mapping) or raw.get("required", True) is False:
            continue
        dimension = raw.get("dimension")
        if raw.get("blocking") is True or (isinstance(dimension, str) and dimension in blocking_dimensions):
            return True
    return False


class _Errors:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append((path, message))


def _at(parent: str, key: object) -> str:
    return f"{parent}.{key}" if parent else str(key)


def _mapping(errors: _Errors, path: str, value: object, allowed: tuple[str, ...] | None) -> dict[Any, Any] | None:
    """The value as a dict, or None after recording why not. Keys outside `allowed` (if given) are errors."""
    if not isinstance(value, Mapping):
        errors.add(path, "must be a mapping")
        return None
    if allowed is not None:
        for key in value:
            if key not in allowed:
                errors.add(_at(path, key), f"unknown key (allowed: {', '.join(allowed)})")
    return dict(value)


def _number(
    errors: _Errors,
    path: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
) -> float | None:
    # bool is an int subclass; `weight: true` is a typo, not 1.
    if isinstance(value, bool) or not isinstance(value, int | float):
        errors.add(path, "must be a number")
        return None
    if isinstance(value, float) and not math.isfinite(value):
        errors.add(path, "must be a finite number")
        return None
    number = float(value)
    if low is not None and high is not None:
        if not low <= number <= high:
            errors.add(path, f"must be between {_show(low)} and {_show(high)}")
            return None
    elif low is not None and (number < low or (number == low and not low_inclusive)):
        errors.add(path, f"must be {'>=' if low_inclusive else '>'} {_show(low)}")
        return None
    return number


def _integer(
    errors: _Errors,
    path: str,
    value: object,
    *,
    low: int,
    high: int | None = None,
    low_inclusive: bool = True,
) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(path, "must be an integer")
        return None
    if high is not None and not low <= value <= high:
        errors.add(path, f"must be between {low} and {high}")
        return None
    if value < low or (value == low and not low_inclusive):
        errors.add(path, f"must be {'>=' if low_inclusive else '>'} {low}")
        return None
    return value


def _boolean(errors: _Errors, path: str, value: object) -> bool | None:
    if not isinstance(value, bool):
        errors.add(path, "must be a boolean")
        return None
    return value


def _string(errors: _Errors, path: str, value: object, *, non_empty: bool = True) -> str | None:
    if not isinstance(value, str):
        errors.add(path, "must be a string")
        return None
    if non_empty and not value.strip():
        errors.add(path, "must be a non-empty string")
        return None
    return value


def _show(number: float) -> str:
    return f"{number:g}"


def _profile_parse(errors: _Errors, data: object) -> ProfileSpec | None:
    top = _mapping(errors, "", data, _TOP_KEYS)
    if top is None:
        return None

    name = None
    if "name" not in top:
        errors.add("name", "is required")
    else:
        name = _string(errors, "name", top["name"])
    description = _string(errors, "description", top.get("description", ""), non_empty=False)
    min_execution_score = _number(errors, "min_execution_score", top.get("min_execution_score", 0.0), low=0.0, high=1.0)
    fail_on_any = _boolean(errors, "fail_on_any_blocking_failure", top.get("fail_on_any_blocking_failure", True))

    dimensions = _dimensions_parse(errors, top["dimensions"]) if "dimensions" in top else None
    if "dimensions" not in top:
        errors.add("dimensions", "is required")
    # None means "unknown" (dimensions itself was unusable): skip reference checks rather than cascade errors.
    dimension_names = set(dimensions) if dimensions is not None else None

    # None means the bindings list was unusable: scorecard references to bindings are not checked then.
    binding_ids: set[str] | None = None
    bindings: list[Binding | None] = []
    used_dimensions: set[str] = set()
    raw_bindings = top.get("bindings", _MISSING)
    if raw_bindings is _MISSING:
        errors.add("bindings", "is required")
    elif not isinstance(raw_bindings, list):
        errors.add("bindings", "must be a list")
    elif not raw_bindings:
        errors.add("bindings", "must not be empty")
    else:
        binding_ids = set()
        first_index: dict[str, int] = {}
        for index, raw in enumerate(raw_bindings):
            path = f"bindings[{index}]"
            binding = _binding_parse(errors, path, raw, dimension_names)
            bindings.append(binding)
            if isinstance(raw, Mapping):
                if isinstance(raw.get("dimension"), str):
                    used_dimensions.add(raw["dimension"])
                binding_id = raw.get("id")
                if isinstance(binding_id, str):
                    if binding_id in first_index:
                        errors.add(
                            _at(path, "id"),
                            f"duplicate binding id '{binding_id}' (see bindings[{first_index[binding_id]}])",
                        )
                    else:
                        first_index[binding_id] = index
                    binding_ids.add(binding_id)

    if dimensions is not None and bindings:
        for dimension_name in dimensions:
            if dimension_name not in used_dimensions:
                errors.add(_at("dimensions", dimension_name), f"dimension '{dimension_name}' has no binding")

    scorecard: tuple[ScorecardGate, ...] | None = ()
    trial_rules: dict[str, float | None] = {}
    if "run_gate" in top:
        scorecard, trial_rules = _run_gate_parse(errors, top["run_gate"], dimension_names, binding_ids)

    chunk_size: int | None = 100
    instance_reuse: bool | None = False
    recheck_rate: float | None = REUSE_RECHECK_RATE_DEFAULT
    trials: int | None = 1
    if "options" in top:
        options = _mapping(errors, "options", top["options"], _OPTION_KEYS)
        if options is not None and "trials" in options:
            trials = _integer(errors, "options.trials", options["trials"], low=1, high=TRIALS_MAX)
        if options is not None and "chunk_size" in options:
            chunk_size = _integer(errors, "options.chunk_size", options["chunk_size"], low=1, high=CHUNK_SIZE_MAX)
        if options is not None and "instance_reuse" in options:
            instance_reuse = _boolean(errors, "options.instance_reuse", options["instance_reuse"])
        if options is not None and "reuse_recheck_rate" in options:
            recheck_rate = _number(
                errors, "options.reuse_recheck_rate", options["reuse_recheck_rate"], low=0.0, high=1.0
            )

    export = export_parse(errors.items, "export", top["export"]) if "export" in top else None

    if errors.items:
        return None
    assert name is not None and description is not None and min_execution_score is not None
    assert fail_on_any is not None and dimensions is not None and scorecard is not None and chunk_size is not None
    assert instance_reuse is not None and recheck_rate is not None and trials is not None
    return ProfileSpec(
        name=name,
        description=description,
        min_execution_score=min_execution_score,
        fail_on_any_blocking_failure=fail_on_any,
        dimensions=dimensions,
        bindings=tuple(binding for binding in bindings if binding is not None),
        scorecard=scorecard,
        chunk_size=chunk_size,
        instance_reuse=instance_reuse,
        reuse_recheck_rate=recheck_rate,
        export=export,
        trials=trials,
        min_pass_at_k=trial_rules.get("min_pass_at_k"),
        min_pass_hat_k=trial_rules.get("min_pass_hat_k"),
    )


def export_parse(errors: list[tuple[str, str]], path: str, value: object) -> tuple[str, ...] | None:
    """A list of distinct export destination kinds (EXPORT_KINDS), appending (path, problem) to `errors`; also an
    agent's `export` in agents.yaml."""
    if not isinstance(value, list):
        errors.append((path, f"must be a list of destinations ({', '.join(EXPORT_KINDS)})"))
        return None
    seen: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or item not in EXPORT_KINDS:
            errors.append((f"{path}[{index}]", f"{item!r} is not a destination ({', '.join(EXPORT_KINDS)})"))
        elif item in seen:
            errors.append((f"{path}[{index}]", f"{item!r} is listed twice"))
        else:
            seen.append(item)
    return tuple(seen)


def _dimensions_parse(errors: _Errors, value: object) -> dict[str, Dimension] | None:
    raw = _mapping(errors, "dimensions", value, None)
    if raw is None:
        return None
    if not raw:
        errors.add("dimensions", "must not be empty")
        return None
    dimensions: dict[str, Dimension] = {}
    for name, body in raw.items():
        path = _at("dimensions", name)
        if not isinstance(name, str) or not name.strip():
            errors.add(path, "dimension name must be a non-empty string")
            continue
        spec = _mapping(errors, path, body, _DIMENSION_KEYS)
        if spec is None:
            # Keep the name so bindings that reference it are not reported as well.
            dimensions[name] = Dimension(name=name)
            continue
        weight = _number(errors, _at(path, "weight"), spec.get("weight", 1.0), low=0.0)
        aggregation = spec.get("aggregation", "weighted_mean")
        if aggregation not in AGGREGATIONS:
            errors.add(_at(path, "aggregation"), f"must be one of {', '.join(AGGREGATIONS)}")
            aggregation = "weighted_mean"
        blocking = _boolean(errors, _at(path, "blocking"), spec.get("blocking", False))
        dimensions[name] = Dimension(
            name=name,
            weight=weight if weight is not None else 1.0,
            aggregation=aggregation,
            blocking=bool(blocking),
        )
    return dimensions


def _binding_parse(errors: _Errors, path: str, value: object, dimension_names: set[str] | None) -> Binding | None:
    raw = _mapping(errors, path, value, _BINDING_KEYS)
    if raw is None:
        return None
    count_before = len(errors.items)

    binding_id = None
    if "id" not in raw:
        errors.add(_at(path, "id"), "is required")
    else:
        binding_id = _string(errors, _at(path, "id"), raw["id"])
        if binding_id is not None and not BINDING_ID_PATTERN.fullmatch(binding_id):
            errors.add(
                _at(path, "id"),
                "must be 1-63 characters of lowercase letters, digits, '_' or '-', starting with a letter or digit",
            )

    evaluator = None
    if "evaluator" not in raw:
        errors.add(_at(path, "evaluator"), "is required")
    else:
        evaluator = _string(errors, _at(path, "evaluator"), raw["evaluator"])
        if evaluator is not None and not EVALUATOR_REF_PATTERN.fullmatch(evaluator):
            errors.add(_at(path, "evaluator"), "must look like namespace/name@version-or-range")

    dimension = None
    if "dimension" not in raw:
        errors.add(_at(path, "dimension"), "is required")
    else:
        dimension = _string(errors, _at(path, "dimension"), raw["dimension"])
        if dimension is not None and dimension_names is not None and dimension not in dimension_names:
            errors.add(_at(path, "dimension"), f"unknown dimension '{dimension}'")

    config: dict[str, object] | None = {}
    if "config" in raw:
        config = _mapping(errors, _at(path, "config"), raw["config"], None)
        if config is not None and not all(isinstance(key, str) for key in config):
            errors.add(_at(path, "config"), "keys must be strings")

    normalization: Normalization | None = Normalization()
    if "normalization" in raw:
        normalization = _normalization_parse(errors, _at(path, "normalization"), raw["normalization"])

    pass_threshold = _number(errors, _at(path, "pass_threshold"), raw.get("pass_threshold", 1.0), low=0.0, high=1.0)
    weight = _number(errors, _at(path, "weight"), raw.get("weight", 1.0), low=0.0)
    required = _boolean(errors, _at(path, "required"), raw.get("required", True))
    blocking = _boolean(errors, _at(path, "blocking"), raw.get("blocking", False))
    if required is False:
        diagnostic = "a non-required binding is diagnostic only: it cannot be blocking or weighted"
        if blocking is True:
            errors.add(_at(path, "blocking"), diagnostic)
        if "weight" in raw and weight is not None and weight > 0:
            errors.add(_at(path, "weight"), diagnostic)
        weight = 0.0

    grants: dict[str, object] | None = {}
    if "grants" in raw:
        grants = _grants_parse(errors, _at(path, "grants"), raw["grants"])
    limits: dict[str, float] | None = {}
    if "limits" in raw:
        limits = _limits_parse(errors, _at(path, "limits"), raw["limits"])

    when_tags = _when_parse(errors, _at(path, "when"), raw["when"]) if "when" in raw else None

    if len(errors.items) != count_before:
        return None
    assert binding_id is not None and evaluator is not None and dimension is not None and config is not None
    assert normalization is not None and pass_threshold is not None and weight is not None
    assert required is not None and blocking is not None and grants is not None and limits is not None
    return Binding(
        id=binding_id,
        evaluator=evaluator,
        dimension=dimension,
        config=copy.deepcopy(config),
        normalization=normalization,
        pass_threshold=pass_threshold,
        weight=weight,
        required=required,
        blocking=blocking,
        grants=grants,
        limits=limits,
        when_tags=when_tags,
    )


def _when_parse(errors: _Errors, path: str, value: object) -> tuple[str, ...] | None:
    raw = _mapping(errors, path, value, _WHEN_KEYS)
    if raw is None:
        return None
    tags = raw.get("tags")
    if not isinstance(tags, list) or not tags or not all(isinstance(t, str) and t.strip() for t in tags):
        errors.add(_at(path, "tags"), "is required: a non-empty list of tags (the binding applies to a case with any)")
        return None
    return tuple(dict.fromkeys(tags))


def _normalization_parse(errors: _Errors, path: str, value: object) -> Normalization | None:
    raw = _mapping(errors, path, value, None)
    if raw is None:
        return None
    if len(raw) != 1:
        errors.add(path, f"must have exactly one key among {', '.join(NORMALIZATION_KINDS)}")
        return None
    kind, body = next(iter(raw.items()))
    body_path = _at(path, kind)
    if kind == "binary":
        return _binary_parse(errors, body_path, body)
    if kind == "linear":
        return _linear_parse(errors, body_path, body)
    if kind == "thresholds":
        return _thresholds_parse(errors, body_path, body)
    if kind == "ordinal":
        return _ordinal_parse(errors, body_path, body)
    errors.add(body_path, f"unknown normalization kind (allowed: {', '.join(NORMALIZATION_KINDS)})")
    return None


def _binary_parse(errors: _Errors, path: str, value: object) -> Normalization | None:
    raw = _mapping(errors, path, value, None)
    if raw is None:
        return None
    # YAML 1.1 reads `true:` as the bool True; a quoted "true" is accepted too.
    spellings = {True: "true", "true": "true", False: "false", "false": "false"}
    found: dict[str, object] = {}
    for key, score in raw.items():
        canonical = spellings.get(key) if isinstance(key, bool | str) else None
        if canonical is None:
            errors.add(_at(path, key), "unknown key (allowed: true, false)")
        elif canonical in found:
            errors.add(_at(path, canonical), "is given twice")
        else:
            found[canonical] = score
    scores: dict[str, float | None] = {}
    for canonical in ("true", "false"):
        if canonical not in found:
            errors.add(_at(path, canonical), "is required")
            scores[canonical] = None
        else:
            scores[canonical] = _number(errors, _at(path, canonical), found[canonical], low=0.0, high=1.0)
    if scores["true"] is None or scores["false"] is None:
        return None
    return Normalization(kind="binary", true_score=scores["true"], false_score=scores["false"])


def _linear_parse(errors: _Errors, path: str, value: object) -> Normalization | None:
    raw = _mapping(errors, path, value, ("min", "max", "direction"))
    if raw is None:
        return None
    bounds: dict[str, float | None] = {}
    for key in ("min", "max"):
        if key not in raw:
            errors.add(_at(path, key), "is required")
            bounds[key] = None
        else:
            bounds[key] = _number(errors, _at(path, key), raw[key])
    direction = raw.get("direction", "higher")
    if direction not in DIRECTIONS:
        errors.add(_at(path, "direction"), f"must be one of {', '.join(DIRECTIONS)}")
        return None
    low, high = bounds["min"], bounds["max"]
    if low is None or high is None:
        return None
    if not low < high:
        errors.add(_at(path, "max"), "must be greater than min")
        return None
    if not math.isfinite(high - low):  # the score divides by the range: an infinite one scores NaN
        errors.add(_at(path, "max"), "max - min must be a finite number (the range overflows a float)")
        return None
    return Normalization(kind="linear", min_value=low, max_value=high, direction=direction)


def _thresholds_parse(errors: _Errors, path: str, value: object) -> Normalization | None:
    raw = _mapping(errors, path, value, ("cutpoints", "scores", "min", "max"))
    if raw is None:
        return None
    cutpoints = _number_list(errors, _at(path, "cutpoints"), raw.get("cutpoints", _MISSING), low=None)
    if cutpoints is not None and any(a >= b for a, b in itertools.pairwise(cutpoints)):
        errors.add(_at(path, "cutpoints"), "must be strictly increasing")
        cutpoints = None
    scores = _number_list(errors, _at(path, "scores"), raw.get("scores", _MISSING), low=0.0, high=1.0)
    if cutpoints is not None and scores is not None and len(scores) != len(cutpoints) + 1:
        errors.add(
            _at(path, "scores"),
            f"must have exactly {len(cutpoints) + 1} entries (one more than cutpoints), got {len(scores)}",
        )
        scores = None
    low = _number(errors, _at(path, "min"), raw["min"]) if "min" in raw else None
    high = _number(errors, _at(path, "max"), raw["max"]) if "max" in raw else None
    if ("min" in raw and low is None) or ("max" in raw and high is None) or cutpoints is None or scores is None:
        return None
    if low is not None and high is not None and not low < high:
        errors.add(_at(path, "max"), "must be greater than min")
        return None
    if (low is not None and cutpoints[0] < low) or (high is not None and cutpoints[-1] > high):
        errors.add(_at(path, "cutpoints"), "must lie within min..max")
        return None
    return Normalization(
        kind="thresholds", cutpoints=tuple(cutpoints), scores=tuple(scores), min_value=low, max_value=high
    )


def _number_list(
    errors: _Errors, path: str, value: object, *, low: float | None, high: float | None = None
) -> list[float] | None:
    if value is _MISSING:
        errors.add(path, "is required")
        return None
    if not isinstance(value, list):
        errors.add(path, "must be a list")
        return None
    if not value:
        errors.add(path, "must not be empty")
        return None
    numbers = [_number(errors, f"{path}[{index}]", item, low=low, high=high) for index, item in enumerate(value)]
    if any(number is None for number in numbers):
        return None
    return [number for number in numbers if number is not None]


def _ordinal_parse(errors: _Errors, path: str, value: object) -> Normalization | None:
    raw = _mapping(errors, path, value, None)
    if raw is None:
        return None
    if not raw:
        errors.add(path, "must map at least one label to a score")
        return None
    labels: dict[str, float] = {}
    valid = True
    for label, score in raw.items():
        if not isinstance(label, str) or not label:
            # YAML turns unquoted yes/no/1 into bool/int keys; a label must be quoted to stay a string.
            errors.add(_at(path, label), "label must be a non-empty string (quote it in YAML)")
            valid = False
            continue
        number = _number(errors, _at(path, label), score, low=0.0, high=1.0)
        if number is None:
            valid = False
        else:
            labels[label] = number
    return Normalization(kind="ordinal", labels=labels) if valid else None


def _grants_parse(errors: _Errors, path: str, value: object) -> dict[str, object] | None:
    raw = _mapping(errors, path, value, ("model",))
    if raw is None:
        return None
    if "model" not in raw:
        return {}
    model_path = _at(path, "model")
    model = _mapping(errors, model_path, raw["model"], _MODEL_GRANT_KEYS)
    if model is None:
        return None
    count_before = len(errors.items)
    models = model.get("models", _MISSING)
    if models is _MISSING:
        errors.add(_at(model_path, "models"), "is required")
    elif not isinstance(models, list) or not models:
        errors.add(_at(model_path, "models"), "must be a non-empty list of model names")
    else:
        for index, item in enumerate(models):
            _string(errors, f"{model_path}.models[{index}]", item)
    max_calls = _integer(
        errors, _at(model_path, "max_calls"), model.get("max_calls", MODEL_GRANT_DEFAULT_MAX_CALLS), low=1
    )
    max_tokens = _integer(
        errors, _at(model_path, "max_tokens"), model.get("max_tokens", MODEL_GRANT_DEFAULT_MAX_TOKENS), low=1
    )
    if len(errors.items) != count_before or any(key not in _MODEL_GRANT_KEYS for key in model):
        return None
    assert isinstance(models, list)
    return {"model": {"models": list(models), "max_calls": max_calls, "max_tokens": max_tokens}}


def _limits_parse(errors: _Errors, path: str, value: object) -> dict[str, float] | None:
    raw = _mapping(errors, path, value, tuple(_LIMITS))
    if raw is None:
        return None
    limits: dict[str, float] = {}
    valid = True
    for key, item in raw.items():
        if key not in _LIMITS:
            valid = False
            continue
        integer_only, low, inclusive = _LIMITS[key]
        if integer_only:
            number: float | None = _integer(errors, _at(path, key), item, low=int(low), low_inclusive=inclusive)
        else:
            number = _number(errors, _at(path, key), item, low=low, low_inclusive=inclusive)
        if number is None:
            valid = False
        else:
            limits[key] = number
    return limits if valid else None


def _run_gate_parse(
    errors: _Errors, value: object, dimension_names: set[str] | None, binding_ids: set[str] | None
) -> tuple[tuple[ScorecardGate, ...] | None, dict[str, float | None]]:
    """The scorecard and the trial rules (`min_pass_at_k`, `min_pass_hat_k`); at least one of them."""
    raw = _mapping(errors, "run_gate", value, ("scorecard", *TRIAL_RULES))
    if raw is None:
        return None, {}
    rules = {
        name: _number(errors, _at("run_gate", name), raw[name], low=0.0, high=1.0)
        for name in TRIAL_RULES
        if name in raw
    }
    # An empty scorecard would turn the default gate ("every execution passes") into "anything passes".
    items = raw.get("scorecard", _MISSING)
    if items is _MISSING:
        if not rules:
            errors.add("run_gate.scorecard", f"is required (or one of {', '.join(TRIAL_RULES)})")
            return None, {}
        return (), rules
    if not isinstance(items, list):
        errors.add("run_gate.scorecard", "must be a list")
        return None, rules
    if not items:
        errors.add("run_gate.scorecard", "must not be empty (omit run_gate to require every execution to pass)")
        return None, rules
    gates = [
        _scorecard_gate_parse(errors, f"run_gate.scorecard[{index}]", item, dimension_names, binding_ids)
        for index, item in enumerate(items)
    ]
    if any(gate is None for gate in gates):
        return None, rules
    return tuple(gate for gate in gates if gate is not None), rules


def _scorecard_gate_parse(
    errors: _Errors, path: str, value: object, dimension_names: set[str] | None, binding_ids: set[str] | None
) -> ScorecardGate | None:
    raw = _mapping(errors, path, value, _SCORECARD_KEYS)
    if raw is None:
        return None
    count_before = len(errors.items)
    dimension = binding = tag = None
    if "dimension" in raw:
        dimension = _string(errors, _at(path, "dimension"), raw["dimension"])
        if dimension is not None and dimension_names is not None and dimension not in dimension_names:
            errors.add(_at(path, "dimension"), f"unknown dimension '{dimension}'")
    if "binding" in raw:
        binding = _string(errors, _at(path, "binding"), raw["binding"])
        if binding is not None and binding_ids is not None and binding not in binding_ids:
            errors.add(_at(path, "binding"), f"unknown binding '{binding}'")
    if "tag" in raw:
        tag = _string(errors, _at(path, "tag"), raw["tag"])
    if not any(key in raw for key in ("dimension", "binding", "tag")):
        errors.add(path, "must name at least one of dimension, binding, tag")
    if "dimension" in raw and "binding" in raw:
        errors.add(path, "cannot name both a dimension and a binding")
    thresholds: dict[str, float | None] = {}
    for key in SCORECARD_THRESHOLDS:
        if key in raw:
            thresholds[key] = _number(errors, _at(path, key), raw[key], low=0.0, high=1.0)
    if not thresholds:
        errors.add(path, f"must set at least one of {', '.join(SCORECARD_THRESHOLDS)}")
    if len(errors.items) != count_before:
        return None
    return ScorecardGate(dimension=dimension, binding=binding, tag=tag, **thresholds)
