import pytest

from gating.normalize import NormalizationError, measurement_normalize
from tests.gating.factories import (
    BINARY,
    DEFAULT,
    LINEAR_DOWN,
    LINEAR_NEGATIVE,
    LINEAR_UP,
    OPEN_THRESHOLDS,
    ORDINAL,
    THRESHOLDS,
)

# --- measurement_normalize ---


@pytest.mark.parametrize(
    ("kind", "value", "normalization", "expected"),
    [
        ("binary", True, BINARY, 0.9),
        ("binary", False, BINARY, 0.1),
        ("binary", True, DEFAULT, 1.0),
        ("binary", False, DEFAULT, 0.0),
        ("numeric", 0.0, LINEAR_UP, 0.0),
        ("numeric", 10.0, LINEAR_UP, 1.0),
        ("numeric", 2.5, LINEAR_UP, 0.25),
        ("numeric", 10, LINEAR_UP, 1.0),
        ("numeric", 0.0, LINEAR_DOWN, 1.0),
        ("numeric", 10.0, LINEAR_DOWN, 0.0),
        ("numeric", 2.5, LINEAR_DOWN, 0.75),
        ("numeric", 0.0, LINEAR_NEGATIVE, 0.5),
        ("numeric", -1.0, LINEAR_NEGATIVE, 0.0),
        ("numeric", 0.0, THRESHOLDS, 1.0),
        ("numeric", 0.99, THRESHOLDS, 1.0),
        ("numeric", 1.0, THRESHOLDS, 0.5),
        ("numeric", 4.99, THRESHOLDS, 0.5),
        ("numeric", 5.0, THRESHOLDS, 0.0),
        ("numeric", 60.0, THRESHOLDS, 0.0),
        ("numeric", -1000.0, OPEN_THRESHOLDS, 0.0),
        ("numeric", 0.0, OPEN_THRESHOLDS, 1.0),
        ("numeric", 1e300, OPEN_THRESHOLDS, 1.0),
        ("numeric", 0.0, DEFAULT, 0.0),
        ("numeric", 1, DEFAULT, 1.0),
        ("numeric", 0.42, DEFAULT, 0.42),
        ("ordinal", "safe", ORDINAL, 1.0),
        ("ordinal", "borderline", ORDINAL, 0.5),
        ("ordinal", "unsafe", ORDINAL, 0.0),
    ],
)
def test_measurement_normalize_scores_in_domain_values(kind, value, normalization, expected):
    score = measurement_normalize(kind=kind, value=value, normalization=normalization)

    assert score == expected
    assert type(score) is float


@pytest.mark.parametrize(
    ("kind", "value", "normalization", "message"),
    [
        ("numeric", -0.5, LINEAR_UP, "numeric measurement -0.5 is outside the linear domain [0, 10]"),
        ("numeric", 10.001, LINEAR_DOWN, "numeric measurement 10.001 is outside the linear domain [0, 10]"),
        ("numeric", -0.1, THRESHOLDS, "numeric measurement -0.1 is outside the thresholds domain [0, 60]"),
        ("numeric", 61, THRESHOLDS, "numeric measurement 61 is outside the thresholds domain [0, 60]"),
        (
            "numeric",
            1.2,
            DEFAULT,
            "numeric measurement 1.2 is outside [0, 1]; declare a linear or thresholds normalization to score it",
        ),
        (
            "numeric",
            -0.0001,
            DEFAULT,
            "numeric measurement -0.0001 is outside [0, 1]; declare a linear or thresholds normalization to score it",
        ),
        ("numeric", float("nan"), LINEAR_UP, "numeric measurement nan is not a finite number"),
        ("numeric", float("nan"), DEFAULT, "numeric measurement nan is not a finite number"),
        ("numeric", float("inf"), OPEN_THRESHOLDS, "numeric measurement inf is not a finite number"),
        ("numeric", float("-inf"), LINEAR_UP, "numeric measurement -inf is not a finite number"),
        (
            "numeric",
            10**400,
            OPEN_THRESHOLDS,
            "numeric measurement is too large to be represented as a float",
        ),
        ("ordinal", "meh", ORDINAL, "unknown ordinal label 'meh' (known: 'safe', 'borderline', 'unsafe')"),
        ("ordinal", "Safe", ORDINAL, "unknown ordinal label 'Safe' (known: 'safe', 'borderline', 'unsafe')"),
        ("ordinal", "safe", LINEAR_UP, "an ordinal measurement cannot be scored by a linear normalization"),
        ("ordinal", "safe", DEFAULT, "an ordinal measurement needs an explicit ordinal normalization"),
        ("binary", True, ORDINAL, "a binary measurement cannot be scored by an ordinal normalization"),
        ("binary", True, LINEAR_UP, "a binary measurement cannot be scored by a linear normalization"),
        ("numeric", 1.0, BINARY, "a numeric measurement cannot be scored by a binary normalization"),
        ("numeric", 1.0, ORDINAL, "a numeric measurement cannot be scored by an ordinal normalization"),
        ("binary", 1, BINARY, "a binary measurement must be a boolean, got int"),
        ("numeric", True, DEFAULT, "a numeric measurement must be a number, got bool"),
        ("numeric", "0.5", DEFAULT, "a numeric measurement must be a number, got str"),
        ("ordinal", 1.0, ORDINAL, "an ordinal measurement must be a string label, got float"),
        ("text", "hello", DEFAULT, "unknown measurement kind 'text' (expected binary, numeric or ordinal)"),
    ],
)
def test_measurement_normalize_rejects_what_it_cannot_score_without_clamping(kind, value, normalization, message):
    with pytest.raises(NormalizationError) as raised:
        measurement_normalize(kind=kind, value=value, normalization=normalization)

    assert str(raised.value) == message
