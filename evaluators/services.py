"""Writes to the evaluator registry: publishing immutable versions and changing their state."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import IntegrityError, transaction

from evaluators.artifacts import artifact_store
from evaluators.components import sandbox_host
from evaluators.models import Evaluator, EvaluatorVersion
from evaluators.sandbox import ComponentRejected
from evaluators.semver import NAME, Version, VersionError

MAX_COMPONENT_BYTES = 64 << 20


class PublishError(ValueError):
    """Publishing was refused; the message says why."""


def evaluator_version_publish(
    *, name: str, version: str, wasm: bytes, pure: bool = False
) -> tuple[EvaluatorVersion, bool]:
    """Publish `wasm` as `name@version`. Returns (version, created).

    The component's `describe()` must declare the same name and version (`identity_check`). Publishing the same
    bytes again is a no-op; different bytes under an existing version are refused.
    `pure` declares that `evaluate` depends on its input alone (no state kept between calls, no outside
    calls), which lets a profile allow instance reuse; an evaluator with the `model` capability cannot be pure.
    Like the bytes, the declaration is part of the immutable version.
    """
    if not NAME.match(name or ""):
        raise PublishError(f"{name!r} is not an evaluator name like namespace/name (lowercase, digits, - and _)")
    try:
        parsed = Version.parse(version)
    except VersionError as exc:
        raise PublishError(str(exc)) from None
    if len(wasm) > MAX_COMPONENT_BYTES:
        raise PublishError(f"component is {len(wasm)} bytes; the limit is {MAX_COMPONENT_BYTES}")
    digest = hashlib.sha256(wasm).hexdigest()
    namespace, short = name.split("/")
    existing = EvaluatorVersion.objects.filter(
        evaluator__namespace=namespace, evaluator__name=short, version=str(parsed)
    ).first()
    if existing is not None:
        if existing.digest == digest and existing.pure == pure:
            return existing, False
        if existing.digest == digest:
            raise PublishError(
                f"{name}@{parsed} is already published as {'pure' if existing.pure else 'not pure'}; versions are "
                "immutable, publish a new version to change the declaration"
            )
        raise PublishError(
            f"{name}@{parsed} is already published with digest {existing.digest}; versions are immutable, "
            "publish a new version instead"
        )

    host = sandbox_host()
    try:
        component, contract = host.inspect(wasm)
    except ComponentRejected as exc:
        raise PublishError(f"{name}@{parsed} refused: {exc}") from None
    if pure and "model" in contract.capabilities:
        raise PublishError(
            f"{name}@{parsed} cannot be declared pure: it imports the `model` capability, whose answers do not "
            "depend on the input alone"
        )
    try:
        loaded = host.load(digest=digest, fetch=lambda: wasm)  # precompiles into the disk cache
        info = host.describe(loaded)
    except ComponentRejected as exc:
        raise PublishError(f"{name}@{parsed} refused: {exc}") from None
    del component
    identity_check(name=name, version=parsed, info=info)
    artifact_store(data=wasm)

    try:
        with transaction.atomic():
            evaluator, _ = Evaluator.objects.get_or_create(namespace=namespace, name=short)
            row = EvaluatorVersion.objects.create(
                evaluator=evaluator,
                version=str(parsed),
                major=parsed.major,
                minor=parsed.minor,
                patch=parsed.patch,
                prerelease=parsed.prerelease,
                digest=digest,
                size=len(wasm),
                contract_version=contract.contract_version,
                world=contract.world,
                capabilities=list(contract.capabilities),
                imports=list(contract.imports),
                description=info["description"],
                config_schema=info["config_schema"],
                info=info,
                pure=pure,
            )
    except IntegrityError:
        # A concurrent publish of the same version won the race: same rules as above.
        return evaluator_version_publish(name=name, version=version, wasm=wasm, pure=pure)
    return row, True


def identity_check(*, name: str, version: Version, info: dict[str, Any]) -> None:
    """Refuse a component published under another name or version than its `describe()` declares.

    The evaluator's source declares both (`Evaluator(name=..., version=...)`); publishing names them again, and
    the two must agree, so a version in the registry is what its component says it is.
    """
    declared_name, declared_version = str(info.get("name", "")), str(info.get("version", ""))
    declared = f"{declared_name}@{declared_version}"
    try:
        same_version = Version.parse(declared_version) == version
    except VersionError:
        raise PublishError(
            f"{name}@{version} refused: the component's describe() declares version {declared_version!r}, which is "
            "not a semantic version; fix version= in its source and build it again"
        ) from None
    if declared_name == name and same_version:
        return
    raise PublishError(
        f"{name}@{version} refused: the component's describe() declares it is {declared}; publish it as "
        f"{declared}, or change name= and version= in its source and build it again"
    )


def published_as(*, name: str, version: str, wasm: bytes) -> EvaluatorVersion | None:
    """The existing version `name@version` if it holds exactly these bytes, else None."""
    namespace, _, short = name.partition("/")
    return EvaluatorVersion.objects.filter(
        evaluator__namespace=namespace,
        evaluator__name=short,
        version=version,
        digest=hashlib.sha256(wasm).hexdigest(),
    ).first()


ALLOWED_STATE_CHANGES = {
    EvaluatorVersion.State.ACTIVE: {"deprecated", "yanked", "disabled"},
    EvaluatorVersion.State.DEPRECATED: {"active", "yanked", "disabled"},
    EvaluatorVersion.State.YANKED: {"active", "disabled"},
    EvaluatorVersion.State.DISABLED: {"active"},
}


def evaluator_version_set_state(*, version: EvaluatorVersion, state: str) -> EvaluatorVersion:
    """Change a version's state with a guarded update (the only mutable field)."""
    allowed = ALLOWED_STATE_CHANGES.get(EvaluatorVersion.State(version.state), set())
    if state not in allowed:
        raise PublishError(f"{version.reference} cannot go from {version.state} to {state}")
    updated = EvaluatorVersion.objects.filter(pk=version.pk, state=version.state).update(state=state)
    if updated != 1:
        raise PublishError(f"{version.reference} changed state concurrently; reload and retry")
    version.state = state
    return version
