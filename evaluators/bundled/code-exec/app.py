"""vigilo/code-exec: runs the candidate Python code from the output against test cases, inside this evaluator's own
interpreter (the sandbox has no host process, network or files to reach), and measures the fraction that pass.

Tests (the case's expected value, or config `value`): a list of
- function calls: {"call": "add", "args": [1, 2], "kwargs": {}, "returns": 3} (or "raises": "ValueError");
- stdin/stdout pairs: {"stdin": "2 3\\n", "stdout": "5\\n"} (the whole program runs with that input).
Each test runs the code in a fresh namespace. Runaway code is cut by a step budget (`max_steps` traced lines per
test, through sys.settrace) and memory bombs end as MemoryError, caught here: both are failed tests with findings.
"""

from __future__ import annotations

import gc
import io
import json
import re
import sys

from vigilo_common import EXPECTED_PATH_SCHEMA, FIELD_SCHEMA, bad_expected, clip, resolve_actual, resolve_expected
from vigilo_sdk import Evaluator, binary, finding, numeric

FILENAME = "<candidate>"
FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)
RESERVE_BYTES = 4 << 20
MAX_FINDINGS = 20

evaluator = Evaluator(
    name="vigilo/code-exec",
    version="1.0.0",
    description=(
        "Extracts Python code from the output and runs it against test cases (function calls or stdin/stdout) "
        "inside the sandbox; measures the fraction of tests passed."
    ),
    config_schema={
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "field": FIELD_SCHEMA,
            "value": {"type": "array", "description": "The test cases (else from the case's expected value)."},
            "expected_path": EXPECTED_PATH_SCHEMA,
            "extract": {
                "enum": ["markdown", "raw"],
                "default": "markdown",
                "description": "markdown: code from ``` fences (the whole text when there is none); raw: all of it.",
            },
            "blocks": {"enum": ["first", "all"], "default": "first", "description": "Which fenced blocks to use."},
            "max_steps": {"type": "integer", "minimum": 1000, "maximum": 50_000_000, "default": 200_000},
            "score": {"enum": ["fraction", "binary"], "default": "fraction"},
        },
        "additionalProperties": False,
    },
)


class MissingFunction(Exception):
    pass


class StepLimit(BaseException):
    """Raised inside candidate code past the step budget (a BaseException: `except Exception` cannot eat it)."""


def extract(text: str, config: dict) -> str:
    if config.get("extract", "markdown") == "raw":
        return text
    blocks = [(lang.lower(), body) for lang, body in FENCE.findall(text)]
    if not blocks:
        return text
    python = [body for lang, body in blocks if lang in ("python", "py", "python3")] or [body for _, body in blocks]
    return python[0] if config.get("blocks", "first") == "first" else "\n\n".join(python)


def check_tests(tests, source: str) -> list[dict]:
    if not isinstance(tests, list) or not tests:
        raise bad_expected(source, "the tests must be a non-empty list")
    for index, test in enumerate(tests):
        if not isinstance(test, dict) or ("call" in test) == ("stdin" in test or "stdout" in test):
            raise bad_expected(source, f"test {index} must have either 'call' or 'stdin'/'stdout'")
        if "call" in test:
            if not isinstance(test["call"], str) or not ("returns" in test or "raises" in test):
                raise bad_expected(source, f"test {index} needs a function name in 'call' and 'returns' or 'raises'")
            if not isinstance(test.get("args", []), list) or not isinstance(test.get("kwargs", {}), dict):
                raise bad_expected(source, f"test {index}: 'args' must be a list and 'kwargs' an object")
        elif not isinstance(test.get("stdout"), str) or not isinstance(test.get("stdin", ""), str):
            raise bad_expected(source, f"test {index}: 'stdin' and 'stdout' must be strings")
    return tests


