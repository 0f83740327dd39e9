"""Paths and settings shared by the benchmark harness's modules (bench/run.py and what it imports).

Only the standard library: the harness runs Django-side code in subprocesses, started with `base_env()`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORK = BENCH / "work"
PY = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else sys.executable
PROMPTFOO_VERSION = "0.121.20"


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "VIGILO_EMBEDDED")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "vigilo_project.settings",
            "VIGILO_CACHE_DIR": os.environ.get("VIGILO_CACHE_DIR", str(REPO / "var" / "cache")),
            "VIGILO_LOG_LEVEL": "WARNING",
            "VIGILO_TASK_EVENTS": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env
