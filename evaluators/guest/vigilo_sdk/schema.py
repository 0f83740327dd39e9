"""A small pure-Python JSON Schema validator for guest code (no third-party packages in the sandbox).

Covers the draft 2020-12 / draft-07 keywords people really use (type, enum, const, the object, array, string and
number keywords, allOf/anyOf/oneOf/not, if/then/else, local ``$ref``); annotations and unknown keywords are
ignored. Patterns use Python's ``re.search``: close to, not identical with, ECMA-262. ``schema_errors(instance,
schema)`` returns messages naming the JSON path of each problem (``$.citations[2]: 7 is not of type 'string'``),
empty when valid; ``schema_check(schema)`` reports problems with the schema itself.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["TYPES", "schema_check", "schema_errors"]

TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MAX_SHOWN = 80
_patterns: dict[str, re.Pattern[str] | None] = {}


def _compile(pattern: str) -> re.Pattern[str] | None:
    if pattern not in _patterns:
        try:
            _patterns[pattern] = re.compile(pattern)
        except re.error:
            _patterns[pattern] = None
    return _patterns[pattern]


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _key(path: str, key: str) -> str:
    return f"{path}.{key}" if _IDENT.match(key) else f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_type(value: Any, name: str) -> bool:
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if name == "integer":  # 1.0 is an integer in JSON Schema
        return _is_number(value) and (isinstance(value, int) or (math.isfinite(value) and value.is_integer()))
    if name == "number":
        return _is_number(value)
    if name == "string":
        return isinstance(value, str)
    if name == "array":
        return isinstance(value, (list, tuple))
    if name == "object":
        return isinstance(value, dict)
    return False


def _canon(value: Any) -> Any:
    """A hashable form in which JSON-equal values are equal (1 == 1.0, but true != 1)."""
    if isinstance(value, bool):
        return ("b", value)
    if _is_number(value):
        return ("n", value)
    if isinstance(value, (list, tuple)):
        return ("a", tuple(_canon(v) for v in value))
    if isinstance(value, dict):
        return ("o", tuple(sorted(((str(k), _canon(v)) for k, v in value.items()), key=lambda kv: kv[0])))
    return ("v", value)


def _pointer(root: Any, ref: str) -> tuple[bool, Any]:
    """Resolve a local reference ("#" or "#/a/b"); (False, None) when it does not resolve."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        return False, None
    target = root
    if ref in ("#", "#/"):
        return True, root
    if not ref.startswith("#/"):
        return False, None
    for raw in ref[2:].split("/"):
        part = _unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(target, dict) and part in target:
            target = target[part]
        elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
            target = target[int(part)]
        else:
            return False, None
    return True, target


def _unquote(text: str) -> str:
    if "%" not in text:
        return text
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


