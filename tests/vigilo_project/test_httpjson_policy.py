"""The network policy enforced by httpjson on loopback: resolved once, every address checked, the checked address
connected to (the name kept for Host and TLS), a refusal never retried and never sent."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.loopback import LoopbackJsonServer, Reply
from vigilo_project.httpjson import CallRefused, JsonClient
from vigilo_project.netpolicy import policy_parse

SOURCE = "VIGILO_NETWORK_POLICY"


class Echo(LoopbackJsonServer):
    name = "echo"

    def handle(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        return 200, {"path": path, "body": body}, {}

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.server_address[1]


class TlsEcho(Echo):
    """The same server behind TLS, remembering the server name (SNI) each client asked for."""

    name = "tls-echo"

    def __init__(self, cert: str, key: str) -> None:
        super().__init__()
        self.cert, self.key = cert, key
        self.server_names: list[str | None] = []

    def start(self) -> str:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:
                owner._serve(self)

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        context.sni_callback = lambda _sock, name, _ctx: self.server_names.append(name)
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        threading.Thread(target=server.serve_forever, name=self.name, daemon=True).start()
        return self.origin


@pytest.fixture
def echo():
    server = Echo()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def lookups(monkeypatch):
    """Every name resolution httpjson makes (the real resolver answers)."""
    seen: list[str] = []
    real = socket.getaddrinfo

    def counting(host, *args, **kwargs):
        seen.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    return seen


def client(max_retries: int = 3) -> JsonClient:
    return JsonClient(timeout_s=5, max_retries=max_retries, concurrency=2, peer="agent", deadline_name="deadline")


def post(url: str, policy) -> Any:
    data, _attempts = client().post(
        url=url, body={"q": 1}, headers={}, deadline=time.monotonic() + 10, call="agent call", policy=policy
    )
    return data


def test_a_name_resolving_to_an_address_the_policy_refuses_is_refused_unsent_and_not_retried(echo, lookups):
    policy = policy_parse({"allow": ["127.0.0.2"]}, source=SOURCE)
    with pytest.raises(CallRefused) as refused:
        post(f"http://localhost:{echo.port}/agent", policy)
    assert str(refused.value).startswith("network policy refused ")
    assert "(loopback address of localhost): not allowed by VIGILO_NETWORK_POLICY" in str(refused.value)
    assert echo.requests == []
    assert lookups == ["localhost"]  # one attempt of the four max_retries=3 allows


def test_the_same_name_is_called_when_its_address_is_allowed(echo):
    policy = policy_parse({"allow": ["127.0.0.1", "::1"]}, source=SOURCE)
    assert post(f"http://localhost:{echo.port}/agent", policy) == {"path": "/agent", "body": {"q": 1}}
    [request] = echo.requests
    assert request["headers"]["Host"] == f"localhost:{echo.port}"


def test_deny_all_refuses_without_resolving_the_name(echo, lookups):
    with pytest.raises(CallRefused, match=r"refused localhost:\d+: VIGILO_NETWORK_POLICY refuses every call"):
        post(f"http://localhost:{echo.port}/agent", policy_parse("deny-all", source=SOURCE))
    assert lookups == []
    assert echo.requests == []


def test_the_connection_goes_to_the_checked_address_not_to_a_second_lookup(echo, monkeypatch):
    """A DNS answer that changes between the check and the connect (a rebinding) is never used: the name is
    resolved once, and the request, with the name as its Host, reaches the address that was checked."""
    answers: list[str] = []
    real = socket.getaddrinfo

    def rebinding(host, port, *args, **kwargs):
        if host != "agent.test":
            return real(host, port, *args, **kwargs)
        answers.append("127.0.0.1" if not answers else "10.255.255.1")
        return real(answers[-1], port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    policy = policy_parse({"allow": ["127.0.0.1"]}, source=SOURCE)
    assert post(f"http://agent.test:{echo.port}/agent", policy) == {"path": "/agent", "body": {"q": 1}}
    assert answers == ["127.0.0.1"]
    assert echo.requests[0]["headers"]["Host"] == f"agent.test:{echo.port}"


@pytest.fixture
def tls_echo(tmp_path, monkeypatch):
    # openssl is part of the machine (Debian's base system): missing, the test fails and says why, it never skips.
    assert shutil.which("openssl"), (
        "the openssl command is needed to make the test certificate (apt-get install openssl)"
    )
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
    subprocess.run(
        [*command, "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the default HTTPS context trusts it
    server = TlsEcho(str(cert), str(key))
    server.start()
    yield server
    server.stop()


def test_https_keeps_the_name_for_the_tls_server_name_and_the_certificate(tls_echo):
    policy = policy_parse({"allow": ["127.0.0.1", "::1"]}, source=SOURCE)
    assert post(f"https://localhost:{tls_echo.port}/agent", policy) == {"path": "/agent", "body": {"q": 1}}
    assert tls_echo.server_names == ["localhost"]
    assert tls_echo.requests[0]["headers"]["Host"] == f"localhost:{tls_echo.port}"
