//! `ctrace sessions`: one row per session.

use std::io::Write;

use clap::Args;

use super::time::{format_duration, now_ns};
use super::timeline::summarize;
use crate::log::Store;
use crate::log::record::StoredRecord;

/// Arguments of `sessions`.
#[derive(Debug, Args)]
pub struct SessionsArgs {
    /// One JSON object per session per line
    #[arg(long)]
    pub json: bool,
}

/// Reads every record of the store (after sealing pending data).
///
/// # Errors
/// When the store cannot be read; a damaged block is an error naming it.
pub fn all_records(store: &Store) -> anyhow::Result<Vec<StoredRecord>> {
    super::refresh(store)?;
    let snapshot = store.snapshot()?;
    let mut records = Vec::new();
    for record in snapshot.iter() {
        records.push(record?);
    }
    Ok(records)
}

/// Runs `sessions`.
///
/// # Errors
/// When the store cannot be read or stdout is closed.
pub fn run(store: &Store, args: &SessionsArgs) -> anyhow::Result<i32> {
    let records = all_records(store)?;
    let sessions = summarize(records.iter(), now_ns());
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
    writeln!(
        out,
        "{:<36}  {:<24}  {:>8}  {:>6}  {:>6}  {:>5}  {:<11}  {:<11}  {:<30}  MODELS",
        "SESSION", "LAST", "DURATION", "HOOKS", "LINES", "TOOLS", "STATUS", "LINKED", "PROJECT"
    )?;
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
        writeln!(
            out,
            "{:<36}  {:<24}  {:>8}  {:>6}  {:>6}  {:>5}  {:<11}  {:<11}  {:<30}  {}",
            s.session,
            s.last,
            format_duration(s.duration_ns),
            s.records.get("hook").copied().unwrap_or(0),
            s.records.get("transcript").copied().unwrap_or(0),
            s.tool_calls,
            s.status,
            linked,
            project,
            s.models.iter().cloned().collect::<Vec<_>>().join(",")
        )?;
    }
    Ok(0)
}
