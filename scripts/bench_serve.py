#!/usr/bin/env python3
"""Benchmarks of `ctrace serve` (issue 16), all figures from one run, side by side.

  live latency   `ctrace hook` returns -> the record arrives on an SSE client (p50, p99)
  HTTP ingest    `wrk` POSTing one hook payload to /ingest/hook on loopback: payloads/s, and
                 every acknowledged payload counted in the store; versus `ctrace hook`
                 processes per second
  big store      on a generated store (scripts/gen_corpus.py, --records, default 1,000,000):
                 p50 of /api/sessions (first page), the largest session's /tree,
                 /api/cost?by=day, /api/search?q=error; the dashboard's first render in
                 headless Chromium (with node and CTRACE_PLAYWRIGHT)
  SSE clients    100 stream clients at once: every one gets a new record; server RSS
  idle CPU       CPU time of an idle `serve` over 30 s (after the fan-out settled)
  ccusage        with --ccusage and --claude-home: /api/cost?by=session against
                 `ccusage session --offline --json` on the same files: numbers equal, ratio

Usage:
  cargo build --release
  python3 scripts/bench_serve.py --bin target/release/ctrace [--records 1000000] \
      [--hooks 1000] [--ccusage PATH --claude-home DIR] [--work DIR] [--skip-big]

Needs Python 3 (standard library only) and, for the ingest figure, `wrk` (Debian: apt-get
install wrk; without it that part is skipped with a message).
"""

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from servebench import Server, pct

HERE = os.path.dirname(os.path.abspath(__file__))


class Stream:
    """A raw SSE client: yields (event, id, data) tuples."""

    def __init__(self, server, query=""):
        self.sock = socket.create_connection((server.host, server.port), timeout=60)
        self.sock.sendall(
            f"GET /api/stream{query} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n\r\n".encode()
        )
        self.file = self.sock.makefile("rb")
        status = self.file.readline()
        if b" 200 " not in status:
            raise SystemExit(f"stream: {status!r}")
        while self.file.readline() not in (b"\r\n", b""):
            pass

    def next_event(self):
        event = ident = data = None
        while True:
            line = self.file.readline()
            if not line:
                raise SystemExit("stream ended")
            line = line.rstrip(b"\r\n")
            if line.startswith(b"event: "):
                event = line[7:].decode()
            elif line.startswith(b"id: "):
                ident = int(line[4:])
            elif line.startswith(b"data: "):
                data = line[6:]
            elif not line and event and data is not None:
                return event, ident, data

    def close(self):
        self.sock.close()


def payload(session, n, marker=""):
    return json.dumps(
        {
            "hook_event_name": "UserPromptSubmit",
            "session_id": session,
            "cwd": "/tmp/bench",
            "prompt": f"prompt {n} {marker}",
        }
    ).encode()


def live_latency(binary, work, hooks):
    store = os.path.join(work, "live")
    server = Server(binary, store)
    stream = Stream(server, "?source=hook")
    latencies, hook_s = [], []
    for n in range(hooks):
        marker = f"m{n:06d}"
        t0 = time.perf_counter()
        subprocess.run(
            [binary, "--store", store, "hook"], input=payload("live", n, marker), check=True
        )
        t1 = time.perf_counter()
        hook_s.append(t1 - t0)
        while True:
            event, _, data = stream.next_event()
            if event == "record" and marker.encode() in data:
                break
        latencies.append((time.perf_counter() - t1) * 1000)
    stream.close()
    server.stop()
    print(f"live latency over {hooks} hooks (ctrace hook returns -> SSE event):")
    print(
        f"  p50 {pct(latencies, 50):.1f} ms  p99 {pct(latencies, 99):.1f} ms  "
        f"max {max(latencies):.1f} ms   (targets: p50 <= 100, p99 <= 500)"
    )
    return 1 / statistics.mean(hook_s)


