"""The registry: immutable versions, semver resolution, states, capability manifests."""

from __future__ import annotations

import pytest

from evaluators.build import component_build
from evaluators.models import EvaluatorVersion
from evaluators.selectors import ResolveError, evaluator_version_resolve
from evaluators.semver import Reference, Requirement, Version, VersionError
from evaluators.services import PublishError, evaluator_version_publish, evaluator_version_set_state
from runs.ingest import ValidationFailed, profile_import
from tests.conftest import BUILD_CACHE, GUESTS


@pytest.fixture(scope="module")
def probe_wasm() -> bytes:
    return component_build(
        source_dir=GUESTS / "model_probe", cache_dir=BUILD_CACHE, world="model-evaluator"
    ).read_bytes()


@pytest.fixture
def versions(db, hostile_wasm, bundled_wasm):
    """acme/x published at several versions (different bytes each: the hostile and bundled components)."""
    blobs = [hostile_wasm, *bundled_wasm.values()]
    out = {}
    for version, wasm in zip(["0.9.0", "1.0.0", "1.2.0", "1.10.1", "2.0.0", "2.1.0-rc.1"], blobs, strict=False):
        out[version], _ = evaluator_version_publish(name="acme/x", version=version, wasm=wasm)
    return out


def test_publishing_records_digest_world_capabilities_and_describe_info(db, hostile_wasm):
    row, created = evaluator_version_publish(name="acme/hostile", version="1.0.0", wasm=hostile_wasm)
    assert created and row.state == "active"
    assert (row.world, row.capabilities, row.contract_version) == ("evaluator", ["log"], "1.0.0")
    assert row.info["name"] == "tests/hostile" and row.size == len(hostile_wasm)


def test_same_bytes_again_is_a_no_op_and_different_bytes_are_refused(db, hostile_wasm, bundled_wasm):
    first, _ = evaluator_version_publish(name="acme/x", version="1.0.0", wasm=hostile_wasm)
    again, created = evaluator_version_publish(name="acme/x", version="1.0.0", wasm=hostile_wasm)
    assert (created, again.pk) == (False, first.pk)
    with pytest.raises(PublishError, match=r"already published with digest .* versions are immutable"):
        evaluator_version_publish(name="acme/x", version="1.0.0", wasm=bundled_wasm["regex"])
    assert EvaluatorVersion.objects.count() == 1


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
    row, _ = evaluator_version_publish(name="acme/judge", version="1.0.0", wasm=probe_wasm)
    assert (row.world, row.capabilities) == ("model-evaluator", ["log", "model"])
    profile = """
name: judged
dimensions: {quality: {weight: 1}}
bindings:
  - {id: judge, evaluator: acme/judge@1.0.0, dimension: quality}
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
