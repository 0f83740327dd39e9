"""The authoring path: evaluator_build, evaluator_try, publish_evaluator and evaluator_state, with their exit
codes; the exit codes of vigilo_setup and vigilo_token."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from evaluators.build import PACKAGE_DIR, component_build
from evaluators.models import EvaluatorVersion
from evaluators.selectors import ResolveError, evaluator_version_resolve
from evaluators.services import evaluator_version_publish
from tests.support.no_build_tools import manage_without_build_tools
from tests.support.paths import BUILD_CACHE

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
def test_try_exits_3_on_usage_errors(built_template, capsys, args, message):
    base = {"--input": str(built_template / "sample_case.json")}
    flat = [str(built_template / "my-evaluator.wasm")]
    given = dict(zip(args[::2], args[1::2], strict=True))
    for key, value in {**base, **given}.items():
        flat += [key, value]
    code, out = try_(capsys, *flat)
    assert code == 3 and message in out


def test_try_with_an_unknown_reference_exits_3(db, built_template, capsys):
    code, out = try_(capsys, "acme/none@1.0.0", "--input", str(built_template / "sample_case.json"))
    assert code == 3 and "no evaluator named acme/none" in out


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
    call_command("publish_evaluator", wasm, "--name", "acme/polite", "--version", "0.1.0", "--pure")
    assert "acme/polite@0.1.0 published" in capsys.readouterr().out
    assert EvaluatorVersion.objects.get(evaluator__name="polite", version="0.1.0").pure is True
    with pytest.raises(CommandError, match="already published as pure") as info:
        call_command("publish_evaluator", wasm, "--name", "acme/polite", "--version", "0.1.0")
    assert info.value.returncode == 3


def test_publish_command_refuses_a_non_wasm_file(db, tmp_path):
    junk = tmp_path / "junk.wasm"
    junk.write_text("hello")
    with pytest.raises(CommandError, match="not a WebAssembly file") as info:
        call_command("publish_evaluator", str(junk), "--name", "acme/junk", "--version", "1.0.0")
    assert info.value.returncode == 3
    assert EvaluatorVersion.objects.count() == 0


def test_publish_command_exits_3_on_a_missing_file(db, tmp_path):
    with pytest.raises(CommandError, match="no such file") as info:
        call_command("publish_evaluator", str(tmp_path / "none.wasm"), "--name", "acme/x", "--version", "1.0.0")
    assert info.value.returncode == 3


@pytest.mark.parametrize(("name", "version"), [("acme/other-name", "0.1.0"), ("acme/polite", "0.2.0")])
def test_publish_command_refuses_a_name_or_version_its_component_does_not_declare(db, built_template, name, version):
    """The template's source declares acme/polite@0.1.0; publishing it as anything else is refused."""
    wasm = str(built_template / "my-evaluator.wasm")
    with pytest.raises(CommandError) as info:
        call_command("publish_evaluator", wasm, "--name", name, "--version", version)
    assert info.value.returncode == 3
    assert str(info.value) == (
        f"{name}@{version} refused: the component's describe() declares it is acme/polite@0.1.0; publish it as "
        "acme/polite@0.1.0, or change name= and version= in its source and build it again"
    )
    assert not EvaluatorVersion.objects.exists()


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
    with pytest.raises(CommandError, match=r"compiling broken failed:(.|\n)*contains\.c:\d+:\d+: error") as info:
        call_command("evaluator_build", str(work), "-o", str(tmp_path / "broken.wasm"))
    assert info.value.returncode == 3


def test_build_command_refuses_another_world_for_a_native_evaluator(tmp_path):
    with pytest.raises(CommandError, match="`evaluator` world only") as info:
        call_command(
            "evaluator_build", str(PACKAGE_DIR / "native" / "contains"), "--world", "model-evaluator", "-o", "x.wasm"
        )
    assert info.value.returncode == 3


# -- evaluator_state ----------------------------------------------------------------------------------------


@pytest.fixture
def polite(db, built_template) -> EvaluatorVersion:
    """The template published as acme/polite@0.1.0."""
    row, _ = evaluator_version_publish(
        name="acme/polite", version="0.1.0", wasm=(built_template / "my-evaluator.wasm").read_bytes()
    )
    return row


def state(capsys, *args: str) -> str:
    call_command("evaluator_state", *args)
    return capsys.readouterr().out.strip()


