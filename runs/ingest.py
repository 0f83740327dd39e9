"""Parsing datasets (JSONL), agent outputs and profile YAML, with errors that name the line and field.

Parsing only: runs/services.py writes what was parsed (dataset_import, profile_import) and runs/pins.py checks
a profile against the registry.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import yaml
from django.conf import settings

from runs.errors import MAX_ERRORS, ValidationFailed

CASE_KEYS = {"id", "input", "expected", "context", "output", "tags", "metadata"}
OUTPUT_KEYS = {"text", "structured", "tool_calls", "trace", "metadata"}
TOOL_CALL_KEYS = {"name", "arguments", "result"}
PROFILE_MAX_VALUES = 100_000  # a profile is a few hundred; aliases of aliases must not expand into millions
_SURROGATE = re.compile("[\ud800-\udfff]")


# -- datasets ----------------------------------------------------------------------------------------------


def _check_case(obj: Any, where: str, *, first_line: int | None) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """The case in `obj` and every problem of it; `first_line` is where its id was seen before, if it was."""
    errors: list[tuple[str, str]] = []
    if not isinstance(obj, dict):
        return None, [(where, f"a case must be a JSON object, not {type(obj).__name__}")]
    for key in sorted(set(obj) - CASE_KEYS):
        errors.append((f"{where} field {key!r}", "unknown field"))
    cid = obj.get("id")
    if not isinstance(cid, str) or not cid.strip() or len(cid) > 200:
        errors.append((f"{where} field 'id'", "required: a non-empty string of at most 200 characters"))
    elif first_line is not None:
        errors.append((f"{where} field 'id'", f"duplicate case id {cid!r} (first on line {first_line})"))
    if "input" not in obj:
        errors.append((f"{where} field 'input'", "required (any JSON value)"))
    tags = obj.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        errors.append((f"{where} field 'tags'", "must be a list of strings"))
    if not isinstance(obj.get("metadata", {}), dict):
        errors.append((f"{where} field 'metadata'", "must be an object"))
    output = obj.get("output")
    if output is not None:
        if not isinstance(output, dict):
            errors.append((f"{where} field 'output'", "must be an object or null"))
        else:
            errors += output_problems(output, f"{where} field 'output")
    if errors:
        return None, errors
    case = {
        "id": cid,
        "input": obj.get("input"),
        "expected": obj.get("expected"),
        "context": obj.get("context"),
        "output": None if output is None else output_normalized(output),
        "tags": list(tags),
        "metadata": obj.get("metadata", {}),
    }
    return case, []


def output_problems(output: dict[str, Any], where: str) -> list[tuple[str, str]]:
    """What is wrong with an agent output (a case's, or an agent endpoint's answer).

    `where` names the object and ends inside a quote (`line 3 field 'output`); each problem appends its field.
    """
    errors = [(f"{where}.{key}'", "unknown field") for key in sorted(set(output) - OUTPUT_KEYS)]
    if output.get("text") is not None and not isinstance(output["text"], str):
        errors.append((f"{where}.text'", "must be a string or null"))
    calls = output.get("tool_calls", [])
    if not isinstance(calls, list):
        errors.append((f"{where}.tool_calls'", "must be a list"))
    else:
        for i, call in enumerate(calls):
            at = f"{where}.tool_calls[{i}]"
            if not isinstance(call, dict):
                errors.append((f"{at}'", "must be an object with a non-empty string 'name'"))
                continue
            if not isinstance(call.get("name"), str) or not call["name"]:
                errors.append((f"{at}.name'", "required: a non-empty string"))
            for key in sorted(set(call) - TOOL_CALL_KEYS):
                errors.append((f"{at}.{key}'", "unknown field (a tool call has name, arguments and result)"))
    trace = output.get("trace", [])
    if not isinstance(trace, list):
        errors.append((f"{where}.trace'", "must be a list"))
    else:
        for i, ev in enumerate(trace):
            at = f"{where}.trace[{i}]"
            if not isinstance(ev, dict):
                errors.append((f"{at}'", "must be an object with a string 'kind'"))
                continue
            if not isinstance(ev.get("kind"), str):
                errors.append((f"{at}.kind'", "required: a string"))
            if ev.get("name") is not None and not isinstance(ev["name"], str):
                errors.append((f"{at}.name'", "must be a string or null"))
    if not isinstance(output.get("metadata", {}), dict):
        errors.append((f"{where}.metadata'", "must be an object"))
    return errors


def output_normalized(output: dict[str, Any]) -> dict[str, Any]:
    """A checked output with every field present, as evaluators receive it."""
    return {
        "text": output.get("text"),
        "structured": output.get("structured"),
        "tool_calls": [
            {"name": c["name"], "arguments": c.get("arguments"), "result": c.get("result")}
            for c in output.get("tool_calls", [])
        ],
        "trace": [
            {"kind": e["kind"], "name": e.get("name"), "payload": e.get("payload")} for e in output.get("trace", [])
        ],
        "metadata": output.get("metadata", {}),
    }


def dataset_parse(*, text: str) -> list[dict[str, Any]]:
    """Parse and validate JSONL; raises ValidationFailed naming each bad line and every problem of it.

    Lines end at newlines only (an optional carriage return before one is dropped): the other characters
    `str.splitlines` breaks at (U+2028, form feed, ...) may stand raw inside a JSON string. A line longer than
    `VIGILO_MAX_CASE_BYTES` is refused without being parsed.
    """
    limit: int = settings.VIGILO_MAX_CASE_BYTES
    cases: list[dict[str, Any]] = []
    errors: list[tuple[str, str]] = []
    first_line: dict[str, int] = {}
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        if not line.strip():
            continue
        where = f"line {lineno}"
        size = case_size(line)
        if size > limit:
            errors.append((where, f"the case is {size:,} bytes; the limit is {limit:,} (VIGILO_MAX_CASE_BYTES)"))
            continue
        try:
            obj = json.loads(line, parse_constant=_not_json)
        except ValueError as exc:
            errors.append((where, f"not valid JSON: {exc}"))
            continue
        except RecursionError:
            errors.append((where, "not valid JSON: nested too deeply"))
            continue
        cid = obj.get("id") if isinstance(obj, dict) else None
        # An id is taken by the first line that has it, valid or not: fixing that line leaves this one a duplicate.
        seen = first_line.setdefault(cid, lineno) if isinstance(cid, str) else lineno
        case, problems = _check_case(obj, where, first_line=None if seen == lineno else seen)
        if "\\u" in line and isinstance(obj, dict):  # only an escape makes a NUL or a lone surrogate
            unstorable, _ = unstorable_values(obj)
            problems += [(f"{where} field '{path}'" if path else where, problem) for path, problem in unstorable]
        errors += problems
        if case is not None:
            cases.append(case)
    if not cases and not errors:
        errors.append(("file", "no cases: the dataset is empty"))
    if errors:
        raise ValidationFailed("dataset", errors)
    return cases


def case_size(text: str) -> int:
    """The UTF-8 length of `text` (a lone surrogate counts its 3 bytes instead of failing)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def unstorable_values(document: Any) -> tuple[list[tuple[str, str]], int]:
    """Where `document` holds what cannot be stored as JSON, each as (path, problem) in document order (at most
    MAX_ERRORS), and how many values it has once every shared node is expanded (json.dumps writes a YAML alias
    out in full).

    The problems: a string with a NUL (PostgreSQL refuses it) or a lone surrogate (not text in any encoding), a
    NaN or an infinity, and a YAML alias inside its own anchor (a cycle). Walked without recursion, each node
    once, so neither a cycle nor an alias of an alias of an alias makes the walk long."""
    problems: list[tuple[str, str]] = []
    expanded: dict[int, int] = {}  # a container's id -> its values, expanded, once it has been walked
    on_path: set[int] = set()
    stack: list[tuple[str, Any, bool]] = [("", document, False)]
    while stack and len(problems) < MAX_ERRORS:
        path, node, leaving = stack.pop()
        if isinstance(node, dict | list):
            children = list(node.values()) if isinstance(node, dict) else node
            if leaving:
                on_path.discard(id(node))
                expanded[id(node)] = 1 + sum(expanded.get(id(child), 1) for child in children)
                continue
            if id(node) in on_path:
                problems.append((path, "refers to itself (a YAML alias inside its own anchor)"))
                continue
            if id(node) in expanded:
                continue
            on_path.add(id(node))
            stack.append((path, node, True))
            if isinstance(node, dict):
                for key in node:
                    if isinstance(key, str) and (problem := _bad_text(key)):
                        problems.append((path, f"a key {problem}"))
                stack += [(f"{path}.{key}" if path else str(key), node[key], False) for key in reversed(list(node))]
            else:
                stack += [(f"{path}[{i}]", node[i], False) for i in reversed(range(len(node)))]
        elif isinstance(node, str) and (problem := _bad_text(node)):
            problems.append((path, problem))
        elif isinstance(node, float) and not math.isfinite(node):
            problems.append((path, f"{node} is not a JSON number (use null or a string)"))
    return problems, expanded.get(id(document), 1)