def plain(value):
    """A JSON-comparable form of a Python value (tuples become lists); None when it has none."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError, RecursionError):
        return None


def same(want, got) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return type(want) is type(got) and want == got
    if isinstance(want, int | float) and isinstance(got, int | float):
        return want == got or abs(want - got) <= 1e-9 * max(1.0, abs(want))
    if isinstance(want, list) and isinstance(got, list):
        return len(want) == len(got) and all(same(w, g) for w, g in zip(want, got, strict=True))
    if isinstance(want, dict) and isinstance(got, dict):
        return want.keys() == got.keys() and all(same(v, got[k]) for k, v in want.items())
    return want == got


class Runner:
    """Runs candidate code under a step budget with stdin/stdout redirected."""

    def __init__(self, code, max_steps: int) -> None:
        self.code = code
        self.max_steps = max_steps
        self.steps = 0

    def _local(self, frame, event, arg):
        if event == "line":
            self.steps += 1
            if self.steps > self.max_steps:
                raise StepLimit
        return self._local

    def _global(self, frame, event, arg):
        # Only candidate frames are traced: library code stays fast and its loops are the sandbox's to bound.
        return self._local if frame.f_code.co_filename == FILENAME else None

    def run(self, body, stdin: str = ""):
        """(value, stdout text): runs `body(namespace)` after executing the module in a fresh namespace."""
        self.steps = 0
        namespace = {"__name__": "__main__", "__builtins__": __builtins__}
        saved = sys.stdin, sys.stdout
        sys.stdin, sys.stdout = io.StringIO(stdin), io.StringIO()
        out = sys.stdout
        # The cyclic collector would rescan every container the candidate keeps alive, over and over as they pile
        # up: filling memory with small lists then costs more fuel than the sandbox allows. Off while it runs.
        gc.disable()
        sys.settrace(self._global)
        try:
            exec(self.code, namespace)
            value = body(namespace) if body is not None else None
        finally:
            sys.settrace(None)
            sys.stdin, sys.stdout = saved
            namespace.clear()
            gc.enable()
        return value, out.getvalue()


def failure_of(exc: BaseException, runner: Runner) -> tuple[str, str]:
    """(category, message) for an exception that escaped candidate code."""
    if isinstance(exc, StepLimit):
        return "step_limit", f"exceeded the step budget of {runner.max_steps} lines (an infinite loop?)"
    if isinstance(exc, MemoryError):
        return "memory_error", "ran out of memory (MemoryError)"
    if isinstance(exc, RecursionError):
        return "exception", "RecursionError: maximum recursion depth exceeded"
    if isinstance(exc, SystemExit):
        return "exception", f"called exit({exc.code!r})"
    return "exception", clip(f"{type(exc).__name__}: {exc}", 300)


def run_test(runner: Runner, index: int, test: dict):
    """None when the test passes, else a finding."""
    evidence = {"test": index}
    try:
        if "call" in test:
            name = test["call"]
            evidence["call"] = name

            def call(namespace):
                fn = namespace.get(name)
                if not callable(fn):
                    raise MissingFunction(f"the code defines no function {name!r}")
                return fn(*test.get("args", []), **test.get("kwargs", {}))

            try:
                value, _ = runner.run(call)
            except (StepLimit, MemoryError):
                raise
            except MissingFunction as exc:
                return finding("high", "missing_function", f"test {index}: {exc}", evidence)
            except BaseException as exc:
                if "raises" in test and type(exc).__name__ == test["raises"]:
                    return None
                raise
            if "raises" in test:
                message = f"test {index}: {name}(...) returned instead of raising {test['raises']}"
                return finding("medium", "wrong_answer", message, {**evidence, "actual": clip(repr(value), 200)})
            got = plain(value)
            if same(test["returns"], got):
                return None
            evidence.update(expected=test["returns"], actual=clip(repr(value), 200))
            message = f"test {index}: {name}(...) returned {clip(repr(value), 80)}, expected {test['returns']!r}"
            return finding("medium", "wrong_answer", message, evidence)
        _, stdout = runner.run(None, test.get("stdin", ""))
        if stdout.rstrip() == test["stdout"].rstrip() or [ln.rstrip() for ln in stdout.strip().splitlines()] == [
            ln.rstrip() for ln in test["stdout"].strip().splitlines()
        ]:
            return None
        evidence.update(stdin=clip(test.get("stdin", ""), 200), expected=clip(test["stdout"]), actual=clip(stdout))
        return finding("medium", "wrong_output", f"test {index}: the program printed something else", evidence)
    except BaseException as exc:  # boundary: whatever candidate code does is that test's failure
        category, message = failure_of(exc, runner)
        severity = "high" if category in ("step_limit", "memory_error") else "medium"
        return finding(severity, category, f"test {index}: {message}", evidence)


@evaluator.evaluate
def evaluate(case: dict, actual: dict, config: dict):
    tests_value, source = resolve_expected(case, config)
    tests = check_tests(tests_value, source)
    fraction = config.get("score", "fraction") == "fraction"
    text, problem = resolve_actual(actual, config)
    if problem is not None:
        return numeric(0.0, [problem], problem.message) if fraction else binary(False, [problem], problem.message)
    code_text = extract(text, config)
    try:
        code = compile(code_text, FILENAME, "exec")
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        message = f"the code does not compile: {type(exc).__name__}: {getattr(exc, 'msg', exc)}"
        evidence = {"line": line, "code": clip(code_text, 300)}
        found = [finding("high", "syntax_error", message + (f" (line {line})" if line else ""), evidence)]
        return numeric(0.0, found, message) if fraction else binary(False, found, message)

    runner = Runner(code, config.get("max_steps", 200_000))
    findings = []
    failed = 0
    reserve = bytearray(RESERVE_BYTES)  # freed when candidate code exhausts memory, so reporting still works
    for index, test in enumerate(tests):
        try:
            problem = run_test(runner, index, test)
        except MemoryError:  # raised outside candidate frames (e.g. while formatting a result)
            problem = finding("high", "memory_error", f"test {index}: ran out of memory (MemoryError)", {"test": index})
        if problem is not None:
            findings.append(problem)
            failed += 1
        if problem is not None and problem.category == "memory_error":
            # Filling the memory once costs up to ~1e9 fuel (half the default budget): the remaining tests would
            # most likely do it again and end the whole invocation as fuel_exhausted. They count as failed.
            rest = len(tests) - index - 1
            if rest:
                message = f"tests {index + 1}-{len(tests) - 1} not run: the code exhausted the memory in test {index}"
                findings.append(finding("high", "not_run", message, {"tests": list(range(index + 1, len(tests)))}))
            failed += rest
            break
    del reserve
    gc.collect()
    passed = len(tests) - failed
    explanation = f"{passed} of {len(tests)} tests passed"
    if findings:
        explanation += f"; first failure: {findings[0].message}"
    if len(findings) > MAX_FINDINGS:
        findings = findings[:MAX_FINDINGS]
    if fraction:
        return numeric(passed / len(tests), findings, explanation)
    return binary(not failed, findings, explanation)


WitWorld = evaluator.world()
