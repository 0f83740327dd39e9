"""The platform-neutral evaluation result every exporter translates (plain Python, no Django).

An `EvalRecord` is one binding's result on one execution of a run or on one live event, or a run's verdict as a
run-level evaluation. Runs and the live loop build them (`runs.exports`, `online.exports`) in the transaction
that stores the results; the relay hands them to a platform's exporter (`exporters.platforms`). Stored as JSON in
`exporters.models.ExportBatch.records`, so a record must survive `as_dict` -> JSON -> `from_dict` unchanged.

Ids are deterministic (`record_id`), so a resend carries the same id and receivers that upsert on it (Phoenix's
`identifier`, Langfuse's score `id`, LangSmith's feedback `id`) never duplicate. Where the evaluated span is not
known (an offline case without trace ids), `own_span` is set and the trace and span ids are Vigilo's own, derived
from the run and execution ids (`own_trace_id`, `own_span_id`): exporters that can send spans send those first,
so the annotation has a span to sit on.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import MISSING, dataclass, fields
from typing import Any, Literal

Source = Literal["run", "live"]
Level = Literal["binding", "run"]

# The namespace of every record id: uuid5(NAMESPACE, "<source>:<key>").
NAMESPACE = uuid.UUID("6f0e3c1e-2b7a-5d8e-9a41-7c1b6b0e7a10")
_NAMESPACE_BYTES = NAMESPACE.bytes

# The name of a run's verdict as a run-level evaluation.
VERDICT_NAME = "vigilo.gate"

# Which measurement kinds map to which shape of score (the kinds evaluators report; gating.normalize).
BOOLEAN_KINDS = frozenset({"binary"})
NUMERIC_KINDS = frozenset({"numeric"})
CATEGORICAL_KINDS = frozenset({"ordinal"})


@dataclass(frozen=True, kw_only=True)
class EvalRecord:
    """One evaluation result, in the terms of the OTEL GenAI evaluation event (`gen_ai.evaluation.result`)."""

    id: str  # deterministic UUID string (record_id): the idempotency key at every receiver
    source: Source
    level: Level = "binding"
    name: str  # gen_ai.evaluation.name: the binding id, or VERDICT_NAME
    outcome: str  # completed | abstained | error
    kind: str = ""  # binary | numeric | ordinal (what the evaluator measured); "" for errors and verdicts
    value: float | bool | str | None = None  # the raw measurement
    score: float | None = None  # gen_ai.evaluation.score.value: the normalized score in [0, 1]
    label: str = ""  # gen_ai.evaluation.score.label: pass | fail | abstained | error (low cardinality)
    passed: bool | None = None
    explanation: str = ""  # gen_ai.evaluation.explanation
    error_type: str = ""  # error.type on an errored result (the error code)
    evaluator: str = ""  # "ns/name"
    evaluator_version: str = ""
    evaluator_digest: str = ""  # sha256 hex of the component
    judge: bool = False  # a model-graded evaluator (model-evaluator world): Phoenix's annotator_kind LLM
    trace_id: str = ""  # 32 lowercase hex, or ""
    span_id: str = ""  # 16 lowercase hex, or ""
    own_span: bool = False  # trace_id/span_id are Vigilo's own (no span of the agent's is known)
    response_id: str = ""  # gen_ai.response.id, the fallback correlation when no span is known
    run_id: str = ""
    execution_id: str = ""
    case_id: str = ""
    binding_id: str = ""
    agent: str = ""  # live: gen_ai.agent.name
    event_type: str = ""  # live: llm_output | tool_call | decision | message_sent | custom
    message_id: str = ""  # live: the agent's id for the event
    operation: str = ""  # gen_ai.operation.name, when known
    model: str = ""  # gen_ai.request.model, when known
    timestamp_ns: int = 0  # when the result was produced (Unix nanoseconds)
    start_ns: int = 0  # own spans: when the evaluated execution (or run) started
    end_ns: int = 0  # own spans: when it ended

    def as_dict(self) -> dict[str, Any]:
        """The fields that differ from their defaults (a stored batch stays small); `from_dict` restores the rest."""
        # Every field is a scalar: getattr is asdict without its deep copy (a record is stored for each result).
        out: dict[str, Any] = {}
        for name, default in _FIELD_DEFAULTS:
            value = getattr(self, name)
            if default is MISSING or value != default:
                out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalRecord:
        # The relay reads every stored record: filling the instance's dict skips the frozen dataclass's
        # per-field object.__setattr__ (five times the cost). Unknown keys (a newer writer's) are dropped.
        values = dict(_DEFAULT_VALUES)
        values.update((key, value) for key, value in data.items() if key in _FIELD_NAMES)
        if len(values) != len(_FIELD_DEFAULTS):
            missing = sorted(name for name, _ in _FIELD_DEFAULTS if name not in values)
            raise TypeError(f"EvalRecord.from_dict: missing {', '.join(missing)}")
        record = object.__new__(cls)
        record.__dict__.update(values)
        return record


_FIELD_DEFAULTS: tuple[tuple[str, Any], ...] = tuple((f.name, f.default) for f in fields(EvalRecord))
_FIELD_NAMES = frozenset(name for name, _ in _FIELD_DEFAULTS)
_DEFAULT_VALUES = {name: default for name, default in _FIELD_DEFAULTS if default is not MISSING}


def record_id(source: Source, key: str) -> str:
    """The deterministic id of a record: `key` names the result ("<run>:<execution>:<binding>", ...).

    `str(uuid.uuid5(NAMESPACE, f"{source}:{key}"))`, computed without building the UUID object (one per result,
    in the results' transaction): the SHA-1 of the namespace and the name, with version 5 and the RFC 4122
    variant set."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{source}:{key}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def own_trace_id(run_id: str) -> str:
    """Vigilo's own trace of a run: 32 hex digits derived from the run id (never all zero)."""
    return _hex_id(f"trace:{run_id}", 16)


def own_span_id(run_id: str, execution_id: str = "") -> str:
    """Vigilo's own span of an execution (or, with no execution, of the run itself): 16 hex digits."""
    return _hex_id(f"span:{run_id}:{execution_id}", 8)


def _hex_id(seed: str, size: int) -> str:
    digest = hashlib.sha256(seed.encode()).digest()[:size]
    if not any(digest):  # an all-zero id is invalid in OTLP
        digest = b"\x01" + digest[1:]
    return digest.hex()
