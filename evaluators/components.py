"""The process-wide sandbox host, configured from settings, and loading of published versions."""

from __future__ import annotations

import threading
from pathlib import Path

from django.conf import settings

from evaluators.artifacts import artifact_read
from evaluators.sandbox import Limits, LoadedComponent, SandboxHost
from evaluators.sandbox.pooling import PoolSizes

_host: SandboxHost | None = None
_lock = threading.Lock()


def default_limits() -> Limits:
    return Limits(
        memory_mb=settings.VIGILO_MEMORY_MB,
        fuel=settings.VIGILO_FUEL,
        timeout_s=settings.VIGILO_TIMEOUT_S,
        max_log_messages=settings.VIGILO_MAX_LOG_MESSAGES,
        max_log_bytes=settings.VIGILO_MAX_LOG_BYTES,
        max_output_bytes=settings.VIGILO_MAX_OUTPUT_BYTES,
    )


def sandbox_host() -> SandboxHost:
    global _host
    with _lock:
        if _host is None:
            _host = SandboxHost(
                limits=default_limits(),
                cache_dir=Path(settings.VIGILO_CACHE_DIR) / "cwasm",
                concurrency=settings.VIGILO_SANDBOX_CONCURRENCY,
                cache_size=settings.VIGILO_COMPONENT_CACHE_SIZE,
                pooling=settings.VIGILO_SANDBOX_POOLING,
                pool_sizes=PoolSizes(keep_resident_bytes=settings.VIGILO_SANDBOX_KEEP_RESIDENT_KB << 10),
            )
        return _host


def component_load(*, digest: str) -> LoadedComponent:
    return sandbox_host().load(digest=digest, fetch=lambda: artifact_read(digest=digest))
