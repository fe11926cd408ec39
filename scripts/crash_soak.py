#!/usr/bin/env python3
"""Crash soak: kill -9 every writing command of ctrace at random moments, many times over.

Each cycle starts a random mix of writers on one store — several concurrent `ctrace hook`
processes and one of `ingest`, `compact`, `gc`, `reindex`, `export` (then `import` of that
archive into a fresh store), `record`, `forget` — waits a random 0–60 ms, and kills every
process still running with SIGKILL. A hook that exited 0 before the kill is acknowledged; so is
every line of a transcript whose `ingest` exited 0.

Every --check-every cycles (and at the end) the store is recovered as a user would (`ingest`
of every transcript again, `compact`), then checked: `verify` must be clean, and `cat --json`
must hold every acknowledged hook payload and transcript line exactly once. Then a new store
starts, so the cost of a cycle does not grow with the run. After a killed import, importing again
(which skips records already present) must give the archive's records exactly once.

Reported: cycles, processes killed, acknowledged payloads, and the counts that must be 0:
  lost        acknowledged payloads or lines missing after recovery,
  duplicated  payloads or lines present more than once (acknowledged or not),
  unreadable  DAMAGE lines of `verify`, skipped-record warnings of `cat`, failed recoveries.
Exit status 1 when any of them is not 0.

  python3 scripts/crash_soak.py --cycles 10000 --bin target/release/ctrace
"""

import argparse
import base64
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

SEQ = re.compile(r'"seq"\s*:\s*"([^"]+)"')

