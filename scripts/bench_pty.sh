#!/usr/bin/env bash
# Issue 3, acceptance 3 and 4, measured side by side in one run:
#   - `ctrace record -q -- cat BIGFILE` vs `script -q -c 'cat BIGFILE' /dev/null` vs
#     `asciinema rec -c 'cat BIGFILE'` (asciinema 2.4.0 from a venv under /tmp, skipped if it
#     cannot be installed): wall time and ratio to script, peak RSS (/usr/bin/time -v);
#   - `ctrace replay --no-timing` throughput of the recorded session;
#   - keystroke echo latency through `ctrace record -- cat` vs `script -q -c cat /dev/null`
#     (scripts/pty_latency.py).
# Every recorder runs with stdin from /dev/null and stdout to /dev/null.
#
# usage: scripts/bench_pty.sh [SIZE_MIB]       (default 512; env CTRACE=path to the binary)
set -euo pipefail

cd "$(dirname "$0")/.."
SIZE_MIB=${1:-512}
CTRACE=${CTRACE:-target/release/ctrace}
if [[ -z ${CTRACE_SKIP_BUILD:-} && $CTRACE == target/release/ctrace ]]; then
    cargo build --release --quiet --bin ctrace
fi
CTRACE=$(realpath "$CTRACE")
WORK=$(mktemp -d /tmp/ctrace-bench-pty.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
BIG=$WORK/big.txt
STORE=$WORK/store

# Text with escape sequences and long and short lines, like a busy terminal.
python3 - "$BIG" "$SIZE_MIB" <<'EOF'
import sys
path, mib = sys.argv[1], int(sys.argv[2])
block = b"".join(
    b"\x1b[3%dmline %06d\x1b[0m %s\n" % (i % 8, i, b"x" * (i * 7 % 120)) for i in range(4096)
)
with open(path, "wb") as f:
    left = mib << 20
    while left > 0:
        f.write(block[:left])
        left -= min(left, len(block))
EOF
BYTES=$(stat -c %s "$BIG")

# /usr/bin/time -v COMMAND... → "wall_seconds peak_rss_kib cpu_seconds" on stdout (cpu: user +
# system of the command and its children).
timed() {
    local log=$WORK/time.log
    /usr/bin/time -v -o "$log" "$@" </dev/null >/dev/null 2>"$WORK/stderr.log" || {
        echo "failed: $*" >&2
        cat "$WORK/stderr.log" >&2
        return 1
    }
    local wall rss cpu
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {
        n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$log")
    rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$log")
    cpu=$(awk -F': ' '/(User|System) time/ { s += $2 } END { print s }' "$log")
    echo "$wall $rss $cpu"
}

cat "$BIG" >/dev/null # page cache
ASCIINEMA=/tmp/ctrace-bench-venv/bin/asciinema
if [[ ! -x $ASCIINEMA ]]; then
    { python3 -m venv /tmp/ctrace-bench-venv && /tmp/ctrace-bench-venv/bin/pip install -q asciinema==2.4.0; } \
        >/dev/null 2>&1 || true
fi

echo "# ctrace PTY benchmark: $(date -u +%Y-%m-%dT%H:%MZ), nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# BIGFILE: $BYTES bytes; $CTRACE"
printf '%-34s %9s %9s %12s %9s\n' command wall_s ratio peak_rss_MiB cpu_s
read -r script_wall script_rss script_cpu < <(timed script -q -c "cat $BIG" /dev/null)
read -r ctrace_wall ctrace_rss ctrace_cpu < <(timed "$CTRACE" --store "$STORE" record -q -- cat "$BIG")
row() { printf '%-34s %9.2f %9.2f %12.1f %9.2f\n' "$1" "$2" "$(echo "$2 / $script_wall" | bc -l)" "$(echo "$3 / 1024" | bc -l)" "$4"; }
row "script -q -c 'cat BIG' /dev/null" "$script_wall" "$script_rss" "$script_cpu"
row "ctrace record -q -- cat BIG" "$ctrace_wall" "$ctrace_rss" "$ctrace_cpu"
if [[ -x $ASCIINEMA ]]; then
    read -r cast_wall cast_rss cast_cpu < <(timed "$ASCIINEMA" rec -q --overwrite -c "cat $BIG" "$WORK/big.cast")
    row "asciinema rec -c 'cat BIG' (2.4.0)" "$cast_wall" "$cast_rss" "$cast_cpu"
    rm -f "$WORK/big.cast"
else
    echo "asciinema rec: skipped (pip install asciinema==2.4.0 failed)"
fi

SESSION=$("$CTRACE" --store "$STORE" sessions --json | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["session"])')
"$CTRACE" --store "$STORE" replay --no-timing "$SESSION" >/dev/null # seals and warms
start=$(date +%s.%N)
REPLAYED=$("$CTRACE" --store "$STORE" replay --no-timing "$SESSION" | wc -c)
end=$(date +%s.%N)
replay_s=$(echo "$end - $start" | bc -l)
printf 'ctrace replay --no-timing: %d bytes (recorded %d) in %.2f s = %.0f MB/s\n' \
    "$REPLAYED" "$BYTES" "$replay_s" "$(echo "$REPLAYED / $replay_s / 1000000" | bc -l)"
printf 'store size: %s\n' "$(du -sh "$STORE" | cut -f1)"

echo
echo "# keystroke echo round trip, ${LATENCY_ROUNDS:-1000} rounds each"
python3 scripts/pty_latency.py --rounds "${LATENCY_ROUNDS:-1000}" "$CTRACE" "$WORK/latency-store" || true
