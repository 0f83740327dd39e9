"""The relay's ledger rules on PostgreSQL: skip-locked claims, marking only under the claim, backoff, dead rows."""

from __future__ import annotations

import threading
import uuid
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from outbox.models import OutboxEvent
from outbox.relay import relay_once
from outbox.services import (
    CLAIM_PLAN_SETTINGS,
    Message,
    backoff_seconds,
    claim_sql,
    outbox_claim,
    outbox_mark_published,
    outbox_retry_dead,
    outbox_write,
)
from outbox.transport import BrokerUnavailable, PublishReport
from outbox.transport.embedded import EmbeddedTransport

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.fail("SKIP LOCKED and concurrent claimers need PostgreSQL: set DATABASE_URL (`make test` does)")


class RecordingTransport:
    """A broker stand-in for one batch session.

    Records the keys it sent; nacks the keys in `refuse`; sends the keys in `unconfirmed` without ever getting
    their confirm; stops answering after `down_after` messages (the rest reported unavailable); `unreachable`
    fails opening the session; `report_unavailable=False` omits the reason (a transport that forgot some ids).
    """

    def __init__(
        self,
        *,
        refuse: set[str] | None = None,
        unconfirmed: set[str] | None = None,
        down_after: int | None = None,
        unreachable: bool = False,
        report_unavailable: bool = True,
    ) -> None:
        self.sent: list[str] = []
        self.refuse = refuse or set()
        self.unconfirmed = unconfirmed or set()
        self.down_after = down_after
        self.unreachable = unreachable
        self.report_unavailable = report_unavailable
        self.batches: list[list[str]] = []

    @contextmanager
    def batch(self):
        if self.unreachable:
            raise BrokerUnavailable("ConnectionRefusedError: connection refused")
        yield self

    def publish(self, events: list[OutboxEvent]) -> PublishReport:
        self.batches.append([e.dedupe_key for e in events])
        report = PublishReport()
        for event in events:
            if self.down_after is not None and len(self.sent) >= self.down_after:
                report.unavailable = "ConnectionResetError: connection reset"
                break
            if event.dedupe_key in self.refuse:
                report.refused[event.id] = "MessageNacked: nacked"
                continue
            self.sent.append(event.dedupe_key)
            if event.dedupe_key not in self.unconfirmed:
                report.confirmed.append(event.id)
        if self.unconfirmed and self.report_unavailable:
            report.unavailable = report.unavailable or f"{len(self.unconfirmed)} message(s) not confirmed within 5s"
        return report


def _write(n: int, prefix: str = "k") -> None:
    outbox_write(messages=[Message(topic="t", dedupe_key=f"{prefix}{i}", payload={"i": i}) for i in range(n)])


def _in_thread(fn):
    out: dict = {}

    def run() -> None:
        try:
            out["value"] = fn()
        finally:
            connection.close()

    t = threading.Thread(target=run)
    t.start()
    return t, out


def test_outbox_write_ignores_a_duplicate_dedupe_key():
    _write(2)
    _write(3)
    assert OutboxEvent.objects.count() == 3


def test_claim_skips_rows_locked_by_another_claimer_without_waiting():
    _write(6)
    locked = threading.Event()
    release = threading.Event()

    def hold_first_three() -> list[int]:
        with transaction.atomic():
            ids = list(OutboxEvent.objects.select_for_update().order_by("id").values_list("id", flat=True)[:3])
            locked.set()
            release.wait(10)
        return ids

    t, held = _in_thread(hold_first_three)
    assert locked.wait(10)
    try:
        token, claimed = outbox_claim(limit=10)
    finally:
        release.set()
        t.join()

    assert [e.dedupe_key for e in claimed] == ["k3", "k4", "k5"]
    assert all(e.claim_token == token for e in claimed)
    assert not set(held["value"]) & {e.id for e in claimed}


def test_concurrent_claimers_get_disjoint_rows():
    _write(300)
    barrier = threading.Barrier(2)

    def claim_all() -> list[int]:
        got: list[int] = []
        barrier.wait()
        while True:
            _, events = outbox_claim(limit=7)
            if not events:
                return got
            got += [e.id for e in events]

    (t1, a), (t2, b) = _in_thread(claim_all), _in_thread(claim_all)
    t1.join()
    t2.join()

    assert not set(a["value"]) & set(b["value"])
    assert len(a["value"]) + len(b["value"]) == 300
    assert a["value"] and b["value"]


