"""Semantic versions and evaluator references (`ns/name@1.2.3`, `@^1.2`, `@~1.2`, `@*`). Pure Python."""

from __future__ import annotations

import re
from dataclasses import dataclass

_VERSION = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
_PARTIAL = re.compile(r"^(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?$")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}/[a-z0-9][a-z0-9_-]{0,62}$")


class VersionError(ValueError):
    pass


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: str = ""

    @classmethod
    def parse(cls, text: str) -> Version:
        m = _VERSION.match(text or "")
        if not m:
            raise VersionError(f"{text!r} is not a semantic version like 1.0.0")
        return cls(int(m[1]), int(m[2]), int(m[3]), m[4] or "")

    def sort_key(self) -> tuple[int, int, int, int, str]:
        # A prerelease sorts before its release.
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, self.prerelease)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}" + (f"-{self.prerelease}" if self.prerelease else "")


@dataclass(frozen=True)
class Requirement:
    """What a reference asks for: an exact version, a caret/tilde range, or any version."""

    operator: str  # "=", "^", "~", "*"
    base: tuple[int, int, int]
    exact: Version | None = None

    @classmethod
    def parse(cls, text: str) -> Requirement:
        text = (text or "*").strip()
        if text in ("*", "latest"):
            return cls("*", (0, 0, 0))
        if text[0] in "^~":
            m = _PARTIAL.match(text[1:])
            if not m:
                raise VersionError(f"{text!r} is not a version range like ^1.2 or ~1.2.3")
            base = (int(m[1]), int(m[2] or 0), int(m[3] or 0))
            return cls(text[0], base)
        exact = Version.parse(text)
        return cls("=", (exact.major, exact.minor, exact.patch), exact)

    def matches(self, v: Version) -> bool:
        if self.operator == "=":
            return v == self.exact
        if v.prerelease:  # ranges never pick prereleases
            return False
        major, minor, _ = self.base
        triple = (v.major, v.minor, v.patch)
        if self.operator == "*":
            return True
        if triple < self.base:
            return False
        if self.operator == "~":
            return (v.major, v.minor) == (major, minor)
        # caret: the left-most non-zero component is fixed
        if major > 0:
            return v.major == major
        if minor > 0:
            return v.major == 0 and v.minor == minor
        return triple == self.base


@dataclass(frozen=True)
class Reference:
    name: str
    requirement: Requirement
    text: str

    @classmethod
    def parse(cls, text: str) -> Reference:
        if not isinstance(text, str) or not text.strip():
            raise VersionError("an evaluator reference must be a string like vigilo/regex@1.0.0")
        name, _, spec = text.strip().partition("@")
        if not NAME.match(name):
            raise VersionError(f"{name!r} is not an evaluator name like namespace/name (lowercase)")
        return cls(name, Requirement.parse(spec or "*"), text.strip())
