"""A toy support agent to try run targets with: Vigilo's JSON protocol on http://127.0.0.1:8765/agent.

    python examples/agent-target/agent.py [PORT]

It answers from a few keyword rules: refunds (with the amount it found), password resets, invoices, and a hand-off
to a human for anything else. Standard library only; it prints one line when it is ready.
"""

from __future__ import annotations

import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def answer(question: str) -> dict[str, Any]:
    """The agent's output for one question, in the dataset's output format."""
    q = question.lower()
    refund = re.search(r"refund\D*(\d+(?:\.\d+)?)", q)
    if refund:
        amount = float(refund.group(1))
        return {
            "text": f"I have refunded ${amount:.2f} to your card.",
            "structured": {"intent": "refund", "amount": amount},
        }
    if "password" in q:
        return {
            "text": "Open Settings > Security and choose Reset password.",
            "structured": {"intent": "password_reset"},
        }
    if "invoice" in q:
        return {"text": "Your invoices are under Billing > Invoices.", "structured": {"intent": "billing"}}
    return {"text": "Let me connect you with a human colleague.", "structured": {"intent": "handoff"}}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        if self.path != "/agent":
            self._reply(404, {"error": f"no route {self.path}"})
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            question = body["case"]["input"]
        except (ValueError, KeyError, TypeError):
            self._reply(400, {"error": "expected Vigilo's request: {run_id, execution_id, case: {input, ...}}"})
            return
        self._reply(200, answer(question if isinstance(question, str) else json.dumps(question)))

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: Any) -> None:
        pass


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8765
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"toy agent listening on http://127.0.0.1:{server.server_address[1]}/agent", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
