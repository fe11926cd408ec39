//! `ctrace sessions`: one row per session, read from the views (`views::summary`), with the
//! records not sealed yet (a PTY recording in progress, hooks waiting for the lock) laid over
//! them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use clap::Args;
use serde::Serialize;

use super::time::{format_duration, format_ts, now_ns};
use crate::log::{Snapshot, Store};
use crate::model::{Body, PtyKind, StoredRecord};
use crate::views::summary::SessionRow;

/// How long without records before a session without `SessionEnd` counts as not active.
pub const ACTIVE_WINDOW_NS: u64 = 10 * 60 * 1_000_000_000;

/// Arguments of `sessions`.
#[derive(Debug, Args)]
pub struct SessionsArgs {
    /// One JSON object per session per line
    #[arg(long)]
    pub json: bool,
}

/// One row of `ctrace sessions`.
#[derive(Debug, Clone, Serialize)]
pub struct SessionSummary {
    /// Session id.
    pub session: String,
    /// Working directory (project) of the session, when known.
    pub project: Option<String>,
    /// First record time, ns since the epoch.
    pub first_ns: u64,
    /// Last record time, ns since the epoch.
    pub last_ns: u64,
    /// First record time, RFC 3339.
    pub first: String,
    /// Last record time, RFC 3339.
    pub last: String,
    /// `last - first`, ns.
    pub duration_ns: u64,
    /// Records by source.
    pub records: BTreeMap<String, u64>,
    /// Tool calls (the views' tool spans, plus unsealed `PreToolUse` hooks).
    pub tool_calls: u64,
    /// Models of the session's API responses.
    pub models: BTreeSet<String>,
    /// Records flagged malformed.
    pub malformed: u64,
    /// `ended` (SessionEnd seen, or idle after a finished turn), `active` (records in the last
    /// 10 minutes), or `interrupted` (idle in the middle of a turn); for PTY recordings without
    /// an `exit` record, `recording` (its recorder still holds its inbox file) or `unfinished`.
    pub status: &'static str,
    /// Sessions joined to this one through `CTRACE_PTY_SESSION`: for a PTY recording, the
    /// Claude sessions whose hooks ran inside it; for a Claude session, the recording(s) its
    /// hooks ran in.
    pub linked_sessions: BTreeSet<String>,
}

/// A views row and what the unsealed records add to it.
#[derive(Debug, Default)]
struct Row {
    view: SessionRow,
    unsealed_pty: bool,
}

/// Lays the unsealed records of `snapshot` over the views' rows (new sessions get rows).
fn overlay(rows: &mut BTreeMap<String, Row>, snapshot: &Snapshot) {
    for stored in snapshot.scan(crate::segments::Offset(u64::MAX), Default::default(), true) {
        let Ok(StoredRecord { record, .. }) = stored else {
            continue;
        };
        let Some(id) = &record.session else { continue };
        let row = rows.entry(id.clone()).or_insert_with(|| Row {
            view: SessionRow {
                session: id.clone(),
                first_ns: u64::MAX,
                ..SessionRow::default()
            },
            unsealed_pty: false,
        });
        let s = &mut row.view;
        // Hook records timed only by their arrival never stretch a session (as in the views).
        if !matches!(&record.body, Body::Hook(hook) if hook.arrival_time) || s.first_ns == u64::MAX
        {
            s.first_ns = s.first_ns.min(record.ts);
            s.last_ns = s.last_ns.max(record.ts);
        }
        *s.records
            .entry(record.source.as_str().to_owned())
            .or_default() += 1;
        match &record.body {
            Body::Hook(hook) => {
                s.malformed += u64::from(hook.malformed.is_some());
                if s.project.is_none() {
                    s.project = hook.cwd.clone();
                }
                if let Some(pty) = &hook.pty_session
                    && pty != id
                {
                    s.recordings.insert(pty.clone());
                }
                match hook.event.as_deref() {
                    Some("PreToolUse") => {
                        s.tool_calls += 1;
                        s.turn_finished = Some(false);
                    }
                    Some("UserPromptSubmit") => s.turn_finished = Some(false),
                    Some("Stop") => s.turn_finished = Some(true),
                    Some("SessionEnd") => s.ended_ns = Some(record.ts),
                    _ => {}
                }
            }
            Body::Transcript(line) => s.malformed += u64::from(line.malformed.is_some()),
            Body::Pty(pty) => {
                row.unsealed_pty = true;
                s.pty_exited |= pty.kind == PtyKind::Exit;
                if s.project.is_none() {
                    s.project = pty.cwd.clone();
                }
            }
            Body::Internal(_) => {}
        }
    }
    // Links seen only in unsealed hooks: the recording's side.
    let links: Vec<(String, String)> = rows
        .values()
        .flat_map(|r| {
            r.view
                .recordings
                .iter()
                .map(|pty| (r.view.session.clone(), pty.clone()))
        })
        .collect();
    for (claude, pty) in links {
        if let Some(r) = rows.get_mut(&pty) {
            r.view.claude_sessions.insert(claude);
        }
    }
}

