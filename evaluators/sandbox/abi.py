"""Calling `evaluate` through Wasmtime's C API directly: lower the input, call, lift the result.

wasmtime-py's `Func.__call__` reflects the function's type on every call: it walks every record field, list
element and variant case with one C call and one Python object each, to lower the input and lift the result.
That was ~0.4 ms of a ~0.55 ms call on a reused instance; the guest's own work was ~0.1 ms. The contract is
fixed, so the input is built straight from the data in the shape of `evaluation-input`, and the result is
lifted generically from the values themselves (they carry their own kinds and names). Wasmtime type-checks
the arguments of every call, so a component whose `evaluate` takes another shape gets an error, not memory
corruption; a result of an unexpected shape is caught by `decode_evaluation`.

Lifted values: record -> dict, list/tuple -> list, variant -> (case, payload or None), enum -> str,
option -> None or the payload, result -> ("ok" | "err", payload or None), flags -> list of str.
"""

from __future__ import annotations

import ctypes
import json
from ctypes import byref
from typing import Any

from wasmtime import _ffi as ffi
from wasmtime.component._enter import enter_wasm

K_BOOL = ffi.WASMTIME_COMPONENT_BOOL.value
K_U32 = ffi.WASMTIME_COMPONENT_U32.value
K_F32 = ffi.WASMTIME_COMPONENT_F32.value
K_F64 = ffi.WASMTIME_COMPONENT_F64.value
K_CHAR = ffi.WASMTIME_COMPONENT_CHAR.value
K_STRING = ffi.WASMTIME_COMPONENT_STRING.value
K_LIST = ffi.WASMTIME_COMPONENT_LIST.value
K_RECORD = ffi.WASMTIME_COMPONENT_RECORD.value
K_TUPLE = ffi.WASMTIME_COMPONENT_TUPLE.value
K_VARIANT = ffi.WASMTIME_COMPONENT_VARIANT.value
K_ENUM = ffi.WASMTIME_COMPONENT_ENUM.value
K_OPTION = ffi.WASMTIME_COMPONENT_OPTION.value
K_RESULT = ffi.WASMTIME_COMPONENT_RESULT.value
K_FLAGS = ffi.WASMTIME_COMPONENT_FLAGS.value
_INTEGERS = {
    ffi.WASMTIME_COMPONENT_S8.value: "s8",
    ffi.WASMTIME_COMPONENT_U8.value: "u8",
    ffi.WASMTIME_COMPONENT_S16.value: "s16",
    ffi.WASMTIME_COMPONENT_U16.value: "u16",
    ffi.WASMTIME_COMPONENT_S32.value: "s32",
    K_U32: "u32",
    ffi.WASMTIME_COMPONENT_S64.value: "s64",
    ffi.WASMTIME_COMPONENT_U64.value: "u64",
}

Val = ffi.wasmtime_component_val_t


class LiftError(ValueError):
    """The guest returned a value this host does not lift (a resource handle, a map)."""


# -- lowering -----------------------------------------------------------------------------------------------
# Two steps: `input_tree` turns the data into a tree of encoded bytes (everything that can fail, fails here,
# before anything is allocated on the C side); `_fill` copies that tree into C values and cannot fail.


def _utf8(value: Any) -> bytes:
    return str(value).encode("utf-8")  # a lone surrogate raises UnicodeEncodeError, a ValueError


def _json(value: Any) -> bytes:
    return json.dumps(value).encode("ascii")


def _opt_json(value: Any) -> tuple[str, Any]:
    return ("o", None) if value is None else ("o", ("s", _json(value)))


def _record(*fields: tuple[str, Any]) -> tuple[str, Any]:
    return ("r", [(name.encode(), node) for name, node in fields])


def input_tree(data: dict[str, Any]) -> tuple[str, Any]:
    """The `evaluation-input` record for `data` (the dataset's case shape), as a tree of encoded values."""
    case = data.get("case") or {}
    out = data.get("output") or {}
    text = out.get("text")
    test_case = _record(
        ("id", ("s", _utf8(case.get("id", "")))),
        ("input-json", ("s", _json(case.get("input")))),
        ("expected-json", _opt_json(case.get("expected"))),
        ("context-json", _opt_json(case.get("context"))),
        ("tags", ("l", [("s", _utf8(t)) for t in case.get("tags") or []])),
        ("metadata-json", ("s", _json(case.get("metadata") or {}))),
    )
    tool_calls = [
        _record(
            ("name", ("s", _utf8(tc.get("name", "")))),
            ("arguments-json", ("s", _json(tc.get("arguments")))),
            ("result-json", _opt_json(tc.get("result"))),
        )
        for tc in out.get("tool_calls") or []
    ]
    trace = [
        _record(
            ("kind", ("s", _utf8(ev.get("kind", "")))),
            ("name", ("o", None if ev.get("name") is None else ("s", _utf8(ev["name"])))),
            ("payload-json", ("s", _json(ev.get("payload")))),
        )
        for ev in out.get("trace") or []
    ]
    actual = _record(
        ("text", ("o", None if text is None else ("s", _utf8(text)))),
        ("structured-json", _opt_json(out.get("structured"))),
        ("tool-calls", ("l", tool_calls)),
        ("trace", ("l", trace)),
        ("metadata-json", ("s", _json(out.get("metadata") or {}))),
    )
    attempt = int(data.get("attempt", 1))
    if not 0 <= attempt < 2**32:
        raise ValueError(f"attempt {attempt} is not a u32")
    return _record(
        ("run-id", ("s", _utf8(data.get("run_id", "")))),
        ("execution-id", ("s", _utf8(data.get("execution_id", "")))),
        ("attempt", ("u32", attempt)),
        ("test-case", test_case),
        ("actual", actual),
        ("config-json", ("s", _json(data.get("config") or {}))),
    )


