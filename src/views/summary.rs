//! What `ctrace sessions` and `ctrace show` read of a session from the views: its `sessions`
//! row with its records per source, tool calls, models and links, and the offset ranges that
//! hold its records (`facts.rs` folds them).

use std::collections::{BTreeMap, BTreeSet};

use super::{SqlContext, ViewsDb, ViewsError};
use crate::segments::Offset;

/// One session as the views hold it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionRow {
    /// Session id.
    pub session: String,
    /// Working directory of the session's first record that names one.
    pub project: Option<String>,
    /// First record time, ns since the Unix epoch.
    pub first_ns: u64,
    /// Last record time, ns since the Unix epoch.
    pub last_ns: u64,
    /// Records per source name (`hook`, `transcript`, `pty`, ...).
    pub records: BTreeMap<String, u64>,
    /// Records flagged malformed.
    pub malformed: u64,
    /// Tool calls (rows of `spans` of kind `tool`).
    pub tool_calls: u64,
    /// Tool calls that failed (`spans.error`).
    pub tool_errors: u64,
    /// Tool calls and failures per tool name (`""` for calls whose name was never seen).
    pub tools: BTreeMap<String, ToolTally>,
    /// Models of the session's API responses (`<synthetic>` and the like left out).
    pub models: BTreeSet<String>,
    /// Time of the `SessionEnd` hook, ns since the Unix epoch.
    pub ended_ns: Option<u64>,
    /// Whether the last turn-changing record finished a turn; `None` when none was seen.
    pub turn_finished: Option<bool>,
    /// Whether a PTY `exit` record was seen.
    pub pty_exited: bool,
    /// The PTY recordings this Claude session's hooks ran in (`CTRACE_PTY_SESSION`).
    pub recordings: BTreeSet<String>,
    /// The Claude sessions whose hooks ran inside this PTY recording.
    pub claude_sessions: BTreeSet<String>,
}

/// Calls of one tool in one session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ToolTally {
    /// Tool calls (spans).
    pub calls: u64,
    /// Of them, the failed ones.
    pub errors: u64,
}

fn u(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Every session of the views (or only `only`), in no particular order.
///
/// # Errors
/// [`ViewsError::Sqlite`].
pub fn sessions(db: &ViewsDb, only: Option<&str>) -> Result<Vec<SessionRow>, ViewsError> {
    let path = db.path();
    let conn = db.conn();
    let what = "reading sessions";
    // One session: `session = ?1`, which the primary keys and `usage_by_session` answer (SQLite
    // cannot use them for `?1 IS NULL OR session = ?1`); all: `?1 IS NULL`, always true.
    let filter = if only.is_some() {
        "session = ?1"
    } else {
        "?1 IS NULL"
    };
    let mut out: BTreeMap<String, SessionRow> = BTreeMap::new();
    let mut stmt = conn
        .prepare(&format!(
            "SELECT session, project, first_ns, last_ns, malformed, ended_ns, turn_finished,
                pty_exited FROM sessions WHERE {filter}"
        ))
        .sql(path, what)?;
    let rows = stmt
        .query_map([only], |row| {
            Ok(SessionRow {
                session: row.get(0)?,
                project: row.get(1)?,
                first_ns: u(row.get(2)?),
                last_ns: u(row.get(3)?),
                malformed: u(row.get(4)?),
                ended_ns: row.get::<_, Option<i64>>(5)?.map(u),
                turn_finished: row.get(6)?,
                pty_exited: row.get::<_, i64>(7)? != 0,
                ..SessionRow::default()
            })
        })
        .sql(path, what)?;
    for row in rows {
        let row = row.sql(path, what)?;
        out.insert(row.session.clone(), row);
    }
    let mut pairs = |sql: &str, add: &mut dyn FnMut(&mut SessionRow, String, i64)| {
        let mut stmt = conn.prepare(sql).sql(path, what)?;
        let rows = stmt
            .query_map([only], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get(2)?,
                ))
            })
            .sql(path, what)?;
        for row in rows {
            let (session, value, n) = row.sql(path, what)?;
            if let Some(s) = out.get_mut(&session) {
                add(s, value, n);
            }
        }
        Ok::<(), ViewsError>(())
    };
    pairs(
        &format!("SELECT session, source, records FROM session_sources WHERE {filter}"),
        &mut |s, source, n| {
            s.records.insert(source, u(n));
        },
    )?;
    // The distinct models of each session by seeks in `usage_by_session` (a loose index scan:
    // one seek per session and model), not a scan of every usage row.
    pairs(
        &format!(
            "WITH RECURSIVE m(session, model) AS (
                SELECT s.session,
                    (SELECT min(u.model) FROM usage u WHERE u.session = s.session)
                FROM sessions s WHERE {}
                UNION ALL
                SELECT m.session,
                    (SELECT min(u.model) FROM usage u
                     WHERE u.session = m.session AND u.model > m.model)
                FROM m WHERE m.model IS NOT NULL
            )
            SELECT session, model, 0 FROM m WHERE model IS NOT NULL AND model NOT LIKE '<%'",
            filter.replace("session", "s.session")
        ),
        &mut |s, model, _| {
            s.models.insert(model);
        },
    )?;
    let mut stmt = conn
        .prepare(&format!(
            "SELECT session, tool, calls, errors FROM session_tools WHERE {filter}"
        ))
        .sql(path, what)?;
    let rows = stmt
        .query_map([only], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                ToolTally {
                    calls: u(row.get(2)?),
                    errors: u(row.get(3)?),
                },
            ))
        })
        .sql(path, what)?;
    for row in rows {
        let (session, tool, tally) = row.sql(path, what)?;
        if let Some(s) = out.get_mut(&session) {
            s.tool_calls += tally.calls;
            s.tool_errors += tally.errors;
            s.tools.insert(tool, tally);
        }
    }
    let mut stmt = conn
        .prepare(
            "SELECT session, pty_session FROM session_links
             WHERE ?1 IS NULL OR session = ?1 OR pty_session = ?1",
        )
        .sql(path, what)?;
    let rows = stmt
        .query_map([only], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .sql(path, what)?;
    for row in rows {
        let (claude, pty) = row.sql(path, what)?;
        if let Some(s) = out.get_mut(&claude) {
            s.recordings.insert(pty.clone());
        }
        if let Some(s) = out.get_mut(&pty) {
            s.claude_sessions.insert(claude);
        }
    }
    Ok(out.into_values().collect())
}

