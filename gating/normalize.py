"""Normalization (docs/architecture.md): one raw measurement becomes a score in [0, 1].

Nothing here clamps: a measurement outside its declared domain is an error the user has to see, not a score that
quietly looks plausible. Also the float tolerance and the number format the gate's messages share.
"""

from __future__ import annotations

import bisect
import math

from gating.profile import Normalization

# Scores are floats computed from user numbers; 0.1 + 0.2 must still pass a 0.3 threshold.
EPSILON = 1e-9


class NormalizationError(ValueError):
    """A measurement that cannot be scored under its binding's normalization."""


def measurement_normalize(*, kind: str, value: bool | float | str, normalization: Normalization) -> float:
    """Map one raw measurement to a score in [0, 1]; raise NormalizationError instead of clamping."""
    if kind == "binary":
        if not isinstance(value, bool):
            raise NormalizationError(f"a binary measurement must be a boolean, got {type(value).__name__}")
        if normalization.kind == "binary":
            score = normalization.true_score if value else normalization.false_score
            if score is None:
                raise NormalizationError(f"the binary normalization has no score for {str(value).lower()}")
            return float(score)
        if normalization.kind == "default":
            return 1.0 if value else 0.0
        raise _mismatch(kind, normalization.kind)

    if kind == "numeric":
        number = _finite(value)
        if normalization.kind == "linear":
            return _linear(number, normalization)
        if normalization.kind == "thresholds":
            return _thresholds(number, normalization)
        if normalization.kind == "default":
            if not 0.0 <= number <= 1.0:
                raise NormalizationError(
                    f"numeric measurement {number_show(number)} is outside [0, 1]; "
                    "declare a linear or thresholds normalization to score it"
                )
            return number
        raise _mismatch(kind, normalization.kind)

    if kind == "ordinal":
        if not isinstance(value, str):
            raise NormalizationError(f"an ordinal measurement must be a string label, got {type(value).__name__}")
        if normalization.kind == "ordinal":
            if value not in normalization.labels:
                known = ", ".join(repr(label) for label in normalization.labels)
                raise NormalizationError(f"unknown ordinal label {value!r} (known: {known})")
            return float(normalization.labels[value])
        if normalization.kind == "default":
            raise NormalizationError("an ordinal measurement needs an explicit ordinal normalization")
        raise _mismatch(kind, normalization.kind)

    raise NormalizationError(f"unknown measurement kind {kind!r} (expected binary, numeric or ordinal)")


def number_show(number: float) -> str:
    """A number as every gate message prints it: six significant digits, no trailing zeros."""
    return f"{number:.6g}"


def _finite(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise NormalizationError(f"a numeric measurement must be a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise NormalizationError("numeric measurement is too large to be represented as a float") from None
    if not math.isfinite(number):
        raise NormalizationError(f"numeric measurement {number!r} is not a finite number")
    return number


def _linear(number: float, normalization: Normalization) -> float:
    low, high = normalization.min_value, normalization.max_value
    if low is None or high is None or not low < high:
        raise NormalizationError("the linear normalization needs min < max")
    if not low <= number <= high:
        raise NormalizationError(
            f"numeric measurement {number_show(number)} is outside the linear domain "
            f"[{number_show(low)}, {number_show(high)}]"
        )
    if normalization.direction == "lower":
        return (high - number) / (high - low)
    return (number - low) / (high - low)


def _thresholds(number: float, normalization: Normalization) -> float:
    low, high = normalization.min_value, normalization.max_value
    if (low is not None and number < low) or (high is not None and number > high):
        shown_low = number_show(low) if low is not None else "-inf"
        shown_high = number_show(high) if high is not None else "inf"
        raise NormalizationError(
            f"numeric measurement {number_show(number)} is outside the thresholds domain [{shown_low}, {shown_high}]"
        )
    if len(normalization.scores) != len(normalization.cutpoints) + 1:
        raise NormalizationError("the thresholds normalization needs one more score than cutpoints")
    # bisect_right counts the cutpoints <= value: a value exactly on a cutpoint belongs to the band above it.
    return float(normalization.scores[bisect.bisect_right(normalization.cutpoints, number)])


def _mismatch(kind: str, normalization_kind: str) -> NormalizationError:
    return NormalizationError(
        f"{_article(kind)} {kind} measurement cannot be scored by "
        f"{_article(normalization_kind)} {normalization_kind} normalization"
    )


def _article(word: str) -> str:
    return "an" if word[:1] in ("a", "e", "i", "o", "u") else "a"
