"""Reads of the evaluator registry used by more than one caller."""

from __future__ import annotations

from evaluators.models import EvaluatorVersion
from evaluators.semver import Reference, Version, VersionError


class ResolveError(LookupError):
    pass


def evaluator_version_resolve(*, reference: str) -> EvaluatorVersion:
    """The version a reference names: an exact version (any state but disabled) or the highest active match.

    Yanked and deprecated versions are never picked by a range. A yanked exact version is refused for new
    references too; runs that already pinned its digest keep working (they load by digest, not by reference).
    """
    try:
        ref = Reference.parse(reference)
    except VersionError as exc:
        raise ResolveError(str(exc)) from None
    namespace, name = ref.name.split("/")
    candidates = list(
        EvaluatorVersion.objects.select_related("evaluator").filter(
            evaluator__namespace=namespace, evaluator__name=name
        )
    )
    if not candidates:
        raise ResolveError(f"no evaluator named {ref.name} is published")
    req = ref.requirement
    if req.operator == "=":
        for v in candidates:
            if Version.parse(v.version) == req.exact:
                if v.state in (EvaluatorVersion.State.YANKED, EvaluatorVersion.State.DISABLED):
                    raise ResolveError(f"{v.reference} is {v.state} and cannot be used by new runs")
                return v
        raise ResolveError(f"{ref.name} has no version {req.exact}")
    matching = [
        v for v in candidates if v.state == EvaluatorVersion.State.ACTIVE and req.matches(Version.parse(v.version))
    ]
    if not matching:
        raise ResolveError(f"no active version of {ref.name} matches {reference!r}")
    return max(matching, key=lambda v: Version.parse(v.version).sort_key())
