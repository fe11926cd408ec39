//! `ctrace show <session>` (and `ctrace replay <session>` for sessions without terminal data):
//! the session's timeline.

use std::io::Write;

use clap::Args;

use super::UsageError;
use super::time::format_duration;
use super::timeline::{Item, build, in_timeline};
use crate::log::Store;
use crate::log::record::{Body, StoredRecord};

/// Arguments of `show` and `replay`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Session id, or a unique prefix of one
    pub session: String,
    /// The timeline as one JSON array of items (subagent items nested in `children`)
    #[arg(long)]
    pub json: bool,
}

/// Finds the session named by `wanted` (exact id or unique prefix) among `records`.
///
/// # Errors
/// [`UsageError`] when no session or several sessions match.
pub fn resolve_session(records: &[StoredRecord], wanted: &str) -> Result<String, UsageError> {
    let mut ids: Vec<&str> = records
        .iter()
        .filter_map(|r| r.record.session.as_deref())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.contains(&wanted) {
        return Ok(wanted.to_owned());
    }
    let matches: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| id.starts_with(wanted))
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Err(UsageError(format!(
            "no session `{wanted}` in the store (see `ctrace sessions`)"
        ))),
        many => Err(UsageError(format!(
            "`{wanted}` matches {} sessions: {}",
            many.len(),
            many.iter().take(5).copied().collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// Runs `show`.
///
/// # Errors
/// When the session is unknown or the store cannot be read.
pub fn run(store: &Store, args: &ShowArgs) -> anyhow::Result<i32> {
    let records = super::sessions::all_records(store)?;
    let session = resolve_session(&records, &args.session)?;
    let links = linked(&records, &session);
    let mine: Vec<StoredRecord> = records
        .into_iter()
        .filter(|r| r.record.session.as_deref() == Some(session.as_str()) && in_timeline(&r.record))
        .collect();
    let items = build(&mine);
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &items).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(0);
    }
    writeln!(
        out,
        "session {session}: {} records, {} timeline items",
        mine.len(),
        items.len()
    )?;
    for line in &links {
        writeln!(out, "{line}")?;
    }
    for item in &items {
        print_item(&mut out, item, 0)?;
    }
    Ok(0)
}

/// Lines naming the sessions joined to `session` through `CTRACE_PTY_SESSION` (hooks carrying
/// a `pty_session`): `terminal recording: <id>` for a Claude session, `Claude session: <id>`
/// for a PTY recording.
fn linked(records: &[StoredRecord], session: &str) -> Vec<String> {
    let mut lines = std::collections::BTreeSet::new();
    for stored in records {
        let Body::Hook(hook) = &stored.record.body else {
            continue;
        };
        let (Some(claude), Some(pty)) = (stored.record.session.as_deref(), &hook.pty_session)
        else {
            continue;
        };
        if claude == pty {
            continue;
        }
        if claude == session {
            lines.insert(format!("terminal recording: {pty}"));
        } else if pty == session {
            lines.insert(format!("Claude session: {claude}"));
        }
    }
    lines.into_iter().collect()
}

fn print_item(out: &mut impl Write, item: &Item, depth: usize) -> std::io::Result<()> {
    let indent = "  ".repeat(depth);
    let timing = match (item.duration_ns, item.status) {
        (Some(ns), Some(status)) => format!("  [{} {status}]", format_duration(ns)),
        (None, Some(status)) => format!("  [{status}]"),
        _ => String::new(),
    };
    let agent = match (&item.agent_id, depth) {
        (Some(agent), 0) => format!("  (agent {agent})"),
        _ => String::new(),
    };
    writeln!(
        out,
        "{}  {indent}{:<20} {}{timing}{agent}",
        item.time, item.event, item.summary
    )?;
    for child in &item.children {
        print_item(out, child, depth + 1)?;
    }
    Ok(())
}
