"""The registry: immutable versions, semver resolution, states, capability manifests."""

from __future__ import annotations

import hashlib

import pytest

from evaluators.artifacts import artifact_read
from evaluators.models import Evaluator, EvaluatorVersion
from evaluators.selectors import ResolveError, evaluator_version_resolve
from evaluators.semver import Reference, Requirement, Version, VersionError
from evaluators.services import PublishError, evaluator_version_publish, evaluator_version_set_state, identity_check
from runs.errors import ValidationFailed
from runs.services import profile_import


def version_row(name: str, version: str) -> EvaluatorVersion:
    """A registry row without a component: resolution and states read rows only (publishing is tested below)."""
    namespace, short = name.split("/")
    evaluator, _ = Evaluator.objects.get_or_create(namespace=namespace, name=short)
    parsed = Version.parse(version)
    return EvaluatorVersion.objects.create(
        evaluator=evaluator,
        version=version,
        major=parsed.major,
        minor=parsed.minor,
        patch=parsed.patch,
        prerelease=parsed.prerelease,
        digest=hashlib.sha256(f"{name}@{version}".encode()).hexdigest(),
        size=1,
        contract_version="1.0.0",
        world="evaluator",
    )


@pytest.fixture
def versions(db):
    """acme/x at several versions."""
    return {v: version_row("acme/x", v) for v in ["0.9.0", "1.0.0", "1.2.0", "1.10.1", "2.0.0", "2.1.0-rc.1"]}


def test_publishing_records_digest_world_capabilities_and_describe_info(db, hostile_wasm):
    row, created = evaluator_version_publish(name="tests/hostile", version="1.0.0", wasm=hostile_wasm)
    assert created and row.state == "active"
    assert (row.world, row.capabilities, row.contract_version) == ("evaluator", ["log"], "1.0.0")
    assert row.info["name"] == "tests/hostile" and row.size == len(hostile_wasm)


def test_same_bytes_again_is_a_no_op_and_different_bytes_are_refused(db, hostile_wasm, bundled_wasm):
    first, _ = evaluator_version_publish(name="tests/hostile", version="1.0.0", wasm=hostile_wasm)
    again, created = evaluator_version_publish(name="tests/hostile", version="1.0.0", wasm=hostile_wasm)
    assert (created, again.pk) == (False, first.pk)
    with pytest.raises(PublishError, match=r"already published with digest .* versions are immutable"):
        evaluator_version_publish(name="tests/hostile", version="1.0.0", wasm=bundled_wasm["regex"])
    assert EvaluatorVersion.objects.count() == 1


@pytest.fixture
def empty_store(settings, tmp_path):
    settings.VIGILO_DATA_DIR = str(tmp_path)


@pytest.mark.parametrize(
    ("name", "version", "declared"),
    [
        ("acme/other-name", "1.0.0", "tests/hostile@1.0.0"),  # the case: accepted under any name
        ("tests/hostile", "1.0.1", "tests/hostile@1.0.0"),
        ("tests/hostile", "1.0.0-rc.1", "tests/hostile@1.0.0"),
    ],
)
@pytest.mark.usefixtures("db", "empty_store")
def test_a_component_is_published_only_as_what_its_describe_declares(hostile_wasm, name, version, declared):
    with pytest.raises(PublishError) as info:
        evaluator_version_publish(name=name, version=version, wasm=hostile_wasm)
    assert str(info.value) == (
        f"{name}@{version} refused: the component's describe() declares it is {declared}; publish it as "
        f"{declared}, or change name= and version= in its source and build it again"
    )
    assert not EvaluatorVersion.objects.exists()
    with pytest.raises(FileNotFoundError):  # a refused component is not stored
        artifact_read(digest=hashlib.sha256(hostile_wasm).hexdigest())


def test_a_describe_version_that_is_not_semver_is_refused():
    with pytest.raises(PublishError, match="declares version 'one', which is not a semantic version"):
        identity_check(name="acme/x", version=Version.parse("1.0.0"), info={"name": "acme/x", "version": "one"})


@pytest.mark.parametrize(
    ("name", "version", "message"),
    [
        ("Acme/X", "1.0.0", "not an evaluator name"),
        ("acme", "1.0.0", "not an evaluator name"),
        ("acme/x", "1.0", "not a semantic version"),
    ],
)
def test_bad_names_and_versions_are_refused(db, hostile_wasm, name, version, message):
    with pytest.raises(PublishError, match=message):
        evaluator_version_publish(name=name, version=version, wasm=hostile_wasm)
    assert EvaluatorVersion.objects.count() == 0