class _Validator:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.active_refs: set[tuple[str, str]] = set()

    def valid(self, instance: Any, schema: Any, path: str) -> bool:
        return not self.errors(instance, schema, path)

    def errors(self, value: Any, schema: Any, path: str) -> list[str]:
        if schema is True or schema == {}:
            return []
        if schema is False:
            return [f"{path}: no value is allowed here (found {_show(value)})"]
        if not isinstance(schema, dict):
            return []
        out: list[str] = []
        add = out.append

        ref = schema.get("$ref")
        if isinstance(ref, str):
            ok, target = _pointer(self.root, ref)
            if not ok:
                add(f"{path}: cannot resolve $ref {ref!r}")
            elif (ref, path) in self.active_refs:
                add(f"{path}: circular $ref {ref!r}")
            else:
                self.active_refs.add((ref, path))
                try:
                    out.extend(self.errors(value, target, path))
                finally:
                    self.active_refs.discard((ref, path))

        types = schema.get("type")
        if isinstance(types, str):
            types = [types]
        if isinstance(types, list) and types and not any(_is_type(value, t) for t in types):
            names = ", ".join(repr(t) for t in types)
            add(f"{path}: {_show(value)} is not of type {names}")
            return out  # the remaining keywords would only repeat the type problem

        enum = schema.get("enum")
        if isinstance(enum, list) and _canon(value) not in {_canon(v) for v in enum}:
            add(f"{path}: {_show(value)} is not one of {_show(schema['enum'])}")
        if "const" in schema and _canon(value) != _canon(schema["const"]):
            add(f"{path}: {_show(value)} is not equal to the constant {_show(schema['const'])}")

        if isinstance(value, dict):
            out.extend(self._object(value, schema, path))
        elif isinstance(value, (list, tuple)):
            out.extend(self._array(value, schema, path))
        elif isinstance(value, str):
            length = len(value)
            if isinstance(schema.get("minLength"), int) and length < schema["minLength"]:
                add(f"{path}: {_show(value)} is shorter than {schema['minLength']} characters")
            if isinstance(schema.get("maxLength"), int) and length > schema["maxLength"]:
                add(f"{path}: {_show(value)} is longer than {schema['maxLength']} characters")
            pattern = schema.get("pattern")
            if isinstance(pattern, str):
                compiled = _compile(pattern)
                if compiled is None:
                    add(f"{path}: invalid pattern {pattern!r} in schema")
                elif not compiled.search(value):
                    add(f"{path}: {_show(value)} does not match {pattern!r}")
        elif _is_number(value):
            out.extend(self._number(value, schema, path))

        for sub in _list(schema.get("allOf")):
            out.extend(self.errors(value, sub, path))
        any_of = _list(schema.get("anyOf"))
        if any_of:
            branches = [self.errors(value, sub, path) for sub in any_of]
            if all(branches):
                add(f"{path}: {_show(value)} is not valid under any of the anyOf schemas{_why(branches)}")
        one_of = _list(schema.get("oneOf"))
        if one_of:
            branches = [self.errors(value, sub, path) for sub in one_of]
            passing = [i for i, errs in enumerate(branches) if not errs]
            if not passing:
                add(f"{path}: {_show(value)} is not valid under any of the oneOf schemas{_why(branches)}")
            elif len(passing) > 1:
                add(f"{path}: {_show(value)} is valid under more than one oneOf schema (indexes {passing})")
        if "not" in schema and self.valid(value, schema["not"], path):
            add(f"{path}: {_show(value)} must not be valid under the 'not' schema")
        if "if" in schema:
            if self.valid(value, schema["if"], path):
                if "then" in schema:
                    out.extend(self.errors(value, schema["then"], path))
            elif "else" in schema:
                out.extend(self.errors(value, schema["else"], path))
        return out

    def _number(self, value: Any, schema: dict, path: str) -> list[str]:
        out: list[str] = []
        minimum, maximum = schema.get("minimum"), schema.get("maximum")
        xmin, xmax = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        if xmin is True and _is_number(minimum):  # draft-04 boolean form
            xmin, minimum = minimum, None
        if xmax is True and _is_number(maximum):
            xmax, maximum = maximum, None
        if _is_number(minimum) and value < minimum:
            out.append(f"{path}: {_show(value)} is less than the minimum of {_show(minimum)}")
        if _is_number(maximum) and value > maximum:
            out.append(f"{path}: {_show(value)} is greater than the maximum of {_show(maximum)}")
        if _is_number(xmin) and value <= xmin:
            out.append(f"{path}: {_show(value)} is less than or equal to the exclusive minimum of {_show(xmin)}")
        if _is_number(xmax) and value >= xmax:
            out.append(f"{path}: {_show(value)} is greater than or equal to the exclusive maximum of {_show(xmax)}")
        step = schema.get("multipleOf")
        if _is_number(step) and step > 0 and not _multiple(value, step):
            out.append(f"{path}: {_show(value)} is not a multiple of {_show(step)}")
        return out

    def _object(self, value: dict, schema: dict, path: str) -> list[str]:
        out: list[str] = []
        required = schema.get("required")
        if isinstance(required, list):
            for name in required:
                if isinstance(name, str) and name not in value:
                    out.append(f"{path}: {name!r} is a required property")
        dependent = schema.get("dependentRequired")
        if isinstance(dependent, dict):
            for name, needs in dependent.items():
                if name in value and isinstance(needs, list):
                    for need in needs:
                        if isinstance(need, str) and need not in value:
                            out.append(f"{path}: {need!r} is required when {name!r} is present")
        count = len(value)
        if isinstance(schema.get("minProperties"), int) and count < schema["minProperties"]:
            out.append(f"{path}: has {count} properties, fewer than the minimum of {schema['minProperties']}")
        if isinstance(schema.get("maxProperties"), int) and count > schema["maxProperties"]:
            out.append(f"{path}: has {count} properties, more than the maximum of {schema['maxProperties']}")
        properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        patterns = schema.get("patternProperties") if isinstance(schema.get("patternProperties"), dict) else {}
        additional = schema.get("additionalProperties", True)
        names = schema.get("propertyNames")
        for raw_key, item in value.items():
            key = str(raw_key)
            where = _key(path, key)
            if names is not None:
                for problem in self.errors(key, names, path):
                    out.append(f"{path}: property name {key!r} is invalid ({problem.split(': ', 1)[-1]})")
            matched = False
            if key in properties:
                matched = True
                out.extend(self.errors(item, properties[key], where))
            for pattern, sub in patterns.items():
                compiled = _compile(pattern)
                if compiled is not None and compiled.search(key):
                    matched = True
                    out.extend(self.errors(item, sub, where))
            if not matched:
                if additional is False:
                    out.append(f"{path}: additional property {key!r} is not allowed")
                elif additional is not True:
                    out.extend(self.errors(item, additional, where))
        return out

    def _array(self, value: list | tuple, schema: dict, path: str) -> list[str]:
        out: list[str] = []
        count = len(value)
        if isinstance(schema.get("minItems"), int) and count < schema["minItems"]:
            out.append(f"{path}: has {count} items, fewer than the minimum of {schema['minItems']}")
        if isinstance(schema.get("maxItems"), int) and count > schema["maxItems"]:
            out.append(f"{path}: has {count} items, more than the maximum of {schema['maxItems']}")
        if schema.get("uniqueItems") is True:
            seen: dict[Any, int] = {}
            for index, item in enumerate(value):
                canon = _canon(item)
                if canon in seen:
                    first = seen[canon]
                    out.append(f"{path}: items {first} and {index} are equal ({_show(item)}); items must be unique")
                    break
                seen[canon] = index
        items = schema.get("items")
        prefix = schema.get("prefixItems")
        rest: Any = items
        if isinstance(items, list):  # draft-07 tuple form
            prefix, rest = items, schema.get("additionalItems")
        prefix = prefix if isinstance(prefix, list) else []
        for index, item in enumerate(value):
            where = f"{path}[{index}]"
            if index < len(prefix):
                out.extend(self.errors(item, prefix[index], where))
            elif rest is False:
                out.append(f"{path}: has {count} items, but only {len(prefix)} are allowed")
                break
            elif rest is not None and rest is not True:
                out.extend(self.errors(item, rest, where))
        if "contains" in schema:
            hits = sum(1 for item in value if self.valid(item, schema["contains"], path))
            least = schema.get("minContains", 1)
            most = schema.get("maxContains")
            if isinstance(least, int) and hits < least:
                if least == 1:
                    out.append(f"{path}: no item matches the 'contains' schema")
                else:
                    out.append(f"{path}: {hits} items match the 'contains' schema, fewer than {least}")
            if isinstance(most, int) and hits > most:
                out.append(f"{path}: {hits} items match the 'contains' schema, more than {most}")
        return out


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _why(branches: list[list[str]]) -> str:
    firsts = [f"#{i}: {errs[0].split(': ', 1)[-1]}" for i, errs in enumerate(branches[:3]) if errs]
    more = "; ..." if len(branches) > 3 else ""
    return f" ({'; '.join(firsts)}{more})" if firsts else ""


