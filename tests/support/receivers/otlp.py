"""A real OTLP/HTTP receiver on loopback: decodes what an OpenTelemetry exporter sends with opentelemetry-proto.

`POST /v1/logs` and `POST /v1/traces` take `application/x-protobuf` (gzip too) like a collector: 415 for any
other content type, 400 for a body that does not decode, 404 elsewhere; a 2xx answer is the protobuf
ExportXServiceResponse. It keeps the decoded log records and spans (ids as lowercase hex, attributes as plain
dicts), every body and header set, and can be told to fail the next requests or to report a partial success.
`stop()` then `start()` serves again on the same port: an outage, as the relay sees it.
"""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

PROTOBUF = "application/x-protobuf"


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def _attributes(items: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in items}


class OtlpReceiver:
    def __init__(self, *, keep_decoded: bool = True) -> None:
        self.keep_decoded = keep_decoded  # off: count only (a bench that measures the sender)
        self.log_records: list[dict[str, Any]] = []
        self.spans: list[dict[str, Any]] = []
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.received_logs = 0
        self._lock = threading.Lock()
        self._failures: list[tuple[int, bytes]] = []
        self._partial: int = 0
        self._server: ThreadingHTTPServer | None = None
        self._port = 0

    # -- control ------------------------------------------------------------------------------------------

    def start(self) -> str:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:
                receiver._serve(self)

            def do_GET(self) -> None:  # the counts, for a receiver in another process (bench/exports.py)
                with receiver._lock:
                    body = json.dumps({"logs": receiver.received_logs, "requests": len(receiver.bodies)}).encode()
                receiver._send(self, 200, body, "application/json")

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True).start()
        return self.origin

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def fail_with(self, status: int, *, times: int = 1, body: bytes = b"") -> None:
        with self._lock:
            self._failures += [(status, body)] * times

    def partial_reject(self, count: int) -> None:
        with self._lock:
            self._partial = count

    def records_by_id(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        with self._lock:
            for record in self.log_records:
                out.setdefault(record["attributes"].get("vigilo.record.id", ""), []).append(record)
        return out

    # -- serving ------------------------------------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        path = handler.path.split("?")[0]
        if path not in ("/v1/logs", "/v1/traces"):
            return self._send(handler, 404, b"not found", "text/plain")
        if (handler.headers.get("Content-Type") or "").split(";")[0].strip() != PROTOBUF:
            return self._send(handler, 415, b"unsupported content type", "text/plain")
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            return self._send(handler, failure[0], failure[1], "text/plain")
        try:
            body = gzip.decompress(raw) if handler.headers.get("Content-Encoding") == "gzip" else raw
            decoded = self._decode(path, body)
        except (DecodeError, OSError, ValueError) as exc:
            return self._send(handler, 400, f"undecodable body: {exc}".encode(), "text/plain")
        with self._lock:
            self.bodies.append(raw if self.keep_decoded else b"")
            self.headers.append({key.lower(): value for key, value in handler.headers.items()})
            if path == "/v1/logs":
                self.received_logs += decoded
            rejected, self._partial = (self._partial, 0) if path == "/v1/logs" else (0, self._partial)
        answer = ExportLogsServiceResponse() if path == "/v1/logs" else ExportTraceServiceResponse()
        if rejected:
            answer.partial_success.rejected_log_records = rejected  # type: ignore[union-attr]
            answer.partial_success.error_message = "rejected by the test"
        self._send(handler, 200, answer.SerializeToString(), PROTOBUF)

    def _decode(self, path: str, body: bytes) -> int:
        if path == "/v1/logs":
            logs = ExportLogsServiceRequest()
            logs.ParseFromString(body)
            count = 0
            for resource_logs in logs.resource_logs:
                resource = _attributes(resource_logs.resource.attributes) if self.keep_decoded else {}
                for scope_logs in resource_logs.scope_logs:
                    count += len(scope_logs.log_records)
                    if not self.keep_decoded:
                        continue
                    decoded = [
                        {
                            "event_name": record.event_name,
                            "trace_id": record.trace_id.hex(),
                            "span_id": record.span_id.hex(),
                            "time_unix_nano": record.time_unix_nano,
                            "severity": record.severity_text,
                            "attributes": _attributes(record.attributes),
                            "resource": resource,
                            "scope": scope_logs.scope.name,
                        }
                        for record in scope_logs.log_records
                    ]
                    with self._lock:
                        self.log_records += decoded
            return count
        traces = ExportTraceServiceRequest()
        traces.ParseFromString(body)
        for resource_spans in traces.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                decoded = [
                    {
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "name": span.name,
                        "start": span.start_time_unix_nano,
                        "end": span.end_time_unix_nano,
                        "attributes": _attributes(span.attributes),
                        "resource": resource,
                    }
                    for span in scope_spans.spans
                ]
                with self._lock:
                    self.spans += decoded
        return 0

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
