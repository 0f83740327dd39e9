"""A model-evaluator that asks the host for one completion. Built by the test suite."""

from vigilo_sdk import Evaluator, ModelError, abstain, binary, complete

evaluator = Evaluator(name="tests/model-probe", version="1.0.0", description="calls the model capability")


@evaluator.evaluate
def evaluate(case, actual, config):
    try:
        done = complete(config.get("model", "judge-default"), [{"role": "user", "content": actual.get("text") or ""}])
    except ModelError as exc:
        return abstain("model_error", str(exc))
    return binary(done["content"].strip().lower() == "yes", explanation=done["content"])


WitWorld = evaluator.world()
