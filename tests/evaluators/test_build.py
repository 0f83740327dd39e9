"""Building a Python evaluator: the guest's own error first (file:line), a hint, the tool's output behind -v 2,
exit 3; a build leaves its source folder as it found it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from evaluators.build import PACKAGE_DIR, SDK_DIR, guest_error
from tests.support.no_build_tools import manage_without_build_tools
from tests.support.paths import GUESTS

TEMPLATE = PACKAGE_DIR / "template"

# What componentize-py 0.x prints when the guest fails (the native backtrace shortened).
WRAPPER = """Traceback (most recent call last):
  File "/work/.venv/bin/componentize-py", line 8, in <module>
    sys.exit(script())
             ^^^^^^^^
AssertionError: {guest}


Caused by:
    {cause}

Stack backtrace:
   0: <anyhow::Error>::msg::<alloc::string::String>
   1: anyhow::__private::format_err
  10: cfunction_vectorcall_NOARGS
             at /tmp/python-build/Python-3.11.7/Objects/methodobject.c:486:24
"""


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"" for p in sorted(folder.rglob("*"))}


@pytest.fixture
def evaluator_copy(tmp_path, monkeypatch):
    """A copy of the template in tmp_path/my-evaluator, with the current folder at tmp_path."""
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "my-evaluator"
    shutil.copytree(TEMPLATE, work, ignore=shutil.ignore_patterns("__pycache__"))
    return work


def build_error(capsys, folder: Path, *args: str) -> tuple[CommandError, str]:
    with pytest.raises(CommandError) as info:
        call_command("evaluator_build", str(folder), "-o", str(folder.parent / "out.wasm"), *args)
    return info.value, capsys.readouterr().err


# -- the message, from componentize-py's output -------------------------------------------------------------


def test_a_syntax_error_is_reported_at_its_file_and_line(tmp_path):
    guest = """  File "/0/app.py", line 26
    DEFAULT = [["please"]
              ^
SyntaxError: '[' was never closed"""
    output = WRAPPER.format(guest=guest, cause="SyntaxError: '[' was never closed (app.py, line 26)")
    exc = guest_error(output, roots=[tmp_path, SDK_DIR], app=tmp_path / "app.py", world="evaluator")
    first, *context = str(exc).splitlines()
    assert first == f"{tmp_path}/app.py:26: SyntaxError: '[' was never closed"
    assert context == ['    DEFAULT = [["please"]', "              ^"]
    assert "py_compile" in exc.hint and exc.detail == output


def test_a_traceback_points_at_the_evaluators_own_line_not_the_sdks(tmp_path):
    guest = """Traceback (most recent call last):
  File "/0/app.py", line 12, in <module>
    evaluator = Evaluator(name="Bad Name", version="1.0.0")
  File "/1/vigilo_sdk/__init__.py", line 80, in __init__
    raise ValueError("name must look like namespace/name")
ValueError: name must look like namespace/name"""
    output = WRAPPER.format(guest=guest, cause="ValueError: name must look like namespace/name")
    exc = guest_error(output, roots=[tmp_path, SDK_DIR], app=tmp_path / "app.py", world="evaluator")
    assert str(exc).splitlines() == [
        f"{tmp_path}/app.py:12: ValueError: name must look like namespace/name",
        '    evaluator = Evaluator(name="Bad Name", version="1.0.0")',
    ]
    assert "module-level code" in exc.hint


def test_output_that_is_not_a_guest_error_keeps_the_cause(tmp_path):
    output = "Error: failed to parse WIT\n\nCaused by:\n    expected `;`, found `}`\n"
    exc = guest_error(output, roots=[tmp_path], app=tmp_path / "app.py", world="evaluator")
    assert str(exc) == f"componentize-py failed for {tmp_path}: expected `;`, found `}}`"
    assert exc.detail == output


# -- evaluator_build, with real componentize-py runs --------------------------------------------------------


def test_a_syntax_error_exits_3_with_one_line_and_a_hint(evaluator_copy, capsys):
    app = evaluator_copy / "app.py"
    app.write_text(app.read_text().replace("DEFAULT_PHRASES = [", "DEFAULT_PHRASES = [[", 1))
    before = snapshot(evaluator_copy)
    exc, err = build_error(capsys, evaluator_copy)
    lines = str(exc).splitlines()
    line = next(i for i, text in enumerate(app.read_text().splitlines(), 1) if text.startswith("DEFAULT_PHRASES"))
    assert lines[0] == f"my-evaluator/app.py:{line}: SyntaxError: '[' was never closed"
    assert lines[1].strip().startswith("DEFAULT_PHRASES = [[")
    assert any(text.startswith("hint: fix the line above") for text in lines)
    assert lines[-1] == "(run with -v 2 for the build tool's whole output)"
    assert "Stack backtrace" not in str(exc) and "Stack backtrace" not in err and len(lines) <= 6
    assert exc.returncode == 3
    assert snapshot(evaluator_copy) == before


def test_a_missing_world_exits_3_and_v2_shows_the_whole_output(evaluator_copy, capsys):
    app = evaluator_copy / "app.py"
    app.write_text(app.read_text().replace("WitWorld = evaluator.world()", ""))
    before = snapshot(evaluator_copy)
    exc, err = build_error(capsys, evaluator_copy, "-v", "2")
    lines = str(exc).splitlines()
    assert lines[0] == "my-evaluator/app.py: AttributeError: module 'app' has no attribute 'WitWorld'"
    assert lines[1].startswith("hint: app.py must end with `WitWorld = evaluator.world()`")
    assert exc.returncode == 3
    assert "Stack backtrace" in err and "Caused by" in err  # -v 2: componentize-py's own output
    assert snapshot(evaluator_copy) == before  # no __pycache__ although componentize-py imported app.py


def test_a_world_of_another_contract_exits_3_naming_the_world(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "otherworld"
    shutil.copytree(GUESTS / "otherworld", work, ignore=shutil.ignore_patterns("__pycache__"))
    exc, _ = build_error(capsys, work)
    assert str(exc).startswith("otherworld/app.py: TypeError: Can't instantiate abstract class WitWorld")
    assert "hint: this `WitWorld` does not implement the evaluator world" in str(exc)
    assert exc.returncode == 3


def test_an_unknown_world_in_the_world_file_exits_3_before_building(evaluator_copy, capsys):
    (evaluator_copy / "WORLD").write_text("judge\n")
    exc, _ = build_error(capsys, evaluator_copy)
    assert (
        str(exc) == (f"unknown world 'judge' ({evaluator_copy / 'WORLD'}): use one of evaluator, model-evaluator")
        and exc.returncode == 3
    )


def test_a_successful_build_leaves_the_source_folder_unchanged(evaluator_copy, settings, tmp_path, capsys):
    settings.VIGILO_CACHE_DIR = str(tmp_path / "cache")  # a fresh cache: componentize-py really runs
    before = snapshot(evaluator_copy)
    call_command("evaluator_build", str(evaluator_copy), "-o", str(tmp_path / "polite.wasm"))
    assert "built" in capsys.readouterr().out and (tmp_path / "polite.wasm").stat().st_size > 0
    assert snapshot(evaluator_copy) == before


def test_a_missing_build_tool_exits_2(evaluator_copy, tmp_path):
    """No componentize-py anywhere (the interpreter's folder, PATH): the installation is broken, exit 2."""
    done = manage_without_build_tools(
        "evaluator_build",
        str(evaluator_copy),
        "-o",
        str(tmp_path / "x.wasm"),
        data_dir=tmp_path / "data",
        cache_dir=tmp_path / "cache",
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "componentize-py is not installed" in done.stderr
    assert not (tmp_path / "x.wasm").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [(["/nonexistent"], "not a folder"), (["{template}", "-o", "/nonexistent/x.wasm"], "does not exist")],
)
def test_usage_errors_exit_3(args, message):
    args = [a.replace("{template}", str(TEMPLATE)) for a in args]
    with pytest.raises(CommandError, match=message) as info:
        call_command("evaluator_build", *args)
    assert info.value.returncode == 3
