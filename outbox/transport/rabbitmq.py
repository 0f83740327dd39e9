"""The distributed mode's transport: RabbitMQ through Celery/kombu, with pipelined publisher confirms.

`CeleryTransport` pipelines publisher confirms: one channel in confirm mode (`confirm.select` once), every
message of the batch published without waiting (by `outbox.transport.publisher`), then one wait for the
broker's `basic.ack`/`basic.nack` frames (each delivery tag maps back to its event), bounded by
`VIGILO_PUBLISH_TIMEOUT_S`. Its connection is opened without kombu's `confirm_publish` option, which would wait
for each message's confirm in turn. The batch's frames leave in a few large socket writes, and every wait on the
broker (channel open, declarations, confirms, close) is bounded by the same timeout (see `_batched_io`).

- ack: the event is confirmed (an event whose publish sent several messages, e.g. a Flower `task-sent` event
  with the task, is confirmed when all of them are acked).
- nack, or an error building/serialising one message (unknown task, bad arguments): that event alone is refused.
- no confirm by the deadline, a connection error, or a channel error (the broker closes the channel, e.g. a
  publish to a missing exchange or an oversized message): the channel's unconfirmed messages cannot be told
  apart, so the batch stops and everything unconfirmed is given back uncounted, like an outage. The one
  exception is a channel error raised by a queue/exchange declaration, which the current event's publish made
  synchronously: that event is refused (counted), so a misdeclared route ends dead instead of looping. A message
  the broker rejects by closing the channel at publish (e.g. above its max message size) is therefore retried
  uncounted every couple of seconds, with the error on its row, until someone looks (relay lag shows it).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import amqp.exceptions
import kombu.exceptions
from django.conf import settings
from kombu import Exchange

from outbox.models import OutboxEvent
from outbox.transport import BrokerUnavailable, PublishReport, describe
from outbox.transport.publisher import Publisher
from vigilo_project.celery import app

log = logging.getLogger(__name__)
EVENTS_EXCHANGE = "vigilo.events"

# AMQP (class, method) ids of the synchronous declarations a publish may make (kombu's maybe_declare).
_DECLARE_METHODS = {(40, 10), (50, 10)}  # exchange.declare, queue.declare

_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    kombu.exceptions.OperationalError,  # what Celery re-raises connection errors as
    amqp.exceptions.RecoverableConnectionError,
    amqp.exceptions.ConnectionError,
    ConnectionError,
    socket.timeout,
    TimeoutError,
    OSError,
)


def _channel_error(exc: BaseException) -> Any:
    """The py-amqp channel error (the broker closed the channel) behind `exc`, if any.

    kombu re-raises recoverable channel errors as `OperationalError` with the original as the cause.
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, amqp.exceptions.ChannelError):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


class CeleryTransport:
    """Task messages via Celery's own message format, events to the durable topic exchange `vigilo.events`.

    Publishing never uses Celery's connection pool with its default retry-until-connected (celery#6046: a
    publish can then block indefinitely while the broker is down): the transport opens its own connection with
    a bounded connect timeout, publishes with `retry=False`, and bounds every wait on the broker. The connection
    and its confirm channel are kept for the next batch while healthy (checked before reuse); anything going
    wrong drops them, and the next batch connects afresh. `close()` (or `with CeleryTransport() as t:`) closes.
    """

    def __init__(self, *, broker_url: str | None = None, timeout_s: float | None = None) -> None:
        self.app = app
        self.broker_url = broker_url or None
        self.timeout_s = timeout_s or settings.VIGILO_PUBLISH_TIMEOUT_S
        self.exchange = Exchange(EVENTS_EXCHANGE, type="topic", durable=True)
        self._session: _ConfirmSession | None = None

    def __enter__(self) -> CeleryTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close()

    @contextmanager
    def batch(self) -> Iterator[_ConfirmSession]:
        session, self._session = self._session, None
        if session is None or not session.alive():
            if session is not None:
                session.close()
            session = self._open()
        try:
            yield session
        finally:
            if session.healthy:
                self._session = session
            else:
                session.close()

    def _open(self) -> _ConfirmSession:
        # confirm_publish off for this connection only: the session waits for the whole batch's confirms at once.
        conn = self.app.connection_for_write(
            self.broker_url, connect_timeout=self.timeout_s, transport_options={"confirm_publish": False}
        )
        try:
            conn.ensure_connection(max_retries=1, timeout=self.timeout_s)  # type: ignore[arg-type]  # seconds, a float
            return _ConfirmSession(self, conn)
        except Exception as exc:
            _close(conn, graceful=False, timeout_s=self.timeout_s)
            if isinstance(exc, _CONNECTION_ERRORS) or _channel_error(exc) is not None:
                raise BrokerUnavailable(describe(exc)) from exc
            raise


