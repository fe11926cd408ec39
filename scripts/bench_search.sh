#!/usr/bin/env bash
# Measures the full-text index, `ctrace search` and `ctrace grep` on a generated store of
# >= 1,000,000 records (>= 1 GB of payload) in one run, and prints the figures as a table.
#
#   scripts/bench_search.sh                 # from the repository root or anywhere inside it
#
# Steps: build the release binary; generate the corpus with scripts/gen_corpus.py (kept between
# runs); ingest it into a store; `ctrace reindex` (indexing throughput, index size); then, side by
# side in one run: `ctrace search error -n 20` as whole cold processes (p50 / p90 of N runs),
# `rg -c error` over the raw JSONL, `zstd -dc segments/*.seg | rg -c error`, and
# `ctrace grep -c error` pinned to 2 cores. Installs ripgrep with apt-get when it is missing.
#
# Knobs (environment): BENCH_DIR (work dir, default $TMPDIR/ctrace-bench-index), BENCH_RECORDS
# (1000000), BENCH_SEARCHES (31), BENCH_SCANS (3), BENCH_KEEP=1 keeps the store and corpus
# (by default both are deleted at the end; the corpus is about 1 GB, the store about 0.3 GB).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

work=${BENCH_DIR:-${TMPDIR:-/tmp}/ctrace-bench-index}
records=${BENCH_RECORDS:-1000000}
searches=${BENCH_SEARCHES:-31}
scans=${BENCH_SCANS:-3}

for tool in cargo python3 zstd; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "bench_search: $tool is required" >&2
    exit 1
  fi
done
if ! command -v rg >/dev/null 2>&1; then
  echo "bench_search: installing ripgrep" >&2
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get install -y ripgrep >/dev/null 2>&1 ||
    { "${sudo_cmd[@]}" apt-get update >/dev/null && "${sudo_cmd[@]}" apt-get install -y ripgrep >/dev/null; }
fi

cargo build --release --quiet
bin="$root/target/release/ctrace"
mkdir -p "$work"
gen="$work/gen"
store="$work/store"

if [ ! -f "$gen/.done-$records" ]; then
  rm -rf "$gen" "$store"
  if [ ! -f "$root/scripts/gen_corpus.py" ]; then
    echo "bench_search: scripts/gen_corpus.py is missing" >&2
    exit 1
  fi
  echo "bench_search: generating $records records into $gen" >&2
  python3 "$root/scripts/gen_corpus.py" "$gen" --records "$records" >&2
  touch "$gen/.done-$records"
fi
if [ ! -f "$store/.ingested" ]; then
  rm -rf "$store"
  echo "bench_search: ingesting" >&2
  "$bin" --store "$store" ingest --quiet "$gen" >&2
  touch "$store/.ingested"
fi

