"""Content-addressed storage of component bytes under VIGILO_DATA_DIR/artifacts."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from django.conf import settings


def _path(digest: str) -> Path:
    return Path(settings.VIGILO_DATA_DIR) / "artifacts" / "sha256" / digest[:2] / f"{digest}.wasm"


def artifact_store(*, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    path = _path(digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    return digest


def artifact_read(*, digest: str) -> bytes:
    return _path(digest).read_bytes()
