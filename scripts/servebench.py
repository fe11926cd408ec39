"""What the `ctrace serve` benchmarks share (scripts/bench_serve.py, scripts/bench_otlp.py):
a percentile helper and a `Server` running `ctrace serve` on a free loopback port.

Standard library only.
"""

import http.client
import json
import os
import re
import subprocess
import threading
import time


def pct(values, q):
    """The q-th percentile (0..100) of `values`, nearest rank; NaN when empty."""
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, int(round(q / 100.0 * (len(values) - 1)))))
    return values[k]


class Server:
    """A running `ctrace --store STORE serve --bind 127.0.0.1:0 --no-transcripts [EXTRA...]`.

    `warnings` collects the WARN and ERROR lines of its runtime log on stderr.
    """

    def __init__(self, binary, store, extra=()):
        self.proc = subprocess.Popen(
            [binary, "--store", store, "serve", "--bind", "127.0.0.1:0", "--no-transcripts", *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stderr.readline()
        m = re.search(r"listening on http://([\d.]+):(\d+)", line)
        if not m:
            raise SystemExit(f"serve did not start: {line!r}")
        self.host, self.port = m.group(1), int(m.group(2))
        self.warnings = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        for line in self.proc.stderr:
            if "WARN" in line or "ERROR" in line:
                self.warnings.append(line.rstrip())

    def connection(self, timeout=120):
        """A new HTTP/1.1 connection to the service."""
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def get(self, path, timeout=600):
        """The body of GET `path` (one connection); exits unless the answer is 200."""
        conn = self.connection(timeout)
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        if resp.status != 200:
            raise SystemExit(f"GET {path}: {resp.status} {body[:300]!r}")
        return body

    def json(self, path):
        return json.loads(self.get(path))

    def health(self):
        return self.json("/api/health")

    def timed(self, path, runs):
        """Milliseconds of `runs` sequential GETs (one connection each)."""
        out = []
        for _ in range(runs):
            t = time.perf_counter()
            self.get(path)
            out.append((time.perf_counter() - t) * 1000)
        return out

    def wait_caught_up(self, at_least=0, deadline_s=3600, or_none=False):
        """Polls /api/health until at least `at_least` records are sealed, folded into the
        views and indexed, and returns it; at the deadline exits, or returns None with
        `or_none`."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            h = self.health()
            nxt = h["next_offset"]
            if (
                nxt >= at_least
                and h["unsealed_records"] == 0
                and h["views_checkpoint"] == nxt
                and h["index_checkpoint"] in (None, nxt)
            ):
                return h
            time.sleep(0.02)
        if or_none:
            return None
        raise SystemExit(f"the service did not catch up: {self.health()}")

    def rss_kib(self):
        """Resident set size of the service (KiB)."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def cpu_s(self):
        """User + system CPU time of the service so far (s)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
