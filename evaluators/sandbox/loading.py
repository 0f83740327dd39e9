"""Compiling each component once: an LRU of compiled, checked and linked components (`LoadedComponent`) in front
of a disk cache of precompiled ones, keyed by the artifact's digest, the Wasmtime version and the engine's
configuration (a precompiled artifact only loads into an engine configured the same way)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import wasmtime
from wasmtime import component as wc

from evaluators.sandbox.contract import ComponentRejected, ContractInfo, contract_read, header_check
from evaluators.sandbox.host_functions import linker_build

WASMTIME_VERSION = importlib.metadata.version("wasmtime")


@dataclass
class LoadedComponent:
    digest: str
    component: wc.Component
    linker: wc.Linker
    contract: ContractInfo


class ComponentLoader:
    """Compiles components for `engine`, keeping `cache_size` in memory and every precompiled one in `cache_dir`.

    `engine_profile` names the engine's configuration: it is part of the disk-cache key.
    """

    def __init__(
        self, engine: wasmtime.Engine, *, engine_profile: str, cache_dir: Path | None, cache_size: int
    ) -> None:
        self.engine = engine
        self.cache_dir = cache_dir
        self._profile = hashlib.sha256(f"{WASMTIME_VERSION}|{engine_profile}".encode()).hexdigest()[:12]
        self._cache: OrderedDict[str, LoadedComponent] = OrderedDict()
        self._cache_size = cache_size
        self._cache_lock = threading.Lock()
        self._load_locks: dict[str, threading.Lock] = {}

    def inspect(self, wasm: bytes) -> tuple[wc.Component, ContractInfo]:
        """Compile `wasm` and check it implements the `evaluator` or `model-evaluator` world."""
        header_check(wasm)
        digest = hashlib.sha256(wasm).hexdigest()
        component = self._from_disk(digest)
        if component is None:
            try:
                component = wc.Component(self.engine, wasm)
            except wasmtime.WasmtimeError as exc:
                raise ComponentRejected(f"not a valid WebAssembly component: {str(exc).splitlines()[0]}") from None
            contract = contract_read(component, self.engine)
            self._to_disk(digest, component)  # only components that passed the contract check are cached
            return component, contract
        return component, contract_read(component, self.engine)

    def load(self, *, digest: str, fetch: Callable[[], bytes]) -> LoadedComponent:
        """The compiled component for `digest`: from memory, the disk cache, or by compiling `fetch()`."""
        with self._cache_lock:
            hit = self._cache.get(digest)
            if hit is not None:
                self._cache.move_to_end(digest)
                return hit
            lock = self._load_locks.setdefault(digest, threading.Lock())
        with lock:  # compile each digest once even when many threads ask at the same time
            with self._cache_lock:
                hit = self._cache.get(digest)
                if hit is not None:
                    return hit
            loaded = self._load_uncached(digest, fetch)
            with self._cache_lock:
                self._cache[digest] = loaded
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
            return loaded

    def _load_uncached(self, digest: str, fetch: Callable[[], bytes]) -> LoadedComponent:
        component = self._from_disk(digest)
        if component is None:
            wasm = fetch()
            actual = hashlib.sha256(wasm).hexdigest()
            if actual != digest:
                raise ComponentRejected(f"artifact digest {actual} does not match {digest}")
            component, _ = self.inspect(wasm)
        contract = contract_read(component, self.engine)
        return LoadedComponent(
            digest=digest, component=component, linker=linker_build(self.engine, contract), contract=contract
        )

    def _disk_path(self, digest: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"{digest}-{self._profile}.cwasm"

    def _to_disk(self, digest: str, component: wc.Component) -> None:
        path = self._disk_path(digest)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(component.serialize())
        os.replace(tmp, path)

    def _from_disk(self, digest: str) -> wc.Component | None:
        """The precompiled component for `digest`, if this engine configuration compiled it before."""
        path = self._disk_path(digest)
        if path is None or not path.exists():
            return None
        try:
            return wc.Component.deserialize_file(self.engine, str(path))
        except wasmtime.WasmtimeError:
            path.unlink(missing_ok=True)  # stale or torn artifact: recompile
            return None
