"""POST a JSON body to an outside HTTP service and read its JSON answer: bounded retries, one deadline.

Both outside services Vigilo calls go through here: the model providers of `model-evaluator` guests
(evaluators/model_broker.py) and the agent endpoints that produce a case's output (runs/targets.py).

Connection failures, timeouts, 429 and 5xx are retried with exponential backoff and jitter, honouring
`Retry-After`; anything else fails at once. Every wait (a concurrency slot, connect, each read, a backoff)
respects the caller's deadline, because a thread blocked here cannot be interrupted from outside. Plain Python,
no Django: callers pass their settings in.

Every call names the network policy it is held to (vigilo_project/netpolicy.py). The host is resolved once per
attempt, every address it resolved to is checked, and the connection goes to a checked address, never to a
second lookup of the name (a DNS answer that changes in between cannot get round the check); the Host header and
the TLS server name stay the URL's. A refusal is `CallRefused`, the call's error, and is never retried.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import random
import socket
import sys
import threading
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from vigilo_project.netpolicy import IPAddress, Policy, unmapped

BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 20.0
ERROR_BODY_CHARS = 300
MAX_RESPONSE_BYTES = 4 << 20


class CallFailed(Exception):
    """The call did not produce a JSON answer; the message says why, for the user."""


class CallTimedOut(CallFailed):
    """`request_once` had no answer within its timeout (connecting or reading)."""


class CallRefused(CallFailed):
    """The network policy refused the call before it connected; the message says why. Never retried."""


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class JsonClient:
    """Calls one kind of service. `call` names a call in messages ("model call to 'judge'"), `peer` the service
    ("provider"), `deadline_name` the caller's deadline ("evaluation deadline")."""

    def __init__(self, *, timeout_s: float, max_retries: int, concurrency: int, peer: str, deadline_name: str) -> None:
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.peer = peer
        self.deadline_name = deadline_name
        self._slots = threading.BoundedSemaphore(concurrency)

    def post(
        self, *, url: str, body: Any, headers: dict[str, str], deadline: float, call: str, policy: Policy
    ) -> tuple[Any, int]:
        """The decoded answer and the number of attempts it took; CallFailed when there is none (CallRefused when
        `policy` refuses where the URL leads)."""
        payload = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json", **headers}
        attempt = 0
        while True:
            try:
                return self._attempt(url, payload, headers, deadline, call, policy=policy), attempt + 1
            except _Retryable as exc:
                if attempt >= self.max_retries:
                    raise CallFailed(f"{exc} (gave up after {attempt + 1} attempt{'s' * (attempt > 0)})") from None
                delay = exc.retry_after
                if delay is None:
                    delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**attempt) * (0.5 + random.random() / 2)
                if time.monotonic() + delay >= deadline:
                    raise CallFailed(
                        f"{exc}; retrying after {delay:.2f} s would pass the {self.deadline_name}"
                    ) from None
                time.sleep(delay)
                attempt += 1

    def _attempt(
        self, url: str, payload: bytes, headers: dict[str, str], deadline: float, call: str, *, policy: Policy
    ) -> Any:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CallFailed(f"the {self.deadline_name} passed before the {call} could start")
        if not self._slots.acquire(timeout=remaining):
            raise CallFailed(f"no free slot for the {call} before the {self.deadline_name}")
        try:
            return self._post(url, payload, headers, deadline, call, policy=policy)
        finally:
            self._slots.release()

    def _post(
        self, raw_url: str, payload: bytes, headers: dict[str, str], deadline: float, call: str, *, policy: Policy
    ) -> Any:
        url = urlsplit(raw_url)
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")

        def budget() -> float:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CallFailed(f"{call} ran into the {self.deadline_name}")
            return min(self.timeout_s, left)

        if url.hostname is None:  # the callers check their URLs: a URL without a host is a caller's bug
            raise ValueError(f"{raw_url!r}: no host")
        port = url.port or (443 if url.scheme == "https" else 80)
        addresses = _vetted(url.hostname, port, policy, call)
        conn_cls = _VettedHTTPSConnection if url.scheme == "https" else _VettedHTTPConnection
        conn = conn_cls(url.hostname, port, timeout=budget())
        conn.addresses = addresses
        try:
            conn.request("POST", path, body=payload, headers=headers)
            if conn.sock is not None:
                conn.sock.settimeout(budget())
            response = conn.getresponse()
            chunks, size = [], 0
            while True:
                if conn.sock is not None:
                    conn.sock.settimeout(budget())
                chunk = response.read1(65536) if hasattr(response, "read1") else response.read(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise CallFailed(f"{self.peer} response larger than {MAX_RESPONSE_BYTES} bytes")
                chunks.append(chunk)
            body = b"".join(chunks)
        except TimeoutError:
            if deadline - time.monotonic() <= 0.05:
                raise CallFailed(f"{call} ran into the {self.deadline_name}") from None
            raise _Retryable(f"{call} timed out after {self.timeout_s:g} s") from None
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            raise _Retryable(f"{call} failed: {exc}") from None
        finally:
            conn.close()
        status = response.status
        text = body.decode("utf-8", "replace")
        if status == 429 or status >= 500:
            retry_after = retry_after_seconds(response.getheader("Retry-After"))
            raise _Retryable(f"{self.peer} answered HTTP {status}", retry_after)
        if status != 200:
            raise CallFailed(f"{self.peer} answered HTTP {status}: {text[:ERROR_BODY_CHARS]}")
        try:
            return json.loads(text)
        except ValueError:
            raise CallFailed(f"{self.peer} answered with invalid JSON: {text[:ERROR_BODY_CHARS]}") from None


_AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]


