#!/usr/bin/env bash
# Two ctrace builds side by side in one run: the same operations on the same generated data,
# old and new interleaved (old, new, old, new, ...), median wall time of each, and the ratio
# new/old (below 1.00 is faster). For a refactor's "no regression" check, where the figures of
# scripts/bench.sh, bench_views.sh and bench_search.sh are measured against a previous build.
#
#   scripts/bench_compare.sh OLD_BINARY NEW_BINARY
#
# For example, the previous commit against the working tree:
#   git worktree add /tmp/ctrace-old HEAD~1 && (cd /tmp/ctrace-old && cargo build --release)
#   cargo build --release
#   scripts/bench_compare.sh /tmp/ctrace-old/target/release/ctrace target/release/ctrace
#
# Operations (each on its own copy of the store where it writes):
#   ingest     bulk ingest of the generated transcripts into an empty store (frames, seal)
#   rebuild    `compact --rebuild`: every record folded into the views again
#   reindex    `reindex`: the full-text index rebuilt from the log
#   grep       `grep -c error` over every record
#   search     `search error -n 20` (cold process)
#   cost       `cost --by session --json`
#   export     `export` of the whole store to an archive
#   hook       100 `ctrace hook` processes, one payload each
#
# Knobs (environment): BENCH_RECORDS (200000), BENCH_ROUNDS (3), BENCH_DIR (work dir, default
# $TMPDIR/ctrace-bench-compare; deleted at the end unless BENCH_KEEP=1).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 2 ]; then
  echo "usage: scripts/bench_compare.sh OLD_BINARY NEW_BINARY" >&2
  exit 2
fi
old=$(realpath "$1")
new=$(realpath "$2")
for bin in "$old" "$new"; do
  [ -x "$bin" ] || { echo "bench_compare: $bin is not an executable" >&2; exit 2; }
done
records=${BENCH_RECORDS:-200000}
rounds=${BENCH_ROUNDS:-3}
work=${BENCH_DIR:-${TMPDIR:-/tmp}/ctrace-bench-compare}
rm -rf "$work"
mkdir -p "$work"
if [ "${BENCH_KEEP:-0}" != 1 ]; then
  trap 'rm -rf "$work"' EXIT
fi
data="$work/data"
echo "generating $records records into $data ..." >&2
python3 scripts/gen_corpus.py "$data" --records "$records" >/dev/null

hook_payload="$work/hook.json"
printf '%s' '{"session_id":"bench-hook","hook_event_name":"PreToolUse","tool_name":"Bash","tool_use_id":"toolu_b","cwd":"/tmp","tool_input":{"command":"ls"}}' >"$hook_payload"

# Base stores, one per build, made by that build (not timed).
for label in old new; do
  bin=$old
  [ "$label" = new ] && bin=$new
  "$bin" --store "$work/base-$label" ingest "$data" --quiet >/dev/null
  "$bin" --store "$work/base-$label" compact >/dev/null
done

now_ns() { date +%s%N; }
results="$work/results.tsv"
: >"$results"

# run LABEL OP: times one operation of one build, appends "op label ms".
run() {
  local label=$1 op=$2 bin=$old store start end
  [ "$label" = new ] && bin=$new
  store="$work/base-$label"
  case $op in
    ingest)
      rm -rf "$work/ingest-$label"
      start=$(now_ns)
      "$bin" --store "$work/ingest-$label" ingest "$data" --quiet >/dev/null
      ;;
    rebuild)
      start=$(now_ns)
      "$bin" --store "$store" compact --rebuild >/dev/null
      ;;
    reindex)
      start=$(now_ns)
      "$bin" --store "$store" reindex >/dev/null
      ;;
    grep)
      start=$(now_ns)
      "$bin" --store "$store" grep -c error >/dev/null
      ;;
    search)
      start=$(now_ns)
      "$bin" --store "$store" search error -n 20 >/dev/null
      ;;
    cost)
      start=$(now_ns)
      "$bin" --store "$store" cost --by session --json >/dev/null
      ;;
    export)
      rm -f "$work/export-$label.tar.zst"
      start=$(now_ns)
      "$bin" --store "$store" export -o "$work/export-$label.tar.zst" >/dev/null 2>&1
      ;;
    hook)
      start=$(now_ns)
      for _ in $(seq 100); do
        "$bin" --store "$work/hook-$label" hook <"$hook_payload"
      done
      ;;
  esac
  end=$(now_ns)
  printf '%s\t%s\t%s\n' "$op" "$label" $(((end - start) / 1000000)) >>"$results"
}

ops=(ingest rebuild reindex grep search cost export hook)
for round in $(seq "$rounds"); do
  echo "round $round of $rounds ..." >&2
  for op in "${ops[@]}"; do
    # Alternate which build goes first, so neither always runs on a warmer cache.
    if [ $((round % 2)) -eq 1 ]; then
      run old "$op"; run new "$op"
    else
      run new "$op"; run old "$op"
    fi
  done
done

python3 - "$results" "$records" "$rounds" <<'PY'
import statistics, sys
rows = [line.split("\t") for line in open(sys.argv[1]).read().splitlines()]
ops = []
times = {}
for op, label, ms in rows:
    if op not in ops:
        ops.append(op)
    times.setdefault((op, label), []).append(int(ms))
print(f"{sys.argv[2]} generated records, median of {sys.argv[3]} interleaved runs (ms)")
print(f"{'operation':<10} {'old':>9} {'new':>9} {'new/old':>8}")
for op in ops:
    o = statistics.median(times[(op, "old")])
    n = statistics.median(times[(op, "new")])
    print(f"{op:<10} {o:>9.0f} {n:>9.0f} {n / o if o else float('nan'):>8.2f}")
PY
