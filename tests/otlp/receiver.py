#!/usr/bin/env python3
"""A minimal OTLP/HTTP receiver that decodes with the official opentelemetry-proto package.

Accepts POST /v1/traces, /v1/logs and /v1/metrics with protobuf bodies
(Content-Type application/x-protobuf, the default when none is given), optionally
Content-Encoding gzip or deflate, and writes one JSON line per span, log record and metric data
point to --out. Bodies sent as application/json (OTLP/JSON: hex trace and span ids) are decoded
too, by protobuf's strict JSON parser once the ids are re-encoded, and answered with "{}";
any other Content-Type is 415. A 200 answer carries the empty serialized Export*ServiceResponse of
the request's signal, so a client that parses the response succeeds.

CLI:
  receiver.py [--port P] [--port-file FILE] [--out FILE] [--fail-first N]
      [--require-header K=V]... [--requests-out FILE]

--port 0 (default) binds a free port on 127.0.0.1; the chosen port is written to --port-file
(atomically, once listening), or to stdout without one. Each request, checked in this order:
unknown path 404; wrong method 405; a --require-header missing 401; one of the first
--fail-first N otherwise valid requests 503 with Retry-After: 1, nothing recorded; an unknown
Content-Encoding or Content-Type 415; a body that does not decode 400; else 200. --out lines
are flushed before the answer is sent, so once a client has its 200 the lines are in the file:

  {"signal":"traces","trace_id":hex,"span_id":hex,"parent_span_id":hex or "","name":...,
   "kind":int,"start_ns":int,"end_ns":int,"attributes":{k: value},"resource":{k: value},
   "scope":{"name","version"},"status_code":int,"status_message":str}
  {"signal":"logs","trace_id":hex or "","span_id":hex or "","time_ns":int,"observed_time_ns":int,
   "severity_number":int,"event_name":str,"body":value,"attributes":{...},"resource":{...},
   "scope":{...}}
  {"signal":"metrics","name":...,"unit":...,"kind":"sum"|"gauge"|"histogram"|...,
   "temporality":int,"is_monotonic":bool,"attributes":{...},"value":number (a histogram's sum),
   "count":int (histograms), "start_ns":int,"time_ns":int,"resource":{...},"scope":{...}}

Values: string, bool, int, float as JSON; arrays as lists; kvlists as objects; bytes as hex.
--requests-out appends one line per HTTP request: {"path","status","content_type",
"content_encoding","items","headers"}. SIGTERM or SIGINT stops it cleanly (exit 0).

Tested with tests/otlp/claude_telemetry.py (protobuf and JSON, gzip on and off).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import signal
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

SIGNALS = {
    "/v1/traces": (
        "traces",
        trace_service_pb2.ExportTraceServiceRequest,
        trace_service_pb2.ExportTraceServiceResponse,
    ),
    "/v1/logs": (
        "logs",
        logs_service_pb2.ExportLogsServiceRequest,
        logs_service_pb2.ExportLogsServiceResponse,
    ),
    "/v1/metrics": (
        "metrics",
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
    ),
}


# --------------------------------------------------------------------------- decoding


def any_value(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "string_value":
        return v.string_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "int_value":
        return v.int_value
    if kind == "double_value":
        return v.double_value
    if kind == "bytes_value":
        return v.bytes_value.hex()
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    return None


def attributes(kvs) -> dict:
    return {kv.key: any_value(kv.value) for kv in kvs}


def scope_of(scope) -> dict:
    return {"name": scope.name, "version": scope.version}


def traces_items(req) -> list[dict]:
    out = []
    for rs in req.resource_spans:
        resource = attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            scope = scope_of(ss.scope)
            for span in ss.spans:
                out.append(
                    {
                        "signal": "traces",
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "name": span.name,
                        "kind": span.kind,
                        "start_ns": span.start_time_unix_nano,
                        "end_ns": span.end_time_unix_nano,
                        "attributes": attributes(span.attributes),
                        "resource": resource,
                        "scope": scope,
                        "status_code": span.status.code,
                        "status_message": span.status.message,
                    }
                )
    return out


def logs_items(req) -> list[dict]:
    out = []
    for rl in req.resource_logs:
        resource = attributes(rl.resource.attributes)
        for sl in rl.scope_logs:
            scope = scope_of(sl.scope)
            for record in sl.log_records:
                out.append(
                    {
                        "signal": "logs",
                        "trace_id": record.trace_id.hex(),
                        "span_id": record.span_id.hex(),
                        "time_ns": record.time_unix_nano,
                        "observed_time_ns": record.observed_time_unix_nano,
                        "severity_number": record.severity_number,
                        "event_name": record.event_name,
                        "body": any_value(record.body),
                        "attributes": attributes(record.attributes),
                        "resource": resource,
                        "scope": scope,
                    }
                )
    return out


def metrics_items(req) -> list[dict]:
    out = []
    for rm in req.resource_metrics:
        resource = attributes(rm.resource.attributes)
        for sm in rm.scope_metrics:
            scope = scope_of(sm.scope)
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                data = getattr(metric, kind) if kind else None
                base = {
                    "signal": "metrics",
                    "name": metric.name,
                    "unit": metric.unit,
                    "kind": kind,
                    "temporality": getattr(data, "aggregation_temporality", 0),
                    "is_monotonic": getattr(data, "is_monotonic", False),
                    "resource": resource,
                    "scope": scope,
                }
                for point in data.data_points if data is not None else []:
                    item = dict(base)
                    item["attributes"] = attributes(point.attributes)
                    item["start_ns"] = point.start_time_unix_nano
                    item["time_ns"] = point.time_unix_nano
                    if kind in ("sum", "gauge"):
                        item["value"] = (
                            point.as_int if point.WhichOneof("value") == "as_int" else point.as_double
                        )
                    else:  # histogram, exponential_histogram, summary
                        item["value"] = point.sum
                        item["count"] = point.count
                    out.append(item)
    return out


ITEMS = {"traces": traces_items, "logs": logs_items, "metrics": metrics_items}


def decode_json(body: bytes, pb_class):
    """OTLP/JSON into the protobuf request type.

    OTLP/JSON differs from protobuf's generic JSON mapping in one way that matters here: trace
    and span ids are hex, not base64. They are re-encoded, then protobuf's parser (strict: no
    unknown fields, right types) does the rest.
    """
    import base64

    from google.protobuf import json_format

    def fix(node):
        if isinstance(node, dict):
            return {
                k: base64.b64encode(bytes.fromhex(v)).decode()
                if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str)
                else fix(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [fix(x) for x in node]
        return node

    return json_format.ParseDict(fix(json.loads(body)), pb_class())


# --------------------------------------------------------------------------- server


class State:
    def __init__(self, args) -> None:
        self.lock = threading.Lock()
        self.fail_left = args.fail_first
        self.required = dict(args.require_header)
        self.out = open(args.out, "a", encoding="utf-8") if args.out else None
        self.requests_out = open(args.requests_out, "a", encoding="utf-8") if args.requests_out else None

    def record(self, items: list[dict]) -> None:
        if self.out is None:
            return
        with self.lock:
            for item in items:
                self.out.write(json.dumps(item, separators=(",", ":")) + "\n")
            self.out.flush()

    def log_request(self, entry: dict) -> None:
        if self.requests_out is None:
            return
        with self.lock:
            self.requests_out.write(json.dumps(entry, separators=(",", ":")) + "\n")
            self.requests_out.flush()

    def take_failure(self) -> bool:
        with self.lock:
            if self.fail_left > 0:
                self.fail_left -= 1
                return True
            return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ctrace-test-otlp-receiver"
    state: State

    def log_message(self, format, *args):  # noqa: A002 - quiet; --requests-out records requests
        pass

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def answer(self, status: int, body: bytes = b"", content_type: str = "text/plain", extra=None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def finish_request(self, status: int, items: int, **kwargs) -> None:
        self.answer(status, **kwargs)
        self.state.log_request(
            {
                "path": self.path,
                "status": status,
                "content_type": self.headers.get("Content-Type", ""),
                "content_encoding": self.headers.get("Content-Encoding", ""),
                "items": items,
                "headers": {k.lower(): v for k, v in self.headers.items()},
            }
        )

    def do_GET(self):  # noqa: N802
        self.read_body()
        status = 405 if self.path in SIGNALS else 404
        self.finish_request(status, 0, body=b"POST only\n" if status == 405 else b"not found\n")

    do_PUT = do_GET  # noqa: N815

    def do_POST(self):  # noqa: N802
        body = self.read_body()
        path = self.path.split("?", 1)[0]
        if path not in SIGNALS:
            return self.finish_request(404, 0, body=b"not found\n")
        signal_name, request_class, response_class = SIGNALS[path]
        for key, value in self.state.required.items():
            if self.headers.get(key) != value:
                return self.finish_request(401, 0, body=b"unauthorized\n")
        if self.state.take_failure():
            return self.finish_request(503, 0, body=b"try again\n", extra={"Retry-After": "1"})

        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        content_type = (
            self.headers.get("Content-Type", "application/x-protobuf").split(";")[0].strip().lower()
        )
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            elif encoding not in ("", "identity"):
                return self.finish_request(415, 0, body=b"unsupported Content-Encoding\n")
            if content_type in ("application/x-protobuf", "application/protobuf"):
                request = request_class()
                request.ParseFromString(body)
                json_reply = False
            elif content_type == "application/json":
                request = decode_json(body, request_class)
                json_reply = True
            else:
                return self.finish_request(415, 0, body=b"unsupported Content-Type\n")
            items = ITEMS[signal_name](request)
        except Exception as error:  # noqa: BLE001 - any decoding failure is the client's
            return self.finish_request(400, 0, body=f"bad request: {error}\n".encode())
        self.state.record(items)
        if json_reply:
            return self.finish_request(200, len(items), body=b"{}", content_type="application/json")
        return self.finish_request(
            200, len(items), body=response_class().SerializeToString(), content_type="application/x-protobuf"
        )


def parse_header(text: str) -> tuple[str, str]:
    key, sep, val = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"header {text!r} is not K=V")
    return key.strip(), val.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default 0: any free one)")
    parser.add_argument("--port-file", help="write the port here once listening")
    parser.add_argument("--out", help="append one JSON line per span / log record / metric point")
    parser.add_argument("--requests-out", help="append one JSON line per HTTP request")
    parser.add_argument("--fail-first", type=int, default=0, metavar="N", help="503 to the first N requests")
    parser.add_argument("--require-header", type=parse_header, action="append", default=[], metavar="K=V")
    args = parser.parse_args()

    Handler.state = State(args)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    if args.port_file:
        tmp = f"{args.port_file}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"{server.server_address[1]}\n")
        os.replace(tmp, args.port_file)
    else:
        print(server.server_address[1], flush=True)
    while not stop.wait(0.2):
        pass
    server.shutdown()
    server.server_close()
    for handle in (Handler.state.out, Handler.state.requests_out):
        if handle is not None:
            handle.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
