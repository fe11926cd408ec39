#!/usr/bin/env python3
"""Benchmarks of OpenTelemetry in and out of `ctrace serve` (issue 17), one run.

  OTLP ingest    Claude Code-shaped `claude_code.api_request` log records, 512 per request,
                 POSTed to /v1/logs from K client threads over persistent HTTP/1.1
                 connections, as protobuf, as OTLP/JSON, and as gzipped protobuf, each to a
                 fresh store: records/s from the first send to the last acknowledgement and to
                 fully caught up (sealed, folded into the views, indexed); every acknowledged
                 record stored (/api/health next_offset equals the records acknowledged).
  forwarding     a store with [forward] to an OTLP/HTTP receiver in this script (decoding with
                 opentelemetry-proto, noting time.time_ns() at receipt per `ctrace.offset`):
                 hooks POSTed to /ingest/hook at a fixed rate, then a burst of OTLP records;
                 delay = receipt - record time (a hook's record time is its arrival) p50/p99/max
                 over the steady phase, records/s while the burst drains; every offset
                 delivered exactly once.

Usage:
  . .ci/setup-otlp.sh          # the venv with opentelemetry-proto; exports CTRACE_OTLP_PYTHON
  cargo build --release
  "$CTRACE_OTLP_PYTHON" scripts/bench_otlp.py [--bin target/release/ctrace] [--requests 200]
      [--batch 512] [--clients 4] [--encodings protobuf,json,protobuf+gzip]
      [--hook-rate 200] [--hook-seconds 20] [--burst 20000] [--forward-batch 512]
      [--skip-ingest] [--skip-forward] [--work DIR] [--json]

The defaults take about a minute on 2 cores. The clients, the receiver and the service share
the machine's cores: the figures are what one machine does with all three on it.
"""

import argparse
import base64
import gzip
import http.client
import json
import os
import queue
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from servebench import Server, pct

try:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
    from opentelemetry.proto.common.v1 import common_pb2
    from opentelemetry.proto.logs.v1 import logs_pb2
    from opentelemetry.proto.resource.v1 import resource_pb2
except ImportError as error:  # pragma: no cover - a message, not a traceback
    raise SystemExit(
        f"{error}: run with the venv's python (. .ci/setup-otlp.sh; \"$CTRACE_OTLP_PYTHON\" ...)"
    ) from error

MODELS = ["claude-opus-4-6", "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"]
OFFSET_ATTRIBUTE = "ctrace.offset"
SOURCE_ATTRIBUTE = "ctrace.source"


# --------------------------------------------------------------------------- requests


def kv(key, value):
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=value))


def make_request(index, batch, start_ns):
    """ExportLogsServiceRequest number `index`: `batch` distinct api_request log records.

    Values are strings, as Claude Code's `logOTelEvent(name, metadata: {[k]: string})` sends
    them; no severity, no trace context, body `claude_code.api_request`.
    """
    records = []
    for j in range(batch):
        n = index * batch + j
        model = MODELS[n % 3]
        session = f"bench-{n // 2000:04d}"
        records.append(
            logs_pb2.LogRecord(
                time_unix_nano=start_ns + n * 1_000_000,
                observed_time_unix_nano=start_ns + n * 1_000_000 + 5_000_000,
                body=common_pb2.AnyValue(string_value="claude_code.api_request"),
                attributes=[
                    kv("event.name", "api_request"),
                    kv("session.id", session),
                    kv("prompt.id", f"{session}-p{n // 20:06d}"),
                    kv("model", model),
                    kv("cost_usd", f"{0.0005 + (n % 997) * 0.00013:.6f}"),
                    kv("duration_ms", str(800 + n % 4000)),
                    kv("input_tokens", str(3 + n % 50)),
                    kv("output_tokens", str(40 + n % 900)),
                    kv("cache_read_tokens", str(20000 + n % 30000)),
                    kv("cache_creation_tokens", str(n % 3000)),
                    kv("request_id", f"req_011CV{n:016x}"),
                ],
            )
        )
    return logs_service_pb2.ExportLogsServiceRequest(
        resource_logs=[
            logs_pb2.ResourceLogs(
                resource=resource_pb2.Resource(
                    attributes=[kv("service.name", "claude-code"), kv("service.version", "2.1.0")]
                ),
                scope_logs=[
                    logs_pb2.ScopeLogs(
                        scope=common_pb2.InstrumentationScope(
                            name="com.anthropic.claude_code.events", version="2.1.0"
                        ),
                        log_records=records,
                    )
                ],
            )
        ]
    )


