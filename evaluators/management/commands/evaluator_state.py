from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evaluators.models import EvaluatorVersion
from evaluators.semver import Reference, Version, VersionError
from evaluators.services import ALLOWED_STATE_CHANGES, PublishError, evaluator_version_set_state
from vigilo_project.exitcodes import USAGE

# What each state means for resolving references (evaluators/selectors.py). Runs pin a version by digest when they
# are created, so a state change never touches a run that already exists.
MEANING = {
    "active": "ranges (^1.2, ~1.2, *) and its exact version resolve to it",
    "deprecated": "ranges no longer pick it; its exact version still resolves",
    "yanked": "new runs cannot use it, not even by its exact version; runs that pinned it keep working",
    "disabled": "new runs cannot use it, not even by its exact version (like yanked, but it can only be activated "
    "again); runs that pinned it keep working",
}


class Command(BaseCommand):
    help = (
        "Change the state of one evaluator version: REF is an exact version (vigilo/regex@2.0.0), STATE one of "
        "active, deprecated, yanked, disabled. Exit 3 on an unknown version or state, or a change the state "
        "table does not allow."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("reference", help="an exact version: namespace/name@1.2.3")
        parser.add_argument("state", help=", ".join(EvaluatorVersion.State.values))

    def handle(self, *args: Any, reference: str, state: str, **options: Any) -> None:
        if state not in EvaluatorVersion.State.values:
            raise CommandError(
                f"unknown state {state!r}: use one of {', '.join(EvaluatorVersion.State.values)}", returncode=USAGE
            )
        version = version_lookup(reference)
        before = version.state
        if state == before:
            self.stdout.write(f"{version.reference} is already {state}: {MEANING[state]}")
            return
        try:
            version = evaluator_version_set_state(version=version, state=state)
        except PublishError as exc:
            allowed = sorted(ALLOWED_STATE_CHANGES.get(EvaluatorVersion.State(before), set()))
            raise CommandError(f"{exc} (from {before}: {', '.join(allowed)})", returncode=USAGE) from None
        self.stdout.write(f"{version.reference} is now {version.state} (was {before}): {MEANING[version.state]}")


def version_lookup(reference: str) -> EvaluatorVersion:
    """The version an exact reference names, whatever its state."""
    try:
        ref = Reference.parse(reference)
    except VersionError as exc:
        raise CommandError(f"{reference!r}: {exc}", returncode=USAGE) from None
    exact = ref.requirement.exact
    if exact is None:
        raise CommandError(
            f"{reference!r} is a range; name one version exactly, like {ref.name}@1.0.0", returncode=USAGE
        )
    namespace, name = ref.name.split("/")
    rows = EvaluatorVersion.objects.select_related("evaluator")
    versions = list(rows.filter(evaluator__namespace=namespace, evaluator__name=name))
    if not versions:
        raise CommandError(f"no evaluator named {ref.name} is published", returncode=USAGE)
    for version in versions:
        if Version.parse(version.version) == exact:
            return version
    published = ", ".join(v.version for v in sorted(versions, key=lambda v: Version.parse(v.version).sort_key()))
    raise CommandError(f"{ref.name} has no version {exact} (published: {published})", returncode=USAGE)
