"""vigilo/json-schema in C (2.0.0) gives the same results as the Python evaluator (1.0.0) it replaces.

Both run as real components in Wasmtime. A seeded grammar generates schemas that use every keyword the
validator knows (nested, with $ref, unicode keys, big and float numbers, booleans next to 1 and 0) with
outputs drawn near each schema, so that both valid and invalid outputs are common; then come invalid JSON of
every error kind, invalid schemas, missing or unusable expectations, structured fields and bad configs.
Results must be equal field by field, messages and evidence included.
"""

from __future__ import annotations

import copy
import json
import random

import pytest

from tests.support.parity import assert_same, request
from tests.support.wasm import load

SEED = 20261202
COUNT = 1200

KEYS = ["a", "b", "name", "id", "x_1", "a b", "日本", "é", "x.y", "", "~/", "a: b", "🙂", "$ref", "0", "K"]
KEYS += ["a\x00b", "\u200b", "_9"]
STRINGS = ["", "a", "ab", "abc", "hello", "Hello", "日本語", "🙂🙂", "é", "ß", "a\nb", '"q"', "it's", "KX-1234"]
STRINGS += ["doc-0001#p1", "x" * 90, "日本" * 45, "12", "a b", "\t", "ǅ", "İ", "\x7f", "\u200b", "a\x00b", "٣"]
INTS = [0, 1, -1, 2, 3, 5, 7, 10, 42, -7, 100, 2**53, 2**53 + 1, 2**64, -(2**64) - 1, 10**30, 12345678901234567890]
FLOATS = [0.0, -0.0, 0.5, 1.0, 1.5, 2.0, -2.5, 0.1, 0.3, 0.7, 1e16, 1e-7, 1 / 3, 9007199254740992.0, 1e300, 3.0]
TYPES = ["null", "boolean", "integer", "number", "string", "array", "object"]
# Patterns both Python's `re` and the native engine accept, and ones both reject.
PATTERNS = ["^a", "b$", "^[a-z]+$", r"\d", r"^\w+$", "日本", "^.{2,4}$", "a|b", "(ab)+", "^$", "[^a-z]", r"\s"]
PATTERNS += [r"^KX-\d{4}$", "é", "^(?:[A-Z][a-z]*)?$", "🙂", "(?i)^h", r"^\S+@\S+$", "x*", r"\bb", "[.]"]
BAD_PATTERNS = ["(", "[a", "*a", "a{2,1}", "(?P<1>a)", "\\", "a)", "(?<=a+)b"]
DEFS = {
    "pos": {"type": "integer", "minimum": 0},
    "name": {"type": "string", "minLength": 1, "maxLength": 8},
    "node": {"type": "object", "properties": {"v": {"type": "integer"}, "next": {"$ref": "#/$defs/node"}}},
    "a~b/c": {"enum": [1, "one", True]},
    "100%": {"type": "array", "items": {"$ref": "#/$defs/pos"}},
    "loop": {"$ref": "#/$defs/loop"},
}
LISTS = [{"type": "string"}, {"type": "number", "multipleOf": 0.5}]  # at "#/x-lists", which is not a schema
REFS = ["#/$defs/pos", "#/$defs/name", "#/$defs/node", "#/$defs/a~0b~1c", "#/$defs/100%25", "#/x-lists/1"]
REFS += ["#/x-lists/01", "#", "#/", "#/$defs/loop", "#/$defs/%6Eame"]
BAD_REFS = [
    "#/$defs/missing",
    "#/$defs/list/2",
    "http://example.com/s.json",
    "#nope",
    "#/$defs/%C3%A9",
    "",
    "#/$defs/a~b",
]


@pytest.fixture(scope="module")
def schema_pair(host, bundled_wasm, native_wasm):
    """(the Python vigilo/json-schema component, the native one)."""
    return load(host, bundled_wasm["json-schema"]), load(host, native_wasm["native/json-schema"])


# --- values -------------------------------------------------------------------------------------------------


