#!/usr/bin/env bash
# Export / import throughput on a large store (issue 6, figure 5).
#
# Usage: scripts/bench_export.sh [RECORDS]        (default 1000000, about 1 GB of records)
#
# Generates a synthetic Claude Code tree with scripts/gen_corpus.py (override with
# CTRACE_GEN_CORPUS), ingests it into a store, deletes the tree, then times
#   ctrace export -o archive.tar.zst        (whole store)
#   ctrace import archive.tar.zst           (into an empty store; verify pass + import pass)
#   ctrace import archive.tar.zst           (again: everything already present)
# and prints MB/s over the records' raw bytes (MB = 10^6 bytes), and the archive size against
# the store size. Work files live under $CTRACE_BENCH_DIR (default
# ${TMPDIR:-/tmp}/ctrace-bench-export) and are deleted at the end unless KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."

records="${1:-1000000}"
bench="${CTRACE_BENCH_DIR:-${TMPDIR:-/tmp}/ctrace-bench-export}"
gen="${CTRACE_GEN_CORPUS:-scripts/gen_corpus.py}"
if [ ! -f "$gen" ]; then
  echo "bench_export: $gen not found (set CTRACE_GEN_CORPUS)" >&2
  exit 2
fi

cargo build --release --quiet
bin="$PWD/target/release/ctrace"

# A tree generated earlier for the same record count (`$bench/tree-N`) is reused.
tree="$bench/tree-$records"
find "$bench" -mindepth 1 -maxdepth 1 ! -name "tree-$records" -exec rm -rf {} + 2>/dev/null || true
mkdir -p "$bench"
cleanup() { [ "${KEEP:-0}" = 1 ] || rm -rf "$bench"; }
trap cleanup EXIT

now() { date +%s.%N; }
mbps() { python3 -c "import sys; b,s=float(sys.argv[1]),float(sys.argv[2]); print(f'{b/1e6/s:.1f}')" "$1" "$2"; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2])-float(sys.argv[1]):.2f}')" "$1" "$2"; }
size() { du -sb "$1" | cut -f1; }

if [ ! -d "$tree" ]; then
  echo "== generating $records records"
  python3 "$gen" "$bench/tree.tmp" --records "$records"
  mv "$bench/tree.tmp" "$tree"
fi
echo "== ingesting"
t0=$(now)
"$bin" --store "$bench/store" ingest --quiet "$tree" >/dev/null
t1=$(now)
echo "ingest: $(secs "$t0" "$t1") s"
rm -rf "$tree"

raw=$("$bin" --store "$bench/store" stats | awk '/^bytes/ {print $2}')
stored=$(size "$bench/store/segments")
count=$("$bin" --store "$bench/store" stats | awk '/^records/ {print $2}')

echo "== export"
t0=$(now)
"$bin" --store "$bench/store" export --quiet -o "$bench/archive.tar.zst"
t1=$(now)
export_s=$(secs "$t0" "$t1")
archive=$(size "$bench/archive.tar.zst")

echo "== import into an empty store"
t0=$(now)
"$bin" --store "$bench/imported" import --quiet "$bench/archive.tar.zst"
t1=$(now)
import_s=$(secs "$t0" "$t1")

echo "== import again (nothing to add)"
t0=$(now)
"$bin" --store "$bench/imported" import --quiet "$bench/archive.tar.zst"
t1=$(now)
reimport_s=$(secs "$t0" "$t1")

echo "== verify only"
t0=$(now)
"$bin" --store "$bench/imported" import --verify-only "$bench/archive.tar.zst" >/dev/null
t1=$(now)
verify_s=$(secs "$t0" "$t1")

imported=$("$bin" --store "$bench/imported" stats | awk '/^records/ {print $2}')
if [ "$imported" != "$count" ]; then
  echo "bench_export: imported store has $imported records, expected $count" >&2
  exit 1
fi

echo
echo "records                 $count"
echo "raw record bytes        $raw"
echo "store segments bytes    $stored"
echo "archive bytes           $archive ($(python3 -c "print(f'{$archive/$stored:.2f}')") x the store, $(python3 -c "print(f'{$raw/$archive:.1f}')")x smaller than raw)"
echo "export                  ${export_s} s, $(mbps "$raw" "$export_s") MB/s of raw records"
echo "import (verify+import)  ${import_s} s, $(mbps "$raw" "$import_s") MB/s"
echo "re-import (no-op)       ${reimport_s} s, $(mbps "$raw" "$reimport_s") MB/s"
echo "verify only             ${verify_s} s, $(mbps "$raw" "$verify_s") MB/s"
