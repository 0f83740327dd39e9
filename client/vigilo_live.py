"""vigilo_live: the agent side of Vigilo's live evaluation. An agent emits what it does (its LLM outputs, tool
calls, decisions) and hears back what Vigilo's online profile said of it: a nudge or a redirect (a correction
for the agent to act on) or a halt (the agent must stop until an operator resumes it).

Standard library only, so it runs anywhere Python 3.9+ does, and importable without Django:

    from vigilo_live import LiveAgent

    agent = LiveAgent()                          # VIGILO_URL and VIGILO_AGENT_TOKEN; no URL: a no-op
    agent.on_correction(lambda c: ...)           # nudge, redirect: each delivery once, acked after the callback
    agent.on_stop(lambda s: ...)                 # a halt, a refused event (409), SIGTERM/SIGINT, stop()
    agent.install_signal_handlers()
    agent.start_polling()                        # corrections of events judged later (workers, the async mode)
    answer = agent.emit_eval("llm_output", {"text": reply})

The sync mode POSTs each event and dispatches the correction of its answer before `emit_eval` returns; the async
mode queues events and a background thread POSTs them in batches (their corrections come by long-poll or
webhook). Corrections can arrive by more than one path (the sync answer, the long-poll, a webhook): each
delivery id is dispatched at most once per process. A halt, from any path, stops the agent: `running` becomes
False, the `on_stop` callbacks run once, and every later `emit_eval` raises `AgentHalted` until
`wait_resumed()` sees that an operator resumed the agent. An agent never resumes itself.

Callbacks run on the thread that received the correction: the caller's for a sync answer, the poller's, a
webhook server's. A webhook delivery is checked with `verify_webhook` (or served by `webhook_handler`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import json
import logging
import os
import random
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol

log = logging.getLogger("vigilo_live")

USER_AGENT = "vigilo-live/1.0"
EVENTS_PATH = "/api/v1/online/events"
CORRECTIONS_PATH = "/api/v1/online/corrections"
AGENTS_PATH = "/api/v1/online/agents"
EVENT_TYPES = ("llm_output", "tool_call", "decision", "message_sent", "custom")
BATCH_MAX = 500  # the server's limit of one batch
DELIVERY_HEADER = "X-Vigilo-Delivery"
TIMESTAMP_HEADER = "X-Vigilo-Timestamp"
SIGNATURE_HEADER = "X-Vigilo-Signature"
SEEN_MAX = 10_000  # delivery ids remembered for the at-most-once dispatch


class LiveError(Exception):
    """The server refused a request (`status`, its error `code` and `message`) or could not be reached
    (`status` None) after the retries."""

    def __init__(self, status: int | None, code: str, message: str) -> None:
        self.status, self.code, self.message = status, code, message
        super().__init__(f"HTTP {status} {code}: {message}" if status else message)


class AgentHalted(LiveError):
    """The agent is halted: no event is accepted until an operator resumes it (`wait_resumed`)."""

    def __init__(self, *, reason: str, halt_id: str | None, agent: str | None = None, message: str = "") -> None:
        self.reason, self.halt_id, self.agent = reason, halt_id, agent
        default = f"agent {agent!r} is halted: {reason}" if agent else f"the agent is halted: {reason}"
        super().__init__(409, "agent_halted", message or default)


class AgentStopped(RuntimeError):
    """The agent was stopped (stop(), close(), a signal): it emits nothing more."""


class WebhookRefused(ValueError):
    """A webhook delivery that is not Vigilo's: a header missing, a bad signature, a timestamp out of tolerance."""


@dataclass(frozen=True)
class Correction:
    """What Vigilo told the agent about one of its events (the `correction` of docs/live.md)."""

    delivery_id: str
    severity: str  # nudge, redirect or halt
    reason: str
    payload: dict[str, Any]  # the failing binding, its findings and explanation, the other failing bindings
    event: dict[str, Any]  # the judged event: message_id, event_type, trace_id, span_id
    cursor: int | None = None
    agent: str | None = None
    created_at: str | None = None

    @classmethod
    def from_body(cls, body: Any) -> Correction:
        """A correction as every delivery path shows it; ValueError when it is not one."""
        if not isinstance(body, dict):
            raise ValueError("a correction is a JSON object")
        delivery_id, severity = body.get("delivery_id"), body.get("severity")
        if not isinstance(delivery_id, str) or not delivery_id or not isinstance(severity, str):
            raise ValueError("a correction has a delivery_id and a severity")
        cursor, payload, event = body.get("cursor"), body.get("payload"), body.get("event")
        return cls(
            delivery_id=delivery_id,
            severity=severity,
            reason=str(body.get("reason") or ""),
            payload=payload if isinstance(payload, dict) else {},
            event=event if isinstance(event, dict) else {},
            cursor=cursor if isinstance(cursor, int) and not isinstance(cursor, bool) else None,
            agent=body.get("agent") if isinstance(body.get("agent"), str) else None,
            created_at=body.get("created_at") if isinstance(body.get("created_at"), str) else None,
        )


