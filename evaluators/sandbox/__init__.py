"""The Wasmtime sandbox host: plain Python, no Django. Takes component bytes and inputs, returns outcomes.

The modules, by role: `host` (SandboxHost: the engine, its epoch ticker, lifecycle), `loading` (compiling and
caching components), `contract` (what a component must implement), `invoke` (one call under limits),
`reused_instance` (an instance kept across calls), `host_functions` (what a guest can call on the host),
`guest_output` (its stdout/stderr), `decode` (its result), `traps` (why a call did not return), `invocation`
(what a call produced), `abi` (values through Wasmtime's C API), `limits`, `pooling`.
"""

from evaluators.sandbox.contract import ComponentRejected, ContractInfo
from evaluators.sandbox.host import SandboxHost
from evaluators.sandbox.host_functions import CapabilityDenied, ModelBroker, ModelCallFailed
from evaluators.sandbox.invocation import Invocation
from evaluators.sandbox.limits import ErrorCode, Limits
from evaluators.sandbox.loading import LoadedComponent
from evaluators.sandbox.reused_instance import ReusedInstance

__all__ = [
    "CapabilityDenied",
    "ComponentRejected",
    "ContractInfo",
    "ErrorCode",
    "Invocation",
    "Limits",
    "LoadedComponent",
    "ModelBroker",
    "ModelCallFailed",
    "ReusedInstance",
    "SandboxHost",
]