def hex_ids(node):
    """protobuf's JSON mapping (ids base64) into OTLP/JSON (ids hex): the reverse of
    tests/otlp/receiver.py's `decode_json`."""
    if isinstance(node, dict):
        return {
            k: base64.b64decode(v).hex()
            if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str)
            else hex_ids(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [hex_ids(x) for x in node]
    return node


def to_otlp_json(request):
    # camelCase keys, int64 as strings, enums as integers (the OTLP spec forbids names).
    as_dict = json_format.MessageToDict(request, use_integers_for_enums=True)
    return json.dumps(hex_ids(as_dict), separators=(",", ":")).encode()


def encode_one(job):
    """Request number `index`, as protobuf and (if asked) OTLP/JSON bytes."""
    index, batch, start_ns, want_json = job
    request = make_request(index, batch, start_ns)
    return request.SerializeToString(), to_otlp_json(request) if want_json else None


def encode_all(count, batch, start_ns, encodings):
    """{encoding: [(body, headers)]} of `count` distinct requests, encoded once before any
    timing, on every core (MessageToDict takes about 0.1 s per request)."""
    want_json = any(e.partition("+")[0] == "json" for e in encodings)
    jobs = [(i, batch, start_ns, want_json) for i in range(count)]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        pairs = list(pool.map(encode_one, jobs, chunksize=4))
    out = {}
    for name in encodings:
        kind, _, compress = name.partition("+")
        if kind == "protobuf":
            bodies, content_type = [p for p, _ in pairs], "application/x-protobuf"
        elif kind == "json":
            bodies, content_type = [j for _, j in pairs], "application/json"
        else:
            raise SystemExit(f"unknown encoding {name!r} (protobuf, json, with +gzip)")
        headers = {"Content-Type": content_type}
        if compress == "gzip":
            bodies = [gzip.compress(b, compresslevel=6) for b in bodies]
            headers["Content-Encoding"] = "gzip"
        elif compress:
            raise SystemExit(f"unknown compression in {name!r} (only gzip)")
        out[name] = [(b, headers) for b in bodies]
    return out


# --------------------------------------------------------------------------- the service


def rejected_in(body, content_type):
    """`partial_success.rejected_log_records` of an ExportLogsServiceResponse."""
    if content_type.startswith("application/json"):
        doc = json.loads(body or b"{}")
        return int((doc.get("partialSuccess") or {}).get("rejectedLogRecords") or 0)
    response = logs_service_pb2.ExportLogsServiceResponse()
    response.ParseFromString(body)
    return response.partial_success.rejected_log_records


class Poster:
    """K threads POSTing bodies to /v1/logs over one persistent connection each, retrying
    429 and 503 after their Retry-After."""

    def __init__(self, server, clients):
        self.server = server
        self.clients = clients
        self.lock = threading.Lock()
        self.acked_records = 0
        self.rejected = 0
        self.retries = {}
        self.errors = []
        self.first_send = None
        self.last_ack = None

    def _worker(self, work, per_request):
        conn = self.server.connection()
        while True:
            try:
                body, headers = work.get_nowait()
            except queue.Empty:
                break
            while True:
                now = time.perf_counter()
                with self.lock:
                    if self.first_send is None:
                        self.first_send = now
                try:
                    conn.request("POST", "/v1/logs", body=body, headers=headers)
                    resp = conn.getresponse()
                    answer = resp.read()
                except (OSError, http.client.HTTPException) as error:
                    conn.close()
                    conn = self.server.connection()
                    with self.lock:
                        self.errors.append(repr(error))
                        if len(self.errors) > 20:
                            return
                    continue
                if resp.status in (429, 503):
                    with self.lock:
                        self.retries[resp.status] = self.retries.get(resp.status, 0) + 1
                    time.sleep(float(resp.getheader("Retry-After") or 1))
                    continue
                done = time.perf_counter()
                problem = None if resp.status == 200 else f"{resp.status} {answer[:200]!r}"
                rejected = 0
                if problem is None:
                    try:
                        rejected = rejected_in(answer, resp.getheader("Content-Type") or "")
                    except Exception as error:  # noqa: BLE001 - reported, and the run fails
                        problem = f"undecodable answer {answer[:200]!r}: {error!r}"
                with self.lock:
                    if problem is None:
                        self.rejected += rejected
                        self.acked_records += per_request - rejected
                        self.last_ack = done
                    else:
                        self.errors.append(problem)
                break
        conn.close()

    def run(self, items, per_request):
        work = queue.Queue()
        for item in items:
            work.put(item)
        threads = [
            threading.Thread(target=self._worker, args=(work, per_request))
            for _ in range(self.clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def stored_cell(run):
    verdict = "all" if run["all_stored"] else "LOST"
    return f"{verdict} {run['stored']}/{run['acknowledged']}"


def ingest_run(binary, work, name, items, per_request, clients):
    store = os.path.join(work, f"ingest-{name.replace('+', '-')}")
    server = Server(binary, store)
    try:
        base = server.health()["next_offset"]
        cpu0 = server.cpu_s()
        poster = Poster(server, clients)
        poster.run(items, per_request)
        if poster.errors:
            raise SystemExit(f"{name}: {len(poster.errors)} errors, first: {poster.errors[0]}")
        # Records missing after two minutes are reported as lost, not waited for.
        health = server.wait_caught_up(base + poster.acked_records, 120, or_none=True)
        caught = time.perf_counter()
        if health is None:
            health = server.wait_caught_up(0)
        cpu = server.cpu_s() - cpu0
        stored = health["next_offset"] - base
        ack_s = poster.last_ack - poster.first_send
        all_s = caught - poster.first_send
        result = {
            "encoding": name,
            "requests": len(items),
            "bytes": sum(len(b) for b, _ in items),
            "acknowledged": poster.acked_records,
            "stored": stored,
            "rejected": poster.rejected,
            "retries_429": poster.retries.get(429, 0),
            "retries_503": poster.retries.get(503, 0),
            "ack_s": ack_s,
            "caught_up_s": all_s,
            "ack_records_per_s": poster.acked_records / ack_s,
            "caught_up_records_per_s": stored / all_s,
            "server_cpu_s": cpu,
            "all_stored": stored == poster.acked_records,
            "warnings": server.warnings[:5],
        }
    finally:
        server.stop()
    return result


# --------------------------------------------------------------------------- forwarding


class Deliveries:
    """What the receiver got: receipt times and record times per `ctrace.offset`."""

    def __init__(self):
        self.lock = threading.Lock()
        self.receipts = {}  # offset -> [receipt_ns, ...]
        self.record_ns = {}  # offset -> time_unix_nano
        self.source = {}  # offset -> ctrace.source
        self.requests = 0
        self.bad = 0
        self.busy_s = 0.0  # time spent decoding and noting, all receiver threads

    def add(self, receipt_ns, body):
        started = time.perf_counter()
        request = logs_service_pb2.ExportLogsServiceRequest()
        request.ParseFromString(body)
        got = []
        for rl in request.resource_logs:
            for sl in rl.scope_logs:
                for record in sl.log_records:
                    offset = source = None
                    # Forwarded OTLP items carry the tags last, ctrace's own records first.
                    for attr in reversed(record.attributes):
                        if attr.key == OFFSET_ATTRIBUTE:
                            offset = attr.value.int_value
                        elif attr.key == SOURCE_ATTRIBUTE:
                            source = attr.value.string_value
                    got.append((offset, source, record.time_unix_nano))
        with self.lock:
            self.requests += 1
            self.busy_s += time.perf_counter() - started
            for offset, source, record_ns in got:
                if offset is None:
                    self.bad += 1
                    continue
                self.receipts.setdefault(offset, []).append(receipt_ns)
                self.record_ns[offset] = record_ns
                self.source[offset] = source

    def count(self):
        with self.lock:
            return len(self.receipts)


def receiver(deliveries):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002 - quiet
            pass

        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receipt_ns = time.time_ns()
            status = 200
            if self.path.split("?", 1)[0] != "/v1/logs":
                status = 404
            else:
                if self.headers.get("Content-Encoding", "").lower() == "gzip":
                    body = gzip.decompress(body)
                try:
                    deliveries.add(receipt_ns, body)
                except Exception:  # noqa: BLE001 - a body that does not decode is the sender's
                    status = 400
            answer = logs_service_pb2.ExportLogsServiceResponse().SerializeToString()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    return server


def hook_payload(n):
    return json.dumps(
        {
            "hook_event_name": "PreToolUse",
            "session_id": f"fwd-{n // 500:03d}",
            "cwd": "/tmp/bench",
            "tool_name": "Bash",
            "tool_use_id": f"toolu_01{n:020d}",
            "tool_input": {"command": f"cargo test --lib case_{n}"},
        }
    ).encode()


def wait_delivered(server, deliveries, at_least, deadline_s=600):
    """Waits until `at_least` records are sealed and the receiver holds every offset below
    next_offset; returns next_offset."""
    end = time.monotonic() + deadline_s
    server.wait_caught_up(at_least, deadline_s)
    while time.monotonic() < end:
        health = server.health()
        nxt = health["next_offset"]
        if health["unsealed_records"] == 0 and deliveries.count() >= nxt:
            return nxt
        time.sleep(0.02)
    raise SystemExit(f"not delivered: {deliveries.count()} of {server.health()}")


def forward_run(binary, work, args, burst_items, per_request):
    deliveries = Deliveries()
    collector = receiver(deliveries)
    store = os.path.join(work, "forward")
    os.makedirs(store)
    with open(os.path.join(store, "config.toml"), "w", encoding="utf-8") as f:
        f.write(
            f'[forward]\nendpoint = "http://127.0.0.1:{collector.server_address[1]}"\n'
            f"batch = {args.forward_batch}\n"
        )
    server = Server(binary, store)
    try:
        # Steady phase: hooks at a fixed rate, one connection, paced by a schedule.
        hooks = int(args.hook_rate * args.hook_seconds)
        conn = server.connection()
        start = time.perf_counter()
        late = 0
        for n in range(hooks):
            due = start + n / args.hook_rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            elif wait < -0.05:
                late += 1
            conn.request(
                "POST", "/ingest/hook", body=hook_payload(n),
                headers={"Content-Type": "application/json"},
            )
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise SystemExit(f"POST /ingest/hook: {resp.status} {body[:200]!r}")
        conn.close()
        steady_s = time.perf_counter() - start
        steady_next = wait_delivered(server, deliveries, hooks)
        with deliveries.lock:
            delays_ms = [
                (min(r) - deliveries.record_ns[o]) / 1e6
                for o, r in deliveries.receipts.items()
                if deliveries.source.get(o) == "hook"
            ]

        # Burst: OTLP records as fast as the clients can post them.
        with deliveries.lock:
            busy0 = deliveries.busy_s
        cpu0 = server.cpu_s()
        burst_start_ns = time.time_ns()
        t0 = time.perf_counter()
        poster = Poster(server, args.clients)
        poster.run(burst_items, per_request)
        if poster.errors:
            raise SystemExit(f"burst: {len(poster.errors)} errors, first: {poster.errors[0]}")
        acked = time.perf_counter()
        final_next = wait_delivered(server, deliveries, steady_next + poster.acked_records)
        done = time.perf_counter()
        burst_cpu_s = server.cpu_s() - cpu0
        with deliveries.lock:
            receiver_busy_s = deliveries.busy_s - busy0
            burst = [min(r) for o, r in deliveries.receipts.items() if o >= steady_next]
            duplicates = sum(len(r) - 1 for r in deliveries.receipts.values())
            missing = [o for o in range(final_next) if o not in deliveries.receipts]
            extra = [o for o in deliveries.receipts if o >= final_next]
            requests = deliveries.requests
        first_receipt_ns, last_receipt_ns = min(burst), max(burst)
        drain_s = (last_receipt_ns - first_receipt_ns) / 1e9
        result = {
            "hooks": hooks,
            "hook_rate": args.hook_rate,
            "steady_s": steady_s,
            "hooks_late": late,
            "delay_ms": {
                "count": len(delays_ms),
                "p50": pct(delays_ms, 50),
                "p99": pct(delays_ms, 99),
                "max": max(delays_ms),
                "mean": statistics.fmean(delays_ms),
            },
            "burst_records": final_next - steady_next,
            "burst_acknowledged": poster.acked_records,
            "burst_ack_s": acked - t0,
            "burst_first_delivery_s": (first_receipt_ns - burst_start_ns) / 1e9,
            "burst_drain_s": drain_s,
            "burst_drain_records_per_s": (len(burst) - 1) / drain_s if drain_s > 0 else None,
            "burst_end_to_end_s": done - t0,
            "burst_end_to_end_records_per_s": (final_next - steady_next) / (done - t0),
            "burst_server_cpu_s": burst_cpu_s,
            "burst_receiver_busy_s": receiver_busy_s,
            "next_offset": final_next,
            "delivered": final_next - len(missing),
            "duplicates": duplicates,
            "missing": len(missing),
            "unexpected": len(extra) + deliveries.bad,
            "collector_requests": requests,
            "retries_429": poster.retries.get(429, 0),
            "retries_503": poster.retries.get(503, 0),
            "exactly_once": not missing and not extra and duplicates == 0 and not deliveries.bad,
            "warnings": server.warnings[:5],
        }
    finally:
        server.stop()
        collector.shutdown()
        collector.server_close()
    return result


# --------------------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", default="target/release/ctrace", help="the ctrace binary")
    parser.add_argument("--requests", type=int, default=200, help="distinct requests per run")
    parser.add_argument("--batch", type=int, default=512, help="log records per request")
    parser.add_argument("--clients", type=int, default=4, help="client threads")
    parser.add_argument(
        "--encodings", default="protobuf,json,protobuf+gzip",
        help="comma-separated runs: protobuf, json, each optionally +gzip",
    )
    parser.add_argument("--hook-rate", type=float, default=200, help="hooks/s, steady phase")
    parser.add_argument("--hook-seconds", type=float, default=20, help="steady phase length")
    parser.add_argument("--burst", type=int, default=20000, help="OTLP records in the burst")
    parser.add_argument("--forward-batch", type=int, default=512, help="[forward] batch")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--skip-forward", action="store_true")
    parser.add_argument("--work", help="directory for the stores (default: a temp dir, removed)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead")
    args = parser.parse_args()

    binary = os.path.abspath(args.bin)
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"{binary}: not an executable (cargo build --release?)")
    work = args.work or tempfile.mkdtemp(prefix="ctrace-bench-otlp-")
    os.makedirs(work, exist_ok=True)
    log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else print
    encodings = [e.strip() for e in args.encodings.split(",") if e.strip()]
    summary = {"cores": os.cpu_count(), "batch": args.batch, "clients": args.clients}
    try:
        start_ns = time.time_ns() - 86_400 * 10**9
        burst_requests = -(-args.burst // args.batch) if not args.skip_forward else 0
        count = max(args.requests if not args.skip_ingest else 0, burst_requests)
        t = time.perf_counter()
        wanted = encodings if not args.skip_ingest else []
        encoded = encode_all(count, args.batch, start_ns, list(dict.fromkeys(wanted + ["protobuf"])))
        log(f"built and encoded {count} requests of {args.batch} records "
            f"in {time.perf_counter() - t:.1f} s")

        if not args.skip_ingest:
            runs = []
            for name in encodings:
                result = ingest_run(
                    binary, work, name, encoded[name][: args.requests], args.batch, args.clients
                )
                runs.append(result)
                log(f"  {name}: {result['acknowledged']} acknowledged, {result['stored']} stored, "
                    f"{result['ack_records_per_s']:,.0f} records/s acknowledged, "
                    f"{result['caught_up_records_per_s']:,.0f} records/s caught up")
            summary["ingest"] = runs
            log()
            log(f"OTLP ingest: {args.requests} requests x {args.batch} log records, "
                f"{args.clients} client threads, {os.cpu_count()} cores")
            log(f"| {'encoding':<14} | {'MB sent':>7} | {'acked/s':>9} | {'caught up/s':>11} "
                f"| {'ack s':>6} | {'all s':>6} | {'cpu s':>5} | {'429/503':>7} | {'stored/acked':<22} |")
            log(f"|{'-' * 16}|{'-' * 9}|{'-' * 11}|{'-' * 13}|{'-' * 8}|{'-' * 8}|{'-' * 7}"
                f"|{'-' * 9}|{'-' * 24}|")
            for r in runs:
                log(f"| {r['encoding']:<14} | {r['bytes'] / 1e6:>7.1f} "
                    f"| {r['ack_records_per_s']:>9,.0f} | {r['caught_up_records_per_s']:>11,.0f} "
                    f"| {r['ack_s']:>6.2f} | {r['caught_up_s']:>6.2f} | {r['server_cpu_s']:>5.1f} "
                    f"| {r['retries_429']:>3}/{r['retries_503']:<3} "
                    f"| {stored_cell(r):<22} |")
            log()

        if not args.skip_forward:
            burst_items = [
                encoded["protobuf"][i % len(encoded["protobuf"])] for i in range(burst_requests)
            ]
            f = forward_run(binary, work, args, burst_items, args.batch)
            summary["forward"] = f
            d = f["delay_ms"]
            log(f"forwarding ([forward] batch {args.forward_batch}), receiver in this script:")
            log(f"| {'what':<44} | figure")
            log(f"|{'-' * 46}|{'-' * 40}")
            log(f"| {'steady: hooks posted':<44} | {f['hooks']} at {f['hook_rate']:.0f}/s "
                f"over {f['steady_s']:.1f} s ({f['hooks_late']} late > 50 ms)")
            log(f"| {'steady: delay append -> receipt':<44} | p50 {d['p50']:.1f} ms, "
                f"p99 {d['p99']:.1f} ms, max {d['max']:.1f} ms ({d['count']} records)")
            log(f"| {'burst: OTLP records':<44} | {f['burst_records']} "
                f"(acknowledged in {f['burst_ack_s']:.2f} s)")
            log(f"| {'burst: drain, first to last receipt':<44} | "
                f"{f['burst_drain_records_per_s'] or 0:,.0f} records/s "
                f"over {f['burst_drain_s']:.2f} s (first after {f['burst_first_delivery_s']:.2f} s)")
            log(f"| {'burst: first send -> all delivered':<44} | "
                f"{f['burst_end_to_end_records_per_s']:,.0f} records/s "
                f"over {f['burst_end_to_end_s']:.2f} s")
            log(f"| {'burst: service CPU / receiver decoding':<44} | "
                f"{f['burst_server_cpu_s']:.1f} s / {f['burst_receiver_busy_s']:.1f} s")
            log(f"| {'every offset exactly once':<44} | "
                f"{'yes' if f['exactly_once'] else 'NO'}: {f['delivered']}/{f['next_offset']} "
                f"delivered, {f['duplicates']} duplicates, {f['missing']} missing, "
                f"{f['collector_requests']} requests")
            log(f"| {'429/503 retries (burst)':<44} | {f['retries_429']}/{f['retries_503']}")
            log()
        for part in (summary.get("ingest", []), [summary.get("forward")]):
            for r in part:
                for w in (r or {}).get("warnings", []):
                    log(f"service warning: {w}")
        if args.json:
            print(json.dumps(summary, indent=2))
        ok = all(r["all_stored"] for r in summary.get("ingest", [])) and (
            summary.get("forward") is None or summary["forward"]["exactly_once"]
        )
        return 0 if ok else 1
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