def test_state_command_deprecates_yanks_and_reactivates_a_version(polite, capsys):
    out = state(capsys, "acme/polite@0.1.0", "deprecated")
    assert out == (
        "acme/polite@0.1.0 is now deprecated (was active): ranges no longer pick it; its exact version still resolves"
    )
    with pytest.raises(ResolveError, match="no active version"):
        evaluator_version_resolve(reference="acme/polite@^0.1")
    assert evaluator_version_resolve(reference="acme/polite@0.1.0").pk == polite.pk

    assert state(capsys, "acme/polite@0.1.0", "yanked").startswith("acme/polite@0.1.0 is now yanked (was deprecated)")
    with pytest.raises(ResolveError, match="is yanked"):
        evaluator_version_resolve(reference="acme/polite@0.1.0")

    assert state(capsys, "acme/polite@0.1.0", "yanked").startswith("acme/polite@0.1.0 is already yanked")
    assert state(capsys, "acme/polite@0.1.0", "active").startswith("acme/polite@0.1.0 is now active (was yanked)")
    assert evaluator_version_resolve(reference="acme/polite@^0.1").pk == polite.pk


def test_state_command_refuses_what_the_state_table_does_not_allow(polite, capsys):
    state(capsys, "acme/polite@0.1.0", "disabled")
    with pytest.raises(CommandError) as info:
        call_command("evaluator_state", "acme/polite@0.1.0", "yanked")
    assert info.value.returncode == 3
    assert str(info.value) == "acme/polite@0.1.0 cannot go from disabled to yanked (from disabled: active)"
    assert EvaluatorVersion.objects.get(pk=polite.pk).state == "disabled"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["acme/polite@0.1.0", "retired"], "unknown state 'retired': use one of active, deprecated, yanked, disabled"),
        (["acme/nobody@1.0.0", "yanked"], "no evaluator named acme/nobody is published"),
        (["acme/polite@0.9.0", "yanked"], r"acme/polite has no version 0\.9\.0 \(published: 0\.1\.0\)"),
        (["acme/polite@^0.1", "yanked"], "is a range; name one version exactly"),
        (["not a ref", "yanked"], "not an evaluator name"),
    ],
)
def test_state_command_exits_3_on_an_unknown_version_or_state(polite, args, message):
    with pytest.raises(CommandError, match=message) as info:
        call_command("evaluator_state", *args)
    assert info.value.returncode == 3
    assert EvaluatorVersion.objects.get(pk=polite.pk).state == "active"


# -- vigilo_setup and vigilo_token --------------------------------------------------------------------------


def test_setup_exits_3_on_an_unknown_only_name():
    with pytest.raises(CommandError, match=r"--only: no bundled evaluator nope \(choose from .*contains") as info:
        call_command("vigilo_setup", "--only", "contains", "nope")
    assert info.value.returncode == 3


def test_setup_exits_2_when_a_bundled_evaluator_does_not_build(tmp_path):
    """An empty build cache and no componentize-py: setup cannot build the bundled evaluators, exit 2."""
    done = manage_without_build_tools(
        "vigilo_setup", "--only", "contains", data_dir=tmp_path / "data", cache_dir=tmp_path / "cache"
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "bundled evaluator contains: " in done.stderr and "componentize-py is not installed" in done.stderr


def test_setup_exits_2_when_a_bundled_evaluator_is_refused(db, tmp_path):
    """vigilo/contains@1.0.0 is already published with other bytes (a rebuilt copy): versions are immutable, so
    setup cannot publish the bundled one and says the installation is broken."""
    copy = tmp_path / "contains"
    shutil.copytree(PACKAGE_DIR / "bundled" / "contains", copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "app.py").open("a") as app:
        app.write("\n# a rebuilt copy: the same describe(), other bytes\n")
    other = component_build(source_dir=copy, cache_dir=BUILD_CACHE).read_bytes()
    evaluator_version_publish(name="vigilo/contains", version="1.0.0", wasm=other)

    with pytest.raises(CommandError, match=r"bundled evaluator contains: .*versions are immutable") as info:
        call_command("vigilo_setup", "--only", "contains")
    assert info.value.returncode == 2


def test_token_command_errors_exit_3(db):
    with pytest.raises(CommandError, match="no token named 'nobody'") as info:
        call_command("vigilo_token", "revoke", "nobody")
    assert info.value.returncode == 3
