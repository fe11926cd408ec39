//! Per-session facts the session list and `ctrace show` read, folded beside the main fold
//! (`fold.rs`) and written at the end of its batch:
//!
//! - `session_sources`: records per source, with the latest record time and offset (and
//!   `sessionless_sources`, the same for records without a session);
//! - `sessions.turn_finished`: whether the session's last turn-changing record finished a turn
//!   (Stop, `end_turn`, `turn_duration`) or opened one (a prompt or a tool call);
//! - `sessions.pty_exited`: a PTY `exit` record was seen;
//! - `session_links`: Claude sessions whose hooks ran inside a PTY recording
//!   (`CTRACE_PTY_SESSION`);
//! - `session_ranges`: the offset ranges that hold the session's records, so a reader of one
//!   session decodes only those ranges.
//!
//! Invariants: records arrive in offset order, so every value written is the same whatever the
//! batch boundaries (a range of one batch extends the session's last stored range exactly as it
//! would extend a range of the same batch).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use hashbrown::HashMap;
use rusqlite::{OptionalExtension, Transaction, params};

use super::{SqlContext, ViewsError};
use crate::model::{BodyRef, RecordRef};
use crate::model::{PtyKind, Source};

/// Records of other sessions a range may span between two records of its own session: a reader
/// of the session decodes at most this many foreign records per stored range.
pub(crate) const RANGE_GAP_RECORDS: u64 = 256;

/// What the session facts read of a transcript line's JSON (extracted by the reading thread).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LineFacts {
    /// An assistant line with at least one `tool_use` block.
    pub(super) uses_tool: bool,
    /// A user line whose JSON parsed.
    pub(super) user: bool,
    /// An assistant line whose `stop_reason` is `end_turn`.
    pub(super) end_turn: bool,
}

#[derive(Debug, Default)]
struct Facts {
    /// Per source: records, latest `ts` (ns), latest offset.
    by_source: BTreeMap<Source, (u64, u64, u64)>,
    turn_finished: Option<bool>,
    pty_exited: bool,
    links: BTreeSet<String>,
    /// Offset ranges, inclusive, in offset order.
    ranges: Vec<(u64, u64)>,
}