def _walk(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _walk(child)


def test_the_claim_walks_the_pending_index_and_stops_at_its_batch():
    """Behind a backlog the claim must not read and sort every pending row (quadratic over a drain).

    The table's statistics are those of an empty table here, as they are stale when a burst arrives: the
    planner alone would pick a bitmap scan and a sort.
    """
    _write(2000)
    OutboxEvent.objects.filter(id__in=OutboxEvent.objects.order_by("id").values("id")[:500]).update(
        status=OutboxEvent.Status.PUBLISHED
    )
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(CLAIM_PLAN_SETTINGS)
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + claim_sql(), [now, now, 100, uuid.uuid4(), now])
        [[[explain]]] = cursor.fetchall()
        transaction.set_rollback(True)
    nodes = list(_walk(explain["Plan"]))
    kinds = [(node["Node Type"], node.get("Index Name")) for node in nodes]

    assert ("Index Scan", "outbox_pending") in kinds, kinds
    assert not {"Sort", "Bitmap Heap Scan", "Seq Scan"} & {kind for kind, _ in kinds}, kinds
    [walk] = [node for node in nodes if node.get("Index Name") == "outbox_pending"]
    assert walk["Actual Rows"] == 100  # stopped at the batch, out of 1,500 pending rows


def test_a_claim_inside_a_transaction_leaves_the_planner_settings_as_they_were():
    _write(3)
    with transaction.atomic(), connection.cursor() as cursor:
        _, events = outbox_claim(limit=10)
        cursor.execute("SHOW enable_bitmapscan")
        bitmapscan = cursor.fetchone()[0]
        cursor.execute("SHOW enable_sort")
        sort = cursor.fetchone()[0]
    assert len(events) == 3
    assert (bitmapscan, sort) == ("on", "on")


def test_a_claim_taken_over_after_expiry_cannot_mark_published():
    _write(2)
    old_token, events = outbox_claim(limit=10)
    OutboxEvent.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))  # the old relay stalled
    new_token, again = outbox_claim(limit=10)
    ids = [e.id for e in events]

    assert [e.id for e in again] == ids
    assert outbox_mark_published(ids=ids, token=old_token) == 0
    assert set(OutboxEvent.objects.values_list("status", "claim_token")) == {("pending", new_token)}
    assert outbox_mark_published(ids=ids, token=new_token) == 2
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {"published"}


def test_claimed_rows_are_not_claimed_twice_while_the_claim_holds():
    _write(3)
    outbox_claim(limit=10)
    _, second = outbox_claim(limit=10)
    assert second == []


def test_relay_publishes_and_marks_under_its_claim():
    _write(3)
    transport = RecordingTransport()

    assert relay_once(transport=transport) == 3
    assert transport.batches == [["k0", "k1", "k2"]]  # the whole claim in one publish call
    assert transport.sent == ["k0", "k1", "k2"]
    assert list(OutboxEvent.objects.values_list("status", "claim_token", "attempts")) == [("published", None, 0)] * 3
    assert relay_once(transport=transport) == 0


def test_a_refused_message_backs_off_and_goes_dead_after_the_attempt_limit(settings):
    settings.VIGILO_OUTBOX_MAX_ATTEMPTS = 3
    _write(2)
    transport = RecordingTransport(refuse={"k0"})

    assert relay_once(transport=transport) == 1
    row = OutboxEvent.objects.get(dedupe_key="k0")
    assert (row.status, row.attempts, row.claim_token, row.last_error) == ("pending", 1, None, "MessageNacked: nacked")
    assert timezone.now() - timedelta(seconds=1) <= row.available_at <= timezone.now() + timedelta(seconds=1)
    for expected in (2, 3):
        OutboxEvent.objects.filter(dedupe_key="k0").update(available_at=timezone.now())
        relay_once(transport=transport)
        assert OutboxEvent.objects.get(dedupe_key="k0").attempts == expected
    assert OutboxEvent.objects.get(dedupe_key="k0").status == "dead"
    OutboxEvent.objects.filter(dedupe_key="k0").update(available_at=timezone.now())
    assert relay_once(transport=transport) == 0  # dead rows are not relayed
    assert transport.sent == ["k1"]


def test_retrying_a_dead_row_publishes_it():
    _write(1)
    OutboxEvent.objects.update(status="dead", attempts=10, last_error="x")

    assert outbox_retry_dead(ids=list(OutboxEvent.objects.values_list("id", flat=True))) == 1
    assert list(OutboxEvent.objects.values_list("status", "attempts", "last_error")) == [("pending", 0, "")]
    assert relay_once(transport=RecordingTransport()) == 1
    assert OutboxEvent.objects.get().status == "published"


