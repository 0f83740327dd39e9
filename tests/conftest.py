"""Shared fixtures: components are built once (cached by source hash in var/build) and published per test; the
small dataset, profile and finished run the API and admin tests share."""

from __future__ import annotations

import os

import pytest

from tests.support.datasets import dataset_text
from tests.support.paths import BUILD_CACHE, GUESTS, REPO
from tests.support.processing import process
from tests.support.profiles import API_PROFILE
from tests.support.wasm import load

os.environ.setdefault("VIGILO_DATA_DIR", str(REPO / "var" / "test"))


@pytest.fixture(scope="session")
def bundled_wasm() -> dict[str, bytes]:
    """Every bundled evaluator, built from source: folder name -> component bytes."""
    from evaluators.build import bundled_sources, component_build
    from evaluators.management.commands.evaluator_build import world_of

    return {
        src.name: component_build(source_dir=src, cache_dir=BUILD_CACHE, world=world_of(src)).read_bytes()
        for src in bundled_sources()
    }


@pytest.fixture(scope="session")
def native_wasm() -> dict[str, bytes]:
    """Every bundled native (C) evaluator, built from source: "native/<folder>" -> component bytes."""
    from evaluators.build import native_build, native_sources

    return {
        f"native/{src.name}": native_build(source_dir=src, cache_dir=BUILD_CACHE).read_bytes()
        for src in native_sources()
    }


@pytest.fixture(scope="session")
def hostile_wasm() -> bytes:
    from evaluators.build import component_build

    return component_build(source_dir=GUESTS / "hostile", cache_dir=BUILD_CACHE).read_bytes()


@pytest.fixture(scope="module")
def probe_wasm() -> bytes:
    """The model-probe guest (a model-evaluator world component)."""
    from evaluators.build import component_build

    return component_build(
        source_dir=GUESTS / "model_probe", cache_dir=BUILD_CACHE, world="model-evaluator"
    ).read_bytes()


@pytest.fixture(scope="session")
def host():
    """A sandbox host with the default limits (tests that need tighter ones pass their own)."""
    from evaluators.sandbox import Limits, SandboxHost

    h = SandboxHost(limits=Limits(), cache_dir=REPO / "var" / "cache" / "cwasm", concurrency=2)
    yield h
    h.close()


@pytest.fixture
def published(db, bundled_wasm, native_wasm):
    """Publish the bundled evaluators into this test's database, as vigilo_setup does: folder name (or
    "native/<folder>") -> EvaluatorVersion."""
    from evaluators.build import bundled_sources, native_sources
    from evaluators.components import sandbox_host
    from evaluators.services import evaluator_version_publish

    pure = {src.name for src in bundled_sources() if (src / "PURE").is_file()}
    pure |= {f"native/{src.name}" for src in native_sources() if (src / "PURE").is_file()}
    out = {}
    for folder, wasm in {**bundled_wasm, **native_wasm}.items():
        info = sandbox_host().describe(load(sandbox_host(), wasm))
        out[folder], _ = evaluator_version_publish(
            name=info["name"], version=info["version"], wasm=wasm, pure=folder in pure
        )
    return out


@pytest.fixture
def versions(published):
    """A dataset version (3 cases, case-1 failing) and the profile version, imported through the services."""
    from runs.services import dataset_import, profile_import

    dataset, _ = dataset_import(name="api-ds", text=dataset_text(3, failing=(1,)))
    profile, _ = profile_import(text=API_PROFILE)
    return dataset, profile


@pytest.fixture
def finished_run(versions):
    """A run of `versions`, processed to the end."""
    from runs.services import run_create

    dataset, profile = versions
    run, _ = run_create(dataset_version=dataset, profile_version=profile, name="finished")
    process(run)
    return run