@dataclass(frozen=True)
class Answer:
    """What `emit_eval` got back. `status`: evaluated, pending (a worker finishes: the correction comes later),
    unsampled, filtered, or queued (the async mode: not sent yet)."""

    message_id: str
    status: str
    correction: Correction | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    duplicate: bool = False
    deferred: str = ""


@dataclass(frozen=True)
class Stop:
    """Why the agent stopped. `source`: halt (a halt correction), refused (the server answered 409: the agent was
    halted before), signal, or stop (stop()/close()). A halt has its `halt_id` (the halt's delivery id)."""

    reason: str
    source: str
    halt_id: str | None = None
    correction: Correction | None = None

    @property
    def halted(self) -> bool:
        return self.source in ("halt", "refused")


class _Headers(Protocol):
    def items(self) -> Iterable[tuple[Any, Any]]: ...


class _Seen:
    """One delivery id being, or having been, dispatched: later arrivals wait until its callbacks ran."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.thread = threading.get_ident()


class LiveAgent:
    """One agent process's connection to Vigilo. Thread-safe; see the module docstring."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        mode: str = "sync",
        timeout_s: float = 5.0,
        batch_size: int = 50,
        flush_s: float = 0.2,
        poll_wait_s: float = 20.0,
        retries: int = 3,
        max_queue: int = 10_000,
        amqp_url: str | None = None,
        agent: str | None = None,
    ) -> None:
        url = url if url is not None else os.environ.get("VIGILO_URL") or None
        token = token if token is not None else os.environ.get("VIGILO_AGENT_TOKEN") or None
        if mode not in ("sync", "async", "amqp"):
            raise ValueError(f"mode must be 'sync', 'async' or 'amqp', not {mode!r}")
        self._amqp: _AmqpPublisher | None = None
        if mode == "amqp":
            # High-volume emitters: batches published to vigilo.online (docs/live-amqp.md); corrections still come
            # by long-poll (start_polling), webhook or the agent's own queue on vigilo.corrections.
            amqp_url = amqp_url or os.environ.get("VIGILO_AMQP_URL") or None
            agent = agent or os.environ.get("VIGILO_AGENT_NAME") or None
            if url and not (amqp_url and agent):
                raise ValueError("mode 'amqp' needs amqp_url (VIGILO_AMQP_URL) and agent (VIGILO_AGENT_NAME)")
            if url and amqp_url and agent:
                self._amqp = _AmqpPublisher(amqp_url, agent=agent, token=token or "", timeout_s=timeout_s)
        if not 1 <= batch_size <= BATCH_MAX:
            raise ValueError(f"batch_size must be 1 to {BATCH_MAX}")
        if timeout_s <= 0 or flush_s < 0 or poll_wait_s < 0 or retries < 0 or max_queue < 1:
            raise ValueError("timeout_s must be > 0; flush_s, poll_wait_s and retries >= 0; max_queue >= 1")
        if url:
            parsed = urllib.parse.urlparse(url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise ValueError(f"url {url!r} is not an http(s) URL")
            if not token:
                raise ValueError("a token is required with a URL (the agent's own token: VIGILO_AGENT_TOKEN)")
        self.base = url.rstrip("/") if url else ""
        self.enabled = bool(url)
        self.mode = mode
        self.timeout_s, self.batch_size, self.flush_s = timeout_s, batch_size, flush_s
        self.poll_wait_s, self.retries, self.max_queue = poll_wait_s, retries, max_queue
        self._token = token or ""
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._correction_callbacks: list[Callable[[Correction], Any]] = []
        self._stop_callbacks: list[Callable[[Stop], Any]] = []
        self._seen: OrderedDict[str, _Seen] = OrderedDict()
        self._stop: Stop | None = None
        self._stopped = threading.Event()  # the current stop's callbacks have run
        self._stopping = False  # a graceful stop is flushing the queue
        self._callbacks_thread: int | None = None  # the thread running the on_stop callbacks
        self._signalled = False
        self._closed = False
        self._queue: deque[dict[str, Any]] = deque()
        self._inflight = 0
        self._sender: threading.Thread | None = None
        self._poller: threading.Thread | None = None
        self._poll_wanted = False
        self._unacked = True
        self._cursor = 0
        self._name: str | None = None

    # -- state ---------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """False once stopped: halted (until `wait_resumed`), refused, signalled or closed."""
        return self._stop is None and not self._signalled and not self._stopping

    @property
    def halted(self) -> Stop | None:
        """The halt that stopped the agent, or None."""
        stop = self._stop
        return stop if stop is not None and stop.halted else None

    @property
    def name(self) -> str | None:
        """The agent's name once the server said it (a correction or a halt names it)."""
        return self._name

    @property
    def cursor(self) -> int:
        """The long-poll's cursor: the last correction seen."""
        return self._cursor

    def on_correction(self, callback: Callable[[Correction], Any]) -> Callable[[Correction], Any]:
        """Call `callback(correction)` for each nudge and redirect (usable as a decorator)."""
        with self._lock:
            self._correction_callbacks.append(callback)
        return callback

    def on_stop(self, callback: Callable[[Stop], Any]) -> Callable[[Stop], Any]:
        """Call `callback(stop)` once when the agent stops (a halt, a 409, a signal, stop())."""
        with self._lock:
            self._stop_callbacks.append(callback)
        return callback

    # -- emitting ------------------------------------------------------------------------------------------

    def emit_eval(
        self,
        event_type: str,
        payload: dict[str, Any],
        *,
        message_id: str | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
        timestamp: datetime | str | None = None,
    ) -> Answer | None:
        """Emit one event; None when the SDK is not configured (no URL). AgentHalted when the agent is halted
        (the SDK stops first), AgentStopped after stop(), LiveError when the server refuses it or is out of reach."""
        if not self.enabled:
            return None
        event = _event(
            event_type, payload, message_id=message_id, trace_id=trace_id, span_id=span_id, timestamp=timestamp
        )
        self._check_running()
        if self.mode in ("async", "amqp"):
            self._enqueue(event)
            return Answer(message_id=event["message_id"], status="queued")
        status, body = self._request("POST", EVENTS_PATH, body=event)
        if status not in (200, 202):
            raise self._refused(status, body)
        correction = Correction.from_body(body["correction"]) if body.get("correction") else None
        answer = Answer(
            message_id=str(body.get("message_id", event["message_id"])),
            status=str(body.get("status", "")),
            correction=correction,
            results=list(body.get("results") or []),
            duplicate=bool(body.get("duplicate")),
            deferred=str(body.get("deferred") or ""),
        )
        if correction is not None:
            self.dispatch(correction)
        return answer

    async def aemit_eval(
        self,
        event_type: str,
        payload: dict[str, Any],
        *,
        message_id: str | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
        timestamp: datetime | str | None = None,
    ) -> Answer | None:
        """`emit_eval` for asyncio code: the call runs on a thread, the event loop goes on."""
        return await asyncio.to_thread(
            self.emit_eval,
            event_type,
            payload,
            message_id=message_id,
            trace_id=trace_id,
            span_id=span_id,
            timestamp=timestamp,
        )

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until the async queue is sent (or dropped by a halt); False when `timeout_s` passed first."""
        limit = timeout_s if timeout_s is not None else self.timeout_s * (self.retries + 2) + self.flush_s
        deadline = time.monotonic() + limit
        with self._cond:
            while self._queue or self._inflight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _check_running(self) -> None:
        with self._lock:
            stop = self._stop
            if self.running:
                return
        if stop is not None and stop.halted:
            raise AgentHalted(reason=stop.reason, halt_id=stop.halt_id, agent=self._name)
        raise AgentStopped(f"the agent was stopped: {stop.reason}" if stop else "the agent is stopping")

    def _enqueue(self, event: dict[str, Any]) -> None:
        with self._cond:
            if len(self._queue) >= self.max_queue:
                raise LiveError(None, "queue_full", f"{len(self._queue)} events wait to be sent (max_queue)")
            self._queue.append(event)
            self._cond.notify_all()
            if self._sender is None:
                self._sender = threading.Thread(target=self._send_loop, name="vigilo-live-sender", daemon=True)
                self._sender.start()

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    if self._stop is not None or self._closed:
                        self._sender = None
                        self._cond.notify_all()
                        return
                    self._cond.wait(1.0)
                linger = time.monotonic() + self.flush_s  # fill a batch, unless stopping
                while len(self._queue) < self.batch_size and self.running:
                    left = linger - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                batch = [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]
                self._inflight += len(batch)
            try:
                self._send_batch(batch)
            finally:
                with self._cond:
                    self._inflight -= len(batch)
                    self._cond.notify_all()

    def _send_batch(self, batch: list[dict[str, Any]]) -> None:
        if self._amqp is not None:
            self._amqp_send(batch)
            return
        try:
            status, body = self._request("POST", EVENTS_PATH, body={"events": batch})
            if status == 202:
                return
            raise self._refused(status, body)
        except AgentHalted:
            log.warning("vigilo_live: %d event(s) refused: the agent is halted", len(batch))
        except LiveError as exc:  # not transient, or still failing after the retries: the batch cannot be sent
            log.error("vigilo_live: %d event(s) lost: %s", len(batch), exc)

    def _amqp_send(self, batch: list[dict[str, Any]]) -> None:
        """Publish a batch with confirms; a broker that went away is reconnected to, and the unconfirmed rest
        sent again, all of it, under the same message ids (the consumer dedupes on them)."""
        assert self._amqp is not None
        for attempt in range(self.retries + 1):
            try:
                self._amqp.publish(batch)
                return
            except self._amqp.errors as exc:
                self._amqp.close()
                if attempt == self.retries:
                    log.error("vigilo_live: %d event(s) lost: the broker: %s", len(batch), exc)
                    return
                time.sleep(_backoff(attempt))

    # -- corrections ---------------------------------------------------------------------------------------

    def dispatch(self, correction: Correction) -> bool:
        """Hand a correction to the callbacks (a halt to the stop path), then ack it. At most once per delivery id:
        False when it was dispatched before (a later arrival waits, bounded, until the first one's callbacks ran).
        The long-poll, the sync answers and `webhook_handler` call this; so can an AMQP consumer."""
        with self._lock:
            seen = self._seen.get(correction.delivery_id)
            if seen is None:
                mine = self._seen[correction.delivery_id] = _Seen()
                while len(self._seen) > SEEN_MAX:
                    self._seen.popitem(last=False)
            if correction.agent:
                self._name = correction.agent
        if seen is not None:
            if seen.thread != threading.get_ident():
                seen.done.wait(self.timeout_s)
            return False
        try:
            if correction.severity == "halt":
                # Acked before on_stop runs: a callback that ends the process must not lose the ack.
                self._halt(
                    Stop(
                        reason=correction.reason,
                        source="halt",
                        halt_id=correction.delivery_id,
                        correction=correction,
                    )
                )
            elif self._run_callbacks(correction):
                self._ack(correction.delivery_id)
        finally:
            mine.done.set()
        return True

    def _run_callbacks(self, correction: Correction) -> bool:
        with self._lock:
            callbacks = list(self._correction_callbacks)
        for callback in callbacks:
            try:
                callback(correction)
            except Exception:  # the agent's code: recorded, left unacked (a later process sees it with unacked=1)
                log.exception("vigilo_live: on_correction callback failed for %s", correction.delivery_id)
                return False
        return True

    def _ack(self, delivery_id: str) -> None:
        if not self.enabled:
            return
        try:
            status, body = self._request("POST", f"{CORRECTIONS_PATH}/{urllib.parse.quote(delivery_id)}/ack")
        except LiveError as exc:
            log.warning("vigilo_live: cannot ack %s: %s", delivery_id, exc)
            return
        if status != 200:
            log.warning("vigilo_live: ack of %s refused: %s", delivery_id, self._refused(status, body))

    def start_polling(self, cursor: int | None = None, *, unacked: bool = True) -> None:
        """Long-poll the corrections on a background thread and dispatch them. It starts after `cursor` (default
        0) and keeps the cursor in memory; with `unacked` only corrections not acked yet come (a restarted process
        gets what it missed, not what it handled before)."""
        if not self.enabled:
            return
        with self._lock:
            if cursor is not None:
                self._cursor = cursor
            self._unacked = unacked
            self._poll_wanted = True
            self._poller_ensure()

    def _poller_ensure(self) -> None:
        with self._lock:
            if self._poll_wanted and self._poller is None and self.running and not self._closed:
                self._poller = threading.Thread(target=self._poll_loop, name="vigilo-live-poller", daemon=True)
                self._poller.start()

    def _poll_loop(self) -> None:
        failures = 0
        while True:
            with self._lock:
                if not self.running or self._closed or not self._poll_wanted:
                    self._poller = None
                    return
                query = {"after": self._cursor, "wait": f"{self.poll_wait_s:g}"}
                if self._unacked:
                    query["unacked"] = "1"
            try:
                status, body = self._request(
                    "GET",
                    f"{CORRECTIONS_PATH}?{urllib.parse.urlencode(query)}",
                    timeout_s=self.poll_wait_s + self.timeout_s,
                    while_running=True,
                )
                if status != 200:
                    raise self._refused(status, body)
            except LiveError as exc:
                if not self.running:
                    continue  # stopped meanwhile: the loop ends
                if exc.status in (401, 403):
                    log.error("vigilo_live: the long-poll stops: %s", exc)
                    with self._lock:
                        self._poll_wanted, self._poller = False, None
                    return
                failures += 1
                log.warning("vigilo_live: long-poll failed (%d in a row): %s", failures, exc)
                self._pause(_backoff(failures, cap=30.0))
                continue
            failures = 0
            for raw in body.get("corrections") or []:
                try:
                    correction = Correction.from_body(raw)
                except ValueError as exc:
                    log.warning("vigilo_live: the long-poll answered a malformed correction: %s", exc)
                    continue
                self.dispatch(correction)
            with self._lock:
                cursor = body.get("cursor")
                if isinstance(cursor, int) and cursor > self._cursor:
                    self._cursor = cursor

    def _pause(self, seconds: float) -> None:
        """Sleep, but wake at a stop."""
        with self._cond:
            self._cond.wait_for(lambda: not self.running or self._closed, timeout=seconds)

    # -- stopping and resuming -----------------------------------------------------------------------------

    def _halt(self, stop: Stop) -> None:
        dropped = 0
        with self._cond:
            if stop.correction is not None and stop.correction.agent:
                self._name = stop.correction.agent
            if stop.halt_id and stop.halt_id not in self._seen:  # a 409: the halt itself needs no dispatch later
                seen = self._seen[stop.halt_id] = _Seen()
                seen.done.set()
            if self._stop is not None:
                first = False
            else:
                first = True
                self._stop = stop
                self._stopped.clear()
                dropped = len(self._queue)
                self._queue.clear()  # the server would refuse each of them
                self._cond.notify_all()
        if stop.halt_id:
            self._ack(stop.halt_id)
        if not first:
            return
        if dropped:
            log.warning("vigilo_live: %d queued event(s) dropped: the agent is halted", dropped)
        log.warning("vigilo_live: the agent is halted: %s", stop.reason)
        self._run_stop_callbacks(stop)

    def _run_stop_callbacks(self, stop: Stop) -> None:
        with self._lock:
            callbacks = list(self._stop_callbacks)
            self._callbacks_thread = threading.get_ident()
        try:
            for callback in callbacks:
                try:
                    callback(stop)
                except Exception:  # the agent's code: recorded, the other callbacks still run
                    log.exception("vigilo_live: on_stop callback failed")
        finally:
            with self._lock:
                self._callbacks_thread = None
            self._stopped.set()

    def stop(self, reason: str = "stopped", *, timeout_s: float | None = None) -> None:
        """Stop gracefully: no more events, the async queue flushed, the poller ended, on_stop run once. A stop
        that already happened (a halt) is not run again."""
        self._graceful(Stop(reason=reason, source="stop"), timeout_s=timeout_s)

    def close(self, timeout_s: float | None = None) -> None:
        """stop(), and the agent cannot be resumed any more."""
        self._graceful(Stop(reason="closed", source="stop"), timeout_s=timeout_s)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._amqp is not None:
            self._amqp.close()

    def __enter__(self) -> LiveAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _graceful(self, stop: Stop, *, timeout_s: float | None) -> None:
        with self._cond:
            first = self._stop is None and not self._stopping
            if first:
                self._stopping = True  # `running` is False: emit_eval refuses, the sender sends without lingering
                self._cond.notify_all()
            inside_callback = self._callbacks_thread == threading.get_ident()
        if not first:
            if not inside_callback:  # an on_stop callback that calls close() must not wait for itself
                self._stopped.wait(timeout_s if timeout_s is not None else self.timeout_s)
            return
        try:
            if not self.flush(timeout_s):
                log.warning("vigilo_live: %d event(s) not sent before the stop", len(self._queue) + self._inflight)
        finally:
            with self._cond:
                self._stopping = False
                halted_meanwhile = self._stop is not None  # a halt arrived while flushing: its callbacks ran
                if not halted_meanwhile:
                    self._stop = stop
                    self._stopped.clear()
                self._cond.notify_all()
        if not halted_meanwhile:
            self._run_stop_callbacks(stop)

    def install_signal_handlers(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> None:
        """SIGTERM and SIGINT stop the agent gracefully (`running` turns False at once; the flush and the on_stop
        callbacks run on a helper thread the interpreter waits for). Call it from the main thread."""

        def handler(signum: int, frame: Any) -> None:
            self._signalled = True  # a plain store: a signal handler must not wait for a lock the code holds
            name = signal.Signals(signum).name
            threading.Thread(target=self.stop, args=(f"{name} received",), name="vigilo-live-stop").start()

        for sig in signals:
            signal.signal(sig, handler)

    def wait_resumed(self, timeout_s: float, every_s: float = 1.0) -> bool:
        """After a halt, wait until an operator resumed the agent (its state is active again), then run again:
        `running` is True, the poller goes on. True when resumed (or not halted), False when `timeout_s` passed.
        AgentStopped when the agent was stopped rather than halted."""
        with self._lock:
            stop = self._stop
        if not self.enabled or self.running:
            return True
        if stop is None or not stop.halted or self._closed:
            raise AgentStopped("the agent was stopped, not halted: there is nothing to resume")
        if not self._name:
            raise LiveError(None, "unknown_agent", "the halt did not name the agent")
        path = f"{AGENTS_PATH}/{urllib.parse.quote(self._name)}"
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                status, body = self._request("GET", path)
            except LiveError as exc:  # out of reach after the retries: try again until the deadline
                log.warning("vigilo_live: cannot read the agent's state: %s", exc)
                status, body = 0, {}
            if status == 200 and body.get("state") == "active":
                with self._cond:
                    if self._stop is stop:
                        self._stop = None
                        self._stopped.clear()
                        self._cond.notify_all()
                self._poller_ensure()
                log.warning("vigilo_live: the agent was resumed")
                return True
            if status != 200 and 400 <= status < 500 and status != 429:  # transient ones are tried again
                raise self._refused(status, body)
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(every_s, left))

    # -- HTTP ----------------------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        timeout_s: float | None = None,
        while_running: bool = False,
    ) -> tuple[int, dict[str, Any]]:
        """Send a request; retry what is transient (connection errors, 429, 5xx) with backoff and jitter, bounded
        (and, `while_running`, only while the agent runs). A retried event keeps its message_id: the server stores
        it once. Returns (status, JSON body) for any HTTP answer; LiveError when the server stayed out of reach."""
        headers = {"Authorization": f"Bearer {self._token}", "User-Agent": USER_AGENT, "Accept": "application/json"}
        data = b""
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        url = f"{self.base}{path}"
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(
                url, data=data if method == "POST" else None, method=method, headers=headers
            )
            try:
                with urllib.request.urlopen(request, timeout=timeout_s or self.timeout_s) as response:
                    return response.status, _json_object(response.read())
            except urllib.error.HTTPError as exc:
                raw = exc.read()
                retry = attempt < self.retries and (self.running or not while_running)
                if (exc.code == 429 or exc.code >= 500) and retry:
                    time.sleep(_backoff(attempt + 1, retry_after=exc.headers.get("Retry-After")))
                    continue
                return exc.code, _json_object(raw)
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                if attempt < self.retries and (self.running or not while_running):
                    time.sleep(_backoff(attempt + 1))
                    continue
                reason = getattr(exc, "reason", exc)
                raise LiveError(None, "unreachable", f"cannot reach {self.base}: {reason}") from None
        raise AssertionError("unreachable")

    def _refused(self, status: int, body: dict[str, Any]) -> LiveError:
        """The error of a non-2xx answer; a 409 agent_halted stops the agent first."""
        raw = body.get("error")
        error: dict[str, Any] = raw if isinstance(raw, dict) else {}
        code = str(error.get("code") or "error")
        message = str(error.get("message") or body or "")
        if status == 409 and code == "agent_halted":
            halted = AgentHalted(
                reason=str(error.get("reason") or ""),
                halt_id=error.get("halt_id") if isinstance(error.get("halt_id"), str) else None,
                agent=error.get("agent") if isinstance(error.get("agent"), str) else None,
                message=message,
            )
            if halted.agent:
                self._name = halted.agent
            self._halt(Stop(reason=halted.reason, source="refused", halt_id=halted.halt_id))
            return halted
        return LiveError(status, code, message)


# -- webhooks -------------------------------------------------------------------------------------------------


class _AmqpPublisher:
    """Events published to `vigilo.online` with the agent's name as routing key and its token in the
    `authorization` header, persistent, each confirmed by the broker (py-amqp, the one dependency of this mode:
    `pip install amqp`)."""

    EXCHANGE = "vigilo.online"

    def __init__(self, url: str, *, agent: str, token: str, timeout_s: float) -> None:
        try:
            import amqp  # noqa: PLC0415 - optional: only the amqp mode needs it
        except ImportError:
            raise ValueError("mode 'amqp' needs the `amqp` package (pip install amqp)") from None
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
            raise ValueError(f"amqp_url {url!r} is not an amqp:// URL")
        self._amqp = amqp
        self.errors: tuple[type[BaseException], ...] = (OSError, amqp.exceptions.AMQPError)
        self._params: dict[str, Any] = {
            "host": f"{parts.hostname}:{parts.port or (5671 if parts.scheme == 'amqps' else 5672)}",
            "userid": urllib.parse.unquote(parts.username or "guest"),
            "password": urllib.parse.unquote(parts.password or "guest"),
            "virtual_host": urllib.parse.unquote(parts.path[1:]) if len(parts.path) > 1 else "/",
            "ssl": parts.scheme == "amqps",
            "connect_timeout": timeout_s,
            "read_timeout": timeout_s,
            "write_timeout": timeout_s,
            "confirm_publish": True,
        }
        self.agent, self._token = agent, token
        self._conn: Any = None
        self._channel: Any = None
        self._lock = threading.Lock()

    def publish(self, batch: list[dict[str, Any]]) -> None:
        """Publish the batch, each message confirmed; raises one of `errors` when the broker fails."""
        with self._lock:
            if self._channel is None:
                self._conn = self._amqp.Connection(**self._params)
                self._conn.connect()
                self._channel = self._conn.channel()
            for event in batch:
                message = self._amqp.Message(
                    json.dumps(event),
                    content_type="application/json",
                    delivery_mode=2,
                    message_id=event["message_id"],
                    application_headers={"authorization": f"Bearer {self._token}"},
                )
                self._channel.basic_publish(message, exchange=self.EXCHANGE, routing_key=self.agent)

    def close(self) -> None:
        with self._lock:
            conn, self._conn, self._channel = self._conn, None, None
        if conn is not None:
            try:
                conn.close()
            except (OSError, self._amqp.exceptions.AMQPError):  # closing a connection that already failed
                pass


def verify_webhook(
    secret: str, headers: _Headers, body: bytes, *, tolerance_s: float = 300, now: float | None = None
) -> Correction:
    """The correction of a webhook delivery, once its signature checks out (docs/live.md: HMAC-SHA256 over
    "<timestamp>.<body>" with the agent's webhook secret); WebhookRefused otherwise. `headers` is any mapping
    with `items()` (http.server's headers, a dict, a framework's request headers)."""
    got = {str(k).lower(): str(v).strip() for k, v in headers.items()}
    missing = [h for h in (DELIVERY_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER) if not got.get(h.lower())]
    if missing:
        raise WebhookRefused(f"missing header(s): {', '.join(missing)}")
    stamp = got[TIMESTAMP_HEADER.lower()]
    try:
        signed_at = int(stamp)
    except ValueError:
        raise WebhookRefused(f"{TIMESTAMP_HEADER} {stamp[:40]!r} is not Unix seconds") from None
    current = time.time() if now is None else now
    if abs(current - signed_at) > tolerance_s:
        raise WebhookRefused(
            f"{TIMESTAMP_HEADER} is {current - signed_at:+.0f} s from now, outside the tolerance of {tolerance_s:g} s"
        )
    expected = "sha256=" + hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), got[SIGNATURE_HEADER.lower()].encode("utf-8", "replace")):
        raise WebhookRefused(f"{SIGNATURE_HEADER} does not match the body (wrong secret, or the body was changed)")
    try:
        correction = Correction.from_body(json.loads(body))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise WebhookRefused(f"the body is not a correction: {exc}") from None
    if correction.delivery_id != got[DELIVERY_HEADER.lower()]:
        raise WebhookRefused(f"{DELIVERY_HEADER} is not the body's delivery_id")
    return correction


def webhook_handler(agent: LiveAgent, secret: str, *, max_body: int = 1 << 20) -> type[BaseHTTPRequestHandler]:
    """A request handler for `http.server` that verifies each POST and dispatches its correction into the agent
    (the same at-most-once path as the long-poll): 204 once handled (a duplicate too), 401 when refused.

        server = ThreadingHTTPServer(("0.0.0.0", 8081), webhook_handler(agent, os.environ["VIGILO_WEBHOOK_SECRET"]))
        threading.Thread(target=server.serve_forever, daemon=True).start()
    """

    class WebhookHandler(BaseHTTPRequestHandler):
        server_version = USER_AGENT

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or "0")
            except ValueError:
                length = -1
            if not 0 <= length <= max_body:
                self._answer(413 if length > max_body else 400, "a body of 0 to max_body bytes, with Content-Length")
                return
            body = self.rfile.read(length)
            try:
                correction = verify_webhook(secret, self.headers, body)
            except WebhookRefused as exc:
                log.warning("vigilo_live: webhook refused: %s", exc)
                self._answer(401, str(exc))
                return
            agent.dispatch(correction)
            self._answer(204, "")

        def _answer(self, status: int, message: str) -> None:
            data = json.dumps({"error": message}).encode() if message else b""
            self.send_response(status)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - BaseHTTPRequestHandler's signature
            log.debug("vigilo_live webhook: " + format, *args)

    return WebhookHandler


# -- helpers --------------------------------------------------------------------------------------------------


def _event(
    event_type: str,
    payload: dict[str, Any],
    *,
    message_id: str | None,
    trace_id: str | None,
    span_id: str | None,
    timestamp: datetime | str | None,
) -> dict[str, Any]:
    """An event body, checked as far as the server would refuse it (a refused batch loses all its events)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"event_type {event_type!r}: one of {', '.join(EVENT_TYPES)}")
    if not isinstance(payload, dict):
        raise ValueError("payload must be a dict (a JSON object)")
    if message_id is not None and (not isinstance(message_id, str) or not message_id.strip() or len(message_id) > 200):
        raise ValueError("message_id: a non-empty string of at most 200 characters, unique per agent")
    event: dict[str, Any] = {
        "event_type": event_type,
        "payload": payload,
        "message_id": message_id or uuid.uuid4().hex,
        "timestamp": _timestamp(timestamp),
    }
    if trace_id:
        event["trace_id"] = trace_id
    if span_id:
        event["span_id"] = span_id
    return event


def _timestamp(value: datetime | str | None) -> str:
    """RFC 3339; a naive datetime is UTC. Stamped when emitted: an async event is sent later."""
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat() + ("" if value.tzinfo is not None else "Z")
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1_000_000):06d}Z"


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data or b"{}")
    except ValueError:
        return {"error": {"code": "error", "message": data[:200].decode("utf-8", "replace")}}
    return value if isinstance(value, dict) else {"value": value}


def _backoff(attempt: int, *, retry_after: str | None = None, cap: float = 5.0) -> float:
    try:
        wanted = float(retry_after) if retry_after else 0.0
    except ValueError:
        wanted = 0.0
    return min(cap, max(wanted, random.uniform(0.5, 1.0) * 0.2 * 2**attempt))