def test_retry_leaves_rows_that_are_not_dead_alone():
    _write(1)
    assert outbox_retry_dead(ids=list(OutboxEvent.objects.values_list("id", flat=True))) == 0


def test_broker_down_midway_marks_what_was_confirmed_and_gives_back_the_rest_uncounted():
    _write(5)

    assert relay_once(transport=RecordingTransport(down_after=2)) == 2
    rows = list(OutboxEvent.objects.order_by("id").values_list("status", "attempts", "claim_token"))
    assert rows == [("published", 0, None)] * 2 + [("pending", 0, None)] * 3
    assert all(
        "broker unavailable" in e
        for e in OutboxEvent.objects.filter(status="pending").values_list("last_error", flat=True)
    )


def _rows() -> dict[str, tuple]:
    return {
        r.dedupe_key: (r.status, r.attempts, r.claim_token)
        for r in OutboxEvent.objects.order_by("id").only("dedupe_key", "status", "attempts", "claim_token")
    }


def test_refused_and_unconfirmed_in_one_batch_are_each_handled_their_way():
    _write(6)
    before = timezone.now()

    published = relay_once(transport=RecordingTransport(refuse={"k1"}, unconfirmed={"k3", "k4"}))

    assert published == 3
    assert _rows() == {
        "k0": ("published", 0, None),
        "k1": ("pending", 1, None),  # nacked: one attempt counted, rescheduled with backoff
        "k2": ("published", 0, None),
        "k3": ("pending", 0, None),  # sent, never confirmed: given back uncounted
        "k4": ("pending", 0, None),
        "k5": ("published", 0, None),
    }
    refused = OutboxEvent.objects.get(dedupe_key="k1")
    assert refused.last_error == "MessageNacked: nacked"
    for row in OutboxEvent.objects.filter(dedupe_key__in=["k3", "k4"]):
        assert row.last_error == "broker unavailable: 2 message(s) not confirmed within 5s"
        # BROKER_DOWN_DELAY_S: not retried at once (jittered between half the delay and the delay)
        assert before + timedelta(seconds=0.9) <= row.available_at <= timezone.now() + timedelta(seconds=2.1)
    assert set(OutboxEvent.objects.filter(status="published").values_list("published_at", flat=True)) != {None}


def test_ids_a_transport_neither_confirmed_nor_refused_are_given_back_not_left_claimed():
    _write(3)

    assert relay_once(transport=RecordingTransport(unconfirmed={"k2"}, report_unavailable=False)) == 2
    assert _rows()["k2"] == ("pending", 0, None)
    assert OutboxEvent.objects.get(dedupe_key="k2").last_error == "broker unavailable: no confirm from the broker"


def test_an_unreachable_broker_gives_the_whole_batch_back_uncounted():
    _write(3)

    assert relay_once(transport=RecordingTransport(unreachable=True)) == 0
    assert set(_rows().values()) == {("pending", 0, None)}
    assert set(OutboxEvent.objects.values_list("last_error", flat=True)) == {
        "broker unavailable: ConnectionRefusedError: connection refused"
    }


def test_a_transport_that_crashes_still_releases_the_claim_and_raises():
    _write(2)

    class Crashing(RecordingTransport):
        def publish(self, events):
            raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        relay_once(transport=Crashing())
    assert set(_rows().values()) == {("pending", 0, None)}  # claim released, no attempt counted


def test_embedded_transport_confirms_what_the_pool_took_and_refuses_the_rest():
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1)
    events = [OutboxEvent(id=1, topic="t", dedupe_key="a", payload={"x": 1})]
    with EmbeddedTransport(pool).batch() as session:
        assert session.publish(events) == PublishReport(confirmed=[1])
    pool.shutdown()
    task_event = OutboxEvent(id=2, topic="t", dedupe_key="b", payload={"task": "runs.process_chunk", "args": [1]})
    with EmbeddedTransport(pool).batch() as session:
        report = session.publish([events[0], task_event])
    assert report.confirmed == [1]  # an event is only logged
    assert list(report.refused) == [2] and "RuntimeError" in report.refused[2]  # the pool is shut down


@pytest.mark.parametrize("attempts", [1, 2, 5, 10, 20])
def test_backoff_is_jittered_exponential_and_capped(attempts):
    values = [backoff_seconds(attempts) for _ in range(200)]
    assert all(0 <= v <= min(300.0, 0.5 * 2**attempts) for v in values)
    assert len(set(values)) > 1
