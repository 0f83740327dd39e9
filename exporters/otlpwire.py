"""Protobuf wire format for the OTLP messages the exporters send most (plain Python, no Django).

A LogRecord per result is the relay's hot loop: written field by field here, it costs a fifth of filling
opentelemetry-proto messages, and attributes that repeat from record to record (the binding, the evaluator, the
run) are encoded once and reused. The bytes are exactly what the proto classes serialize (fields in number order,
proto3 defaults left out, oneof values always written): tests/exporters/test_otlp.py holds them equal to the
OpenTelemetry SDK's encoder. Field numbers are opentelemetry-proto's (common/v1, logs/v1, collector/logs/v1).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping

AttributeValue = str | bool | int | float

_DOUBLE = struct.Struct("<d")
_FIXED64 = struct.Struct("<Q")
_FIXED32 = struct.Struct("<I")
_CACHE_MAX = 50_000
_fields: dict[tuple[int, str, type, AttributeValue], bytes] = {}


_ONE_BYTE = tuple(bytes((value,)) for value in range(128))


def varint(value: int) -> bytes:
    """A base-128 varint; a negative int64 as its two's complement (ten bytes), as protobuf writes it."""
    if 0 <= value < 128:
        return _ONE_BYTE[value]
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


_LENGTH_TAGS = {number: tag(number, 2) for number in range(1, 32)}


def length_delimited(number: int, payload: bytes) -> bytes:
    """A field of wire type 2 (string, bytes, message)."""
    size = len(payload)
    return (_LENGTH_TAGS.get(number) or tag(number, 2)) + (_ONE_BYTE[size] if size < 128 else varint(size)) + payload


def string_field(number: int, text: str) -> bytes:
    return length_delimited(number, text.encode())


def fixed64_field(number: int, value: int) -> bytes:
    return tag(number, 1) + _FIXED64.pack(value)


def fixed32_field(number: int, value: int) -> bytes:
    return tag(number, 5) + _FIXED32.pack(value)


def varint_field(number: int, value: int) -> bytes:
    return tag(number, 0) + varint(value)


def any_value(value: AttributeValue) -> bytes:
    """An AnyValue (common/v1): string_value 1, bool_value 2, int_value 3, double_value 4 (a oneof: always set)."""
    if isinstance(value, bool):
        return varint_field(2, int(value))
    if isinstance(value, int):
        return varint_field(3, value)
    if isinstance(value, float):
        return tag(4, 1) + _DOUBLE.pack(value)
    return string_field(1, value)


def key_value(key: str, value: AttributeValue) -> bytes:
    """A KeyValue (key 1, value 2)."""
    return string_field(1, key) + length_delimited(2, any_value(value))


def key_values(number: int, attributes: Mapping[str, AttributeValue]) -> bytes:
    """The repeated KeyValue field `number` holding `attributes`, in order. Each occurrence is memoized: most
    attributes of a batch (the binding, the evaluator, the run, the label) repeat from record to record."""
    parts = []
    for key, value in attributes.items():
        cache_key = (number, key, type(value), value)
        encoded = _fields.get(cache_key)
        if encoded is None:
            encoded = length_delimited(number, key_value(key, value))
            if len(_fields) >= _CACHE_MAX:
                _fields.clear()
            _fields[cache_key] = encoded
        parts.append(encoded)
    return b"".join(parts)


def messages(number: int, payloads: Iterable[bytes]) -> bytes:
    """A repeated message field: each payload as one occurrence of field `number`."""
    return b"".join(length_delimited(number, payload) for payload in payloads)
