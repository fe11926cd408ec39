#!/usr/bin/env bash
# Measures ctrace's acceptance figures in one run and prints them as a table.
#
#   scripts/bench.sh            # from the repository root or anywhere inside it
#
# Figures: hook latency next to the process-spawn floor (interleaved), sealing throughput on
# one core, stored bytes vs `zstd -3` of the same sources, one record by offset (warm), and
# bulk-ingest speed. Works from a clean clone: builds what it needs. Uses the shared corpus
# (../shared/corpus, or $CTRACE_CORPUS); without it, a synthetic corpus written by the bench
# binary stands in and the table says so. docs/benchmarks.md explains each method.
#
# Knobs (environment): BENCH_HOOK_ITERS (1000), BENCH_INGEST_RUNS (5), BENCH_SEAL_MB (256),
# BENCH_SEAL_RUNS (3), BENCH_GET_MB (64), BENCH_GETS (20000), BENCH_KEEP=1 keeps the work dir,
# BENCH_HOOK_EXTRA="LABEL=BINARY ..." times other ctrace builds in the same interleaved hook loop
# (for example a statically linked one; see docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
harness="$root/scripts/bench/harness.py"

hook_iters=${BENCH_HOOK_ITERS:-1000}
ingest_runs=${BENCH_INGEST_RUNS:-5}
seal_mb=${BENCH_SEAL_MB:-256}
seal_runs=${BENCH_SEAL_RUNS:-3}
get_mb=${BENCH_GET_MB:-64}
gets=${BENCH_GETS:-20000}

for tool in cargo python3 zstd; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "bench: $tool is required" >&2
    exit 1
  fi
done
pin=()
if command -v taskset >/dev/null 2>&1; then
  pin=(taskset -c 0)
else
  echo "bench: taskset not found; the seal probe runs unpinned" >&2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ctrace-bench.XXXXXX")
if [ "${BENCH_KEEP:-0}" != 1 ]; then
  trap 'rm -rf "$work"' EXIT
fi
results="$work/results.jsonl"
commands="$work/commands.txt"
: >"$results"
: >"$commands"

# note FIGURE COMMAND...: remembers the command behind a figure and echoes it.
note() {
  local figure=$1
  shift
  printf '%-14s %s\n' "$figure" "$*" >>"$commands"
  printf '+ %s\n' "$*" >&2
}

