"""The evaluator contract, `vigilo:evaluator@1.0.0`: what a component must import and export to be run, read
from its type. A component of the `evaluator` or `model-evaluator` world passes; anything else is refused."""

from __future__ import annotations

from dataclasses import dataclass

import wasmtime
from wasmtime import component as wc

PACKAGE = "vigilo:evaluator"
CONTRACT_VERSION = "1.0.0"
IMPORT_TYPES = f"{PACKAGE}/types@{CONTRACT_VERSION}"
IMPORT_LOG = f"{PACKAGE}/log@{CONTRACT_VERSION}"
IMPORT_MODEL = f"{PACKAGE}/model@{CONTRACT_VERSION}"
EVALUATION_INPUT_FIELDS = ["run-id", "execution-id", "attempt", "test-case", "actual", "config-json"]


class ComponentRejected(ValueError):
    """The bytes are not a component that implements the evaluator contract."""


@dataclass(frozen=True)
class ContractInfo:
    world: str  # "evaluator" | "model-evaluator"
    contract_version: str
    capabilities: tuple[str, ...]  # "log", "model"
    imports: tuple[str, ...]


def header_check(wasm: bytes) -> None:
    """Refuse, before compiling, what is not a WebAssembly component at all."""
    if len(wasm) < 8 or wasm[:4] != b"\0asm":
        raise ComponentRejected("not a WebAssembly file (missing the \\0asm header)")
    if wasm[4:8] == b"\x01\x00\x00\x00":
        raise ComponentRejected(
            "this is a core WebAssembly module, not a component: build it as a component targeting "
            f"the `evaluator` world of {PACKAGE}@{CONTRACT_VERSION}"
        )


def contract_read(component: wc.Component, engine: wasmtime.Engine) -> ContractInfo:
    """The world and capabilities `component` implements; ComponentRejected when it is not the contract's."""
    ctype = component.type
    imports = sorted(ctype.imports(engine))
    exports = ctype.exports(engine)
    capabilities = []
    for name in imports:
        if name.startswith("wasi:"):
            continue
        if name == IMPORT_LOG:
            capabilities.append("log")
        elif name == IMPORT_MODEL:
            capabilities.append("model")
        elif name != IMPORT_TYPES:
            raise ComponentRejected(
                f"imports `{name}`, which the {PACKAGE}@{CONTRACT_VERSION} contract does not provide"
            )
    missing = [n for n in ("describe", "evaluate") if n not in exports]
    if missing:
        raise ComponentRejected(
            f"does not export {', '.join(missing)}: it is not a component of the `evaluator` world of "
            f"{PACKAGE}@{CONTRACT_VERSION}"
        )
    evaluate = exports["evaluate"].ty
    params = evaluate.params if isinstance(evaluate, wc.FuncType) else []
    fields = []
    if len(params) == 1 and isinstance(params[0][1], wc.RecordType):
        fields = [name for name, _ in params[0][1].fields]
    if fields != EVALUATION_INPUT_FIELDS:
        raise ComponentRejected(
            "its `evaluate` export does not take the contract's `evaluation-input`: "
            f"it is not a component of the {PACKAGE}@{CONTRACT_VERSION} `evaluator` world"
        )
    world = "model-evaluator" if "model" in capabilities else "evaluator"
    return ContractInfo(
        world=world, contract_version=CONTRACT_VERSION, capabilities=tuple(capabilities), imports=tuple(imports)
    )
