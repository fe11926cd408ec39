//! `ctrace show <session>` (and `ctrace replay <session>` for sessions without terminal data):
//! the session's timeline (`items.rs`), from the views and the session's own records.

use std::collections::BTreeSet;
use std::io::Write;

use clap::Args;

use super::UsageError;
use super::items::{Item, build, in_timeline};
use super::time::format_duration;
use crate::log::read::TimeRange;
use crate::log::{Snapshot, Store};
use crate::model::{Body, StoredRecord};
use crate::segments::Offset;
use crate::views::ViewsDb;
use crate::views::pricing::PriceTable;

/// Arguments of `show` and `replay`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Session id, or a unique prefix of one
    pub session: String,
    /// The timeline as one JSON array of items (subagent items nested in `children`)
    #[arg(long)]
    pub json: bool,
}

/// The unsealed records of `snapshot` (the views hold only sealed ones).
fn unsealed(snapshot: &Snapshot) -> impl Iterator<Item = StoredRecord> + '_ {
    snapshot
        .scan(Offset(u64::MAX), TimeRange::default(), true)
        .filter_map(Result::ok)
}

/// Finds the session named by `wanted` (exact id or unique prefix) among the views' sessions
/// and the unsealed records.
///
/// # Errors
/// [`UsageError`] when no session or several sessions match; when the views cannot be read.
pub fn resolve_session(db: &ViewsDb, snapshot: &Snapshot, wanted: &str) -> anyhow::Result<String> {
    let mut ids: BTreeSet<String> = crate::views::tree::resolve_session(db, wanted)?
        .into_iter()
        .collect();
    if ids.contains(wanted) {
        return Ok(wanted.to_owned());
    }
    for stored in unsealed(snapshot) {
        if let Some(id) = stored.record.session
            && id.starts_with(wanted)
        {
            if id == wanted {
                return Ok(id);
            }
            ids.insert(id);
        }
    }
    let matches: Vec<&String> = ids.iter().collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(UsageError(format!(
            "no session `{wanted}` in the store (see `ctrace sessions`)"
        ))
        .into()),
        many => Err(UsageError(format!(
            "`{wanted}` matches {} sessions: {}",
            many.len(),
            many.iter()
                .take(5)
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into()),
    }
}

/// The records of `session`: the sealed ones read through the offset ranges the views keep for
/// it (only those ranges are decoded), then the unsealed ones.
///
/// # Errors
/// When the views cannot be read.
pub fn session_records(
    db: &ViewsDb,
    snapshot: &Snapshot,
    session: &str,
) -> anyhow::Result<Vec<StoredRecord>> {
    Ok(crate::views::listing::session_records(
        db, snapshot, session,
    )?)
}

/// One session's timeline and what `show` prints above it.
#[derive(Debug)]
pub struct Timeline {
    /// The session id.
    pub session: String,
    /// The session's records (PTY data left out).
    pub records: Vec<StoredRecord>,
    /// The items.
    pub items: Vec<Item>,
    /// `terminal recording: <id>` / `Claude session: <id>` lines.
    pub links: Vec<String>,
}

/// Builds the timeline of the session `wanted` names (after sealing pending data and bringing
/// the views up to date).
///
/// # Errors
/// [`UsageError`] when the session is unknown; when the store or the views cannot be read.
pub fn timeline(store: &Store, wanted: &str) -> anyhow::Result<Timeline> {
    super::refresh(store)?;
    // The snapshot first: the views then hold at least every record it has sealed.
    let snapshot = store.snapshot()?;
    let db = super::views_for_reading(store)?;
    let session = resolve_session(&db, &snapshot, wanted)?;
    let records: Vec<StoredRecord> = session_records(&db, &snapshot, &session)?
        .into_iter()
        .filter(|r| in_timeline(&r.record))
        .collect();
    let prices = PriceTable::new(&store.config().pricing);
    let shape = crate::views::shape::session_shape(&db, &prices, &session)?.unwrap_or_default();
    let items = build(&records, &shape);
    let links = linked(&db, &snapshot, &session)?;
    Ok(Timeline {
        session,
        records,
        items,
        links,
    })
}

/// Runs `show`.
///
/// # Errors
/// When the session is unknown or the store cannot be read.
pub fn run(store: &Store, args: &ShowArgs) -> anyhow::Result<i32> {
    let t = timeline(store, &args.session)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &t.items).map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(0);
    }
    writeln!(
        out,
        "session {}: {} records, {} timeline items",
        t.session,
        t.records.len(),
        t.items.len()
    )?;
    for line in &t.links {
        writeln!(out, "{line}")?;
    }
    for item in &t.items {
        print_item(&mut out, item, 0)?;
    }
    Ok(0)
}

/// Lines naming the sessions joined to `session` through `CTRACE_PTY_SESSION` (hooks carrying
/// a `pty_session`): `terminal recording: <id>` for a Claude session, `Claude session: <id>`
/// for a PTY recording.
fn linked(db: &ViewsDb, snapshot: &Snapshot, session: &str) -> anyhow::Result<Vec<String>> {
    let mut lines = BTreeSet::new();
    for row in crate::views::summary::sessions(db, Some(session))? {
        for pty in &row.recordings {
            lines.insert(format!("terminal recording: {pty}"));
        }
        for claude in &row.claude_sessions {
            lines.insert(format!("Claude session: {claude}"));
        }
    }
    for stored in unsealed(snapshot) {
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
    Ok(lines.into_iter().collect())
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
    let agent = if item.arrival_time {
        format!("{agent}  (time read from the log file, not captured)")
    } else {
        agent
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