def _close(conn: Any, *, graceful: bool, timeout_s: float) -> None:
    """Close a connection; never wait unbounded on a broker that stopped answering."""
    try:
        if graceful:
            sock = getattr(getattr(conn.connection, "transport", None), "sock", None)
            if sock is not None:
                sock.settimeout(timeout_s)  # bounds the wait for close-ok
            conn.release()
        else:
            conn.collect()  # drop the socket without the close handshake
    except Exception:  # closing a dead connection: nothing left to do with it
        pass


@contextmanager
def _batched_io(amqp_conn: Any, timeout_s: float, limit: int = 1 << 16) -> Iterator[Callable[[], None]]:
    """Bounded waits, and the frames of many publishes sent in a few socket writes instead of one `sendall` each.

    py-amqp writes every message with its own `sendall`; on loopback that system call, not building the message,
    dominated a batch. Inside this block the transport's raw writer (`_write`, which py-amqp's frame writer calls)
    only buffers, and the buffer goes out when it reaches `limit` bytes, when the caller flushes, and before any
    read that waits (`blocking_read` with a timeout other than 0: opening a channel, `confirm.select` or a queue
    declaration waits for the reply to what it just wrote, which must be on the wire first). Polls with timeout 0
    (py-amqp checks for a `connection.blocked` notice before each publish) do not flush.

    py-amqp waits for those replies without a timeout: here a wait without one is bounded by `timeout_s`
    (socket.timeout, i.e. the broker stopped answering), and so is every flush, like py-amqp's own publish write.
    Yields the flush; what is still buffered on leaving is dropped.
    """
    transport = amqp_conn.transport
    raw_write = transport._write
    raw_read = amqp_conn.blocking_read
    parts: list[bytes] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if not parts:
            return
        data = b"".join(parts)
        parts.clear()
        size = 0
        try:
            with transport.having_timeout(timeout_s):
                raw_write(data)
        except TimeoutError as exc:  # as py-amqp's basic_publish: a write timeout means the socket is dead
            raise amqp.exceptions.RecoverableConnectionError("publish: write timed out") from exc

    def write(data: Any) -> None:
        nonlocal size
        parts.append(bytes(data))  # a copy: the frame writer reuses its buffer
        size += len(data)
        if size >= limit:
            flush()

    def blocking_read(timeout: float | None = None) -> Any:
        if timeout != 0:
            flush()
        return raw_read(timeout_s if timeout is None else timeout)

    had_write = "_write" in vars(transport)
    transport._write = write
    amqp_conn.blocking_read = blocking_read
    try:
        yield flush
    finally:
        parts.clear()
        del amqp_conn.blocking_read
        if had_write:
            transport._write = raw_write
        else:
            del transport._write