def _multiple(value: float, step: float) -> bool:
    if isinstance(value, int) and isinstance(step, int):
        return value % step == 0
    quotient = value / step
    if not math.isfinite(quotient):
        return False
    return abs(quotient - round(quotient)) <= 1e-9 * max(1.0, abs(quotient))


def schema_errors(instance: Any, schema: Any) -> list[str]:
    """Validate ``instance`` against ``schema``; readable messages with JSON paths, empty when valid."""
    return _Validator(schema).errors(instance, schema, "$")


# --- checking the schema itself ---------------------------------------------------------------------

_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_ONE = (
    "additionalProperties",
    "additionalItems",
    "propertyNames",
    "contains",
    "not",
    "if",
    "then",
    "else",
)
_COUNTS = (
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minContains",
    "maxContains",
)
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def schema_check(schema: Any) -> list[str]:
    """Problems with the schema itself (empty when usable); each names the schema location ("#/...")."""
    out: list[str] = []
    _check(schema, schema, "#", out)
    return out


def _check(root: Any, schema: Any, where: str, out: list[str]) -> None:
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        out.append(f"{where}: a schema must be an object or a boolean, not {_show(schema)}")
        return
    at = where.rstrip("/")

    def sub(key: str) -> str:
        return f"{at}/{key.replace('~', '~0').replace('/', '~1')}"

    if "type" in schema:
        types = schema["type"]
        names = [types] if isinstance(types, str) else types
        if not isinstance(names, list) or not names or not all(isinstance(t, str) for t in names):
            out.append(f"{sub('type')}: must be a type name or a non-empty list of type names")
        else:
            for name in names:
                if name not in TYPES:
                    out.append(f"{sub('type')}: unknown type {name!r} (known: {', '.join(TYPES)})")
    if "required" in schema:
        required = schema["required"]
        if not isinstance(required, list) or not all(isinstance(n, str) for n in required):
            out.append(f"{sub('required')}: must be a list of property names (strings)")
    if "enum" in schema and not isinstance(schema["enum"], list):
        out.append(f"{sub('enum')}: must be a list")
    if "pattern" in schema:
        pattern = schema["pattern"]
        if not isinstance(pattern, str):
            out.append(f"{sub('pattern')}: must be a string")
        elif _compile(pattern) is None:
            out.append(f"{sub('pattern')}: {pattern!r} is not a valid regular expression")
    for key in _COUNTS:
        if key in schema:
            count = schema[key]
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                out.append(f"{sub(key)}: must be a non-negative integer, not {_show(count)}")
    for key in _BOUNDS:
        if key in schema and not _is_number(schema[key]) and not isinstance(schema[key], bool):
            out.append(f"{sub(key)}: must be a number, not {_show(schema[key])}")
    if "multipleOf" in schema:
        step = schema["multipleOf"]
        if not _is_number(step) or step <= 0:
            out.append(f"{sub('multipleOf')}: must be a number greater than 0, not {_show(step)}")
    if "uniqueItems" in schema and not isinstance(schema["uniqueItems"], bool):
        out.append(f"{sub('uniqueItems')}: must be a boolean")
    if "$ref" in schema:
        ref = schema["$ref"]
        if not isinstance(ref, str):
            out.append(f"{sub('$ref')}: must be a string")
        elif not _pointer(root, ref)[0]:
            out.append(f"{sub('$ref')}: {ref!r} does not resolve (only local '#/...' references are supported)")

    for key in _SCHEMA_MAPS:
        if key in schema:
            mapping = schema[key]
            if not isinstance(mapping, dict):
                out.append(f"{sub(key)}: must be an object mapping names to schemas")
                continue
            for name, child in mapping.items():
                if key == "patternProperties" and _compile(str(name)) is None:
                    out.append(f"{sub(key)}: {name!r} is not a valid regular expression")
                _check(root, child, f"{sub(key)}/{str(name).replace('~', '~0').replace('/', '~1')}", out)
    for key in _SCHEMA_LISTS:
        if key in schema:
            children = schema[key]
            if not isinstance(children, list) or (key != "prefixItems" and not children):
                out.append(f"{sub(key)}: must be a non-empty list of schemas")
                continue
            for index, child in enumerate(children):
                _check(root, child, f"{sub(key)}/{index}", out)
    for key in _SCHEMA_ONE:
        if key in schema:
            _check(root, schema[key], sub(key), out)
    if "items" in schema:
        items = schema["items"]
        if isinstance(items, list):
            for index, child in enumerate(items):
                _check(root, child, f"{sub('items')}/{index}", out)
        else:
            _check(root, items, sub("items"), out)
