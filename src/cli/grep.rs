//! `ctrace grep`: regex scan over the decompressed log, for what the index tokenizer cannot
//! express (punctuation, substrings, `\d+`, case-sensitive matches).
//!
//! The pattern is matched against each record's raw payload bytes: the hook payload or
//! transcript line exactly as received (JSON text, escapes included), PTY bytes as recorded
//! (escape sequences included), an internal record's detail. Sealed blocks are decompressed
//! and scanned in parallel (rayon); hits are printed in offset order; blocks outside
//! `--since`/`--until` are not decompressed. Unsealed inbox records are scanned too.

use std::io::{BufWriter, Write};
use std::ops::ControlFlow;

use clap::Args;
use regex::bytes::{Regex, RegexBuilder};
use serde::Serialize;

use super::UsageError;
use super::search::{label, replay_command, use_colour, write_highlighted};
use super::time::{format_ts, now_ns};
use crate::log::read::{Block, Candidate, TimeRange, map_blocks};
use crate::log::{Snapshot, Store};
use crate::model::{BodyRef, Record, RecordRef, Source};
use crate::segments::Offset;

/// Characters of context shown on each side of a match.
const CONTEXT_CHARS: usize = 60;

/// Blocks handed to the thread pool at a time (hits are printed between rounds).
const BLOCKS_PER_ROUND: usize = 64;

/// Arguments of `ctrace grep`.
#[derive(Debug, Args)]
pub struct GrepArgs {
    /// Regular expression (Rust regex syntax), matched against each record's raw payload
    pub pattern: String,
    /// Only this session (exact id)
    #[arg(long)]
    pub session: Option<String>,
    /// Only this source: hook, transcript, pty, otlp, import, internal
    #[arg(long)]
    pub source: Option<Source>,
    /// Only this event: a hook event (PostToolUse), a transcript line type (assistant), pty/output
    #[arg(long)]
    pub event: Option<String>,
    /// Only records of this tool (hook tool_name; case-insensitive)
    #[arg(long)]
    pub tool: Option<String>,
    /// Only records at or after this time (2h, yesterday, 2026-01-31, RFC 3339)
    #[arg(long)]
    pub since: Option<String>,
    /// Only records at or before this time
    #[arg(long)]
    pub until: Option<String>,
    /// Case-insensitive
    #[arg(short = 'i', long)]
    pub ignore_case: bool,
    /// The pattern is a fixed string, not a regex
    #[arg(short = 'F', long)]
    pub fixed_strings: bool,
    /// Print only the number of matching records
    #[arg(short = 'c', long)]
    pub count: bool,
    /// Stop after N matching records
    #[arg(short = 'n', long = "limit", value_name = "N")]
    pub limit: Option<u64>,
    /// One JSON object per matching record
    #[arg(long)]
    pub json: bool,
}

/// One matching record (`record` is `None` when only counting).
struct Match {
    offset: Option<Offset>,
    record: Option<Record>,
    range: std::ops::Range<usize>,
}

/// What grep shows as a record's event: the hook event, the transcript line's type, the
/// internal event, or `pty/<kind>`.
fn event_of<'a>(record: &RecordRef<'a>) -> Option<std::borrow::Cow<'a, str>> {
    match &record.body {
        BodyRef::Hook(b) => b.event.map(Into::into),
        BodyRef::Transcript(b) => b.line_type.map(Into::into),
        BodyRef::Internal(b) => Some(b.event.into()),
        BodyRef::Otlp(b) => Some(match b.name {
            Some(name) => format!("{}/{name}", b.signal.as_str()).into(),
            None => b.signal.as_str().into(),
        }),
        BodyRef::Pty(b) => Some(format!("pty/{:?}", b.kind).to_lowercase().into()),
    }
}

/// The hook's tool, if the record is a hook with one.
fn tool_of<'a>(record: &RecordRef<'a>) -> Option<&'a str> {
    match &record.body {
        BodyRef::Hook(b) => b.tool_name,
        _ => None,
    }
}

#[derive(Serialize)]
struct MatchOut<'a> {
    offset: Option<u64>,
    ts: u64,
    time: String,
    source: &'static str,
    session: Option<&'a str>,
    event: Option<&'a str>,
    tool: Option<&'a str>,
    matched: String,
    context: &'a str,
    replay: Option<String>,
}

struct Filter<'a> {
    regex: Regex,
    /// Whether a record whose encoded bytes do not match can be passed over without decoding
    /// (true unless the pattern has anchors or word boundaries, which behave differently
    /// inside the encoding).
    prefilter: bool,
    args: &'a GrepArgs,
    time: TimeRange,
}