def http_ingest(binary, work, hook_rate):
    if not shutil.which("wrk"):
        print("HTTP ingest: SKIPPED (wrk not installed: apt-get install wrk)")
        return
    store = os.path.join(work, "ingest")
    server = Server(binary, store)
    body = payload("wrk", 0).decode()
    lua = os.path.join(work, "post.lua")
    with open(lua, "w") as f:
        f.write(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(body)}\n"
        )
    out = subprocess.run(
        ["wrk", "-t2", "-c16", "-d10s", "-s", lua, f"http://{server.host}:{server.port}/ingest/hook"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    acked = total - (int(non2xx.group(1)) if non2xx else 0)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    server.wait_caught_up(acked)
    stored = sum(server.json("/api/sessions/wrk")["records"].values())
    server.stop()
    print("HTTP ingest (wrk -t2 -c16 -d10s, POST /ingest/hook on loopback):")
    print(
        f"  {rate:,.0f} payloads/s (target >= 5,000); acknowledged {acked:,}, stored {stored:,}"
        f" ({'all stored' if stored >= acked else 'MISSING ' + str(acked - stored)})"
    )
    print(
        f"  ctrace hook processes: {hook_rate:,.0f}/s sequential; "
        f"HTTP ingest is {rate / hook_rate:.1f}x that"
    )


def big_store(binary, work, records):
    data = os.path.join(work, "gen")
    store = os.path.join(work, "big")
    print(f"big store: generating {records:,} records and ingesting them ...", flush=True)
    subprocess.run(
        [sys.executable, os.path.join(HERE, "gen_corpus.py"), data, "--records", str(records)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run([binary, "--store", store, "ingest", "--quiet", data], check=True)
    # Build the index once, as `ctrace search` would.
    subprocess.run(
        [binary, "--store", store, "reindex"], check=True, stdout=subprocess.DEVNULL
    )
    server = Server(binary, store)
    t = time.perf_counter()
    server.wait_caught_up()
    print(f"  service caught up in {time.perf_counter() - t:.1f} s")
    sessions = server.json("/api/sessions?limit=10000")["sessions"]
    largest = max(sessions, key=lambda s: sum(s["records"].values()))
    runs = 21
    rows = [
        ("/api/sessions (first page)", "/api/sessions", 50),
        (
            f"largest session's /tree ({sum(largest['records'].values()):,} records)",
            f"/api/sessions/{largest['session']}/tree",
            100,
        ),
        ("/api/cost?by=day", "/api/cost?by=day", 50),
        ("/api/search?q=error", "/api/search?q=error", 50),
    ]
    print(f"  p50 of {runs} requests:")
    for label, path, target in rows:
        server.get(path)  # warm
        ms = server.timed(path, runs)
        print(f"    {label:<50} {pct(ms, 50):8.1f} ms  (target <= {target})")
    first_render(server)
    print(f"  RSS after catching up and answering: {server.rss_kib() / 1024:.0f} MiB")
    server.stop()
    return store


def first_render(server):
    """The dashboard's first render in headless Chromium (scripts/first_render.mjs)."""
    modules = os.environ.get("CTRACE_PLAYWRIGHT")
    node = shutil.which("node")
    if not modules or not node:
        print("  dashboard first render: skipped (needs node and CTRACE_PLAYWRIGHT=<node_modules "
              "with playwright-core>, as .ci/setup-playwright.sh installs)")
        return
    out = subprocess.run(
        [node, os.path.join(HERE, "first_render.mjs"), f"http://{server.host}:{server.port}", "5"],
        env={**os.environ, "NODE_PATH": modules},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        print(f"  dashboard first render: failed: {out.stderr.strip()[-300:]}")
        return
    result = json.loads(out.stdout)
    print(
        f"  dashboard first render (headless Chromium, fresh context, 5 runs): "
        f"p50 {result['p50_ms']} ms (target <= 1500); runs {result['runs_ms']}"
    )


def sse_clients(binary, work, store=None):
    # A service started on a caught-up store: the steady state, not the catch-up's high water.
    server = Server(binary, store or os.path.join(work, "sse"))
    server.wait_caught_up()
    print(f"serve RSS before the clients: {server.rss_kib() / 1024:.0f} MiB")
    clients = [Stream(server, "?source=hook") for _ in range(100)]
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    conn.request(
        "POST",
        "/ingest/hook",
        body=payload("sse", 0, "fanout"),
        headers={"Content-Type": "application/json"},
    )
    resp = conn.getresponse()
    resp.read()
    got = 0
    for c in clients:
        while True:
            event, _, data = c.next_event()
            if event == "record" and b"fanout" in data:
                got += 1
                break
    rss = server.rss_kib() / 1024
    for c in clients:
        c.close()
    print(
        f"100 SSE clients: {got}/100 received the new record; server RSS {rss:.0f} MiB "
        f"(target <= 256)"
    )
    # Idle: after the fan-out's reads and the blocking threads' 10 s keep-alive are over.
    time.sleep(15)
    cpu0, t0 = server.cpu_s(), time.time()
    time.sleep(30)
    cpu = (server.cpu_s() - cpu0) / (time.time() - t0) * 100
    print(f"idle CPU of serve over 30 s: {cpu:.2f}% (target <= 1%)")
    server.stop()


def ccusage_side_by_side(binary, work, ccusage, home):
    store = os.path.join(work, "claude")
    subprocess.run([binary, "--store", store, "ingest", "--quiet", home], check=True)
    server = Server(binary, store)
    server.wait_caught_up()
    api_ms = server.timed("/api/cost?by=session&breakdown=true", 11)
    rows = server.json("/api/cost?by=session&breakdown=true")
    server.stop()
    env = dict(os.environ, CLAUDE_CONFIG_DIR=home, TZ="UTC")
    cc_ms, reference = [], None
    for _ in range(5):
        t = time.perf_counter()
        out = subprocess.run(
            [ccusage, "session", "--offline", "--json"], env=env, capture_output=True, check=True
        ).stdout
        cc_ms.append((time.perf_counter() - t) * 1000)
        reference = json.loads(out)
    ours = {(r["session"], r["model"]): r for r in rows}
    equal = mismatched = 0
    for s in reference["session"]:
        sid = s.get("period") or s.get("sessionId")
        for m in s["modelBreakdowns"]:
            r = ours.get((sid, m["modelName"]))
            same = r is not None and [
                r["input_tokens"],
                r["output_tokens"],
                r["cache_creation_tokens"],
                r["cache_read_tokens"],
            ] == [
                m["inputTokens"],
                m["outputTokens"],
                m["cacheCreationTokens"],
                m["cacheReadTokens"],
            ] and abs((r["cost_usd"] or 0) - m["cost"]) <= 0.005 * max(m["cost"], 1e-9)
            equal += same
            mismatched += not same
    print("GET /api/cost?by=session vs ccusage session --offline --json (same files):")
    print(
        f"  rows equal: {equal}, different: {mismatched}; API p50 {pct(api_ms, 50):.1f} ms, "
        f"ccusage p50 {pct(cc_ms, 50):.0f} ms: ratio {pct(cc_ms, 50) / pct(api_ms, 50):.0f}x"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default="target/release/ctrace")
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--hooks", type=int, default=1000)
    ap.add_argument("--work", help="scratch directory (default: a new temp dir, removed)")
    ap.add_argument("--skip-big", action="store_true", help="no generated store")
    ap.add_argument("--ccusage", help="path of the ccusage binary (20.0.24)")
    ap.add_argument("--claude-home", help="a Claude config dir (projects/...) for ccusage")
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    work = args.work or tempfile.mkdtemp(prefix="ctrace-bench-serve-")
    os.makedirs(work, exist_ok=True)
    try:
        hook_rate = live_latency(binary, work, args.hooks)
        http_ingest(binary, work, hook_rate)
        store = None if args.skip_big else big_store(binary, work, args.records)
        sse_clients(binary, work, store)
        if args.ccusage and args.claude_home:
            ccusage_side_by_side(binary, work, args.ccusage, args.claude_home)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
