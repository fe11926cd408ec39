#!/usr/bin/env python3
"""Keystroke echo round trip through a recorder (issue 3, acceptance 4).

Opens a PTY, runs each command under it (`ctrace record -- cat`, `script -q -c cat /dev/null`),
writes one byte and waits until `cat`'s output of it comes back, N times, and prints p50/p99 of
each and the difference. The outer PTY is put in raw mode so the recorder's terminal is raw, as
a user's would be.

usage: pty_latency.py [--rounds N] CTRACE_BINARY STORE_DIR
"""

import argparse
import os
import pty
import select
import signal
import statistics
import sys
import time
import tty


def percentile(values, p):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
    return ordered[index]


def read_until(fd, wanted, timeout):
    deadline = time.monotonic() + timeout
    seen = b""
    while wanted not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no {wanted!r} after {timeout}s (saw {seen[-80:]!r})")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EOFError("pty closed")
            seen += chunk
    return seen


def measure(argv, rounds, env):
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(argv[0], argv, env)
    try:
        tty.setraw(fd)
        # Wait for the child's `cat` to be ready: type a probe until it echoes.
        for _ in range(200):
            os.write(fd, b"#")
            try:
                read_until(fd, b"#", 0.05)
                break
            except TimeoutError:
                continue
        time.sleep(0.2)
        while select.select([fd], [], [], 0.05)[0]:
            os.read(fd, 65536)
        samples = []
        byte = ord("a")
        for i in range(rounds):
            key = bytes([byte + i % 26])
            start = time.perf_counter_ns()
            os.write(fd, key)
            read_until(fd, key, 5.0)
            samples.append((time.perf_counter_ns() - start) / 1000.0)
        return samples
    finally:
        os.kill(pid, signal.SIGTERM)
        try:
            while True:
                os.read(fd, 65536)
        except OSError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("ctrace")
    parser.add_argument("store")
    args = parser.parse_args()
    env = dict(os.environ)
    # The inner `cat` gets a cooked terminal: echo by the line discipline plus cat's own write
    # (after each byte, since cat reads whatever is available). Both commands see the same.
    commands = {
        "script": ["script", "-q", "-c", "cat", "/dev/null"],
        "ctrace record": [args.ctrace, "--store", args.store, "record", "-q", "--", "cat"],
    }
    results = {}
    for name, argv in commands.items():
        results[name] = measure(argv, args.rounds, env)
    print(f"{'command':<16} {'rounds':>6} {'p50 µs':>9} {'p99 µs':>9} {'max µs':>9}")
    for name, samples in results.items():
        print(
            f"{name:<16} {len(samples):>6} {statistics.median(samples):>9.1f} "
            f"{percentile(samples, 99):>9.1f} {max(samples):>9.1f}"
        )
    added50 = statistics.median(results["ctrace record"]) - statistics.median(results["script"])
    added99 = percentile(results["ctrace record"], 99) - percentile(results["script"], 99)
    print(f"added by ctrace over script: p50 {added50:+.1f} µs, p99 {added99:+.1f} µs")
    return 0 if added99 <= 1000.0 else 1


if __name__ == "__main__":
    sys.exit(main())