# --- build ------------------------------------------------------------------------------------
echo "== building (cargo build --release; cargo bench --bench store --no-run)" >&2
cargo build --release --quiet
ctrace="$root/target/release/ctrace"
bench_exe=$(cargo bench --bench store --no-run --message-format=json 2>/dev/null |
  python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and \
            m["target"]["name"] == "store":
        print(m["executable"])
')
if [ -z "$bench_exe" ] || [ ! -x "$bench_exe" ]; then
  echo "bench: could not build the store bench (cargo bench --bench store --no-run)" >&2
  exit 1
fi

# --- data -------------------------------------------------------------------------------------
corpus=${CTRACE_CORPUS:-$root/../shared/corpus}
sources=()
for sub in claude-home transcripts hooks; do
  [ -d "$corpus/$sub" ] && sources+=("$corpus/$sub")
done
if [ ${#sources[@]} -gt 0 ]; then
  corpus=$(cd "$corpus" && pwd)
  sources=()
  for sub in claude-home transcripts hooks; do
    [ -d "$corpus/$sub" ] && sources+=("$corpus/$sub")
  done
  data="corpus $corpus"
else
  echo "bench: no corpus at $corpus (set CTRACE_CORPUS); using a synthetic corpus instead" >&2
  corpus="$work/synthetic"
  CTRACE_BENCH_PROBE=synth CTRACE_BENCH_OUT="$corpus" "$bench_exe" >/dev/null
  sources=("$corpus/claude-home" "$corpus/hooks")
  data="SYNTHETIC corpus (no ../shared/corpus): figures are indicative only"
fi
export CTRACE_CORPUS="$corpus"

# --- 1. hook latency vs spawn floor ------------------------------------------------------------
echo "== hook latency ($hook_iters interleaved pairs)" >&2
payload="$work/payload.json"
python3 "$harness" pick-payload "$corpus" "$payload" >"$work/payload.meta"
note hook python3 scripts/bench/harness.py hook --ctrace target/release/ctrace --store STORE \
  --payload PAYLOAD --iterations "$hook_iters" ${BENCH_HOOK_EXTRA:+--extra $BENCH_HOOK_EXTRA} \
  "  # each iteration: 'ctrace --store STORE hook < PAYLOAD' and '/bin/true < PAYLOAD', alternating"
extra=()
for e in ${BENCH_HOOK_EXTRA:-}; do extra+=(--extra "$e"); done
python3 "$harness" hook --ctrace "$ctrace" --store "$work/hook-store" --payload "$payload" \
  --iterations "$hook_iters" ${extra[@]+"${extra[@]}"} >>"$results"

# --- 2. sealing throughput, one core -----------------------------------------------------------
echo "== sealing ${seal_mb} MB inbox x $seal_runs (pinned to one core)" >&2
note seal CTRACE_BENCH_PROBE=seal CTRACE_BENCH_SEAL_MB="$seal_mb" CTRACE_BENCH_RUNS="$seal_runs" \
  "${pin[@]}" target/release/deps/store-HASH "  # = cargo bench --bench store with the probe env"
CTRACE_BENCH_PROBE=seal CTRACE_BENCH_SEAL_MB="$seal_mb" CTRACE_BENCH_RUNS="$seal_runs" \
  CTRACE_BENCH_DIR="$work" "${pin[@]}" "$bench_exe" >>"$results"

# --- 3. bulk ingest, and 4. stored bytes vs zstd -3 ----------------------------------------------
echo "== bulk ingest x $ingest_runs on fresh stores" >&2
rel_sources=()
for s in "${sources[@]}"; do rel_sources+=("${s#"$corpus"/}"); done
note ingest "ctrace --store FRESH ingest --json -q ${rel_sources[*]}" \
  "  # wall time per run, $ingest_runs runs, median; MB = source bytes"
python3 "$harness" ingest --ctrace "$ctrace" --workdir "$work" --runs "$ingest_runs" \
  "${sources[@]}" >"$work/ingest.json"
cat "$work/ingest.json" >>"$results"
first_store=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["first_store"])' \
  "$work/ingest.json")
note storage "du -b STORE/segments/*.seg STORE/MANIFEST (as sealed, then after 'ctrace --store" \
  "STORE compact')  vs  find ${rel_sources[*]} -type f | sort | xargs cat | zstd -3 -c | wc -c"
python3 "$harness" storage --ctrace "$ctrace" --store "$first_store" --workdir "$work" \
  "${sources[@]}" >>"$results"

# --- 5. one record by offset, warm ----------------------------------------------------------------
echo "== record by offset ($gets random gets, ${get_mb} MB sealed)" >&2
# Not pinned: a latency distribution on a shared machine is fairer when the scheduler may move
# the probe off a busy core.
note get CTRACE_BENCH_PROBE=get CTRACE_BENCH_GET_MB="$get_mb" CTRACE_BENCH_GETS="$gets" \
  target/release/deps/store-HASH "  # each Snapshot::get timed on its own"
CTRACE_BENCH_PROBE=get CTRACE_BENCH_GET_MB="$get_mb" CTRACE_BENCH_GETS="$gets" \
  CTRACE_BENCH_DIR="$work" "$bench_exe" >>"$results"

# --- 5b. one large record by offset ---------------------------------------------------------------
echo "== record by offset, one 1 MiB record" >&2
note get-big CTRACE_BENCH_PROBE=big CTRACE_BENCH_BIG_KB=1024 target/release/deps/store-HASH \
  "  # Snapshot::get of a 1 MiB record vs read_block of its block, median of 11"
CTRACE_BENCH_PROBE=big CTRACE_BENCH_BIG_KB=1024 CTRACE_BENCH_DIR="$work" "$bench_exe" >>"$results"

# --- report -----------------------------------------------------------------------------------
echo
echo "ctrace benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')," \
  "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "data: $data"
echo "hook payload: $(cat "$work/payload.meta")"
echo
python3 "$harness" table "$results"
echo
echo "commands:"
cat "$commands"
echo
echo "raw results (JSON lines):"
cat "$results"
if [ "${BENCH_KEEP:-0}" = 1 ]; then
  echo "work dir kept: $work"
fi