CONFIG = """[storage]
segment_age = "1ns"
block_bytes = 4096
segment_bytes = "64KiB"
[retention.transcript]
max_age = "168h"
"""


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.bin = os.path.abspath(args.bin)
        self.work = tempfile.mkdtemp(prefix="ctrace-soak-")
        self.tmp = os.path.join(self.work, "tmp")
        os.makedirs(self.tmp)
        self.stats = dict(cycles=0, killed=0, acked_hooks=0, acked_lines=0, lost=0,
                          duplicated=0, unreadable=0, checks=0, imports_checked=0)
        self.problems = []
        self.generation = 0
        self.new_store()

    # -- store and sources -------------------------------------------------------------
    def new_store(self):
        self.generation += 1
        self.store = os.path.join(self.work, f"store-{self.generation}")
        os.makedirs(self.store)
        with open(os.path.join(self.store, "config.toml"), "w") as f:
            f.write(CONFIG)
        self.sources = os.path.join(self.work, f"sources-{self.generation}")
        os.makedirs(self.sources)
        self.acked = set()       # hook seqs acknowledged
        self.lines = {}          # transcript path -> [uuids written]
        self.expiring = set()    # uuids retention may remove
        self.seq = 0

    def env(self):
        env = dict(os.environ)
        env["TMPDIR"] = self.tmp
        env["CTRACE_HOME"] = self.store
        for key in ("CTRACE_LOG", "CTRACE_PTY_SESSION", "FAILPOINTS"):
            env.pop(key, None)
        return env

    def cmd(self, *args, store=None):
        return [self.bin, "--store", store or self.store, *args]

    def spawn(self, argv, stdin_bytes=None):
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin_bytes is not None
                                else subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=self.env(), cwd=self.work)
        if stdin_bytes is not None:
            try:
                proc.stdin.write(stdin_bytes)
                proc.stdin.close()
            except BrokenPipeError:
                pass
        return proc

    def run(self, argv, timeout=600):
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                              env=self.env(), cwd=self.work, timeout=timeout)

    def write_lines(self):
        """Appends lines to one of a few transcripts: recent lines, and old ones gc removes."""
        name = f"t{self.rng.randrange(3)}.jsonl"
        path = os.path.join(self.sources, name)
        now = datetime.now(timezone.utc)
        out = []
        for _ in range(self.rng.randint(1, 40)):
            self.seq += 1
            old = self.rng.random() < 0.3
            uuid = f"{'old' if old else 'new'}-{self.generation}-{self.seq}"
            if old:
                self.expiring.add(uuid)
            at = now - (timedelta(days=30) if old else timedelta(minutes=5))
            pad = "x" * self.rng.choice([10, 200, 3000])
            out.append(json.dumps({
                "type": "user", "uuid": uuid, "sessionId": f"soak-{self.generation}",
                "timestamp": iso(at),
                "message": {"role": "user", "content": f"line {uuid} {pad}"}}) + "\n")
            self.lines.setdefault(path, []).append(uuid)
        with open(path, "a") as f:
            f.write("".join(out))
        return path

    def hook_payload(self):
        self.seq += 1
        seq = f"h-{self.generation}-{self.seq}"
        size = self.rng.choice([0, 0, 0, 100, 2000, 70000])
        payload = {"session_id": f"soak-{self.generation}-{self.seq % 5}",
                   "hook_event_name": self.rng.choice(["PreToolUse", "PostToolUse", "Stop"]),
                   "tool_name": "Bash", "tool_input": {"command": "y" * size}, "seq": seq}
        return seq, json.dumps(payload).encode()

    # -- one cycle ---------------------------------------------------------------------
    def cycle(self):
        hooks = []
        for _ in range(self.rng.randint(0, self.args.hooks)):
            seq, payload = self.hook_payload()
            hooks.append((seq, self.spawn(self.cmd("hook"), payload)))
        kind = self.rng.choice(["ingest", "ingest", "compact", "compact", "gc", "reindex",
                                "export", "record", "forget", "hooks"])
        other = None
        archive = os.path.join(self.work, "export.tar.zst")
        if kind == "ingest":
            self.write_lines()
            other = self.spawn(self.cmd("ingest", "--quiet", self.sources))
        elif kind in ("compact", "gc", "reindex"):
            other = self.spawn(self.cmd(kind))
        elif kind == "export":
            if os.path.exists(archive):
                os.remove(archive)
            other = self.spawn(self.cmd("export", "--quiet", "-o", archive))
        elif kind == "record":
            other = self.spawn(self.cmd("record", "--quiet", "--", "sh", "-c",
                                        "echo soak; echo done"))
        elif kind == "forget":
            # A session that does not exist: forget takes the lock and checks, writes nothing.
            other = self.spawn(self.cmd("forget", f"nosuch-{self.stats['cycles']}"))
        if kind == "export" and self.rng.random() < 0.5:
            other.wait()  # half the exports finish, so that their import is killed instead
        self.kill_after_delay([p for _, p in hooks] + ([other] if other else []))
        for seq, proc in hooks:
            if proc.returncode == 0:
                self.acked.add(seq)
                self.stats["acked_hooks"] += 1
        if kind == "export" and other.returncode == 0 and os.path.exists(archive):
            store = os.path.join(self.work, f"import-{self.stats['cycles']}")
            self.kill_after_delay([self.spawn(self.cmd("import", "--quiet", archive,
                                                       store=store))], scale=4)
            self.check_import(store, archive)
        self.stats["cycles"] += 1

    def kill_after_delay(self, procs, scale=1):
        time.sleep(self.rng.uniform(0, self.args.max_delay_ms * scale) / 1000)
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                self.stats["killed"] += 1
        for proc in procs:
            proc.wait()

    def check_import(self, store, archive):
        """After a killed import: importing again (it skips records already present) must
        leave the archive's records exactly once, and `verify` clean."""
        done = self.run(self.cmd("import", "--quiet", "--json", archive, store=store))
        if done.returncode != 0:
            self.stats["unreadable"] += 1
            self.problems.append(f"import again into {store}: exit {done.returncode}: "
                                 f"{done.stderr.decode(errors='replace')[-2000:]}")
            return
        expected = json.loads(done.stdout.decode().strip().splitlines()[-1])["archive_records"]
        verify = self.run(self.cmd("verify", store=store))
        text = verify.stdout.decode(errors="replace")
        if verify.returncode != 0 or "clean" not in text:
            self.stats["unreadable"] += max(text.count("DAMAGE"), 1)
            self.problems.append(f"import store {store}: verify exit {verify.returncode}: "
                                 f"{text[-2000:]}")
            return
        cat = self.run(self.cmd("cat", "--json", store=store))
        lines = cat.stdout.decode(errors="replace").splitlines()
        if len(lines) > expected:
            self.stats["duplicated"] += len(lines) - expected
        elif len(lines) < expected:
            self.stats["lost"] += expected - len(lines)
        if len(lines) != expected:
            self.problems.append(f"import store {store}: {len(lines)} records, archive has "
                                 f"{expected}")
            return
        shutil.rmtree(store, ignore_errors=True)
        self.stats["imports_checked"] += 1

    # -- recovery and checks -----------------------------------------------------------
    def check(self):
        self.stats["checks"] += 1
        steps = [self.cmd("ingest", "--quiet", self.sources), self.cmd("compact")]
        for argv in steps:
            if not os.listdir(self.sources) and argv[3] == "ingest":
                continue
            done = self.run(argv)
            if done.returncode != 0:
                self.stats["unreadable"] += 1
                self.problems.append(f"recovery {argv[3:]} exit {done.returncode}: "
                                     f"{done.stderr.decode(errors='replace')[-2000:]}")
        # Lines are acknowledged once some ingest of them exited 0: recovery's ingest did.
        verify = self.run(self.cmd("verify"))
        text = verify.stdout.decode(errors="replace")
        if verify.returncode != 0 or "clean" not in text:
            self.stats["unreadable"] += max(text.count("DAMAGE"), 1)
            self.problems.append(f"verify {self.store}: exit {verify.returncode}: {text[-3000:]}")
        cat = self.run(self.cmd("cat", "--json"))
        if cat.returncode != 0:
            self.stats["unreadable"] += 1
            self.problems.append(f"cat exit {cat.returncode}: {cat.stderr[-2000:]!r}")
        skipped = cat.stderr.decode(errors="replace").count("skipped")
        self.stats["unreadable"] += skipped
        if skipped:
            self.problems.append(f"cat skipped records: {cat.stderr[-2000:]!r}")
        counts = {}
        for line in cat.stdout.decode(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                self.stats["unreadable"] += 1
                continue
            body = record.get("body", {})
            if "payload_text" in body:
                payload = body["payload_text"]
            elif "payload" in body:
                payload = json.dumps(body["payload"])
            elif "payload_base64" in body:
                payload = base64.b64decode(body["payload_base64"]).decode(errors="replace")
            else:
                continue
            key = None
            match = SEQ.search(payload)
            if record.get("source") == "hook" and match:
                key = match.group(1)
            elif record.get("source") == "transcript":
                try:
                    key = json.loads(payload).get("uuid")
                except ValueError:
                    key = None
            if key:
                counts[key] = counts.get(key, 0) + 1
        dups = {k: n for k, n in counts.items() if n > 1}
        self.stats["duplicated"] += sum(n - 1 for n in dups.values())
        if dups:
            self.problems.append(f"{self.store}: duplicated {sorted(dups.items())[:20]}")
        lost_hooks = sorted(s for s in self.acked if s not in counts)
        all_lines = {u for uuids in self.lines.values() for u in uuids}
        lost_lines = sorted(u for u in all_lines if u not in counts and u not in self.expiring)
        # Every line written is acknowledged once recovery's ingest exited 0.
        self.stats["acked_lines"] += len(all_lines - self.expiring)
        self.stats["lost"] += len(lost_hooks) + len(lost_lines)
        if lost_hooks or lost_lines:
            self.problems.append(f"{self.store}: lost hooks {lost_hooks[:20]} "
                                 f"lost lines {lost_lines[:20]}")
        if not self.problems:
            shutil.rmtree(self.store, ignore_errors=True)
            shutil.rmtree(self.sources, ignore_errors=True)
        self.new_store()

    def main(self):
        started = time.time()
        for i in range(self.args.cycles):
            self.cycle()
            if (i + 1) % self.args.check_every == 0 or i + 1 == self.args.cycles:
                self.check()
                if self.args.progress:
                    print(f"{i + 1} cycles, {time.time() - started:.0f} s: "
                          + json.dumps(self.stats), file=sys.stderr, flush=True)
        elapsed = time.time() - started
        for problem in self.problems[:50]:
            print(f"problem: {problem}", file=sys.stderr)
        s = self.stats
        print(f"crash soak: {s['cycles']} cycles in {elapsed:.0f} s (seed {self.args.seed}), "
              f"{s['killed']} processes killed, {s['checks']} recoveries checked, "
              f"{s['imports_checked']} imports checked; acknowledged: "
              f"{s['acked_hooks']} hook payloads, {s['acked_lines']} transcript lines; "
              f"lost {s['lost']}, duplicated {s['duplicated']}, unreadable {s['unreadable']}")
        if not self.problems:
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            print(f"left for inspection: {self.work}", file=sys.stderr)
        return 1 if s["lost"] or s["duplicated"] or s["unreadable"] else 0


def parse():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cycles", type=int, default=10000)
    p.add_argument("--bin", default="target/release/ctrace")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--hooks", type=int, default=8, help="most concurrent hooks per cycle")
    p.add_argument("--max-delay-ms", type=float, default=60.0)
    p.add_argument("--check-every", type=int, default=100,
                   help="cycles between recovery checks (each starts a new store)")
    p.add_argument("--progress", action="store_true")
    args = p.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 32)
    return args


if __name__ == "__main__":
    sys.exit(Soak(parse()).main())
