"""The after-commit kick hooks: isolated from each other's failures, removable, run once per commit that wrote rows."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from django.db import transaction

from outbox.embedded import EmbeddedRuntime
from outbox.hooks import kick_hook_register, kick_hook_unregister, kick_hooks_run
from outbox.models import OutboxEvent
from outbox.services import Message, outbox_write


class Recorder:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def _failing() -> None:
    raise RuntimeError("broker exploded")


@pytest.fixture
def registered():
    """Register hooks for one test; every one is unregistered afterwards, whatever the test did."""
    hooks = []

    def register(*new):
        for hook in new:
            kick_hook_register(hook)
            hooks.append(hook)

    yield register
    for hook in hooks:
        kick_hook_unregister(hook)


def _write(key: str) -> None:
    outbox_write(messages=[Message(topic="t", dedupe_key=key, payload={})])


def test_a_raising_hook_is_logged_and_the_others_still_run(registered, caplog):
    before, after = Recorder(), Recorder()
    registered(before, _failing, after)

    with caplog.at_level(logging.ERROR, logger="outbox.hooks"):
        kick_hooks_run()

    assert (before.calls, after.calls) == (1, 1)
    assert [r.exc_info[1].args for r in caplog.records if r.exc_info] == [("broker exploded",)]


def test_an_unregistered_hook_no_longer_runs(registered):
    kept, removed = Recorder(), Recorder()
    registered(kept, removed)

    kick_hook_unregister(removed)
    kick_hooks_run()

    assert (kept.calls, removed.calls) == (1, 0)


def test_registering_a_hook_twice_runs_it_once_and_unregistering_a_stranger_is_a_no_op(registered):
    hook = Recorder()
    registered(hook, hook)

    kick_hook_unregister(Recorder())
    kick_hooks_run()

    assert hook.calls == 1


@pytest.mark.django_db(transaction=True)
def test_a_commit_runs_the_hooks_once_after_it_commits(registered):
    hook = Recorder()
    registered(hook)

    with transaction.atomic():
        _write("k1")
        assert hook.calls == 0  # not before the rows are visible to the relay

    assert hook.calls == 1


@pytest.mark.django_db(transaction=True)
def test_a_rollback_runs_no_hook(registered):
    hook = Recorder()
    registered(hook)

    with pytest.raises(RuntimeError, match="roll back"), transaction.atomic():
        _write("k1")
        raise RuntimeError("roll back")

    assert hook.calls == 0
    assert not OutboxEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_raising_hook_does_not_reach_the_code_that_committed(registered):
    hook = Recorder()
    registered(_failing, hook)

    with transaction.atomic():
        _write("k1")

    assert hook.calls == 1
    assert list(OutboxEvent.objects.values_list("dedupe_key", flat=True)) == ["k1"]


@pytest.mark.django_db(transaction=True)
def test_the_embedded_runtime_is_woken_by_a_commit_and_stops_listening_when_stopped():
    # The relay thread polls once a minute: only the kick can make it publish the row within the wait below.
    runtime = EmbeddedRuntime(reap=lambda: None, workers=1, poll_s=60)
    with runtime:
        _write("k1")
        published = _wait(lambda: OutboxEvent.objects.filter(status=OutboxEvent.Status.PUBLISHED).exists())
    assert published
    runtime.kick.clear()

    _write("k2")

    assert not runtime.kick.is_set()


@pytest.mark.django_db(transaction=True)
def test_the_embedded_runtime_runs_the_reap_it_was_given(monkeypatch):
    monkeypatch.setattr("outbox.embedded.REAP_EVERY_S", 0.0)
    reaped = threading.Event()

    with EmbeddedRuntime(reap=reaped.set, workers=1, poll_s=0.01):
        assert reaped.wait(10)


@pytest.mark.django_db(transaction=True)
def test_a_failing_pass_does_not_end_the_embedded_relay_thread(monkeypatch, caplog):
    """A reap (or relay) pass that raises is logged and the next pass runs: the thread must outlive a hiccup."""
    monkeypatch.setattr("outbox.embedded.REAP_EVERY_S", 0.0)
    calls = Recorder()

    def reap() -> None:
        calls()
        if calls.calls == 1:
            raise RuntimeError("database went away")

    with caplog.at_level(logging.ERROR, logger="outbox.embedded"), EmbeddedRuntime(reap=reap, workers=1, poll_s=0.01):
        assert _wait(lambda: calls.calls >= 2)
        _write("after-the-failure")
        assert _wait(lambda: OutboxEvent.objects.filter(status=OutboxEvent.Status.PUBLISHED).exists())
    assert "embedded relay pass failed" in caplog.text


def _wait(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