def value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(10 if depth < 3 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice(INTS)
    if kind == 3:
        return rng.choice(FLOATS)
    if kind in (4, 5, 6):
        return rng.choice(STRINGS)
    if kind in (7, 8):
        return {rng.choice(KEYS): value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    return [value(rng, depth + 1) for _ in range(rng.randint(0, 5))]


def twin(x):
    """A value JSON Schema calls equal, written differently (1 -> 1.0, nested too), or x itself."""
    if isinstance(x, bool):
        return x
    if isinstance(x, int) and abs(x) < 2**53:
        return float(x)
    if isinstance(x, list):
        return [twin(v) for v in x]
    if isinstance(x, dict):
        return {k: twin(v) for k, v in reversed(list(x.items()))}
    return x


# --- schemas ------------------------------------------------------------------------------------------------


def kw_type(rng, s, depth):
    s["type"] = rng.choice(TYPES) if rng.random() < 0.6 else rng.sample(TYPES, rng.randint(1, 3))


def kw_enum(rng, s, depth):
    options = [value(rng, 2) for _ in range(rng.randint(1, 3))]
    options += rng.sample([1, True, 0, False, 1.0, None, "1", [1, "a"], {"a": 1}], rng.randint(0, 3))
    s["enum"] = options


def kw_const(rng, s, depth):
    s["const"] = rng.choice([value(rng, 1), 1, True, 0.0, False, [1, True], {"a": [1.0]}])


def kw_object(rng, s, depth):
    keys = rng.sample(KEYS, rng.randint(1, 4))
    if rng.random() < 0.8:
        s["properties"] = {k: schema(rng, depth + 1) for k in keys}
    if rng.random() < 0.5:
        s["required"] = rng.sample(KEYS, rng.randint(0, 3))
    if rng.random() < 0.4:
        s["additionalProperties"] = rng.choice([False, True, {"type": "integer"}, schema(rng, depth + 1)])
    if rng.random() < 0.3:
        s["patternProperties"] = {rng.choice(PATTERNS): schema(rng, depth + 1) for _ in range(rng.randint(1, 2))}
    if rng.random() < 0.2:
        s["propertyNames"] = rng.choice([{"maxLength": 2}, {"pattern": rng.choice(PATTERNS)}, {"enum": KEYS[:5]}])
    if rng.random() < 0.3:
        s[rng.choice(["minProperties", "maxProperties"])] = rng.randint(0, 3)
    if rng.random() < 0.2:
        s["dependentRequired"] = {rng.choice(KEYS): rng.sample(KEYS, 2) for _ in range(2)}


def kw_array(rng, s, depth):
    roll = rng.random()
    if roll < 0.4:
        s["items"] = schema(rng, depth + 1)
    elif roll < 0.6:
        s["items"] = [schema(rng, depth + 1) for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.7:
            s["additionalItems"] = rng.choice([False, True, schema(rng, depth + 1)])
    elif roll < 0.8:
        s["prefixItems"] = [schema(rng, depth + 1) for _ in range(rng.randint(0, 3))]
        if rng.random() < 0.6:
            s["items"] = rng.choice([False, True, schema(rng, depth + 1)])
    if rng.random() < 0.3:
        s["contains"] = schema(rng, depth + 1)
        if rng.random() < 0.6:
            s[rng.choice(["minContains", "maxContains"])] = rng.randint(0, 3)
    if rng.random() < 0.3:
        s[rng.choice(["minItems", "maxItems"])] = rng.randint(0, 4)
    if rng.random() < 0.3:
        s["uniqueItems"] = rng.random() < 0.8


def kw_string(rng, s, depth):
    if rng.random() < 0.5:
        s[rng.choice(["minLength", "maxLength"])] = rng.randint(0, 6)
    if rng.random() < 0.6:
        s["pattern"] = rng.choice(PATTERNS)


def kw_number(rng, s, depth):
    bounds = [0, 1, 2.5, -3, 10, 2**53, 1e16, 0.1, 100]
    for key in rng.sample(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"], rng.randint(1, 2)):
        s[key] = rng.choice(bounds)
    if rng.random() < 0.15:  # draft-04: exclusiveMinimum true turns minimum exclusive
        s["minimum"], s["exclusiveMinimum"] = rng.choice(bounds), True
    if rng.random() < 0.4:
        s["multipleOf"] = rng.choice([2, 3, 0.5, 0.1, 0.01, 7, 1e-9, 10**20, 1.5])


def kw_logic(rng, s, depth):
    key = rng.choice(["allOf", "anyOf", "anyOf", "oneOf", "oneOf", "not", "if"])
    if key == "not":
        s["not"] = schema(rng, depth + 1)
    elif key == "if":
        s["if"] = schema(rng, depth + 1)
        for branch in ("then", "else"):
            if rng.random() < 0.7:
                s[branch] = schema(rng, depth + 1)
    else:
        s[key] = [schema(rng, depth + 1) for _ in range(rng.randint(1, 5))]


def kw_ref(rng, s, depth):
    s["$ref"] = rng.choice(REFS)


def kw_annotation(rng, s, depth):
    s[rng.choice(["title", "description", "default", "examples", "$comment", "format", "x-vendor"])] = value(rng, 1)


LEAF_KEYWORDS = [kw_type, kw_type, kw_enum, kw_const, kw_string, kw_number, kw_ref, kw_annotation]
KEYWORDS = [*LEAF_KEYWORDS, kw_object, kw_object, kw_array, kw_array, kw_logic, kw_logic]


def schema(rng: random.Random, depth: int = 0):
    if rng.random() < (0.06 if depth == 0 else 0.12):
        return rng.choice([True, False, {}])
    s: dict = {}
    for _ in range(rng.randint(1, 3 if depth < 2 else 1)):
        rng.choice(LEAF_KEYWORDS if depth >= 3 else KEYWORDS)(rng, s, depth)
    return s


def resolve(root, ref: str):
    if ref.startswith("#/x-lists/"):
        return LISTS[int(ref.rsplit("/", 1)[1])]
    if not ref.startswith("#/$defs/"):
        return root
    name = ref.removeprefix("#/$defs/").replace("%25", "%").replace("%6E", "n")
    return DEFS[name.replace("~1", "/").replace("~0", "~")]


def near(rng: random.Random, s, root, depth: int = 0):
    """A value drawn from what the schema describes (often valid, often off by a little)."""
    if not isinstance(s, dict) or rng.random() < 0.15 or depth > 6:
        return value(rng, 2)
    if "$ref" in s and rng.random() < 0.7:
        target = resolve(root, s["$ref"])
        return near(rng, target[0] if isinstance(target, list) else target, root, depth + 1)
    if "const" in s and rng.random() < 0.7:
        return twin(s["const"]) if rng.random() < 0.3 else copy.deepcopy(s["const"])
    if "enum" in s and rng.random() < 0.7:
        return twin(rng.choice(s["enum"]))
    for key in ("anyOf", "oneOf", "allOf"):
        if key in s and rng.random() < 0.6:
            return near(rng, rng.choice(s[key]), root, depth + 1)
    types = s.get("type", [])
    kind = rng.choice(types) if isinstance(types, list) and types else types or None
    if kind is None:
        kind = "object" if "properties" in s else "array" if "items" in s or "prefixItems" in s else None
        kind = kind or ("string" if "pattern" in s else "number" if "minimum" in s else rng.choice(TYPES))
    return near_of_type(rng, s, root, depth, kind)


def near_of_type(rng, s, root, depth, kind):
    if kind == "object":
        out = {}
        for key, sub in s.get("properties", {}).items():
            if rng.random() < 0.8:
                out[key] = near(rng, sub, root, depth + 1)
        for key in s.get("required", []):
            if rng.random() < 0.7:
                out.setdefault(key, value(rng, 2))
        if rng.random() < 0.4:
            out[rng.choice(KEYS)] = value(rng, 2)
        return out
    if kind == "array":
        items, prefix = s.get("items"), s.get("prefixItems", [])
        if isinstance(items, list):
            prefix, items = items, s.get("additionalItems")
        n = rng.randint(0, 5)
        out = [near(rng, prefix[i] if i < len(prefix) else items, root, depth + 1) for i in range(n)]
        if "contains" in s and rng.random() < 0.5:
            out.insert(rng.randint(0, len(out)), near(rng, s["contains"], root, depth + 1))
        if s.get("uniqueItems") and out and rng.random() < 0.4:
            out.append(twin(rng.choice(out)))
        return out
    if kind == "string":
        return rng.choice([*STRINGS, rng.choice(STRINGS) * rng.randint(1, 4)])
    if kind in ("number", "integer"):
        base = next((s[k] for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") if k in s), 0)
        base = 0 if isinstance(base, bool) else base
        step = s.get("multipleOf", 1)
        guess = rng.choice([base, base + step, base - step, base * 2, step * rng.randint(-3, 3), step / 3])
        if kind == "integer" and rng.random() < 0.7:
            guess = int(guess) if rng.random() < 0.5 else float(int(guess))
        return guess
    if kind == "boolean":
        return rng.choice([True, False, 1, 0])
    return None if kind == "null" else value(rng, 2)


def dumps(rng: random.Random, x) -> str:
    if rng.random() < 0.2:
        return json.dumps(x, indent=rng.choice([1, 2]), ensure_ascii=rng.random() < 0.5)
    return json.dumps(x, ensure_ascii=rng.random() < 0.5)


def placed(rng: random.Random, s, text: str | None = None, structured=None) -> dict:
    """A request with the schema in config `value`, in the case's expected value, or at an expected_path."""
    roll = rng.random()
    config: dict = {}
    expected = None
    if roll < 0.4:
        config["value"] = s
    elif roll < 0.8:
        expected = s
    else:
        expected = {"schemas": ["x", s], "meta": {"schema": s}}
        config["expected_path"] = rng.choice(["schemas.1", "schemas.-1", "meta.schema"])
    if structured is not None:
        config["field"] = "structured.answer" if rng.random() < 0.7 else "structured"
    return request(expected=expected, text=text, structured=structured, config=config)


def valid_schema_requests(rng: random.Random, count: int) -> list[dict]:
    out = []
    for _ in range(count):
        s = schema(rng)
        if isinstance(s, dict) and ('"$ref"' in json.dumps(s) or rng.random() < 0.3):
            s["$defs"], s["x-lists"] = DEFS, LISTS
        instance = near(rng, s, s)
        if rng.random() < 0.15:
            out.append(placed(rng, s, text="ignored", structured={"answer": instance, "other": [1, 2]}))
        else:
            out.append(placed(rng, s, text=dumps(rng, instance)))
    return out


# Numbers where float arithmetic and Python's exact int/float comparisons part ways: around 2**53, beyond
# 2**64, a float that is not the integer it prints as (1e300), signed zero, NaN and the infinities.
NUMBERS = [0, -0.0, 1, 1.0, -1, 3, 7, 21, 1.5, 0.1, 0.3, 0.7, 1e-9, 2**53, 2**53 + 1, float(2**53), 2**53 + 2]
NUMBERS += [float(2**53 + 2), 2**63, float(2**63), 10**20, 1e20, 10**300, 1e300, 1e308, -(10**30)]
NUMBERS += [float("inf"), float("-inf"), float("nan")]


def number_requests() -> list[dict]:
    out = []
    for x in NUMBERS:
        for bound in NUMBERS:
            s: dict = {key: bound for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")}
            s.update(enum=[bound, "x"], allOf=[{"type": "integer"}, {"const": bound}])
            if not bound <= 0:  # multipleOf must be > 0 (NaN passes that check)
                s["multipleOf"] = bound
            out.append(request(expected=s, text=json.dumps(x)))
        out.append(request(expected={"uniqueItems": True}, text=json.dumps([*NUMBERS, x])))
    return out


# --- everything else ----------------------------------------------------------------------------------------

BAD_JSON = ["", "   ", "{", "[", "[1,", "[1 2]", '{"a" 1}', '{"a": 1,}', '{"a":1 ,  }', "[1, ]", "[1,\n  ]"]
BAD_JSON += ["{a: 1}", '{"a": 1', "'x'", '"abc', '"a\\qb"', '"\\u12"', '"\\u1234', '"\\uZZZZ"', '"\\ud800\\udc00']
BAD_JSON += ['"\\ud800\\uZZZZ"', '"a\x01b"', "tru", "nul", "-", "01", "1.", "1e", "1 2", "[1] x", "\ufeff[1]"]
BAD_JSON += ["NaNx", "-Infinit", '{"日本": [1, 2,, 3]}', "\n\n  [1,\n 2,,]", "1" * 4301, "[" + "1" * 4400 + "]"]
BAD_JSON += ["[[[", '{"a":1}}', "🙂", '"🙂\\x"', "[1]\n\n🙂", '["日本", x]', '{"a":1,"a"}', '{"a"', "[\n", "\\"]
BAD_JSON += ['"\\', '"\\u', "-" + "1" * 4301, "{,}", "[,1]", '{"a":}', "[1,,]", '"tab\there"']
BAD_JSON += ['"\\ud800\\u12"', '"\\ud800\\ud', '"\\ud800\\udc0"', '["\\ud83d\\ude42", 1,]', '{"a":1 "b":2}', '{"a":1,']
BAD_JSON += ['{"a":1, 5}', "[1,2", '{"k\x01": 1}', "1.5e", "-0.e1", "[-]", "[1]]", '  {"日本": 1,\n "x" 2}']
ODD_JSON = ["NaN", "Infinity", "-Infinity", "-0", "1E400", "1e-400", '{"a":1,"a":2}', " \t\n[1]\r\n", "1" * 4300]
ODD_JSON += ["-0.0", "0.1e1", "1.0", "12345678901234567890123", '"\\u00e9\\ud83d\\ude42"', '"\\/"']


def problem_schema(rng: random.Random):
    """A schema with 1 to 8 problems schema_check reports, nested or not."""
    problems = [
        ("type", 5),
        ("type", []),
        ("type", ["strin", "integer"]),
        ("type", ["string", 3]),
        ("required", "a"),
        ("required", ["a", 1]),
        ("enum", 3),
        ("pattern", 5),
        ("pattern", rng.choice(BAD_PATTERNS)),
        ("minLength", -1),
        ("maxItems", 1.5),
        ("minContains", True),
        ("maxProperties", "2"),
        ("minimum", "0"),
        ("exclusiveMaximum", None),
        ("multipleOf", 0),
        ("multipleOf", -2),
        ("multipleOf", True),
        ("uniqueItems", "yes"),
        ("$ref", 5),
        ("$ref", rng.choice(BAD_REFS)),
        ("properties", 5),
        ("properties", {"a": 5, "b~/": None, "": "x"}),
        ("patternProperties", {rng.choice(BAD_PATTERNS): True, "ok": {"type": 1}}),
        ("$defs", []),
        ("definitions", {"x": {"minItems": -3}}),
        ("dependentSchemas", {"a": 7}),
        ("allOf", []),
        ("anyOf", "x"),
        ("oneOf", [True, 5]),
        ("prefixItems", [{}, []]),
        ("not", None),
        ("if", "x"),
        ("additionalProperties", 1),
        ("items", [5, {"type": "nope"}]),
        ("items", 3),
        ("contains", {"allOf": [{"$ref": "#/nowhere"}]}),
    ]
    s = schema(rng, 2) if rng.random() < 0.5 else {}
    s = s if isinstance(s, dict) else {}
    for key, bad in rng.sample(problems, rng.randint(1, 8)):
        target = s
        properties = s.get("properties")
        if rng.random() < 0.3 and (properties is None or isinstance(properties, dict)):
            target = s.setdefault("properties", {}).setdefault(rng.choice(KEYS), {})
            target = target if isinstance(target, dict) else s
        target[key] = bad
    return s


def invalid_schema_requests(rng: random.Random, count: int) -> list[dict]:
    return [placed(rng, problem_schema(rng), text=dumps(rng, value(rng))) for _ in range(count)]


def invalid_json_requests(rng: random.Random) -> list[dict]:
    out = []
    for text in BAD_JSON + ODD_JSON:
        s = rng.choice([{"type": "object"}, {"type": "number", "maximum": 0}, True, {"enum": [float("nan"), 0]}])
        out.append(placed(rng, s, text=text))
    return out


MANY_ERRORS = {"type": "array", "items": {"type": "string", "minLength": 2}, "minItems": 30, "uniqueItems": True}
DEEP = {"properties": {"a": {"properties": {"b": {"items": [{"anyOf": [{"$ref": "#/$defs/node"}, False]}]}}}}}
DEEP["$defs"] = DEFS

SPECIAL = [
    # booleans, empty and non-object schemas, where the schema comes from
    request(expected=True, text="1"),
    request(expected=False, text="[1]"),
    request(expected={}, text='{"a": 1}'),
    request(config={"value": False}, text='"x"'),
    request(config={"value": {}}, text="null"),
    request(expected=5, text="1"),
    request(expected="not a schema", text="1"),
    request(expected=[{"type": "string"}], text="1"),
    request(expected=None, text="1"),
    request(expected=None, text="1", case_id='it\'s "quoted" ☃\u200b'),
    request(expected={"schema": None}, text="1", config={"expected_path": "schema"}),
    request(expected={"schema": 5}, text="1", config={"expected_path": "schema"}),
    request(expected={"schema": True}, text="1", config={"expected_path": "nope.deeper"}),
    request(expected=[True, {"type": "string"}], text="1", config={"expected_path": "1"}),
    # more than 10 errors, more than 5 schema problems
    request(expected=MANY_ERRORS, text=json.dumps([*range(12), 0])),
    request(expected=MANY_ERRORS, text=json.dumps(["ok"] * 11)),
    request(expected={"properties": {k: {"type": "string"} for k in KEYS}}, text=json.dumps(dict.fromkeys(KEYS, 1))),
    request(
        config={"value": {"type": 1, "minLength": -1, "enum": 2, "allOf": [], "anyOf": {}, "not": 3, "if": []}},
        text="1",
    ),
    request(expected={"properties": {f"p{i}": {"type": "bogus"} for i in range(7)}}, text="{}"),
    # references
    request(expected=DEEP, text='{"a": {"b": [{"v": 1, "next": {"v": "x", "next": {"v": 2.5}}}]}}'),
    request(expected=DEEP, text='{"a": {"b": [{"v": 1, "next": {"v": 1, "next": {"next": {"next": {}}}}}]}}'),
    request(expected={"$ref": "#/$defs/loop", "$defs": DEFS}, text="1"),
    request(
        expected={"properties": {"a: b": {"propertyNames": {"maxLength": 1}, "anyOf": [{"required": ["q"]}]}}},
        text='{"a: b": {"xy": 1, "z": 2}}',
    ),
    request(expected={"allOf": [{"$ref": "#"}]}, text="1"),
    request(expected={"contains": {"$ref": "#"}, "type": "array"}, text="[[[1]]]"),
    request(
        expected={"propertyNames": {"$ref": "#/$defs/name"}, "$defs": DEFS}, text='{"": 1, "ok": 2, "toolongname": 3}'
    ),
    request(
        expected={"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}, text="1"
    ),
    # unreachable subschemas are not checked: what the validator makes of odd keyword values there
    request(
        expected={"$ref": "#/x", "x": {"type": ["nope", 1, None, 1.5, [1], {"a": True}], "minimum": "1"}},
        text="1",
    ),
    request(expected={"$ref": "#/x", "x": {"$ref": "#/nope", "not": {"$ref": "#/x/0"}}}, text="1"),
    request(expected={"$ref": "#/x", "x": {"minLength": True, "maxLength": -1, "pattern": "("}}, text='"abc"'),
    request(expected={"$ref": "#/x", "x": {"minContains": True, "contains": {}, "maxContains": False}}, text="[1]"),
    request(expected={"$ref": "#/x", "x": {"minContains": 2, "contains": {"type": "string"}}}, text='["a", 1]'),
    request(expected={"$ref": "#/x", "x": {"maxItems": 10**30, "minItems": True, "minProperties": 2}}, text="[]"),
    request(expected={"$ref": "#/x", "x": {"required": ["a", 1], "enum": [{"a": 1.0}]}}, text='{"a": 1}'),
    request(expected={"$ref": "#/x", "x": {"multipleOf": float("nan"), "minimum": float("nan")}}, text="3"),
    request(expected={"$ref": "#/x", "x": {"allOf": "x", "anyOf": [], "oneOf": [True, True], "not": {}}}, text="1"),
    request(expected={"$ref": "#/x", "x": {"additionalProperties": None, "propertyNames": None}}, text='{"a":1}'),
    # numbers: exact big integers against floats, multipleOf on big and small numbers
    request(expected={"minimum": 9007199254740993}, text="9007199254740992.0"),
    request(expected={"maximum": 9007199254740992.0}, text="9007199254740993"),
    request(expected={"exclusiveMaximum": 1e300}, text="1" + "0" * 300),
    request(expected={"const": 10**20}, text="1e20"),
    request(expected={"enum": [2**64]}, text="18446744073709551616.0"),
    request(expected={"multipleOf": 10**20 + 7}, text=str((10**20 + 7) * 123456789)),
    request(expected={"multipleOf": 3}, text="-" + "9" * 60),
    request(expected={"multipleOf": 0.1}, text="0.30000000000000004"),
    request(expected={"multipleOf": 1e-300}, text="1e300"),
    request(expected={"type": "integer"}, text="[1.0, 1.5, Infinity]"),
    request(expected={"items": {"type": "integer"}}, text="[1.0, 1.5, Infinity, NaN, -0.0, 1e400]"),
    request(expected={"uniqueItems": True}, text="[NaN, 1, NaN]"),
    request(expected={"uniqueItems": True}, text='[{"a": [1, true]}, {"a": [1.0, true]}]'),
    request(expected={"uniqueItems": True}, text="[true, 1, 0, false, 1.0]"),
    request(expected={"uniqueItems": True}, text=json.dumps([*range(300), 150.0])),
    # structured fields
    request(expected={"type": "object"}, structured={"answer": {"a": 1}}, config={"field": "structured"}),
    request(expected={"type": "string"}, structured={"answer": 5}, config={"field": "structured.answer"}),
    request(expected={"type": "null"}, structured={"answer": None}, config={"field": "structured.answer"}),
    request(expected={"type": "string"}, structured={"a": [1, {"b": "x"}]}, config={"field": "structured.a.1.b"}),
    request(expected={"type": "string"}, structured={"answer": 5}, config={"field": "structured.missing"}),
    request(expected={"type": "string"}, structured=None, config={"field": "structured"}),
    request(expected={"type": "string"}, text=None),
    request(expected={"type": "string"}, text="x" * 500),
    request(expected={"maxLength": 3}, text=json.dumps("日本" * 150, ensure_ascii=False)),
    request(expected={"type": "object"}, text=json.dumps(["x" * 50] * 10)),
    # deep values (shown, compared, written as evidence) without deep validation
    request(expected={"type": "string"}, text='{"a":' * 500 + "1" + "}" * 500),
    request(expected={"type": "string", "const": 1}, text="[1.5," * 800 + "1" + "]" * 800),
]
BAD_CONFIGS = [
    {"value": 5},
    {"value": None},
    {"value": "x"},
    {"value": [1]},
    {"value": {}, "field": "x"},
    {"value": {}, "other": 1},
    {"value": {}, "expected_path": 3},
    {"field": "structured."},
    {"value": {}, "weird key": 1, "field": 2},
    5,
    ["x"],
]


def corpus() -> list[dict]:
    rng = random.Random(SEED)
    requests = valid_schema_requests(rng, COUNT)
    requests += invalid_schema_requests(rng, 150)
    requests += invalid_json_requests(rng)
    requests += number_requests()
    requests += SPECIAL
    requests += [request(expected={"type": "object"}, text="{}", config=config) for config in BAD_CONFIGS]
    return requests


def test_described_like_the_python_evaluator(host, schema_pair):
    python, native = schema_pair
    want, got = host.describe(python), host.describe(native)
    assert (got["name"], got["version"], got["description"]) == ("vigilo/json-schema", "2.0.0", want["description"])
    assert got["config_schema"] == want["config_schema"]


def test_same_results_as_python(host, schema_pair):
    python, native = schema_pair
    assert_same(host, python, native, corpus())


# What the corpus must reach for equality to mean something: every outcome and error code, and every message
# the validator and the schema check can write.
MESSAGES = [
    "no value is allowed here",
    "cannot resolve $ref",
    "circular $ref",
    "is not of type",
    "is not one of",
    "is not equal to the constant",
    "is a required property",
    "is required when",
    "properties, fewer than the minimum",
    "properties, more than the maximum",
    "property name",
    "additional property",
    "items, fewer than the minimum",
    "items, more than the maximum",
    "are equal",
    "are allowed",
    "no item matches the 'contains' schema",
    "items match the 'contains' schema, fewer than",
    "items match the 'contains' schema, more than",
    "is shorter than",
    "is longer than",
    "invalid pattern",
    "does not match",
    "is less than the minimum",
    "is greater than the maximum",
    "is less than or equal to the exclusive minimum",
    "is greater than or equal to the exclusive maximum",
    "is not a multiple of",
    "is not valid under any of the anyOf schemas",
    "is not valid under any of the oneOf schemas",
    "is valid under more than one oneOf schema",
    "must not be valid under the 'not' schema",
    "more schema errors not shown",
    "output is not valid JSON",
    "the agent produced no output text",
    "the agent produced no structured output",
    "the structured output has no value",
]
ERRORS = [
    "invalid_config: config 'value': invalid JSON Schema",
    "invalid_config: the case's expected value: invalid JSON Schema",
    "invalid_config: expected_path",
    "(and ",
    "a schema must be an object or a boolean",
    "must be a type name",
    "unknown type",
    "must be a list of property names",
    "must be a list",
    "must be a string",
    "is not a valid regular expression",
    "must be a non-negative integer",
    "must be a number, not",
    "must be a number greater than 0",
    "must be a boolean",
    "does not resolve",
    "must be an object mapping names to schemas",
    "must be a non-empty list of schemas",
    "invalid_expected: the case's expected value: a JSON Schema must be an object or a boolean",
    "invalid_expected: expected_path",
    "missing_expected: no expectation",
    "invalid_config: $.value:",
    "invalid_config: $: ",
    "additional property 'other' is not allowed",
]
INVALID_JSON = [
    "Expecting value",
    "Expecting ',' delimiter",
    "Expecting ':' delimiter",
    "Expecting property name enclosed in double quotes",
    "Illegal trailing comma before end of object",
    "Illegal trailing comma before end of array",
    "Invalid \\escape",
    "Invalid \\uXXXX escape",
    "Invalid control character at",
    "Unterminated string starting at",
    "Extra data",
    "Unexpected UTF-8 BOM",
    "Exceeds the limit (4300 digits)",
]


def test_corpus_reaches_every_outcome_and_message(host, schema_pair):
    _, native = schema_pair
    outcomes, texts = set(), []
    for data in corpus():
        result = host.evaluate(native, data=data)
        category = result.findings[0]["category"] if result.findings else None
        outcomes.add(
            (
                result.outcome,
                result.measurement,
                category,
                result.error_message.split(":")[0] if result.error_message else None,
            )
        )
        texts += [f["message"] for f in result.findings]
        if result.error_message:
            texts.append(result.error_message)
    assert {
        ("completed", True, None, None),
        ("completed", False, "schema_violation", None),
        ("completed", False, "invalid_json", None),
        ("completed", False, "missing_output", None),
    } <= outcomes
    assert {e for o, _, _, e in outcomes if o == "error"} == {"invalid_config", "invalid_expected", "missing_expected"}
    everything = "\n".join(texts)
    missing = [m for m in MESSAGES + ERRORS + INVALID_JSON if m not in everything]
    assert not missing, missing


def nested(levels: int) -> dict:
    s: dict = {"type": "integer"}
    for _ in range(levels):
        s = {"items": s}
    return s


def test_nesting_deeper_than_the_validator_follows_is_an_input_error(host, schema_pair):
    """CPython would recurse until its RecursionError (a trap); the native evaluator stops at 200 levels."""
    _, native = schema_pair
    within = host.evaluate(native, data=request(expected=nested(199), text="[" * 199 + '"x"' + "]" * 199))
    assert (within.outcome, within.measurement, within.findings[0]["message"][:6]) == ("completed", False, "$[0][0")
    for data in (
        request(expected=nested(201), text="1"),
        request(expected={"items": {"$ref": "#"}}, text="[" * 250 + "]" * 250),
    ):
        result = host.evaluate(native, data=data)
        assert (result.outcome, result.error_code) == ("error", "evaluator_error")
        assert result.error_message == (
            "invalid_input: the JSON Schema or the output nests more than 200 levels deep, "
            "more than this evaluator follows"
        )


def test_patterns_the_engine_refuses_count_as_invalid(host, schema_pair):
    """The documented difference of 2.0.0: valid Python syntax the native engine does not support."""
    python, native = schema_pair
    data = request(expected={"type": "string", "pattern": r"\N{EM DASH}"}, text='"—"')
    assert host.evaluate(python, data=data).measurement is True
    result = host.evaluate(native, data=data)
    assert (result.outcome, result.error_code) == ("error", "evaluator_error")
    assert result.error_message == (
        "invalid_config: the case's expected value: invalid JSON Schema: "
        "#/pattern: '\\\\N{EM DASH}' is not a valid regular expression"
    )
