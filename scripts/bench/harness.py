#!/usr/bin/env python3
"""Timing helpers for scripts/bench.sh. Standard library only.

Subcommands (each prints one JSON object on stdout):

  pick-payload CORPUS OUT   write the median-size hook payload of CORPUS/hooks to OUT
  hook                      interleaved latency of `ctrace --store DIR hook < payload` vs
                            `/bin/true < payload` (the process-spawn floor)
  ingest                    wall time of `ctrace --store FRESH ingest -q PATHS...`, repeated
  storage                   stored bytes of an ingested store vs `zstd -3` of the sources
  table RESULTS             print the results (JSON lines) as a table

Python's own spawn cost (fork/exec through subprocess, pipe setup) is paid equally by both
sides of the hook comparison, so the ratio is fair; absolute numbers include it.
"""

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def hook_payloads(corpus):
    """Hook payloads (raw bytes) from CORPUS/hooks: *.ndjson lines and single-object *.json."""
    out = []
    root = os.path.join(corpus, "hooks")
    for dirpath, _, names in os.walk(root):
        for name in sorted(names):
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                data = f.read()
            if name.endswith((".ndjson", ".jsonl")):
                out.extend(line for line in data.split(b"\n") if line.strip())
            elif name.endswith(".json") and data.lstrip()[:1] == b"{":
                out.append(data.strip())
    return out