impl Filter<'_> {
    /// Whether a record with these fields passes the filters.
    fn passes(
        &self,
        ts: u64,
        source: Source,
        session: Option<&str>,
        event: impl FnOnce() -> Option<String>,
        tool: Option<&str>,
    ) -> bool {
        let args = self.args;
        self.time.contains(ts)
            && args.source.is_none_or(|s| s == source)
            && args.session.as_deref().is_none_or(|s| session == Some(s))
            && args
                .tool
                .as_deref()
                .is_none_or(|t| tool.is_some_and(|tool| tool.eq_ignore_ascii_case(t)))
            && args
                .event
                .as_deref()
                .is_none_or(|e| event().is_some_and(|found| found.eq_ignore_ascii_case(e)))
    }

    /// The match in an encoded sealed record, if it passes the filters. Decodes only the
    /// fields filters need, borrowed; the whole record only when it is to be printed.
    fn check(&self, offset: Option<Offset>, bytes: &[u8]) -> Option<Match> {
        if self.prefilter && !self.regex.is_match(bytes) {
            return None;
        }
        let view = RecordRef::decode(bytes).ok()?;
        let event = || event_of(&view).map(std::borrow::Cow::into_owned);
        if !self.passes(view.ts, view.source, view.session, event, tool_of(&view)) {
            return None;
        }
        let range = self.regex.find(view.body.raw())?.range();
        let record = if self.args.count {
            None
        } else {
            Some(Record::decode(bytes).ok()?)
        };
        Some(Match {
            offset,
            record,
            range,
        })
    }

    /// The match in a decoded record, if it passes the filters.
    fn check_record(&self, offset: Option<Offset>, record: Record) -> Option<Match> {
        let view = record.as_ref();
        let event = || event_of(&view).map(std::borrow::Cow::into_owned);
        if !self.passes(view.ts, view.source, view.session, event, tool_of(&view)) {
            return None;
        }
        let range = self.regex.find(record.raw())?.range();
        Some(Match {
            offset,
            record: Some(record),
            range,
        })
    }
}

fn has_anchor(pattern: &str) -> bool {
    pattern.contains('^')
        || pattern.contains('$')
        || ["\\b", "\\B", "\\A", "\\z", "\\<", "\\>"]
            .iter()
            .any(|a| pattern.contains(a))
}

/// Runs `ctrace grep`; returns the exit code: 0 when something matched, 1 when nothing did (as
/// grep).
///
/// # Errors
/// A bad pattern, filter or time (exit 2); store read errors.
pub fn run(store: &Store, args: &GrepArgs) -> anyhow::Result<i32> {
    let now = now_ns();
    let time = super::time::parse_range(args.since.as_deref(), args.until.as_deref(), now)?;
    if args.pattern.is_empty() {
        return Err(UsageError("empty pattern: give a regex or, with -F, a string".into()).into());
    }
    let pattern = if args.fixed_strings {
        regex::escape(&args.pattern)
    } else {
        args.pattern.clone()
    };
    let regex = RegexBuilder::new(&pattern)
        .case_insensitive(args.ignore_case)
        .size_limit(64 << 20)
        .build()
        .map_err(|e| {
            UsageError(format!(
                "pattern {:?} is not a valid regex: {e}",
                args.pattern
            ))
        })?;
    let filter = Filter {
        prefilter: !has_anchor(&pattern),
        regex,
        args,
        time,
    };
    super::refresh(store)?;
    let snapshot = store.snapshot()?;
    let colour = !args.json && !args.count && use_colour();
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut printer = Printer {
        out: &mut out,
        args,
        colour,
        matched: 0,
    };
    scan_sealed(&snapshot, &filter, &mut printer)?;
    if !printer.done() {
        let end = snapshot.manifest().next_offset;
        for stored in snapshot.scan(end, time, true) {
            let stored = stored?;
            if let Some(m) = filter.check_record(stored.offset, stored.record) {
                printer.print(&m)?;
                if printer.done() {
                    break;
                }
            }
        }
    }
    let matched = printer.matched;
    if args.count {
        writeln!(out, "{matched}")?;
    }
    out.flush()?;
    Ok(if matched > 0 { 0 } else { 1 })
}

fn scan_sealed(
    snapshot: &Snapshot,
    filter: &Filter<'_>,
    printer: &mut Printer<'_, impl Write>,
) -> anyhow::Result<()> {
    let blocks = snapshot.blocks(.., filter.time);
    let batch = BLOCKS_PER_ROUND.max(rayon::current_num_threads() * 4);
    let scan = |block: &Block| scan_block(snapshot, block, filter);
    let flow = map_blocks(&blocks, batch, scan, |matches| {
        for m in matches {
            if let Err(error) = printer.print(&m) {
                return ControlFlow::Break(Err(error));
            }
            if printer.done() {
                return ControlFlow::Break(Ok(()));
            }
        }
        ControlFlow::Continue(())
    });
    match flow {
        ControlFlow::Break(result) => Ok(result?),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// The matches in one sealed block. Only records whose bytes the pattern matches are decoded
/// (for a compact record of a columnar block, its payload as it lies in the block: exactly what
/// the pattern is matched against below; otherwise the whole encoded record). A damaged block
/// costs only its own records.
fn scan_block(snapshot: &Snapshot, block: &Block, filter: &Filter<'_>) -> Vec<Match> {
    let keep = |candidate: Candidate<'_>| {
        (candidate.encoded && !filter.prefilter) || filter.regex.is_match(candidate.bytes)
    };
    match snapshot.read_block_selected(block, keep) {
        Ok(selected) => selected
            .iter()
            .filter_map(|(offset, bytes)| filter.check(Some(*offset), bytes))
            .collect(),
        Err(damaged) => {
            damaged.note();
            Vec::new()
        }
    }
}

struct Printer<'a, W: Write> {
    out: &'a mut W,
    args: &'a GrepArgs,
    colour: bool,
    matched: u64,
}

