//! `verify` for the views (`docs/views.md`, "What verify checks"): SQLite's own
//! `PRAGMA integrity_check` over every page and index, then a re-fold of the log up to the
//! views' checkpoint into an in-memory database, compared row by row with every table, which
//! catches a value changed in place (a flipped bit inside a row that SQLite's structure checks
//! cannot see). The views are opened read-only; nothing is written.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::{SqlContext, ViewsDb, ViewsError, ViewsReport, batch_records, db_path, fold_log};
use crate::log::Store;

/// Tables compared by the re-fold (every table but `meta`).
const TABLES: [&str; 15] = [
    "sessions",
    "session_sources",
    "sessionless_sources",
    "session_links",
    "session_ranges",
    "session_tools",
    "turns",
    "spans",
    "usage",
    "usage_days",
    "tasks",
    "task_events",
    "chains",
    "problems",
    "telemetry",
];

/// What [`check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewsCheck {
    /// Damage: each names the table or SQLite's complaint. Non-empty means `compact --rebuild`
    /// is needed.
    pub damage: Vec<String>,
    /// What was not checked, and why.
    pub notes: Vec<String>,
    /// Rows compared with the re-fold.
    pub rows_compared: u64,
}

/// Checks `views/views.sqlite` of `store` as the module docs say. A store without views has
/// nothing to check (a note).
///
/// # Errors
/// [`ViewsError`] when the log cannot be read or the in-memory fold fails (not damage of the
/// views: those are reported in [`ViewsCheck::damage`]).
pub fn check(store: &Store) -> Result<ViewsCheck, ViewsError> {
    let mut report = ViewsCheck::default();
    let path = db_path(store.paths());
    if !path.exists() {
        report
            .notes
            .push("no views yet (`ctrace compact` builds them)".to_owned());
        return Ok(report);
    }
    let conn = match Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NOFOLLOW,
    ) {
        Ok(conn) => conn,
        Err(error) => {
            report.damage.push(format!("does not open: {error}"));
            return Ok(report);
        }
    };
    match integrity(&conn) {
        Ok(problems) if problems.is_empty() => {}
        Ok(problems) => {
            report.damage.extend(
                problems
                    .into_iter()
                    .map(|p| format!("integrity_check: {p}")),
            );
            return Ok(report);
        }
        Err(error) => {
            report
                .damage
                .push(format!("integrity_check fails: {error}"));
            return Ok(report);
        }
    }
    let applied = match super::read_checkpoint(&conn, &path) {
        Ok(offset) => offset.0,
        Err(error) => {
            report
                .damage
                .push(format!("checkpoint does not read: {error}"));
            return Ok(report);
        }
    };
    let snapshot = store.snapshot()?;
    let manifest = snapshot.manifest();
    // Retention (or `forget`) removed records: no segment left, the first one starting past 0,
    // sparse segments, or gaps (`required_version` 2).
    let retired = manifest.next_offset.0 > 0
        && (manifest.segments.first().is_none_or(|s| s.id.0 > 0)
            || manifest.required_version() == 2);
    if retired {
        report.notes.push(
            "views re-fold not compared: retention removed records whose aggregates the views keep"
                .to_owned(),
        );
        return Ok(report);
    }
    let mut fresh = ViewsDb::in_memory()?;
    let mut fold = ViewsReport::default();
    let end = crate::segments::Offset(applied.min(manifest.next_offset.0));
    if end.0 > 0 {
        fold_log(
            &mut fresh,
            &snapshot,
            end,
            batch_records(super::BATCH_RECORDS),
            &mut fold,
        )?;
    }
    for table in TABLES {
        let stored = rows(&conn, table, &path)?;
        let expected = rows(fresh.conn(), table, Path::new(":memory:"))?;
        report.rows_compared += stored.len() as u64;
        if stored != expected {
            let first = stored
                .iter()
                .zip(&expected)
                .find(|(a, b)| a != b)
                .map(|(a, b)| {
                    format!("; first difference: stored {a:.200} / from the log {b:.200}")
                })
                .unwrap_or_default();
            report.damage.push(format!(
                "table {table}: {} rows differ from a re-fold of the log ({} stored, {} expected){first}",
                stored.iter().filter(|r| !expected.contains(r)).count(),
                stored.len(),
                expected.len()
            ));
        }
    }
    Ok(report)
}

fn integrity(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare("PRAGMA integrity_check")?;
    let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
    let mut problems = Vec::new();
    for row in rows {
        let row = row?;
        if row != "ok" {
            problems.push(row);
        }
    }
    Ok(problems)
}

/// Every row of `table` as text, sorted.
fn rows(conn: &Connection, table: &str, path: &Path) -> Result<Vec<String>, ViewsError> {
    let mut statement = conn
        .prepare(&format!("SELECT * FROM {table}"))
        .sql(path, "reading a table to compare")?;
    let columns = statement.column_count();
    let mut out = Vec::new();
    let mut query = statement
        .query([])
        .sql(path, "reading a table to compare")?;
    while let Some(row) = query.next().sql(path, "reading a table to compare")? {
        let mut text = String::new();
        for i in 0..columns {
            let value: rusqlite::types::Value =
                row.get(i).sql(path, "reading a table to compare")?;
            text.push_str(&format!("{value:?}\u{1f}"));
        }
        out.push(text);
    }
    out.sort_unstable();
    Ok(out)
}