def cmd_pick_payload(args):
    payloads = sorted(hook_payloads(args.corpus), key=len)
    if not payloads:
        sys.exit(f"no hook payloads under {args.corpus}/hooks")
    payload = payloads[len(payloads) // 2]
    with open(args.out, "wb") as f:
        f.write(payload)
    try:
        event = json.loads(payload).get("hook_event_name")
    except ValueError:
        event = None
    print(json.dumps({"payload": args.out, "bytes": len(payload), "event": event,
                      "of": len(payloads)}))


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def cmd_hook(args):
    ctrace = [args.ctrace, "--store", args.store, "hook"]
    floor = [args.floor]
    env = dict(os.environ)
    env.pop("CTRACE_HOME", None)
    commands = {"ctrace": ctrace, "true": floor}
    # --extra LABEL=BINARY: another ctrace build (static, say), interleaved with the others,
    # each with its own store.
    for extra in args.extra:
        label, _, binary = extra.partition("=")
        commands[label] = [binary, "--store", f"{args.store}-{label}", "hook"]
    times = {name: [] for name in commands}
    f = open(args.payload, "rb")

    def run(argv):
        f.seek(0)
        t0 = time.perf_counter_ns()
        rc = subprocess.call(argv, stdin=f, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
        dt = time.perf_counter_ns() - t0
        if rc != 0:
            sys.exit(f"{argv} exited {rc}")
        return dt

    for _ in range(args.warmup):
        for argv in commands.values():
            run(argv)
    gc.disable()
    for i in range(args.iterations):
        # Alternate the order so no command always follows the same one.
        order = list(commands.items())
        if i % 2:
            order.reverse()
        for name, argv in order:
            times[name].append(run(argv))
    gc.enable()
    f.close()
    # Every invocation must have reached the inbox (not the spool).
    inbox = os.path.join(args.store, "inbox", "active.wal")
    spooled = os.path.isdir(os.path.join(args.store, "spool"))
    res = {"probe": "hook", "iterations": args.iterations, "payload_bytes":
           os.path.getsize(args.payload), "inbox_bytes": os.path.getsize(inbox),
           "spooled": spooled}
    for name, values in times.items():
        res[name] = {"p50_ms": pct(values, 50) / 1e6, "p90_ms": pct(values, 90) / 1e6,
                     "p99_ms": pct(values, 99) / 1e6, "mean_ms": statistics.fmean(values) / 1e6}
    for name in commands:
        res[name]["ratio_p50"] = res[name]["p50_ms"] / res["true"]["p50_ms"]
    res["ratio_p50"] = res["ctrace"]["p50_ms"] / res["true"]["p50_ms"]
    res["overhead_p50_ms"] = res["ctrace"]["p50_ms"] - res["true"]["p50_ms"]
    print(json.dumps(res))


def source_files(paths):
    files = []
    for p in paths:
        if os.path.isfile(p):
            files.append(p)
            continue
        for dirpath, _, names in os.walk(p):
            files.extend(os.path.join(dirpath, n) for n in names)
    return sorted(files)


def cmd_ingest(args):
    files = source_files(args.paths)
    source_bytes = sum(os.path.getsize(p) for p in files)
    runs = []
    for i in range(args.runs):
        store = tempfile.mkdtemp(prefix="ingest-", dir=args.workdir)
        argv = [args.ctrace, "--store", store, "ingest", "--json", "-q", *args.paths]
        t0 = time.perf_counter_ns()
        out = subprocess.run(argv, check=True, capture_output=True)
        dt = (time.perf_counter_ns() - t0) / 1e9
        summary = json.loads(out.stdout.decode().strip().splitlines()[-1])
        runs.append({"store": store, "seconds": dt, "mb_s": source_bytes / 1e6 / dt,
                     "internal_mb_s": summary["bytes"] / 1e6 / (summary["elapsed_ns"] / 1e9),
                     "records": summary["records"]})
    print(json.dumps({"probe": "ingest", "source_bytes": source_bytes, "files": len(files),
                      "runs": runs,
                      "median_mb_s": statistics.median(r["mb_s"] for r in runs),
                      "median_internal_mb_s": statistics.median(r["internal_mb_s"] for r in runs),
                      "first_store": runs[0]["store"]}))


def cmd_storage(args):
    files = source_files(args.paths)
    # The sources concatenated in path order, compressed as one stream: `zstd -3 -c | wc -c`.
    with tempfile.NamedTemporaryFile(dir=args.workdir, suffix=".cat") as cat:
        raw = 0
        for p in files:
            with open(p, "rb") as f:
                data = f.read()
            raw += len(data)
            cat.write(data)
        cat.flush()
        out = subprocess.run(["zstd", f"-{args.level}", "-c", "-q", cat.name], check=True,
                             capture_output=True)
    zstd_bytes = len(out.stdout)

    def stored_bytes():
        seg_dir = os.path.join(args.store, "segments")
        segments = sum(os.path.getsize(os.path.join(seg_dir, n)) for n in os.listdir(seg_dir)
                       if n.endswith(".seg"))
        return segments, os.path.getsize(os.path.join(args.store, "MANIFEST"))

    sealed_segments, sealed_manifest = stored_bytes()
    # At rest: after the compactor ran once (`ctrace compact` recompresses sealed segments at
    # storage.compaction_zstd_level).
    subprocess.run([args.ctrace, "--store", args.store, "compact"], check=True,
                   capture_output=True)
    segments, manifest = stored_bytes()
    stored = segments + manifest
    sealed = sealed_segments + sealed_manifest
    print(json.dumps({"probe": "storage", "raw_bytes": raw, "files": len(files),
                      "segment_bytes": segments, "manifest_bytes": manifest,
                      "stored_bytes": stored, "sealed_stored_bytes": sealed,
                      "sealed_ratio": sealed / zstd_bytes, "zstd_bytes": zstd_bytes,
                      "zstd_level": args.level, "ratio": stored / zstd_bytes}))


def cmd_table(args):
    res = {}
    with open(args.results) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                obj = json.loads(line)
                res[obj["probe"]] = obj
    rows = []

    def verdict(ok):
        return "met" if ok else "MISSED"

    if "hook" in res:
        h = res["hook"]
        c, t = h["ctrace"], h["true"]
        rows.append(("hook p50 (ctrace / floor)",
                     f"{c['p50_ms']:.3f} ms / {t['p50_ms']:.3f} ms",
                     "<= 1.5 ms", verdict(c["p50_ms"] <= 1.5)))
        rows.append(("hook p99 (ctrace / floor)",
                     f"{c['p99_ms']:.3f} ms / {t['p99_ms']:.3f} ms", "-", "-"))
        rows.append(("hook p50 ratio to spawn floor", f"{h['ratio_p50']:.2f}x "
                     f"(+{h['overhead_p50_ms']:.3f} ms)", "<= 2x", verdict(h["ratio_p50"] <= 2)))
        for name, value in h.items():
            if isinstance(value, dict) and name not in ("ctrace", "true"):
                rows.append((f"  hook p50, '{name}' build (ratio)",
                             f"{value['p50_ms']:.3f} ms ({value['ratio_p50']:.2f}x)",
                             "<= 1.5 ms, <= 2x",
                             verdict(value["p50_ms"] <= 1.5 and value["ratio_p50"] <= 2)))
    if "seal" in res:
        s = res["seal"]
        b = s["breakdown_mb_s"]
        rows.append(("sealing throughput, 1 core",
                     f"{s['median_mb_s']:.0f} MB/s ({s['inbox_bytes'] / 1e6:.0f} MB inbox)",
                     ">= 150 MB/s", verdict(s["median_mb_s"] >= 150)))
        rows.append(("  parts: scan+head decode / SegmentWriter / bare zstd",
                     f"{b['read_scan_head_decode']:.0f} / {b['segment_writer']:.0f} / "
                     f"{b['zstd_only']:.0f} MB/s", "-", "-"))
        rows.append(("  seal time / bare zstd time (same run)",
                     f"{s['median_seal_over_zstd']:.2f}x", "-", "-"))
    if "storage" in res:
        s = res["storage"]
        rows.append(("stored bytes vs zstd -3 of sources, at rest (after compact)",
                     f"{s['stored_bytes']:,} / {s['zstd_bytes']:,} B = {s['ratio']:.2f}x",
                     "<= 1.25x", verdict(s["ratio"] <= 1.25)))
        if "sealed_stored_bytes" in s:
            rows.append(("  as sealed (before compact)",
                         f"{s['sealed_stored_bytes']:,} B = {s['sealed_ratio']:.2f}x", "-", "-"))
    if "get" in res:
        g = res["get"]
        rows.append(("record by offset, warm: p50 (p99)",
                     f"{g['p50_us']:.0f} us ({g['p99_us']:.0f} us)", "<= 300 us",
                     verdict(g["p50_us"] <= 300)))
    if "big" in res:
        g = res["big"]
        rows.append((f"  one {g['record_bytes'] / 1e6:.1f} MB record: get / whole-block read",
                     f"{g['get_p50_us'] / 1000:.2f} ms / {g['read_block_p50_us'] / 1000:.2f} ms",
                     "-", "-"))
    if "ingest" in res:
        i = res["ingest"]
        rows.append(("bulk ingest (wall, median of %d)" % len(i["runs"]),
                     f"{i['median_mb_s']:.1f} MB/s ({i['source_bytes'] / 1e6:.1f} MB)",
                     "-", "-"))
    widths = [max(len(r[k]) for r in rows + [("figure", "measured", "target", "verdict")])
              for k in range(4)]
    fmt = "| " + " | ".join("{:<%d}" % w for w in widths) + " |"
    print(fmt.format("figure", "measured", "target", "verdict"))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(fmt.format(*r))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pick-payload")
    p.add_argument("corpus")
    p.add_argument("out")
    p = sub.add_parser("hook")
    p.add_argument("--ctrace", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--payload", required=True)
    p.add_argument("--floor", default="/bin/true")
    p.add_argument("--iterations", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--extra", action="append", default=[], metavar="LABEL=BINARY",
                   help="another ctrace binary to time alongside")
    p = sub.add_parser("ingest")
    p.add_argument("--ctrace", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("paths", nargs="+")
    p = sub.add_parser("storage")
    p.add_argument("--ctrace", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--level", type=int, default=3)
    p.add_argument("paths", nargs="+")
    p = sub.add_parser("table")
    p.add_argument("results")
    args = ap.parse_args()
    {"pick-payload": cmd_pick_payload, "hook": cmd_hook, "ingest": cmd_ingest,
     "storage": cmd_storage, "table": cmd_table}[args.cmd](args)


if __name__ == "__main__":
    main()
