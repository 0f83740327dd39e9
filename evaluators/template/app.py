"""A starting point for your own evaluator. Copy this folder, edit `evaluate`, then:

    python manage.py evaluator_build path/to/folder -o my-evaluator.wasm
    python manage.py evaluator_try my-evaluator.wasm --input path/to/folder/sample_case.json
    python manage.py publish_evaluator my-evaluator.wasm --name acme/polite --version 0.1.0

`case` is the dataset case (id, input, expected, context, tags, metadata) and `actual` the agent's output
(text, structured, tool_calls, trace, metadata), JSON already decoded. Return a measurement: `binary`,
`numeric` or `ordinal`, or `abstain(...)`; the profile turns it into a score. Only the standard library is
available inside the sandbox: no files, network, environment or clocks to wait on.
"""

from vigilo_sdk import Evaluator, binary, finding

evaluator = Evaluator(
    name="acme/polite",
    version="0.1.0",
    description="Passes when the reply contains at least one polite phrase.",
    config_schema={
        "type": "object",
        "properties": {"phrases": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
        "additionalProperties": False,
    },
)

DEFAULT_PHRASES = ["please", "thank you", "happy to help"]


@evaluator.evaluate
def evaluate(case: dict, actual: dict, config: dict):
    text = (actual.get("text") or "").lower()
    phrases = config.get("phrases", DEFAULT_PHRASES)
    found = [p for p in phrases if p.lower() in text]
    if found:
        return binary(True, explanation=f"found {found[0]!r}")
    return binary(False, [finding("medium", "impolite", "no polite phrase in the reply", {"looked_for": phrases})])


WitWorld = evaluator.world()
