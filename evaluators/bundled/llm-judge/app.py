"""vigilo/llm-judge: an LLM judges the output against a rubric from the bundled prompt library (prompts.py) or a
custom prompt, through the host-brokered `model` capability, with structured (JSON Schema) output.

The judge's reasoning becomes the explanation. A failed model call (refused by the provider, timed out, rate
limited past the retries) is an evaluator error `model_call_failed`: nothing was measured. Judge output that is not
the requested JSON is an abstention `judge_output_invalid`: the judge answered, but not usably.
"""

from __future__ import annotations

import json

from prompts import RUBRICS, SECTION_TITLES, SYSTEM
from vigilo_common import EXPECTED_PATH_SCHEMA, FIELD_SCHEMA, as_text, canonical, clip, resolve_actual, resolve_expected
from vigilo_sdk import (
    Evaluator,
    EvaluatorError,
    ModelError,
    abstain,
    binary,
    complete,
    finding,
    numeric,
    ordinal,
)
from vigilo_sdk.schema import schema_errors

SECTION_CHARS = 12_000
REASONING_CHARS = 4_000
PLACEHOLDERS = ("input", "output", "reference", "context", "trajectory")

evaluator = Evaluator(
    name="vigilo/llm-judge",
    version="1.0.0",
    description=(
        "An LLM judges the output against a rubric (correctness, groundedness, hallucination, tool use, ...) or a "
        "custom prompt, with structured output: a verdict (binary), a score in [0, 1] or a choice (ordinal)."
    ),
    config_schema={
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "rubric": {"enum": sorted(RUBRICS), "description": "A rubric from the bundled prompt library."},
            "prompt": {
                "type": "string",
                "minLength": 1,
                "description": "A custom judging prompt; {input} {output} {reference} {context} {trajectory} are "
                "replaced by the case material.",
            },
            "model": {"type": "string", "minLength": 1, "default": "judge-default"},
            "scoring": {"enum": ["binary", "continuous", "choice"], "default": "binary"},
            "choices": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "minItems": 2,
                "uniqueItems": True,
            },
            "temperature": {"type": "number", "minimum": 0, "maximum": 2, "default": 0},
            "max_tokens": {"type": "integer", "minimum": 16, "maximum": 16384, "default": 1024},
            "field": FIELD_SCHEMA,
            "value": {"description": "The reference answer (else from the case's expected value, when there is one)."},
            "expected_path": EXPECTED_PATH_SCHEMA,
        },
        "additionalProperties": False,
    },
)


def response_schema(config: dict) -> dict:
    scoring = config.get("scoring", "binary")
    if scoring == "binary":
        answer = {"verdict": {"type": "boolean", "description": "true when the output meets the criteria"}}
    elif scoring == "continuous":
        answer = {"score": {"type": "number", "description": "from 0 (not at all) to 1 (fully meets the criteria)"}}
    else:
        answer = {"choice": {"type": "string", "enum": list(config["choices"])}}
    return {
        "type": "object",
        "properties": {"reasoning": {"type": "string"}, **answer},
        "required": ["reasoning", *answer],
        "additionalProperties": False,
    }


def instructions(config: dict) -> str:
    scoring = config.get("scoring", "binary")
    if scoring == "binary":
        how = 'set "verdict" to true when the output meets the criteria, false otherwise.'
    elif scoring == "continuous":
        how = 'set "score" to a number from 0 (does not meet the criteria at all) to 1 (fully meets them).'
    else:
        how = 'set "choice" to exactly one of: ' + ", ".join(json.dumps(c) for c in config["choices"]) + "."
    return f'Answer with a JSON object: "reasoning" (your step-by-step assessment, a few sentences), then {how}'


def show_trajectory(actual: dict) -> str | None:
    calls = actual.get("tool_calls") or []
    if not calls:
        return None
    lines = []
    for index, call in enumerate(calls, start=1):
        line = f"{index}. {call['name']}({canonical(call.get('arguments'))})"
        if call.get("result") is not None:
            line += f" -> {clip(as_text(call['result']), 500)}"
        lines.append(line)
    return "\n".join(lines)


def show_context(context) -> str | None:
    if context is None or context in ("", [], {}):
        return None
    if isinstance(context, list):
        return "\n\n".join(f"[{i}] {as_text(doc)}" for i, doc in enumerate(context, start=1))
    if isinstance(context, dict) and isinstance(context.get("documents"), list):
        return show_context(context["documents"])
    return as_text(context)


