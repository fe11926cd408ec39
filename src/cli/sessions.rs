//! `ctrace sessions`: one row per session, read from the views (`views::summary`), with the
//! records not sealed yet (a PTY recording in progress, hooks waiting for the lock) laid over
//! them (`views::listing`).

use std::io::Write;

use clap::Args;

use super::time::{format_duration, now_ns};
use crate::log::Store;
pub use crate::views::listing::{ACTIVE_WINDOW_NS, SessionSummary};

/// Arguments of `sessions`.
#[derive(Debug, Args)]
pub struct SessionsArgs {
    /// One JSON object per session per line
    #[arg(long)]
    pub json: bool,
}

/// Every session of the store, most recent first: the views' rows (brought up to date) with
/// the unsealed records laid over them ([`crate::views::listing::summaries`]).
///
/// # Errors
/// When the store or the views cannot be read.
pub fn summaries(store: &Store) -> anyhow::Result<Vec<SessionSummary>> {
    super::refresh(store)?;
    // The snapshot first: the views then hold at least every record it has sealed.
    let snapshot = store.snapshot()?;
    let db = super::views_for_reading(store)?;
    Ok(crate::views::listing::summaries(&db, &snapshot, now_ns())?)
}

/// Runs `sessions`.
///
/// # Errors
/// When the store cannot be read or stdout is closed.
pub fn run(store: &Store, args: &SessionsArgs) -> anyhow::Result<i32> {
    let sessions = summaries(store)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        for session in &sessions {
            super::output::json_line(&mut out, session)?;
        }
        return Ok(0);
    }
    if sessions.is_empty() {
        writeln!(
            out,
            "no sessions yet: run `ctrace demo`, `ctrace install`, or `ctrace ingest ~/.claude/projects`"
        )?;
        return Ok(0);
    }
    let mut table = super::table::plain(
        &[
            "SESSION", "LAST", "DURATION", "HOOKS", "LINES", "TOOLS", "FAILED", "STATUS", "LINKED",
            "PROJECT", "MODELS",
        ],
        &[2, 3, 4, 5, 6],
    );
    for s in &sessions {
        let project = s.project.clone().unwrap_or_default();
        let project = if project.chars().count() > 30 {
            let tail: String = project
                .chars()
                .rev()
                .take(29)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!("…{tail}")
        } else {
            project
        };
        // The first linked session's id prefix (enough for `show` and `replay`), `+N` more.
        let linked = match s.linked_sessions.iter().next() {
            Some(first) => {
                let prefix: String = first.chars().take(8).collect();
                match s.linked_sessions.len() {
                    1 => prefix,
                    n => format!("{prefix}+{}", n - 1),
                }
            }
            None => String::new(),
        };
        table.add_row(vec![
            s.session.clone(),
            s.last.clone(),
            format_duration(s.duration_ns),
            s.records.get("hook").copied().unwrap_or(0).to_string(),
            s.records
                .get("transcript")
                .copied()
                .unwrap_or(0)
                .to_string(),
            s.tool_calls.to_string(),
            s.tool_errors.to_string(),
            s.status.to_string(),
            linked,
            project,
            s.models.iter().cloned().collect::<Vec<_>>().join(","),
        ]);
    }
    writeln!(out, "{}", super::table::render(&table))?;
    Ok(0)
}
