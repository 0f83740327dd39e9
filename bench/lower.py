"""Lower bound: the same three checks in plain in-process Python over the same cases (no sandbox, no database).

    python bench/lower.py CASES.jsonl     (Vigilo's dataset format, as bench/run.py writes it)

Prints one JSON line: cases, invocations, seconds (read + check, excluding interpreter start), pass/fail counts.
The JSON Schema validator is built once per distinct schema, as any sensible in-process checker would.
"""

from __future__ import annotations

import json
import re
import sys
import time

import jsonschema


def main() -> None:
    path = sys.argv[1]
    t0 = time.perf_counter()
    validators: dict[str, jsonschema.protocols.Validator] = {}
    regexes: dict[str, re.Pattern[str]] = {}
    passed = failed = invocations = 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            case = json.loads(line)
            text = case["output"]["text"]
            exp = case["expected"]
            key = json.dumps(exp["json_schema"], sort_keys=True)
            validator = validators.get(key)
            if validator is None:
                cls = jsonschema.validators.validator_for(exp["json_schema"])
                validator = validators[key] = cls(exp["json_schema"])
            try:
                schema_ok = validator.is_valid(json.loads(text))
            except ValueError:
                schema_ok = False
            pattern = regexes.get(exp["regex"]) or regexes.setdefault(exp["regex"], re.compile(exp["regex"]))
            regex_ok = pattern.search(text) is not None
            contains_ok = exp["contains"] in text
            invocations += 3
            if schema_ok and regex_ok and contains_ok:
                passed += 1
            else:
                failed += 1
    dt = time.perf_counter() - t0
    print(
        json.dumps(
            {"cases": passed + failed, "invocations": invocations, "seconds": dt, "passed": passed, "failed": failed}
        )
    )


if __name__ == "__main__":
    main()
