"""The guest-side JSON Schema validator (evaluators/guest/vigilo_sdk/schema.py), run natively."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

GUEST_DIR = Path(__file__).resolve().parents[2] / "evaluators" / "guest"
if str(GUEST_DIR) not in sys.path:
    sys.path.insert(0, str(GUEST_DIR))

_schema = importlib.import_module("vigilo_sdk.schema")
schema_check = _schema.schema_check
schema_errors = _schema.schema_errors

KNOWN = "null, boolean, integer, number, string, array, object"
DEFS = {
    "$defs": {
        "name": {"type": "string", "minLength": 1},
        "node": {
            "type": "object",
            "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
        },
    }
}

# (schema, instance, valid?)
CASES = [
    # type
    ({"type": "string"}, "a", True),
    ({"type": "string"}, 1, False),
    ({"type": "integer"}, 3, True),
    ({"type": "integer"}, 3.0, True),
    ({"type": "integer"}, 3.5, False),
    ({"type": "integer"}, True, False),
    ({"type": "number"}, 3.5, True),
    ({"type": "number"}, 3, True),
    ({"type": "number"}, False, False),
    ({"type": "number"}, "3", False),
    ({"type": "boolean"}, False, True),
    ({"type": "boolean"}, 0, False),
    ({"type": "null"}, None, True),
    ({"type": "null"}, 0, False),
    ({"type": "array"}, [1], True),
    ({"type": "array"}, {"0": 1}, False),
    ({"type": "object"}, {}, True),
    ({"type": "object"}, [], False),
    ({"type": ["string", "null"]}, None, True),
    ({"type": ["string", "null"]}, "x", True),
    ({"type": ["string", "null"]}, 1, False),
    # enum / const
    ({"enum": ["a", 1, None]}, "a", True),
    ({"enum": ["a", 1, None]}, None, True),
    ({"enum": ["a", 1, None]}, 1.0, True),
    ({"enum": ["a", 1, None]}, "b", False),
    ({"enum": [1]}, True, False),
    ({"enum": [{"a": [1, 2]}]}, {"a": [1, 2]}, True),
    ({"enum": [{"a": [1, 2]}]}, {"a": [2, 1]}, False),
    ({"const": 5}, 5, True),
    ({"const": 5}, 6, False),
    ({"const": False}, 0, False),
    ({"const": {"k": "v"}}, {"k": "v"}, True),
    # objects
    ({"properties": {"a": {"type": "string"}}}, {"a": "x", "b": 1}, True),
    ({"properties": {"a": {"type": "string"}}}, {"a": 1}, False),
    ({"properties": {"a": {"type": "string"}}}, "not an object", True),
    ({"required": ["a", "b"]}, {"a": 1, "b": 2}, True),
    ({"required": ["a", "b"]}, {"a": 1}, False),
    ({"properties": {"a": {}}, "additionalProperties": False}, {"a": 1}, True),
    ({"properties": {"a": {}}, "additionalProperties": False}, {"a": 1, "b": 2}, False),
    ({"properties": {"a": {}}, "additionalProperties": {"type": "integer"}}, {"a": "x", "b": 2}, True),
    ({"properties": {"a": {}}, "additionalProperties": {"type": "integer"}}, {"b": "x"}, False),
    ({"patternProperties": {"^x-": {"type": "string"}}}, {"x-a": "s", "y": 1}, True),
    ({"patternProperties": {"^x-": {"type": "string"}}}, {"x-a": 1}, False),
    ({"patternProperties": {"^x-": {}}, "additionalProperties": False}, {"x-a": 1}, True),
    ({"patternProperties": {"^x-": {}}, "additionalProperties": False}, {"y": 1}, False),
    ({"minProperties": 2}, {"a": 1, "b": 2}, True),
    ({"minProperties": 2}, {"a": 1}, False),
    ({"maxProperties": 1}, {"a": 1}, True),
    ({"maxProperties": 1}, {"a": 1, "b": 2}, False),
    ({"propertyNames": {"pattern": "^[a-z]+$"}}, {"ab": 1}, True),
    ({"propertyNames": {"pattern": "^[a-z]+$"}}, {"AB": 1}, False),
    ({"dependentRequired": {"card": ["cvv"]}}, {"card": 1, "cvv": 2}, True),
    ({"dependentRequired": {"card": ["cvv"]}}, {"card": 1}, False),
    # arrays
    ({"items": {"type": "integer"}}, [1, 2], True),
    ({"items": {"type": "integer"}}, [1, "2"], False),
    ({"prefixItems": [{"type": "string"}, {"type": "integer"}]}, ["a", 1, None], True),
    ({"prefixItems": [{"type": "string"}, {"type": "integer"}]}, [1, 1], False),
    ({"prefixItems": [{"type": "string"}], "items": False}, ["a"], True),
    ({"prefixItems": [{"type": "string"}], "items": False}, ["a", "b"], False),
    ({"prefixItems": [{"type": "string"}], "items": {"type": "integer"}}, ["a", 1, 2], True),
    ({"prefixItems": [{"type": "string"}], "items": {"type": "integer"}}, ["a", 1, "b"], False),
    ({"items": [{"type": "string"}], "additionalItems": False}, ["a"], True),  # draft-07 tuple form
    ({"items": [{"type": "string"}], "additionalItems": False}, ["a", 1], False),
    ({"minItems": 2}, [1, 2], True),
    ({"minItems": 2}, [1], False),
    ({"maxItems": 1}, [1], True),
    ({"maxItems": 1}, [1, 2], False),
    ({"uniqueItems": True}, [1, "1", True, [1], {"a": 1}], True),
    ({"uniqueItems": True}, [1, 1.0], False),
    ({"uniqueItems": True}, [{"a": 1, "b": 2}, {"b": 2, "a": 1}], False),
    ({"uniqueItems": False}, [1, 1], True),
    ({"contains": {"type": "string"}}, [1, "a"], True),
    ({"contains": {"type": "string"}}, [1, 2], False),
    ({"contains": {"const": 1}, "minContains": 2}, [1, 1], True),
    ({"contains": {"const": 1}, "minContains": 2}, [1, 2], False),
    ({"contains": {"const": 1}, "maxContains": 1}, [1, 1], False),
    # strings
    ({"minLength": 2}, "ab", True),
    ({"minLength": 2}, "a", False),
    ({"minLength": 2}, "é\u0301", True),
    ({"maxLength": 2}, "ab", True),
    ({"maxLength": 2}, "abc", False),
    ({"pattern": "[0-9]+"}, "abc123", True),
    ({"pattern": "^[0-9]+$"}, "abc123", False),
    ({"pattern": "^a"}, 12, True),
    # numbers
    ({"minimum": 1}, 1, True),
    ({"minimum": 1}, 0.5, False),
    ({"maximum": 1}, 1, True),
    ({"maximum": 1}, 1.5, False),
    ({"exclusiveMinimum": 1}, 1.01, True),
    ({"exclusiveMinimum": 1}, 1, False),
    ({"exclusiveMaximum": 1}, 0.99, True),
    ({"exclusiveMaximum": 1}, 1, False),
    ({"minimum": 1, "exclusiveMinimum": True}, 1, False),  # draft-04 boolean form
    ({"multipleOf": 3}, 9, True),
    ({"multipleOf": 3}, 10, False),
    ({"multipleOf": 0.1}, 0.3, True),
    ({"multipleOf": 0.01}, 19.99, True),
    ({"multipleOf": 0.1}, 0.35, False),
    ({"minimum": 5}, "3", True),
    ({"minimum": 5}, True, True),
    # combinators
    ({"allOf": [{"type": "integer"}, {"minimum": 2}]}, 3, True),
    ({"allOf": [{"type": "integer"}, {"minimum": 2}]}, 1, False),
    ({"anyOf": [{"type": "string"}, {"minimum": 10}]}, "x", True),
    ({"anyOf": [{"type": "string"}, {"minimum": 10}]}, 11, True),
    ({"anyOf": [{"type": "string"}, {"minimum": 10}]}, 5, False),
    ({"oneOf": [{"type": "integer"}, {"minimum": 10}]}, 5, True),
    ({"oneOf": [{"type": "integer"}, {"minimum": 10}]}, 10.5, True),
    ({"oneOf": [{"type": "integer"}, {"minimum": 10}]}, 11, False),
    ({"oneOf": [{"type": "integer"}, {"minimum": 10}]}, 5.5, False),
    ({"not": {"type": "string"}}, 1, True),
    ({"not": {"type": "string"}}, "s", False),
    (
        {
            "if": {"properties": {"kind": {"const": "a"}}},
            "then": {"required": ["x"]},
            "else": {"required": ["y"]},
        },
        {"kind": "a", "x": 1},
        True,
    ),
    (
        {
            "if": {"properties": {"kind": {"const": "a"}}},
            "then": {"required": ["x"]},
            "else": {"required": ["y"]},
        },
        {"kind": "a", "y": 1},
        False,
    ),
    (
        {
            "if": {"properties": {"kind": {"const": "a"}}},
            "then": {"required": ["x"]},
            "else": {"required": ["y"]},
        },
        {"kind": "b", "y": 1},
        True,
    ),
    (
        {
            "if": {"properties": {"kind": {"const": "a"}}},
            "then": {"required": ["x"]},
            "else": {"required": ["y"]},
        },
        {"kind": "b", "x": 1},
        False,
    ),
    ({"if": {"type": "string"}, "then": {"minLength": 2}}, 5, True),
    # $ref / $defs / definitions
    ({**DEFS, "$ref": "#/$defs/name"}, "n", True),
    ({**DEFS, "$ref": "#/$defs/name"}, "", False),
    ({**DEFS, "properties": {"who": {"$ref": "#/$defs/name"}}}, {"who": 3}, False),
    ({**DEFS, "$ref": "#/$defs/node"}, {"children": [{"children": []}, {}]}, True),
    ({**DEFS, "$ref": "#/$defs/node"}, {"children": [{"children": [1]}]}, False),
    ({"definitions": {"pos": {"minimum": 0}}, "items": {"$ref": "#/definitions/pos"}}, [0, 1], True),
    ({"definitions": {"pos": {"minimum": 0}}, "items": {"$ref": "#/definitions/pos"}}, [0, -1], False),
    ({"$defs": {"a/b": {"type": "string"}}, "$ref": "#/$defs/a~1b"}, "s", True),
    ({"properties": {"next": {"$ref": "#"}}, "required": ["v"]}, {"v": 1, "next": {"v": 2}}, True),
    ({"properties": {"next": {"$ref": "#"}}, "required": ["v"]}, {"v": 1, "next": {}}, False),
    # boolean schemas, annotations and unknown keywords
    (True, {"anything": 1}, True),
    (False, None, False),
    ({}, [1, "x"], True),
    (
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://example.com/s",
            "$comment": "c",
            "title": "t",
            "description": "d",
            "default": 1,
            "examples": [1],
            "format": "email",
            "x-vendor": {"type": "string"},
            "type": "string",
        },
        "not an email",
        True,
    ),
]


@pytest.mark.parametrize(("schema", "instance", "valid"), CASES)
def test_schema_errors_table(schema, instance, valid):
    errors = schema_errors(instance, schema)
    assert (errors == []) is valid, errors
    assert all(isinstance(e, str) and e.startswith("$") for e in errors)


@pytest.mark.parametrize(
    ("schema", "instance", "message"),
    [
        (
            {"properties": {"citations": {"items": {"type": "string"}}}},
            {"citations": ["a", "b", 7]},
            "$.citations[2]: 7 is not of type 'string'",
        ),
        ({"type": "object", "required": ["name"]}, {}, "$: 'name' is a required property"),
        ({"additionalProperties": False}, {"colour": 1}, "$: additional property 'colour' is not allowed"),
        (
            {"properties": {"a b": {"type": "integer"}}},
            {"a b": "x"},
            '$["a b"]: "x" is not of type \'integer\'',
        ),
        ({"type": ["string", "null"]}, 1, "$: 1 is not of type 'string', 'null'"),
        (
            {"items": {"properties": {"n": {"minimum": 1}}}},
            [{"n": 1}, {"n": 0}],
            "$[1].n: 0 is less than the minimum of 1",
        ),
        ({"enum": ["a", "b"]}, "c", '$: "c" is not one of ["a", "b"]'),
        ({"const": 1}, 2, "$: 2 is not equal to the constant 1"),
        ({"maxLength": 1}, "ab", '$: "ab" is longer than 1 characters'),
        ({"pattern": "^a"}, "b", "$: \"b\" does not match '^a'"),
        ({"multipleOf": 2}, 3, "$: 3 is not a multiple of 2"),
        ({"minItems": 2}, [1], "$: has 1 items, fewer than the minimum of 2"),
        ({"uniqueItems": True}, [1, 2, 1], "$: items 0 and 2 are equal (1); items must be unique"),
        ({"not": {"type": "integer"}}, 1, "$: 1 must not be valid under the 'not' schema"),
        (False, 1, "$: no value is allowed here (found 1)"),
        (
            {"oneOf": [{"type": "integer"}, {"minimum": 0}]},
            1,
            "$: 1 is valid under more than one oneOf schema (indexes [0, 1])",
        ),
        (
            {"anyOf": [{"type": "string"}, {"minimum": 10}]},
            5,
            (
                "$: 5 is not valid under any of the anyOf schemas "
                "(#0: 5 is not of type 'string'; #1: 5 is less than the minimum of 10)"
            ),
        ),
        ({"$ref": "#/$defs/missing"}, 1, "$: cannot resolve $ref '#/$defs/missing'"),
    ],
)
def test_error_messages_name_the_path(schema, instance, message):
    assert schema_errors(instance, schema) == [message]


def test_all_errors_are_reported_in_document_order():
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "array", "items": {"type": "integer"}}},
        "required": ["c"],
    }
    assert schema_errors({"a": 1, "b": [1, "x", 2.5]}, schema) == [
        "$: 'c' is a required property",
        "$.a: 1 is not of type 'string'",
        "$.b[1]: \"x\" is not of type 'integer'",
        "$.b[2]: 2.5 is not of type 'integer'",
    ]


def test_long_values_are_shortened_in_messages():
    (message,) = schema_errors("x" * 500, {"type": "integer"})
    assert len(message) < 120
    assert message.endswith("... is not of type 'integer'")


def test_circular_ref_is_reported_not_recursed_forever():
    assert schema_errors(1, {"$ref": "#"}) == ["$: circular $ref '#'"]


def test_invalid_pattern_does_not_crash_validation():
    assert schema_errors("a", {"pattern": "("}) == ["$: invalid pattern '(' in schema"]


@pytest.mark.parametrize(
    "schema",
    [
        True,
        False,
        {},
        {"type": ["string", "null"], "required": [], "pattern": "^a+$"},
        {**DEFS, "$ref": "#/$defs/node"},
        {"definitions": {"x": {}}, "properties": {"y": {"$ref": "#/definitions/x"}}},
        {"items": [{"type": "string"}], "additionalItems": {"type": "integer"}},
        {"anyOf": [{"type": "string"}], "not": {"const": 1}, "if": {}, "then": {}, "else": {}},
        {"minimum": 0, "exclusiveMaximum": 1.5, "multipleOf": 0.5, "minLength": 0, "uniqueItems": True},
        {"x-unknown-keyword": [1, 2, 3], "format": "date"},
    ],
)
def test_schema_check_accepts_valid_schemas(schema):
    assert schema_check(schema) == []


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ("string", '#: a schema must be an object or a boolean, not "string"'),
        (["type"], '#: a schema must be an object or a boolean, not ["type"]'),
        (
            {"type": "int"},
            "#/type: unknown type 'int' (known: null, boolean, integer, number, string, array, object)",
        ),
        ({"type": ["string", 3]}, "#/type: must be a type name or a non-empty list of type names"),
        ({"type": []}, "#/type: must be a type name or a non-empty list of type names"),
        ({"required": "name"}, "#/required: must be a list of property names (strings)"),
        ({"required": ["a", 1]}, "#/required: must be a list of property names (strings)"),
        ({"pattern": "(unclosed"}, "#/pattern: '(unclosed' is not a valid regular expression"),
        ({"patternProperties": {"[": {}}}, "#/patternProperties: '[' is not a valid regular expression"),
        (
            {"$ref": "#/$defs/nope"},
            "#/$ref: '#/$defs/nope' does not resolve (only local '#/...' references are supported)",
        ),
        (
            {"$ref": "https://example.com/schema.json"},
            (
                "#/$ref: 'https://example.com/schema.json' does not resolve "
                "(only local '#/...' references are supported)"
            ),
        ),
        (
            {"properties": {"age": {"type": "int"}}},
            "#/properties/age/type: unknown type 'int' (known: " + KNOWN + ")",
        ),
        ({"items": {"minItems": -1}}, "#/items/minItems: must be a non-negative integer, not -1"),
        ({"anyOf": []}, "#/anyOf: must be a non-empty list of schemas"),
        (
            {"allOf": [{"type": "str"}]},
            "#/allOf/0/type: unknown type 'str' (known: " + KNOWN + ")",
        ),
        ({"$defs": {"a/b": {"pattern": "("}}}, "#/$defs/a~1b/pattern: '(' is not a valid regular expression"),
        ({"properties": []}, "#/properties: must be an object mapping names to schemas"),
        ({"properties": {"a": 5}}, "#/properties/a: a schema must be an object or a boolean, not 5"),
        ({"enum": "a"}, "#/enum: must be a list"),
        ({"minimum": "0"}, '#/minimum: must be a number, not "0"'),
        ({"multipleOf": 0}, "#/multipleOf: must be a number greater than 0, not 0"),
        ({"maxLength": 1.5}, "#/maxLength: must be a non-negative integer, not 1.5"),
        ({"uniqueItems": "yes"}, "#/uniqueItems: must be a boolean"),
    ],
)
def test_schema_check_reports_malformed_schemas(schema, message):
    assert schema_check(schema) == [message]


def test_schema_check_reports_every_problem():
    problems = schema_check({"type": "int", "required": "x", "properties": {"a": {"pattern": "("}}})
    assert len(problems) == 3
