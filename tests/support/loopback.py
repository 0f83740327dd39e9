"""A real HTTP server on loopback that answers JSON POSTs, for the outside services tests talk to (no mocks).

Subclasses implement `handle(path, headers, body)` and return (status, body, headers). Every request is logged in
`requests` (path, headers, body) under a lock, before it is answered.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = tuple[int, Any, dict[str, str]]


class LoopbackJsonServer:
    name = "loopback"

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:
                server._serve(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        threading.Thread(target=self._server.serve_forever, name=self.name, daemon=True).start()
        return self.origin

    @property
    def origin(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def handle(self, path: str, headers: dict[str, str], body: Any) -> Reply:
        raise NotImplementedError

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            self._send(handler, (400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}}, {}))
            return
        with self._lock:
            self.requests.append({"path": handler.path, "headers": dict(handler.headers), "body": body})
        self._send(handler, self.handle(handler.path, dict(handler.headers), body))

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        status, body, headers = reply
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            pass
