"""Pure parts of the Celery transport, checked against the Celery code they stand in for."""

from __future__ import annotations

from celery.utils.saferepr import saferepr
from hypothesis import given
from hypothesis import strategies as st

from outbox.transport.publisher import args_repr

ARGS = st.lists(
    st.one_of(
        st.integers(min_value=-(1 << 70), max_value=1 << 70),
        st.booleans(),
        st.text(max_size=30),
        st.floats(allow_nan=False),
        st.none(),
        st.lists(st.integers(), max_size=5),
    ),
    max_size=300,
)


@given(args=ARGS, maxsize=st.sampled_from([0, 5, 40, 1024]), maxlevels=st.sampled_from([1, 3]))
def test_args_repr_is_celerys_saferepr(args, maxsize, maxlevels):
    assert args_repr(args, maxsize, maxlevels) == saferepr(args, maxsize, maxlevels=maxlevels)


@given(args=st.lists(st.integers(min_value=-(1 << 62), max_value=1 << 62), max_size=400))
def test_args_repr_of_int_lists_around_the_size_limit(args):
    """Lists of ints take the fast path; at and past the limit the result must still be saferepr's."""
    for maxsize in (len(repr(args)) - 1, len(repr(args)), 1024):
        assert args_repr(args, maxsize, 3) == saferepr(args, maxsize, maxlevels=3)