def _bad_text(text: str) -> str:
    if "\x00" in text:
        return "holds \\u0000 (NUL), which cannot be stored"
    found = None if text.isascii() else _SURROGATE.search(text)
    if found:
        return f"holds a lone surrogate (\\u{ord(found.group()):04x}), which is not text"
    return ""


def _not_json(constant: str) -> Any:
    # Python's json reads NaN and Infinity; JSON (and PostgreSQL's jsonb) has no such values.
    raise ValueError(f"{constant} is not a JSON value (use null or a string)")


# -- profiles ----------------------------------------------------------------------------------------------


def profile_load_yaml(*, text: str) -> Any:
    """The YAML document of a profile; a syntax error names its line and column, and a value JSON cannot hold
    (`.nan`, `.inf`, a "\\0" in a string) its path."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "file"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValidationFailed("profile", [(where, f"not valid YAML: {problem}")]) from None
    except RecursionError:
        raise ValidationFailed("profile", [("file", "not valid YAML: nested too deeply")]) from None
    unstorable, values = unstorable_values(document)
    problems = [(path or "file", problem) for path, problem in unstorable]
    if values > PROFILE_MAX_VALUES:
        limit = f"the limit is {PROFILE_MAX_VALUES:,}"
        problems.append(("file", f"the document expands to {values:,} values through its YAML aliases; {limit}"))
    if problems:
        raise ValidationFailed("profile", problems)
    return document