fn summarize(row: Row, now_ns: u64) -> SessionSummary {
    let s = row.view;
    let has_pty = s.records.get("pty").is_some_and(|n| *n > 0);
    // A PTY recording without an `exit` record is still being recorded while its recorder
    // holds its inbox file (records not sealed yet); once every record is sealed, the
    // recorder is gone: `unfinished` (see `crate::pty`). Ingested casts were complete
    // files: `ended`.
    let cast = s
        .session
        .starts_with(crate::ingest::asciicast::SESSION_PREFIX);
    let session_end = s.ended_ns.is_some();
    let pty_running = has_pty && !s.pty_exited && !session_end && !cast;
    let pty_ended = has_pty && (s.pty_exited || cast);
    let status = if pty_running {
        if row.unsealed_pty {
            "recording"
        } else {
            "unfinished"
        }
    } else if session_end || pty_ended {
        "ended"
    } else if now_ns.saturating_sub(s.last_ns) < ACTIVE_WINDOW_NS {
        "active"
    } else if s.turn_finished == Some(true) {
        "ended"
    } else {
        "interrupted"
    };
    SessionSummary {
        first: format_ts(s.first_ns),
        last: format_ts(s.last_ns),
        duration_ns: s.last_ns.saturating_sub(s.first_ns),
        linked_sessions: s.recordings.union(&s.claude_sessions).cloned().collect(),
        session: s.session,
        project: s.project,
        first_ns: s.first_ns,
        last_ns: s.last_ns,
        records: s.records,
        tool_calls: s.tool_calls,
        models: s.models,
        malformed: s.malformed,
        status,
    }
}

/// Every session of the store, most recent first: the views' rows (brought up to date) with
/// the unsealed records laid over them. No sealed record is decoded.
///
/// # Errors
/// When the store or the views cannot be read.
pub fn summaries(store: &Store) -> anyhow::Result<Vec<SessionSummary>> {
    super::refresh(store)?;
    // The snapshot first: the views then hold at least every record it has sealed.
    let snapshot = store.snapshot()?;
    let db = super::views_for_reading(store)?;
    let mut rows: BTreeMap<String, Row> = crate::views::summary::sessions(&db, None)?
        .into_iter()
        .map(|view| {
            (
                view.session.clone(),
                Row {
                    view,
                    unsealed_pty: false,
                },
            )
        })
        .collect();
    overlay(&mut rows, &snapshot);
    let now = now_ns();
    let mut out: Vec<SessionSummary> = rows.into_values().map(|r| summarize(r, now)).collect();
    out.sort_by(|a, b| b.last_ns.cmp(&a.last_ns).then(a.session.cmp(&b.session)));
    Ok(out)
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
            "SESSION", "LAST", "DURATION", "HOOKS", "LINES", "TOOLS", "STATUS", "LINKED",
            "PROJECT", "MODELS",
        ],
        &[2, 3, 4, 5],
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
            s.status.to_string(),
            linked,
            project,
            s.models.iter().cloned().collect::<Vec<_>>().join(","),
        ]);
    }
    writeln!(out, "{}", super::table::render(&table))?;
    Ok(0)
}