impl<W: Write> Printer<'_, W> {
    fn done(&self) -> bool {
        self.args.limit.is_some_and(|n| self.matched >= n)
    }

    fn print(&mut self, m: &Match) -> std::io::Result<()> {
        self.matched += 1;
        let Some(record) = &m.record else {
            return Ok(());
        };
        let raw = record.raw();
        let (context, highlight) = context(raw, m.range.clone());
        let replay = m
            .offset
            .map(|o| replay_command(record.session.as_deref(), o.0));
        let view = record.as_ref();
        let event = event_of(&view);
        if self.args.json {
            let value = MatchOut {
                offset: m.offset.map(|o| o.0),
                ts: record.ts,
                time: format_ts(record.ts),
                source: record.source.as_str(),
                session: record.session.as_deref(),
                event: event.as_deref(),
                tool: tool_of(&view),
                matched: String::from_utf8_lossy(&raw[m.range.clone()]).into_owned(),
                context: &context,
                replay,
            };
            return super::output::json_line(self.out, &value);
        }
        let tools: Vec<String> = tool_of(&view).map(str::to_owned).into_iter().collect();
        let (magenta, green, dim, reset) = if self.colour {
            ("\x1b[35m", "\x1b[32m", "\x1b[2m", "\x1b[0m")
        } else {
            ("", "", "", "")
        };
        writeln!(
            self.out,
            "{magenta}{}{reset}  {green}{}{reset}  {}",
            record.session.as_deref().unwrap_or("-"),
            format_ts(record.ts),
            label(event.as_deref(), &tools)
        )?;
        self.out.write_all(b"    ")?;
        write_highlighted(self.out, &context, &[highlight], self.colour)?;
        writeln!(self.out)?;
        match replay {
            Some(replay) => writeln!(self.out, "    {dim}{replay}{reset}"),
            None => writeln!(self.out, "    {dim}(not sealed yet: no offset){reset}"),
        }
    }
}

/// The text around a match, whitespace and control characters folded to one space, and the
/// match's byte range in it.
fn context(raw: &[u8], range: std::ops::Range<usize>) -> (String, std::ops::Range<usize>) {
    let before_start = back_chars(raw, range.start, CONTEXT_CHARS);
    let after_end = forward_chars(raw, range.end, CONTEXT_CHARS);
    let fold = |bytes: &[u8], out: &mut String| {
        let text = String::from_utf8_lossy(bytes);
        let mut space = false;
        for c in text.chars() {
            if c.is_whitespace() || c.is_control() {
                if !space {
                    out.push(' ');
                }
                space = true;
            } else {
                out.push(c);
                space = false;
            }
        }
    };
    let mut out = String::new();
    fold(&raw[before_start..range.start], &mut out);
    let start = out.len();
    fold(&raw[range.clone()], &mut out);
    let end = out.len();
    fold(&raw[range.end..after_end], &mut out);
    (out, start..end)
}

fn back_chars(raw: &[u8], mut at: usize, chars: usize) -> usize {
    for _ in 0..chars {
        if at == 0 {
            break;
        }
        at -= 1;
        while at > 0 && (raw[at] & 0xC0) == 0x80 {
            at -= 1;
        }
    }
    at
}

fn forward_chars(raw: &[u8], mut at: usize, chars: usize) -> usize {
    for _ in 0..chars {
        if at >= raw.len() {
            break;
        }
        at += 1;
        while at < raw.len() && (raw[at] & 0xC0) == 0x80 {
            at += 1;
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_marks_the_match() {
        let raw = "line one\nan error: here é\n".as_bytes();
        let start = 12;
        let (text, range) = context(raw, start..start + 5);
        assert_eq!(&text[range], "error");
        assert_eq!(text, "line one an error: here é ");
    }

    #[test]
    fn anchors_disable_the_prefilter() {
        assert!(has_anchor("^foo"));
        assert!(has_anchor(r"\bfoo"));
        assert!(!has_anchor("foo.*bar"));
    }
}
