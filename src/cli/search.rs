//! `ctrace search`: full-text search over every record (tantivy).
//!
//! First seals the inbox (when the store lock is free) and brings the index up to date from its
//! checkpoint, within [`CATCH_UP_BUDGET`]; says so on stderr when it could not. Then prints one
//! hit per record: session, time, event / tool, the best snippet with the match highlighted
//! (colour only on a terminal, never with `NO_COLOR`), and the command that replays from there.

use std::io::{BufWriter, IsTerminal, Write};
use std::time::Duration;

use clap::{Args, ValueEnum};

use super::UsageError;
use super::time::now_ns;
use crate::index::{self, IndexError, SearchRequest, SortOrder};
use crate::log::Store;
use crate::model::Source;

/// Longest time `search` spends indexing before it answers.
pub const CATCH_UP_BUDGET: Duration = Duration::from_secs(3);

/// Order of the hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SortArg {
    /// Newest first
    Time,
    /// Best match first (BM25)
    Score,
}

/// Arguments of `ctrace search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The query: words (all must match), "exact phrases", AND / OR / NOT, -word, field:value
    /// (fields: session, source, event, tool, model, agent, project, type, offset)
    pub query: String,
    /// Only this session (exact id)
    #[arg(long)]
    pub session: Option<String>,
    /// Only this source: hook, transcript, pty, otlp, import, internal
    #[arg(long)]
    pub source: Option<Source>,
    /// Only this event: a hook event (PostToolUse), a transcript line type (assistant), pty/output
    #[arg(long)]
    pub event: Option<String>,
    /// Only records of this tool (Bash, Edit, ...; case-insensitive)
    #[arg(long)]
    pub tool: Option<String>,
    /// Only records at or after this time (2h, yesterday, 2026-01-31, RFC 3339)
    #[arg(long)]
    pub since: Option<String>,
    /// Only records at or before this time
    #[arg(long)]
    pub until: Option<String>,
    /// Most hits shown
    #[arg(short = 'n', long = "limit", default_value_t = 20, value_name = "N")]
    pub limit: usize,
    /// Order of the hits
    #[arg(long, value_enum, default_value_t = SortArg::Time)]
    pub sort: SortArg,
    /// One JSON object per hit
    #[arg(long)]
    pub json: bool,
}

/// Whether to colour output: stdout is a terminal and `NO_COLOR` is unset or empty.
pub(crate) fn use_colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Writes `text` with `ranges` in bold red when `colour`, as is otherwise.
///
/// # Errors
/// I/O errors.
pub(crate) fn write_highlighted(
    out: &mut impl Write,
    text: &str,
    ranges: &[std::ops::Range<usize>],
    colour: bool,
) -> std::io::Result<()> {
    if !colour {
        return out.write_all(text.as_bytes());
    }
    let mut at = 0;
    for r in ranges {
        if r.start < at || r.end > text.len() {
            continue;
        }
        out.write_all(&text.as_bytes()[at..r.start])?;
        out.write_all(b"\x1b[1;31m")?;
        out.write_all(&text.as_bytes()[r.start..r.end])?;
        out.write_all(b"\x1b[0m")?;
        at = r.end;
    }
    out.write_all(&text.as_bytes()[at..])
}

pub(crate) use crate::index::replay_command;

/// A short label: event, plus tool names.
pub fn label(event: Option<&str>, tools: &[String]) -> String {
    let mut label = event.unwrap_or("-").to_owned();
    for tool in tools {
        label.push(' ');
        label.push_str(tool);
    }
    label
}

fn to_usage(error: IndexError) -> anyhow::Error {
    if error.is_bad_query() {
        UsageError(error.to_string()).into()
    } else {
        anyhow::Error::new(error).context("searching the index")
    }
}

/// Runs `ctrace search`; returns the exit code (0 also when nothing matches).
///
/// # Errors
/// Bad query, filter or time (exit 2); index or store read errors.
pub fn run(store: &Store, args: &SearchArgs) -> anyhow::Result<i32> {
    let now = now_ns();
    let time = super::time::parse_range(args.since.as_deref(), args.until.as_deref(), now)?;
    if args.limit == 0 {
        return Err(UsageError("-n must be at least 1".into()).into());
    }
    let request = SearchRequest {
        query: args.query.clone(),
        session: args.session.clone(),
        source: args.source,
        event: args.event.clone(),
        tool: args.tool.clone(),
        time,
        limit: args.limit,
        sort: match args.sort {
            SortArg::Time => SortOrder::Time,
            SortArg::Score => SortOrder::Score,
        },
    };
    // Seal first only when the inbox holds records: a snapshot is cheaper than the lock.
    let mut snapshot = store.snapshot()?;
    if snapshot.unsealed_records() > 0 {
        super::refresh(store)?;
        snapshot = store.snapshot()?;
    }
    let options = index::CatchUpOptions {
        budget: Some(CATCH_UP_BUDGET),
        ..index::CatchUpOptions::default()
    };
    match index::catch_up_from(store.paths(), &snapshot, &options) {
        Ok(report) if !report.caught_up => eprintln!(
            "ctrace: the index is {} records behind the log (indexing stopped after {:.1?}); \
             results may be incomplete: run `ctrace compact` or search again",
            report.remaining, report.elapsed
        ),
        Ok(_) => {}
        Err(IndexError::Busy { .. }) => eprintln!(
            "ctrace: another process is updating the index; results may miss the newest records"
        ),
        Err(error) if crate::log::private::is_unwritable(&error) => super::note_unwritable(
            "searching the index as it is, without the newest records",
            &anyhow::Error::new(error),
        ),
        Err(error) => return Err(anyhow::Error::new(error).context("updating the index")),
    }
    if snapshot.unsealed_records() > 0 {
        eprintln!(
            "ctrace: {} records not sealed yet (the store lock is busy or the store cannot be written) are not searched",
            snapshot.unsealed_records()
        );
    }
    let mut results = index::search(store.paths(), &request).map_err(to_usage)?;
    let colour = !args.json && use_colour();
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    for row in index::hit_rows(&snapshot, &mut results)? {
        if args.json {
            super::output::json_line(&mut out, &row)?;
        } else {
            write_hit(&mut out, &row, colour)?;
        }
    }
    if !args.json && results.total > results.hits.len() as u64 {
        writeln!(
            out,
            "({} of {} matching records shown; -n N for more)",
            results.hits.len(),
            results.total
        )?;
    }
    out.flush()?;
    Ok(0)
}

fn write_hit(out: &mut impl Write, row: &index::HitRow, colour: bool) -> std::io::Result<()> {
    let (dim, magenta, green, reset) = if colour {
        ("\x1b[2m", "\x1b[35m", "\x1b[32m", "\x1b[0m")
    } else {
        ("", "", "", "")
    };
    writeln!(
        out,
        "{magenta}{}{reset}  {green}{}{reset}  {}",
        row.session.as_deref().unwrap_or("-"),
        row.time,
        label(row.event.as_deref(), &row.tools),
    )?;
    out.write_all(b"    ")?;
    let ranges: Vec<std::ops::Range<usize>> = row.highlights.iter().map(|[a, b]| *a..*b).collect();
    write_highlighted(out, &row.snippet, &ranges, colour)?;
    writeln!(out)?;
    writeln!(out, "    {dim}{}{reset}", row.replay)
}