@pytest.mark.parametrize(
    ("wasm", "message"),
    [(b"not wasm at all", "not a WebAssembly file"), (b"\0asm\x01\0\0\0", "core WebAssembly module")],
)
def test_non_components_are_refused_with_a_clear_message(db, wasm, message):
    with pytest.raises(PublishError, match=message):
        evaluator_version_publish(name="acme/x", version="1.0.0", wasm=wasm)
    assert EvaluatorVersion.objects.count() == 0


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("acme/x@1.2.0", "1.2.0"),
        ("acme/x@^1.0", "1.10.1"),
        ("acme/x@~1.2", "1.2.0"),
        ("acme/x@^0.9", "0.9.0"),
        ("acme/x", "2.0.0"),
        ("acme/x@*", "2.0.0"),
        ("acme/x@2.1.0-rc.1", "2.1.0-rc.1"),
    ],
)
def test_references_resolve_to_the_highest_active_match(versions, reference, expected):
    assert evaluator_version_resolve(reference=reference).version == expected


def test_yanked_versions_keep_their_pins_but_are_not_picked_for_new_references(versions):
    yanked = evaluator_version_set_state(version=versions["1.10.1"], state="yanked")
    assert evaluator_version_resolve(reference="acme/x@^1.0").version == "1.2.0"
    with pytest.raises(ResolveError, match="yanked"):
        evaluator_version_resolve(reference="acme/x@1.10.1")
    # A run that pinned it loads it by digest: the artifact and row are still there.
    assert EvaluatorVersion.objects.get(digest=yanked.digest).state == "yanked"
    evaluator_version_set_state(version=versions["1.2.0"], state="deprecated")
    with pytest.raises(ResolveError, match="no active version"):
        evaluator_version_resolve(reference="acme/x@~1.2")


def test_state_changes_follow_the_allowed_table(versions):
    v = versions["1.0.0"]
    evaluator_version_set_state(version=v, state="disabled")
    with pytest.raises(PublishError, match="cannot go from disabled to yanked"):
        evaluator_version_set_state(version=v, state="yanked")
    assert EvaluatorVersion.objects.get(pk=v.pk).state == "disabled"


def test_unknown_names_and_versions_do_not_resolve(versions):
    with pytest.raises(ResolveError, match="no evaluator named acme/y"):
        evaluator_version_resolve(reference="acme/y@1.0.0")
    with pytest.raises(ResolveError, match=r"has no version 3\.0\.0"):
        evaluator_version_resolve(reference="acme/x@3.0.0")
    with pytest.raises(ResolveError):
        evaluator_version_resolve(reference="not a ref")


def test_a_model_evaluator_lists_model_and_needs_a_grant_in_profiles(db, probe_wasm):
    row, _ = evaluator_version_publish(name="tests/model-probe", version="1.0.0", wasm=probe_wasm)
    assert (row.world, row.capabilities) == ("model-evaluator", ["log", "model"])
    profile = """
name: judged
min_execution_score: 0
dimensions: {quality: {weight: 1}}
bindings:
  - {id: judge, evaluator: tests/model-probe@1.0.0, dimension: quality}
"""
    with pytest.raises(ValidationFailed) as info:
        profile_import(text=profile)
    assert info.value.errors[0][0] == "bindings[0] (judge).grants"
    granted = profile.replace("dimension: quality}", "dimension: quality, grants: {model: {models: [judge-default]}}}")
    _, created = profile_import(text=granted)
    assert created


@pytest.mark.parametrize(
    ("requirement", "version", "matches"),
    [
        ("^1.2", "1.9.0", True),
        ("^1.2", "2.0.0", False),
        ("^1.2", "1.1.9", False),
        ("^0.2", "0.2.5", True),
        ("^0.2", "0.3.0", False),
        ("^0.0.3", "0.0.4", False),
        ("~1.2", "1.2.9", True),
        ("~1.2", "1.3.0", False),
        ("*", "1.0.0-rc.1", False),
        ("1.0.0", "1.0.0", True),
    ],
)
def test_semver_requirements(requirement, version, matches):
    assert Requirement.parse(requirement).matches(Version.parse(version)) is matches


def test_prereleases_sort_before_their_release():
    assert Version.parse("1.0.0-rc.1").sort_key() < Version.parse("1.0.0").sort_key()


@pytest.mark.parametrize("text", ["", "x", "acme/x@^", "acme/x@1.x", "ACME/x@1.0.0"])
def test_malformed_references_are_rejected(text):
    with pytest.raises(VersionError):
        Reference.parse(text)
