#!/usr/bin/env bash
# Benchmarks of the views (issue 5, acceptance 3), one run each, printed as a table:
#   1. full rebuild (`ctrace compact --rebuild`) of a generated store: records/s (target ≥ 200k/s)
#   2. incremental compaction of 1,000 new records (target ≤ 200 ms)
#   3. `ctrace cost --by day` (target ≤ 100 ms)
#   4. `ctrace cost --by session` vs `ccusage session --offline` on the same transcripts, both
#      warm (second run): the ratio (target ≥ 10x)
#
# Usage: scripts/bench_views.sh [RECORDS]        (default 1000000)
# Env:   CTRACE_BENCH_DIR (default ${TMPDIR:-/tmp}/ctrace-bench-views; data + store, ~2 GB for 1M)
#        GEN_CORPUS (default scripts/gen_corpus.py), CTRACE_CCUSAGE (ccusage binary; else skipped)
#        KEEP=1 keeps the data and store afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
records="${1:-1000000}"
dir="${CTRACE_BENCH_DIR:-${TMPDIR:-/tmp}/ctrace-bench-views}"
gen="${GEN_CORPUS:-scripts/gen_corpus.py}"
bin="$PWD/target/release/ctrace"
data="$dir/data"
store="$dir/store"

cargo build --release --quiet
mkdir -p "$dir"
if [ ! -d "$data/projects" ]; then
  echo "generating $records records into $data ..." >&2
  python3 "$gen" "$data" --records "$records" >&2
fi
if [ ! -f "$store/MANIFEST" ]; then
  echo "ingesting into $store ..." >&2
  "$bin" --store "$store" ingest "$data" --quiet >/dev/null
fi

now_ms() { date +%s%3N; }
# Runs a command, prints its wall time in ms.
time_ms() {
  local start end
  start=$(now_ms)
  "$@" >/dev/null
  end=$(now_ms)
  echo $((end - start))
}

# 1. Full rebuild.
out=$("$bin" --store "$store" compact --rebuild)
applied=$(sed -n 's/^views: \([0-9]*\) records applied in \(.*\); checkpoint.*/\1/p' <<<"$out")
elapsed=$(sed -n 's/^views: [0-9]* records applied in \(.*\); checkpoint.*/\1/p' <<<"$out")
secs=$(python3 -c "
import re,sys
t='$elapsed'
m=re.match(r'([0-9.]+)(ms|s|µs)', t)
v=float(m.group(1)); u=m.group(2)
print(v/1000 if u=='ms' else v/1e6 if u=='µs' else v)")
rate=$(python3 -c "print(int($applied/$secs))")

# 2. Incremental: 1,000 new hook records, then one compaction.
inc="$dir/incremental-$$.ndjson"
python3 - "$inc" <<'PY'
import json, sys, time
session = "bench-incremental-%d" % int(time.time())
with open(sys.argv[1], "w") as f:
    for i in range(500):
        base = {"session_id": session, "cwd": "/tmp/bench", "tool_name": "Bash",
                "tool_use_id": "toolu_inc_%d" % i, "transcript_path": "/nonexistent.jsonl"}
        f.write(json.dumps(dict(base, hook_event_name="PreToolUse",
                                tool_input={"command": "echo %d" % i})) + "\n")
        f.write(json.dumps(dict(base, hook_event_name="PostToolUse",
                                tool_response={"stdout": str(i)})) + "\n")
PY
"$bin" --store "$store" ingest "$inc" --quiet >/dev/null
inc_out=$("$bin" --store "$store" compact)
inc_views=$(sed -n 's/^views: \([0-9]*\) records applied in \(.*\); checkpoint.*/\1 records in \2/p' <<<"$inc_out")
rm -f "$inc"
# The same once more, timing the whole command (seal + views + retention).
python3 - "$inc" <<'PY'
import json, sys, time
session = "bench-incremental2-%d" % int(time.time())
with open(sys.argv[1], "w") as f:
    for i in range(1000):
        f.write(json.dumps({"session_id": session, "hook_event_name": "Notification",
                            "message": "n%d" % i}) + "\n")
PY
"$bin" --store "$store" ingest "$inc" --quiet >/dev/null
inc_wall=$(time_ms "$bin" --store "$store" compact)
rm -f "$inc"

# 3. cost --by day, warm.
"$bin" --store "$store" cost --by day >/dev/null
day_ms=$(time_ms "$bin" --store "$store" cost --by day)

# 4. cost --by session vs ccusage, warm.
"$bin" --store "$store" cost --by session --json >/dev/null
ours_ms=$(time_ms "$bin" --store "$store" cost --by session --json)
ratio="skipped (CTRACE_CCUSAGE unset)"
cc_ms="-"
if [ -n "${CTRACE_CCUSAGE:-}" ]; then
  CLAUDE_CONFIG_DIR="$data" "$CTRACE_CCUSAGE" session --offline --json >/dev/null
  cc_ms=$(CLAUDE_CONFIG_DIR="$data" time_ms "$CTRACE_CCUSAGE" session --offline --json)
  ratio=$(python3 -c "print('%.1fx faster' % ($cc_ms / max($ours_ms, 1)))")
fi

printf '\n%-52s %-28s %s\n' "benchmark ($applied records)" "result" "target"
printf '%-52s %-28s %s\n' "full rebuild (compact --rebuild, views stage)" "$rate records/s ($elapsed)" ">= 200000 records/s"
printf '%-52s %-28s %s\n' "incremental: 1000 new records, views stage" "$inc_views" "<= 200 ms"
printf '%-52s %-28s %s\n' "incremental: 1000 new records, whole compact" "$inc_wall ms" "<= 200 ms"
printf '%-52s %-28s %s\n' "ctrace cost --by day (warm)" "$day_ms ms" "<= 100 ms"
printf '%-52s %-28s %s\n' "ctrace cost --by session --json (warm)" "$ours_ms ms" ""
printf '%-52s %-28s %s\n' "ccusage session --offline --json (warm)" "$cc_ms ms" ""
printf '%-52s %-28s %s\n' "ratio" "$ratio" ">= 10x"

if [ "${KEEP:-0}" != 1 ]; then
  rm -rf "$dir"
fi