def _bytes_into(vec: Any, raw: bytes) -> None:
    ffi.wasm_byte_vec_new_uninitialized(byref(vec), len(raw))
    if raw:
        ctypes.memmove(vec.data, raw, len(raw))


def _fill(val: Any, node: tuple[str, Any]) -> None:
    kind, payload = node
    if kind == "s":
        val.kind = K_STRING
        _bytes_into(val.of.string, payload)
    elif kind == "r":
        val.kind = K_RECORD
        record = val.of.record
        ffi.wasmtime_component_valrecord_new_uninit(byref(record), len(payload))
        for i, (name, child) in enumerate(payload):
            entry = record.data[i]
            _bytes_into(entry.name, name)
            _fill(entry.val, child)
    elif kind == "l":
        val.kind = K_LIST
        items = val.of.list
        ffi.wasmtime_component_vallist_new_uninit(byref(items), len(payload))
        for i, child in enumerate(payload):
            _fill(items.data[i], child)
    elif kind == "o":
        val.kind = K_OPTION
        if payload is None:
            val.of.option = None
        else:
            inner = Val()
            _fill(inner, payload)
            val.of.option = ffi.wasmtime_component_val_new(byref(inner))  # moves `inner` to the heap
    elif kind == "u32":
        val.kind = K_U32
        val.of.u32 = payload
    else:  # pragma: no cover - input_tree only builds the kinds above
        raise AssertionError(kind)


# -- lifting ------------------------------------------------------------------------------------------------


def _name(vec: Any) -> str:
    return ctypes.string_at(vec.data, vec.size).decode("utf-8", "replace")


def lift(val: Any) -> Any:
    """A C value as plain Python (see the module docstring). Reads only; the caller frees `val`."""
    kind = val.kind
    if kind == K_STRING:
        return _name(val.of.string)
    if kind == K_RECORD:
        record = val.of.record
        return {_name(record.data[i].name): lift(record.data[i].val) for i in range(record.size)}
    if kind in (K_LIST, K_TUPLE):
        items = val.of.list if kind == K_LIST else val.of.tuple
        return [lift(items.data[i]) for i in range(items.size)]
    if kind == K_BOOL:
        return bool(val.of.boolean)
    if kind == K_F64:
        return float(val.of.f64)
    if kind == K_F32:
        return float(val.of.f32)
    if kind == K_VARIANT:
        variant = val.of.variant
        return (_name(variant.discriminant), lift(variant.val.contents) if variant.val else None)
    if kind == K_ENUM:
        return _name(val.of.enumeration)
    if kind == K_OPTION:
        return lift(val.of.option.contents) if val.of.option else None
    if kind == K_RESULT:
        result = val.of.result
        return ("ok" if result.is_ok else "err", lift(result.val.contents) if result.val else None)
    if kind in _INTEGERS:
        return int(getattr(val.of, _INTEGERS[kind]))
    if kind == K_CHAR:
        return chr(val.of.character)
    if kind == K_FLAGS:
        flags = val.of.flags
        return [_name(flags.data[i]) for i in range(flags.size)]
    raise LiftError(f"the host does not accept values of kind {kind} from an evaluator")


# -- calling ------------------------------------------------------------------------------------------------

CONFIG_FIELD = 5  # index of `config-json` in `evaluation-input`


class CaseInput:
    """One case's `evaluation-input`, lowered to C values once and passed to every binding's call.

    Only `config-json` differs between the bindings of a case; `params(config)` swaps it in place. Wasmtime
    reads the arguments of a call without taking them over (wasmtime-py frees its own after each call), so
    the same values can be passed again. `error` says why a case cannot be lowered at all.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.error: str | None = None
        self._params: Any = None
        try:
            tree = input_tree({**data, "config": {}})
        except (TypeError, ValueError) as exc:
            self.error = f"input cannot be encoded: {exc}"
            return
        self._params = (Val * 1)()
        _fill(self._params[0], tree)

    def params(self, config: Any) -> Any:
        """The lowered input with `config` as its `config-json` (raises TypeError/ValueError if not JSON)."""
        raw = _json(config or {})
        field = self._params[0].of.record.data[CONFIG_FIELD].val
        ffi.wasm_byte_vec_delete(byref(field.of.string))
        _bytes_into(field.of.string, raw)
        return self._params

    def close(self) -> None:
        if self._params is not None:
            ffi.wasmtime_component_val_delete(byref(self._params[0]))
            self._params = None

    def __enter__(self) -> CaseInput:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def call_evaluate(func: Any, store: Any, params: Any) -> Any:
    """Call a component's `evaluate` with lowered `params` (see CaseInput); the lifted result.

    Traps raise WasmtimeError. The params stay the caller's to free.
    """
    result = Val()
    enter_wasm(
        lambda: ffi.wasmtime_component_func_call(byref(func._func), store._context(), params, 1, byref(result), 1)
    )
    try:
        return lift(result)
    finally:
        ffi.wasmtime_component_val_delete(byref(result))