class _ConfirmSession:
    """A connection and its one confirm-mode channel: each `publish` sends a whole batch, then waits for its confirms.

    In confirm mode the broker numbers the channel's publishes 1, 2, 3...: they are counted as they leave, so every
    message a publish sends (a Flower `task-sent` event too) is tied to its event before any frame is read. A
    healthy session (every message of the last batch acked or nacked) is reused for the next batch.
    """

    def __init__(self, transport: CeleryTransport, conn: Any) -> None:
        self.transport = transport
        self.conn = conn
        self.amqp_conn = conn.connection
        self.healthy = True
        self.tag = 0  # delivery tag of the channel's last publish
        self.event_id = 0  # the event whose message(s) are being published
        self.owner: dict[int, int] = {}  # unsettled delivery tag -> event id
        self.tags_left: dict[int, int] = {}  # this batch's event id -> its messages not acked yet
        self.refused: dict[int, str] = {}  # this batch's refused events
        with _batched_io(self.amqp_conn, transport.timeout_s):
            channel = self.amqp_conn.channel()  # the py-amqp channel
            channel.confirm_select()
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        self._send = channel.basic_publish
        channel.basic_publish = self._counted_publish
        self.channel = channel
        self.publisher = Publisher(app=transport.app, exchange=transport.exchange, channel=channel)

    def alive(self) -> bool:
        """Still connected, nothing pending from the broker (a close, say) since the last batch."""
        if not self.healthy or not self.conn.connected:
            return False
        try:
            self.amqp_conn.drain_events(timeout=0)
        except TimeoutError:
            return not self.owner
        except Exception:  # closed by the broker or the network meanwhile
            return False
        return not self.owner

    def close(self) -> None:
        _close(self.conn, graceful=self.healthy, timeout_s=self.transport.timeout_s)

    def _counted_publish(self, *args: Any, **kwargs: Any) -> Any:
        result = self._send(*args, **kwargs)
        self.tag += 1
        self.owner[self.tag] = self.event_id
        self.tags_left[self.event_id] = self.tags_left.get(self.event_id, 0) + 1
        return result

    def _settle(self, delivery_tag: int, multiple: bool, *, ok: bool) -> None:
        tags = [t for t in self.owner if t <= delivery_tag] if multiple else [delivery_tag]
        for tag in tags:
            event_id = self.owner.pop(tag, None)
            if event_id is None or event_id not in self.tags_left:
                continue
            self.tags_left[event_id] -= 1
            if not ok:
                self.refused.setdefault(event_id, "MessageNacked: the broker refused the message (basic.nack)")

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(delivery_tag, multiple, ok=True)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(delivery_tag, multiple, ok=False)

    def publish(self, events: list[OutboxEvent]) -> PublishReport:
        report = PublishReport()
        if not events:
            return report
        self.tags_left = {}
        self.refused = report.refused
        try:
            self._publish(events, report)
        except Exception as exc:  # boundary: a bug here must not lose what was already confirmed
            log.exception("outbox relay: publishing the batch failed")
            report.unavailable = report.unavailable or describe(exc)
        if report.unavailable:
            self.healthy = False
        return report

    def _publish(self, events: list[OutboxEvent], report: PublishReport) -> None:
        refused = report.refused
        sent: list[int] = []
        # Routes are declared again in every batch, as when each batch had its own connection: a queue deleted
        # meanwhile is back before messages for it are published (unroutable ones would be acked and dropped).
        self.conn.declared_entities.clear()
        self.publisher.begin_batch()
        with _batched_io(self.amqp_conn, self.transport.timeout_s) as flush:
            for event in events:
                self.event_id = event.id
                before = self.tag
                try:
                    self.publisher.publish(event)
                except Exception as exc:
                    closed = _channel_error(exc)
                    if closed is not None:
                        if tuple(closed.method_sig or ()) in _DECLARE_METHODS:
                            refused[event.id] = describe(closed)
                        report.unavailable = f"channel closed by the broker: {describe(closed)}"
                        break
                    if isinstance(exc, _CONNECTION_ERRORS):
                        report.unavailable = describe(exc)
                        break
                    refused[event.id] = describe(exc)  # this message could not be built or sent: it alone
                    continue
                if self.tag == before:
                    refused[event.id] = "nothing was published for this event"
                    continue
                sent.append(event.id)
            if not report.unavailable:  # otherwise what is still buffered is dropped: it was never sent
                try:
                    flush()
                except _CONNECTION_ERRORS as exc:
                    report.unavailable = describe(exc)

        if not report.unavailable:
            self._wait_for_confirms(report)
        report.confirmed = [i for i in sent if self.tags_left.get(i) == 0 and i not in refused]

    def _wait_for_confirms(self, report: PublishReport) -> None:
        timeout_s = self.transport.timeout_s
        deadline = time.monotonic() + timeout_s
        owner = self.owner
        while owner:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                unconfirmed = len(set(owner.values()))
                report.unavailable = (
                    f"no confirm within {timeout_s:g}s for {unconfirmed} event(s) ({len(owner)} messages)"
                )
                return
            try:
                self.amqp_conn.drain_events(timeout=remaining)
            except TimeoutError:  # socket.timeout: nothing arrived yet
                continue
            except Exception as exc:
                closed = _channel_error(exc)
                if closed is not None:
                    report.unavailable = f"channel closed by the broker: {describe(closed)}"
                    return
                if isinstance(exc, _CONNECTION_ERRORS):
                    report.unavailable = describe(exc)
                    return
                raise
