"""The Wasmtime sandbox host: plain Python, no Django. Takes component bytes and inputs, returns outcomes."""

from evaluators.sandbox.host import (
    ComponentRejected,
    ContractInfo,
    Invocation,
    LoadedComponent,
    SandboxHost,
)
from evaluators.sandbox.limits import ErrorCode, Limits

__all__ = [
    "ComponentRejected",
    "ContractInfo",
    "ErrorCode",
    "Invocation",
    "Limits",
    "LoadedComponent",
    "SandboxHost",
]