jsonl_bytes=$(find "$gen" -type f \( -name '*.jsonl' -o -name '*.ndjson' \) -printf '%s\n' | awk '{s+=$1} END {print s}')
store_records=$("$bin" --store "$store" stats --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"])')

threads=$(python3 -c 'import os; print(max(1, min(os.cpu_count() or 1, 4)))')

python3 - "$bin" "$store" "$gen" "$searches" "$scans" "$threads" "$jsonl_bytes" "$store_records" <<'PY'
import glob, os, re, resource, statistics, subprocess, sys, time

bin_, store, gen, searches, scans, threads, jsonl_bytes, store_records = sys.argv[1:]
searches, scans, threads = int(searches), int(scans), int(threads)
jsonl_bytes, store_records = int(jsonl_bytes), int(store_records)

def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime

# Indexing: wall time and CPU time of the whole `ctrace reindex` process. On a shared machine
# the wall rate depends on what else runs; CPU seconds do not (much).
print("bench_search: reindex", file=sys.stderr)
cpu0 = cpu_children()
t0 = time.perf_counter()
reindex_out = subprocess.run([bin_, "--store", store, "reindex", "--quiet"], check=True,
                             stdout=subprocess.PIPE).stdout.decode()
reindex_wall = time.perf_counter() - t0
reindex_cpu = cpu_children() - cpu0
print(reindex_out.strip(), file=sys.stderr)

m = re.search(r"indexed (\d+) records \(([\d.]+) MiB of payload\) in ([\d.]+)s", reindex_out)
indexed, payload_mib, index_secs = int(m.group(1)), float(m.group(2)), float(m.group(3))
payload_bytes = payload_mib * (1 << 20)
index_bytes = sum(os.path.getsize(p) for p in glob.glob(os.path.join(store, "index", "*")) if os.path.isfile(p))
segments = sorted(glob.glob(os.path.join(store, "segments", "*.seg")))

def run(cmd, shell=False, env=None):
    start = time.perf_counter()
    out = subprocess.run(cmd, shell=shell, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - start
    if out.returncode not in (0, 1):
        sys.exit(f"bench_search: {cmd} failed: {out.stderr.decode(errors='replace')}")
    return elapsed, out.stdout

env2 = dict(os.environ, RAYON_NUM_THREADS="2")
pin = ["taskset", "-c", "0,1"] if subprocess.run(["which", "taskset"], stdout=subprocess.DEVNULL).returncode == 0 else []
search_cmd = [bin_, "--store", store, "search", "error", "-n", "20"]
search_score_cmd = search_cmd + ["--sort", "score"]
rg_cmd = ["rg", "-c", "error", gen]
zstd_cmd = "zstd -dcq " + " ".join(segments) + " | rg -c error"
grep_cmd = pin + [bin_, "--store", store, "grep", "-c", "error"]

# Warm the page cache once for every reader, then interleave the measurements.
for cmd, shell in [(search_cmd, False), (rg_cmd, False), (zstd_cmd, True), (grep_cmd, False)]:
    run(cmd, shell=shell, env=env2)
search_t, score_t, rg_t, zstd_t, grep_t, grep_cpu = [], [], [], [], [], []
grep_out = b""
for i in range(searches):
    search_t.append(run(search_cmd)[0])
    score_t.append(run(search_score_cmd)[0])
    if i < scans:
        rg_t.append(run(rg_cmd)[0])
        zstd_t.append(run(zstd_cmd, shell=True)[0])
        c0 = cpu_children()
        t, grep_out = run(grep_cmd, env=env2)
        grep_cpu.append(cpu_children() - c0)
        grep_t.append(t)

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

p50, p90 = pct(search_t, 50), pct(search_t, 90)
s50 = pct(score_t, 50)
rg50, zstd50, grep50 = statistics.median(rg_t), statistics.median(zstd_t), statistics.median(grep_t)
hits = subprocess.run([bin_, "--store", store, "grep", "-c", "error"], stdout=subprocess.PIPE).stdout.decode().strip()

mb = 1e6
rows = [
    ("store", f"{store_records:,} records; {payload_bytes / mb:,.0f} MB payload (raw); {jsonl_bytes / mb:,.0f} MB JSONL", "≥ 1,000,000 records, ≥ 1 GB"),
    ("indexing (reindex), wall", f"{indexed:,} records in {index_secs:.1f} s = {payload_bytes / mb / index_secs:.1f} MB/s raw = {payload_bytes / mb / index_secs / threads:.1f} MB/s per indexing thread ({threads} threads)", "≥ 30 MB/s per thread"),
    ("indexing (reindex), CPU", f"{reindex_cpu:.1f} CPU-s = {payload_bytes / mb / reindex_cpu:.1f} MB raw per CPU-second (all work: read, decompress, extract, index, merge)", "≥ 30 MB/s per thread"),
    ("index size", f"{index_bytes / mb:,.1f} MB = {100 * index_bytes / payload_bytes:.1f}% of raw", "≤ 25%"),
    ("search error -n 20 (cold process, by time)", f"p50 {p50 * 1e3:.1f} ms, p90 {p90 * 1e3:.1f} ms ({searches} runs)", "p50 ≤ 50 ms"),
    ("search error -n 20 --sort score", f"p50 {s50 * 1e3:.1f} ms", ""),
    ("rg -c error over raw JSONL", f"{rg50 * 1e3:.0f} ms (median of {scans}); search is {rg50 / p50:.0f}x faster", "ratio"),
    ("zstd -dc segments | rg -c error", f"{zstd50 * 1e3:.0f} ms; search is {zstd50 / p50:.0f}x faster", "ratio"),
    ("ctrace grep -c error (2 cores), wall", f"{grep50 * 1e3:.0f} ms = {payload_bytes / mb / grep50:.0f} MB/s raw; {hits} records", "≥ 800 MB/s"),
    ("ctrace grep -c error, CPU", f"{statistics.median(grep_cpu):.2f} CPU-s = {payload_bytes / mb / statistics.median(grep_cpu):.0f} MB/s per core = {2 * payload_bytes / mb / statistics.median(grep_cpu):.0f} MB/s on 2 cores", "≥ 800 MB/s"),
]
w0 = max(len(r[0]) for r in rows)
w1 = max(len(r[1]) for r in rows)
print(f"{'figure':<{w0}}  {'measured':<{w1}}  target")
print(f"{'-' * w0}  {'-' * w1}  ------")
for a, b, c in rows:
    print(f"{a:<{w0}}  {b:<{w1}}  {c}")
print(f"\nload average at the end: {os.getloadavg()[0]:.2f} (nproc {os.cpu_count()}); "
      f"reindex wall {reindex_wall:.1f} s for {reindex_cpu:.1f} CPU-s")
PY

if [ "${BENCH_KEEP:-0}" != 1 ]; then
  rm -rf "$store" "$gen"
fi