def _vetted(host: str, port: int, policy: Policy, call: str) -> list[_AddrInfo]:
    """Where host:port resolves, every address allowed by `policy`; CallRefused naming the first one that is not.

    A name the policy refuses whatever it resolves to is refused before any lookup.
    """
    refusal = policy.refusal_before_dns(host, port)
    if refusal is not None:
        raise CallRefused(refusal)
    try:
        infos: list[_AddrInfo] = list(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP))
    except OSError as exc:  # gaierror included: DNS trouble is as transient as a refused connection
        raise _Retryable(f"{call} failed: {host}: {exc}") from None
    addresses: list[IPAddress] = []
    for info in infos:
        address = unmapped(ipaddress.ip_address(info[4][0]))
        if address not in addresses:
            addresses.append(address)
    refusal = policy.decide(host, port, addresses)
    if refusal is not None:
        raise CallRefused(refusal)
    return infos


class _VettedHTTPConnection(http.client.HTTPConnection):
    """Connects to the addresses `_vetted` checked, in order, instead of resolving its host again."""

    addresses: list[_AddrInfo]

    def connect(self) -> None:
        sys.audit("http.client.connect", self, self.host, self.port)
        failure: OSError | None = None
        for family, kind, proto, _name, sockaddr in self.addresses:
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(self.timeout)
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                failure = exc
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = sock
            return
        raise failure or OSError(f"{self.host}: no address to connect to")


class _VettedHTTPSConnection(http.client.HTTPSConnection, _VettedHTTPConnection):
    """HTTPSConnection.connect wraps what `_VettedHTTPConnection.connect` opened, with the URL's host as the TLS
    server name (and the name the certificate is checked against)."""


def post_once(*, url: str, body: bytes, headers: dict[str, str], timeout_s: float, policy: Policy, call: str) -> int:
    """POST a JSON `body` once (no retry: the caller's outbox retries with backoff) and return the HTTP status.

    For receivers that answer anything or nothing (webhooks): the answer's body is read, at most
    MAX_RESPONSE_BYTES, and dropped. CallRefused when `policy` refuses where the URL leads; CallFailed when
    the call could not be made or timed out.
    """
    status, _body = request_once(
        method="POST",
        url=url,
        body=body,
        headers={"Content-Type": "application/json", **headers},
        timeout_s=timeout_s,
        policy=policy,
        call=call,
    )
    return status


def request_once(
    *, method: str, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float, policy: Policy, call: str
) -> tuple[int, bytes]:
    """Send one request (no retry) and return the status and the answer's body (at most MAX_RESPONSE_BYTES).

    Errors as `post_once`. The caller sets every header, Content-Type included.
    """
    parts = urlsplit(url)
    if parts.hostname is None or parts.scheme not in ("http", "https"):
        raise CallFailed(f"{call}: {url!r} is not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = _vetted(parts.hostname, port, policy, call)
    except _Retryable as exc:
        raise CallFailed(str(exc)) from None
    conn_cls = _VettedHTTPSConnection if parts.scheme == "https" else _VettedHTTPConnection
    conn = conn_cls(parts.hostname, port, timeout=timeout_s)
    conn.addresses = addresses
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request(method, path, body=body, headers=dict(headers))
        response = conn.getresponse()
        return response.status, response.read(MAX_RESPONSE_BYTES)
    except TimeoutError:
        raise CallTimedOut(f"{call} timed out after {timeout_s:g} s") from None
    except (ConnectionError, http.client.HTTPException, OSError) as exc:
        raise CallFailed(f"{call} failed: {exc}") from None
    finally:
        conn.close()