/// The offset ranges (first, last; inclusive) that hold the records of `session`, in offset
/// order. Records of other sessions may lie inside them (at most
/// [`super::facts::RANGE_GAP_RECORDS`] between two of the session's own).
///
/// # Errors
/// [`ViewsError::Sqlite`].
pub(crate) fn record_ranges(
    db: &ViewsDb,
    session: &str,
) -> Result<Vec<(Offset, Offset)>, ViewsError> {
    let path = db.path();
    let what = "reading session ranges";
    let mut stmt = db
        .conn()
        .prepare(
            "SELECT first_offset, last_offset FROM session_ranges WHERE session = ?1
             ORDER BY first_offset",
        )
        .sql(path, what)?;
    let rows = stmt
        .query_map([session], |row| {
            Ok((Offset(u(row.get(0)?)), Offset(u(row.get(1)?))))
        })
        .sql(path, what)?;
    rows.collect::<Result<_, _>>().sql(path, what)
}

/// What the views hold of one source (`hook`, `transcript`, `pty`, `otlp`, `import`, `internal`):
/// its records and the latest of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SourceRow {
    /// Source name.
    pub source: String,
    /// Records folded into the views, with or without a session.
    pub records: u64,
    /// Of them, the records without a session (OTLP metrics without `session.id`, ...).
    pub sessionless_records: u64,
    /// Sessions with records of this source.
    pub sessions: u64,
    /// The latest record time of this source, ns since the Unix epoch; `None` without records.
    pub last_ns: Option<u64>,
    /// The offset of the source's most recently appended record; `None` without records.
    pub last_offset: Option<u64>,
}

/// Records per source, summed over sessions (records without a session are not counted), by
/// source name.
///
/// # Errors
/// [`ViewsError::Sqlite`].
pub fn sources(db: &ViewsDb) -> Result<Vec<SourceRow>, ViewsError> {
    let path = db.path();
    let what = "reading sources";
    let mut out: BTreeMap<String, SourceRow> = crate::model::Source::ALL
        .iter()
        .map(|source| {
            let name = source.as_str().to_owned();
            let row = SourceRow {
                source: name.clone(),
                records: 0,
                sessionless_records: 0,
                sessions: 0,
                last_ns: None,
                last_offset: None,
            };
            (name, row)
        })
        .collect();
    let mut stmt = db
        .conn()
        .prepare(
            "SELECT source, sum(records), count(*), max(last_ns), max(last_offset), 1
             FROM session_sources GROUP BY source
             UNION ALL
             SELECT source, records, 0, last_ns, last_offset, 0 FROM sessionless_sources",
        )
        .sql(path, what)?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                u(row.get(1)?),
                u(row.get(2)?),
                u(row.get(3)?),
                u(row.get(4)?),
                row.get::<_, i64>(5)? == 1,
            ))
        })
        .sql(path, what)?;
    for row in rows {
        let (source, records, sessions, last_ns, last_offset, of_sessions) = row.sql(path, what)?;
        let entry = out.entry(source.clone()).or_insert_with(|| SourceRow {
            source,
            ..SourceRow::default()
        });
        entry.records += records;
        if of_sessions {
            entry.sessions = sessions;
        } else {
            entry.sessionless_records = records;
        }
        entry.last_ns = Some(entry.last_ns.map_or(last_ns, |t| t.max(last_ns)));
        entry.last_offset = Some(
            entry
                .last_offset
                .map_or(last_offset, |o| o.max(last_offset)),
        );
    }
    Ok(out.into_values().collect())
}
