"""Running a management command on a machine whose build tools are missing, for real.

The project's interpreter is started as the base interpreter with the virtualenv's packages on PYTHONPATH: the
packages import, but `componentize-py` (found next to the interpreter, then on PATH) is nowhere to be found.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.support.paths import REPO

BASE_PYTHON = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"


def manage_without_build_tools(*args: str, data_dir: Path, cache_dir: Path) -> subprocess.CompletedProcess[str]:
    """`manage.py *args` with an empty build cache and no componentize-py, on its own SQLite database."""
    assert not (BASE_PYTHON.parent / "componentize-py").exists(), f"{BASE_PYTHON.parent} has componentize-py"
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": sysconfig.get_paths()["purelib"],
        "DJANGO_SETTINGS_MODULE": "vigilo_project.settings",
        "VIGILO_DATA_DIR": str(data_dir),
        "VIGILO_CACHE_DIR": str(cache_dir),
        "VIGILO_EMBEDDED": "true",
        "HOME": os.environ.get("HOME", "/root"),
    }
    return subprocess.run(
        [str(BASE_PYTHON), "manage.py", *args],
        check=False,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
