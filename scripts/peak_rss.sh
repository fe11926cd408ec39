#!/usr/bin/env bash
# Peak RSS of `hook`, `ingest`, `compact` and `record` on hostile inputs (issue 14 item 9):
# a stream of zeros on the hook's stdin, a regular file of zeros without a newline, a single
# line of SIZE bytes, and files of LINES_SIZE bytes of short lines, of a JSON array of hook
# payloads and of an asciicast. Prints a Markdown table.
#
#   nice cargo build --release && scripts/peak_rss.sh            # SIZE defaults to 1 GiB
#   SIZE=$((256 << 20)) LINES_SIZE=$((64 << 20)) CTRACE_BIN=target/release/ctrace scripts/peak_rss.sh
#
# Needs GNU time (`/usr/bin/time -v`; Debian/Ubuntu package `time`). Uses 2 × SIZE + 3 × LINES_SIZE of disk
# under $TMPDIR for the inputs, plus the stores.
set -euo pipefail

BIN=$(realpath "${CTRACE_BIN:-target/release/ctrace}")
SIZE=${SIZE:-1073741824}
LINES_SIZE=${LINES_SIZE:-$SIZE}
RECORD_SIZE=${RECORD_SIZE:-67108864}
[ -x /usr/bin/time ] || { echo "needs GNU time: apt-get install time" >&2; exit 2; }
[ -x "$BIN" ] || { echo "no binary at $BIN: nice cargo build --release" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# run NAME INPUT STORE CMD...: runs CMD under GNU time, prints one table row.
run() {
    local name=$1 input=$2 store=$3
    shift 3
    local stats="$work/time.txt"
    local start end
    start=$(date +%s.%N)
    if ! /usr/bin/time -v -o "$stats" "$@" >"$work/out.txt" 2>"$work/err.txt"; then
        echo "| $name | $input | failed: $(tail -1 "$work/err.txt") | | |"
        return
    fi
    end=$(date +%s.%N)
    local kb
    kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$stats")
    printf '| %s | %s | %d | %.1f | %s |\n' "$name" "$input" "$((kb / 1024))" \
        "$(echo "$end - $start" | bc)" "$(du -sh "$store" | cut -f1)"
}

human=$(numfmt --to=iec "$SIZE")
zeros="$work/zeros.jsonl"
line="$work/line.jsonl"
lines="$work/lines.jsonl"
head -c "$SIZE" /dev/zero >"$zeros"
{
    printf '{"type":"user","sessionId":"s","uuid":"u1","message":{"content":"'
    head -c "$SIZE" /dev/zero | tr '\0' a
    printf '"}}\n'
} >"$line"
{ yes '{"type":"user","sessionId":"s","uuid":"u","message":{"content":"hello"}}' || true; } |
    head -c "$LINES_SIZE" >"$lines"
# whole_lines LINE: LINE repeated to about LINES_SIZE bytes, every copy whole.
whole_lines() {
    { yes "$1" || true; } | head -n "$((LINES_SIZE / (${#1} + 1) + 1))"
}
array="$work/hooks.json"
{
    printf '[\n'
    whole_lines '{"session_id":"s","hook_event_name":"PostToolUse","tool_name":"Bash"},'
    printf '{"session_id":"s","hook_event_name":"Stop"}]\n'
} >"$array"
cast="$work/session.cast"
{
    printf '{"version": 2, "width": 80, "height": 24}\n'
    whole_lines '[0.25, "o", "hello from the terminal\r\n"]'
    printf '[1.5, "o", "bye"]\n'
} >"$cast"
# Settled files: an unterminated last line is taken, not left waiting for more bytes.
touch -d '1 hour ago' "$zeros" "$line" "$lines" "$array" "$cast"

echo "| command | input | peak RSS (MiB) | wall (s) | store |"
echo "| --- | --- | ---: | ---: | ---: |"
s="$work/hook-zeros"
run "hook" "$human of zeros on stdin" "$s" \
    sh -c "head -c $SIZE /dev/zero | '$BIN' --store '$s' hook"
run "compact (seals it)" "the store above" "$s" "$BIN" --store "$s" compact
s="$work/hook-line"
run "hook" "$human single line on stdin" "$s" sh -c "'$BIN' --store '$s' hook < '$line'"
for input in zeros line lines; do
    s="$work/ingest-$input"
    case $input in
    zeros) what="$human of zeros, no newline" ;;
    line) what="$human single line" ;;
    lines) what="$(numfmt --to=iec "$LINES_SIZE") of short lines" ;;
    esac
    run "ingest" "$what" "$s" "$BIN" --store "$s" ingest --quiet "$work/$input.jsonl"
    run "compact" "the store above" "$s" "$BIN" --store "$s" compact
done
lines_human=$(numfmt --to=iec "$LINES_SIZE")
s="$work/ingest-array"
run "ingest" "$lines_human JSON array of hook payloads" "$s" "$BIN" --store "$s" ingest --quiet "$array"
run "compact" "the store above" "$s" "$BIN" --store "$s" compact
s="$work/ingest-cast"
run "ingest" "$lines_human asciicast" "$s" "$BIN" --store "$s" ingest --quiet "$cast"
run "compact" "the store above" "$s" "$BIN" --store "$s" compact
s="$work/record"
run "record" "$(numfmt --to=iec "$RECORD_SIZE") of zeros from the program" "$s" \
    "$BIN" --store "$s" record -- head -c "$RECORD_SIZE" /dev/zero
