"""The authoring path: evaluator_build, evaluator_try and publish_evaluator, with their exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from evaluators.build import PACKAGE_DIR
from evaluators.models import EvaluatorVersion

TEMPLATE = PACKAGE_DIR / "template"


@pytest.fixture(scope="module")
def built_template(tmp_path_factory) -> Path:
    """The authoring template, built with the command users run."""
    work = tmp_path_factory.mktemp("authoring") / "my-evaluator"
    shutil.copytree(TEMPLATE, work)
    call_command("evaluator_build", str(work), "-o", str(work / "my-evaluator.wasm"))
    return work


def try_(capsys, *args) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        call_command("evaluator_try", *args)
    out = capsys.readouterr()
    return info.value.code, out.out + out.err


def test_template_builds_and_tries_passing_and_failing(built_template, capsys):
    case = built_template / "sample_case.json"
    code, out = try_(capsys, str(built_template / "my-evaluator.wasm"), "--input", str(case))
    assert code == 0, out
    assert "outcome: completed, binary measurement True" in out
    failing = json.loads(case.read_text())
    failing["output"]["text"] = "I cannot help with that."
    bad_case = built_template / "failing_case.json"
    bad_case.write_text(json.dumps(failing))
    code, out = try_(capsys, str(built_template / "my-evaluator.wasm"), "--input", str(bad_case))
    assert code == 0 and "binary measurement False" in out and "finding [" in out


def test_try_exits_1_when_the_invocation_is_an_error(built_template, capsys):
    code, out = try_(
        capsys,
        str(built_template / "my-evaluator.wasm"),
        "--input",
        str(built_template / "sample_case.json"),
        "--config",
        '{"unknown_option": 1}',
    )
    assert code == 1
    assert "outcome: error evaluator_error: invalid_config" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--input", "/nonexistent.json"], "No such file"), (["--config", "{nope"], "--config is not valid JSON")],
)
def test_try_exits_2_on_usage_errors(built_template, capsys, args, message):
    base = {"--input": str(built_template / "sample_case.json")}
    flat = [str(built_template / "my-evaluator.wasm")]
    given = dict(zip(args[::2], args[1::2], strict=True))
    for key, value in {**base, **given}.items():
        flat += [key, value]
    code, out = try_(capsys, *flat)
    assert code == 2 and message in out


def test_try_with_an_unknown_reference_exits_2(db, built_template, capsys):
    code, out = try_(capsys, "acme/none@1.0.0", "--input", str(built_template / "sample_case.json"))
    assert code == 2 and "no evaluator named acme/none" in out


def test_publish_command_publishes_then_is_a_no_op(db, built_template, capsys):
    wasm = str(built_template / "my-evaluator.wasm")
    call_command("publish_evaluator", wasm, "--name", "acme/polite", "--version", "0.1.0")
    call_command("publish_evaluator", wasm, "--name", "acme/polite", "--version", "0.1.0")
    out = capsys.readouterr().out
    assert "acme/polite@0.1.0 published" in out and "already published (same bytes)" in out
    assert EvaluatorVersion.objects.filter(evaluator__name="polite").count() == 1
    code, out = try_(capsys, "acme/polite@^0.1", "--input", str(built_template / "sample_case.json"))
    assert code == 0


def test_publish_command_declares_purity(db, built_template, capsys):
    wasm = str(built_template / "my-evaluator.wasm")
    call_command("publish_evaluator", wasm, "--name", "acme/polite", "--version", "0.2.0", "--pure")
    assert "acme/polite@0.2.0 published" in capsys.readouterr().out
    assert EvaluatorVersion.objects.get(evaluator__name="polite", version="0.2.0").pure is True
    with pytest.raises(CommandError, match="already published as pure"):
        call_command("publish_evaluator", wasm, "--name", "acme/polite", "--version", "0.2.0")


def test_publish_command_refuses_a_non_wasm_file(db, tmp_path):
    junk = tmp_path / "junk.wasm"
    junk.write_text("hello")
    with pytest.raises(CommandError, match="not a WebAssembly file"):
        call_command("publish_evaluator", str(junk), "--name", "acme/junk", "--version", "1.0.0")
    assert EvaluatorVersion.objects.count() == 0


def test_build_command_builds_a_native_evaluator(tmp_path, capsys):
    """The Dockerfile prebuilds native evaluators with this command; the result is a working component."""
    target = tmp_path / "contains.wasm"
    call_command("evaluator_build", str(PACKAGE_DIR / "native" / "contains"), "-o", str(target))
    assert f"built {target}" in capsys.readouterr().out
    sample = {"id": "c", "input": "q", "expected": "KX-1", "output": {"text": "code KX-1"}}
    (tmp_path / "case.json").write_text(json.dumps(sample))
    code, out = try_(capsys, str(target), "--input", str(tmp_path / "case.json"))
    assert code == 0 and "binary measurement True" in out, out


def test_build_command_reports_a_c_compile_error(tmp_path):
    work = tmp_path / "broken"
    shutil.copytree(PACKAGE_DIR / "native" / "contains", work)
    (work / "contains.c").write_text((work / "contains.c").read_text().replace("vg_pass();", "vg_pass(1, 2);"))
    with pytest.raises(CommandError, match=r"compiling broken failed:(.|\n)*contains\.c:\d+:\d+: error"):
        call_command("evaluator_build", str(work), "-o", str(tmp_path / "broken.wasm"))