/// The facts of one batch, per session.
#[derive(Debug, Default)]
pub(super) struct SessionFacts {
    sessions: HashMap<String, Facts>,
    /// Records without a session, per source: records, latest `ts` (ns), latest offset.
    sessionless: BTreeMap<Source, (u64, u64, u64)>,
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl SessionFacts {
    /// Counts one record without a session at `offset` for its source.
    pub(super) fn observe_sessionless(&mut self, offset: u64, record: &RecordRef<'_>) {
        let seen = self.sessionless.entry(record.source).or_default();
        seen.0 += 1;
        seen.1 = seen.1.max(record.ts);
        seen.2 = seen.2.max(offset);
    }

    /// Folds one record of `session` at `offset`.
    pub(super) fn observe(
        &mut self,
        offset: u64,
        session: &str,
        record: &RecordRef<'_>,
        line: LineFacts,
    ) {
        let facts = self.sessions.entry_ref(session).or_default();
        let seen = facts.by_source.entry(record.source).or_default();
        seen.0 += 1;
        seen.1 = seen.1.max(record.ts);
        seen.2 = seen.2.max(offset);
        match facts.ranges.last_mut() {
            Some(last) if offset <= last.1.saturating_add(RANGE_GAP_RECORDS + 1) => {
                last.1 = last.1.max(offset);
            }
            _ => facts.ranges.push((offset, offset)),
        }
        match &record.body {
            BodyRef::Hook(hook) => {
                if let Some(pty) = hook.pty_session
                    && pty != session
                {
                    facts.links.insert(pty.to_owned());
                }
                match hook.event {
                    Some("PreToolUse" | "UserPromptSubmit") => facts.turn_finished = Some(false),
                    Some("Stop") => facts.turn_finished = Some(true),
                    _ => {}
                }
            }
            BodyRef::Transcript(t) if t.malformed.is_none() => match t.line_type {
                Some("assistant") if line.uses_tool => facts.turn_finished = Some(false),
                Some("assistant") if line.end_turn => facts.turn_finished = Some(true),
                Some("user") if line.user && t.is_sidechain != Some(true) => {
                    facts.turn_finished = Some(false);
                }
                Some("system") if t.subtype == Some("turn_duration") => {
                    facts.turn_finished = Some(true);
                }
                _ => {}
            },
            BodyRef::Pty(pty) => facts.pty_exited |= pty.kind == PtyKind::Exit,
            BodyRef::Transcript(_) | BodyRef::Internal(_) | BodyRef::Otlp(_) => {}
        }
    }

    /// Writes the batch's facts (after the `sessions` rows of the batch).
    ///
    /// # Errors
    /// [`ViewsError::Sqlite`].
    pub(super) fn write(&mut self, tx: &Transaction<'_>, path: &Path) -> Result<(), ViewsError> {
        let prep = |sql: &str| tx.prepare_cached(sql).sql(path, "preparing a statement");
        let mut state = prep(
            "UPDATE sessions SET turn_finished = coalesce(?2, turn_finished),
                pty_exited = max(pty_exited, ?3) WHERE session = ?1",
        )?;
        let mut source = prep(
            "INSERT INTO session_sources (session, source, records, last_ns, last_offset)
                VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (session, source) DO UPDATE SET
                records = session_sources.records + excluded.records,
                last_ns = max(session_sources.last_ns, excluded.last_ns),
                last_offset = max(session_sources.last_offset, excluded.last_offset)",
        )?;
        let mut link =
            prep("INSERT OR IGNORE INTO session_links (session, pty_session) VALUES (?1, ?2)")?;
        let mut last_range = prep(
            "SELECT first_offset, last_offset FROM session_ranges WHERE session = ?1
             ORDER BY first_offset DESC LIMIT 1",
        )?;
        let mut extend = prep(
            "UPDATE session_ranges SET last_offset = ?3 WHERE session = ?1 AND first_offset = ?2",
        )?;
        let mut range = prep(
            "INSERT INTO session_ranges (session, first_offset, last_offset) VALUES (?1, ?2, ?3)",
        )?;
        let mut sessionless = prep(
            "INSERT INTO sessionless_sources (source, records, last_ns, last_offset)
                VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (source) DO UPDATE SET
                records = sessionless_sources.records + excluded.records,
                last_ns = max(sessionless_sources.last_ns, excluded.last_ns),
                last_offset = max(sessionless_sources.last_offset, excluded.last_offset)",
        )?;
        for (src, (n, last_ns, last_offset)) in std::mem::take(&mut self.sessionless) {
            sessionless
                .execute(params![
                    src.as_str(),
                    to_i64(n),
                    to_i64(last_ns),
                    to_i64(last_offset)
                ])
                .sql(path, "writing sessionless sources")?;
        }
        let mut sessions: Vec<(String, Facts)> = self.sessions.drain().collect();
        sessions.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (session, facts) in sessions {
            state
                .execute(params![
                    session,
                    facts.turn_finished,
                    i64::from(facts.pty_exited)
                ])
                .sql(path, "writing session facts")?;
            for (src, (n, last_ns, last_offset)) in &facts.by_source {
                source
                    .execute(params![
                        session,
                        src.as_str(),
                        to_i64(*n),
                        to_i64(*last_ns),
                        to_i64(*last_offset)
                    ])
                    .sql(path, "writing session sources")?;
            }
            for pty in &facts.links {
                link.execute(params![session, pty])
                    .sql(path, "writing session links")?;
            }
            let stored: Option<(i64, i64)> = last_range
                .query_row([&session], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
                .sql(path, "reading session ranges")?;
            let mut ranges = facts.ranges.into_iter();
            if let (Some((first, last)), Some(next)) = (stored, ranges.as_slice().first().copied())
            {
                let last = u64::try_from(last).unwrap_or(0);
                if next.0 <= last.saturating_add(RANGE_GAP_RECORDS + 1) {
                    extend
                        .execute(params![session, first, to_i64(next.1.max(last))])
                        .sql(path, "writing session ranges")?;
                    ranges.next();
                }
            }
            for (first, last) in ranges {
                range
                    .execute(params![session, to_i64(first), to_i64(last)])
                    .sql(path, "writing session ranges")?;
            }
        }
        Ok(())
    }
}
