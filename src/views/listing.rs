//! The rows of `ctrace sessions --json` and the service's `/api/sessions`: the views' session
//! rows ([`super::summary`]) with the records not sealed yet (a PTY recording in progress, hooks
//! waiting for the lock) laid over them, and each session's status.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use serde::Serialize;

use super::summary::{SessionRow, ToolTally};
use super::{ViewsDb, ViewsError};
use crate::log::read::TimeRange;
use crate::log::{LogError, Snapshot};
use crate::model::{Body, PtyKind, StoredRecord};
use crate::segments::Offset;

/// How long without records before a session without `SessionEnd` counts as not active.
pub const ACTIVE_WINDOW_NS: u64 = 10 * 60 * 1_000_000_000;

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
    /// Tool calls that failed (the views' tool spans with an error; a failure still unsealed
    /// counts once sealed and folded).
    pub tool_errors: u64,
    /// `tool_calls` and `tool_errors` per tool name (`""`: a call whose name was never seen).
    pub tools: BTreeMap<String, ToolTally>,
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
                        let name = hook.tool_name.clone().unwrap_or_default();
                        s.tools.entry(name).or_default().calls += 1;
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
            Body::Internal(_) | Body::Otlp(_) => {}
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
        first: crate::model::format_ts(s.first_ns),
        last: crate::model::format_ts(s.last_ns),
        duration_ns: s.last_ns.saturating_sub(s.first_ns),
        linked_sessions: s.recordings.union(&s.claude_sessions).cloned().collect(),
        session: s.session,
        project: s.project,
        first_ns: s.first_ns,
        last_ns: s.last_ns,
        records: s.records,
        tool_calls: s.tool_calls,
        tool_errors: s.tool_errors,
        tools: s.tools,
        models: s.models,
        malformed: s.malformed,
        status,
    }
}

/// Views rows by session id, before the unsealed records are laid over them.
fn by_session(views: impl IntoIterator<Item = SessionRow>) -> BTreeMap<String, Row> {
    views
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
        .collect()
}

/// Every session, most recent first: the views' rows with the unsealed records of `snapshot`
/// laid over them; `now_ns` (ns since the epoch) decides which sessions are still `active`. No
/// sealed record is decoded. Take the snapshot before opening `db`, so the views hold at least
/// every record it has sealed.
///
/// # Errors
/// When the store or the views cannot be read.
pub fn summaries(
    db: &ViewsDb,
    snapshot: &Snapshot,
    now_ns: u64,
) -> Result<Vec<SessionSummary>, ViewsError> {
    let mut rows = by_session(super::summary::sessions(db, None)?);
    overlay(&mut rows, snapshot);
    let mut out: Vec<SessionSummary> = rows.into_values().map(|r| summarize(r, now_ns)).collect();
    out.sort_by(|a, b| b.last_ns.cmp(&a.last_ns).then(a.session.cmp(&b.session)));
    Ok(out)
}

/// The row of one session (as in [`summaries`]), reading only that session's views rows and
/// the unsealed records; `None` when neither holds it.
///
/// # Errors
/// When the store or the views cannot be read.
pub fn summary(
    db: &ViewsDb,
    snapshot: &Snapshot,
    session: &str,
    now_ns: u64,
) -> Result<Option<SessionSummary>, ViewsError> {
    let mut rows = by_session(
        super::summary::sessions(db, Some(session))?
            .into_iter()
            .filter(|view| view.session == session),
    );
    overlay(&mut rows, snapshot);
    Ok(rows.remove(session).map(|r| summarize(r, now_ns)))
}

/// The records of `session`: the sealed ones read through the offset ranges the views keep for
/// it (only those ranges are decoded), then the unsealed ones, in offset order.
///
/// # Errors
/// [`ViewsError::Sqlite`] when the views cannot be read; [`ViewsError::Log`] when a record
/// cannot be read.
pub fn session_records(
    db: &ViewsDb,
    snapshot: &Snapshot,
    session: &str,
) -> Result<Vec<StoredRecord>, ViewsError> {
    session_records_page(db, snapshot, session, None, usize::MAX)
}

/// At most `limit` records of `session` after the offset `after` (all when `None`), in the
/// order of [`session_records`]; only the stored ranges past `after` are decoded, and reading
/// stops once `limit` records are found.
///
/// # Errors
/// As [`session_records`].
pub fn session_records_page(
    db: &ViewsDb,
    snapshot: &Snapshot,
    session: &str,
    after: Option<u64>,
    limit: usize,
) -> Result<Vec<StoredRecord>, ViewsError> {
    let mut records = Vec::new();
    let walk = for_each_sealed_record::<ViewsError>(db, snapshot, session, after, |stored| {
        if records.len() == limit {
            return Ok(ControlFlow::Break(()));
        }
        records.push(stored);
        Ok(ControlFlow::Continue(()))
    })?;
    if walk.is_break() {
        return Ok(records);
    }
    records.extend(
        snapshot
            .scan(Offset(u64::MAX), TimeRange::default(), true)
            .filter_map(Result::ok)
            .filter(|r| r.record.session.as_deref() == Some(session))
            .take(limit - records.len()),
    );
    Ok(records)
}

/// Calls `visit` with each sealed record of `session` after the offset `after` (all when
/// `None`), in offset order, until it returns [`ControlFlow::Break`]; only the offset ranges
/// the views keep for the session, from `after` on, are decoded. Returns `Break` when `visit`
/// stopped the walk, `Continue` when every such record was visited.
///
/// # Errors
/// A [`ViewsError`] when the views cannot be read and a [`LogError`] when a record cannot be
/// read, each as `E`; or the first error of `visit`, which ends the walk.
pub fn for_each_sealed_record<E>(
    db: &ViewsDb,
    snapshot: &Snapshot,
    session: &str,
    after: Option<u64>,
    mut visit: impl FnMut(StoredRecord) -> Result<ControlFlow<()>, E>,
) -> Result<ControlFlow<()>, E>
where
    E: From<ViewsError> + From<LogError>,
{
    for (first, last) in super::summary::record_ranges(db, session)? {
        if after.is_some_and(|a| last.0 <= a) {
            continue;
        }
        let start = match after {
            Some(a) if a >= first.0 => Offset(a + 1),
            _ => first,
        };
        for stored in snapshot.scan(start, TimeRange::default(), false) {
            let stored = stored?;
            if stored.offset.is_some_and(|o| o > last) {
                break;
            }
            if stored.record.session.as_deref() == Some(session) && visit(stored)?.is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
    }
    Ok(ControlFlow::Continue(()))
}