def material(case: dict, actual: dict, config: dict, needs_reference: bool) -> tuple[dict, object]:
    """The case material as text per placeholder (None when absent), and a failure finding for missing output."""
    output, problem = resolve_actual(actual, config)
    reference = None
    try:
        reference = as_text(resolve_expected(case, config)[0])
    except EvaluatorError as exc:
        if needs_reference or exc.code != "missing_expected":
            raise
    found = {
        "input": None if case.get("input") is None else as_text(case["input"]),
        "output": output,
        "reference": reference,
        "context": show_context(case.get("context")),
        "trajectory": show_trajectory(actual),
    }
    return {k: None if v is None else clip(v, SECTION_CHARS) for k, v in found.items()}, problem


def messages_for(config: dict, found: dict) -> list[dict]:
    if "prompt" in config:
        text = config["prompt"]
        for name in PLACEHOLDERS:
            text = text.replace("{" + name + "}", found[name] if found[name] is not None else "(none)")
        return [
            {"role": "system", "content": f"{SYSTEM}\n\n{instructions(config)}"},
            {"role": "user", "content": text},
        ]
    rubric = RUBRICS[config["rubric"]]
    system = f"{SYSTEM}\n\nCRITERIA: {rubric['criteria']}\n\n{instructions(config)}"
    sections = []
    for name in rubric["uses"]:
        if found[name] is not None:
            sections.append(f"### {SECTION_TITLES[name]}\n{found[name]}")
        elif name == "output":
            sections.append(f"### {SECTION_TITLES[name]}\n(no output)")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(sections)}]


def parse(content: str, schema: dict) -> tuple[dict | None, str | None]:
    text = content.strip()
    if text.startswith("```"):  # some providers fence JSON even when asked for a schema
        text = text.strip("`").strip()
        if text.startswith("json"):
            text = text[4:]
    try:
        data = json.loads(text)
    except ValueError as exc:
        return None, f"the judge's answer is not JSON: {exc}"
    problems = schema_errors(data, schema)
    if problems:
        return None, "the judge's answer does not match the schema: " + "; ".join(problems[:5])
    score = data.get("score")
    if score is not None and not 0 <= score <= 1:
        return None, f"the judge's score {score} is outside [0, 1]"
    return data, None


@evaluator.evaluate
def evaluate(case: dict, actual: dict, config: dict):
    if ("rubric" in config) == ("prompt" in config):
        raise EvaluatorError("invalid_config", "give exactly one of 'rubric' and 'prompt'")
    scoring = config.get("scoring", "binary")
    if (scoring == "choice") != ("choices" in config):
        raise EvaluatorError("invalid_config", "'choices' goes with scoring 'choice', and only with it")
    rubric = RUBRICS.get(config.get("rubric", ""), {"uses": list(PLACEHOLDERS), "requires": []})
    label = config.get("rubric", "custom")
    found, problem = material(case, actual, config, "reference" in rubric["requires"])
    for need in rubric["requires"]:
        if found[need] is None:
            return abstain(f"missing_{need}", f"the {label} rubric needs the case's {need}, and there is none")
    if problem is not None and "trajectory" not in rubric["requires"]:
        if scoring == "choice":
            return abstain("missing_output", problem.message, [problem])
        failed = numeric(0.0, [problem], problem.message) if scoring == "continuous" else None
        return failed or binary(False, [problem], problem.message)

    schema = response_schema(config)
    try:
        done = complete(
            config.get("model", "judge-default"),
            messages_for(config, found),
            response_schema=schema,
            temperature=float(config.get("temperature", 0)),
            max_tokens=int(config.get("max_tokens", 1024)),
        )
    except ModelError as exc:
        raise EvaluatorError("model_call_failed", str(exc)) from None
    data, invalid = parse(done["content"], schema)
    if invalid is not None:
        evidence = {"content": clip(done["content"], 500), "model": done["model"]}
        return abstain("judge_output_invalid", invalid, [finding("low", "judge_output_invalid", invalid, evidence)])

    reasoning = clip(data["reasoning"], REASONING_CHARS)
    evidence = {"rubric": label, "model": done["model"], "cached": done["cached"]}
    if scoring == "binary":
        findings = [] if data["verdict"] else [finding("medium", label, clip(reasoning, 500), evidence)]
        return binary(data["verdict"], findings, reasoning)
    if scoring == "continuous":
        score = float(data["score"])
        findings = (
            [] if score >= 0.5 else [finding("medium", label, clip(reasoning, 500), {**evidence, "score": score})]
        )
        return numeric(score, findings, reasoning)
    return ordinal(data["choice"], [], reasoning)


WitWorld = evaluator.world()
