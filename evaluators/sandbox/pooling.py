"""Wasmtime's pooling instance allocator, which wasmtime-py does not expose, configured through its C API.

With the default allocator every fresh instance maps its linear memories (and the copy-on-write image of a
Python guest's ~18 MB heap) and unmaps them when its Store is dropped: about 0.9 ms of kernel time per
invocation here, and in a process with several worker threads those `mmap`/`munmap` calls and page faults
contend on the process's memory map. The pooling allocator reserves slots once and reuses them; a slot keeps
its component's image mapped ("affine" slots), and the first `keep_resident` bytes of a memory are reset in
place instead of being handed back to the kernel. Isolation is unchanged: every instance still starts from
its module's initial state (Wasmtime resets the slot before reuse).

Pool sizes are upper bounds on what one process holds at once (instances live in Stores; the sandbox's
concurrency cap and the reused instances of a chunk are far below them). An instantiation beyond them fails
like any other instantiation error, as the error result of that invocation.
"""

from __future__ import annotations

import ctypes
import logging
import resource
from dataclasses import dataclass

import wasmtime
from wasmtime import _ffi as ffi

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolSizes:
    component_instances: int = 128
    core_instances: int = 1024
    memories: int = 256
    tables: int = 1024
    table_elements: int = 100_000  # CPython's function table is large; an instance over this fails to instantiate
    max_memory_bytes: int = 4 << 30  # the wasm32 maximum: memory limits are enforced per Store, not here
    core_instance_bytes: int = 4 << 20
    component_instance_bytes: int = 4 << 20
    per_component: int = 64  # core instances, memories and tables per component instance
    keep_resident_bytes: int = 16 << 20  # a Python guest touches ~16 MB: reset in place, not refaulted
    table_keep_resident_bytes: int = 1 << 20
    unused_warm_slots: int = 16  # bounds the memory idle slots keep resident


_SETTERS: dict[str, type] = {
    "total_component_instances": ctypes.c_uint32,
    "total_core_instances": ctypes.c_uint32,
    "total_memories": ctypes.c_uint32,
    "total_tables": ctypes.c_uint32,
    "table_elements": ctypes.c_size_t,
    "max_memory_size": ctypes.c_size_t,
    "max_core_instance_size": ctypes.c_size_t,
    "max_component_instance_size": ctypes.c_size_t,
    "max_core_instances_per_component": ctypes.c_uint32,
    "max_memories_per_component": ctypes.c_uint32,
    "max_tables_per_component": ctypes.c_uint32,
    "linear_memory_keep_resident": ctypes.c_size_t,
    "table_keep_resident": ctypes.c_size_t,
    "max_unused_warm_slots": ctypes.c_uint32,
}


def _lib() -> ctypes.CDLL:
    dll = ffi.dll
    dll.wasmtime_pooling_allocation_config_new.restype = ctypes.c_void_p
    dll.wasmtime_pooling_allocation_config_new.argtypes = []
    dll.wasmtime_pooling_allocation_config_delete.restype = None
    dll.wasmtime_pooling_allocation_config_delete.argtypes = [ctypes.c_void_p]
    dll.wasmtime_pooling_allocation_strategy_set.restype = None
    dll.wasmtime_pooling_allocation_strategy_set.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    for name, ctype in _SETTERS.items():
        setter = getattr(dll, f"wasmtime_pooling_allocation_config_{name}_set")
        setter.restype = None
        setter.argtypes = [ctypes.c_void_p, ctype]
    return dll


MEMORY_SLOT_BYTES = (4 << 30) + (64 << 20)  # each memory slot reserves 4 GiB of address space plus guard pages


def address_space_needed(sizes: PoolSizes) -> int:
    """A generous estimate of the address space the pool reserves up front (reserved, not committed)."""
    tables = sizes.tables * sizes.table_elements * 16
    instances = (
        sizes.core_instances * sizes.core_instance_bytes + sizes.component_instances * sizes.component_instance_bytes
    )
    return 2 * (sizes.memories * MEMORY_SLOT_BYTES + tables + instances)


def use_pooling(config: wasmtime.Config, sizes: PoolSizes | None = None) -> bool:
    """Switch `config` to the pooling allocator. False (on-demand) if it cannot be used.

    The pool reserves its address space when the engine is created, and libwasmtime aborts the process (a
    panic in its C API, not an error) when that fails: under an address-space limit (`ulimit -v`) too small
    for it, the pool is not used.
    """
    sizes = sizes or PoolSizes()
    limit, _ = resource.getrlimit(resource.RLIMIT_AS)
    if limit != resource.RLIM_INFINITY and limit < address_space_needed(sizes):
        log.warning(
            "address space limited to %d MiB, the instance pool needs ~%d MiB: instances are allocated on demand",
            limit >> 20,
            address_space_needed(sizes) >> 20,
        )
        return False
    try:
        dll = _lib()
    except AttributeError as exc:  # a libwasmtime built without the pooling allocator
        log.warning("pooling allocator unavailable, using on-demand instances: %s", exc)
        return False
    values = {
        "total_component_instances": sizes.component_instances,
        "total_core_instances": sizes.core_instances,
        "total_memories": sizes.memories,
        "total_tables": sizes.tables,
        "table_elements": sizes.table_elements,
        "max_memory_size": sizes.max_memory_bytes,
        "max_core_instance_size": sizes.core_instance_bytes,
        "max_component_instance_size": sizes.component_instance_bytes,
        "max_core_instances_per_component": sizes.per_component,
        "max_memories_per_component": sizes.per_component,
        "max_tables_per_component": sizes.per_component,
        "linear_memory_keep_resident": sizes.keep_resident_bytes,
        "table_keep_resident": sizes.table_keep_resident_bytes,
        "max_unused_warm_slots": sizes.unused_warm_slots,
    }
    pool = dll.wasmtime_pooling_allocation_config_new()
    try:
        for name, value in values.items():
            getattr(dll, f"wasmtime_pooling_allocation_config_{name}_set")(pool, value)
        dll.wasmtime_pooling_allocation_strategy_set(config.ptr(), pool)  # copies the settings
    finally:
        dll.wasmtime_pooling_allocation_config_delete(pool)
    return True
