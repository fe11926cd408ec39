//! Full rebuild of the views into a fresh database file, renamed over the live one at the end.
//!
//! Invariants:
//! - The live `views.sqlite` is never written by a rebuild: it stays valid (at its own
//!   checkpoint) until the rename replaces it with a complete, synced database.
//! - The fresh file (`views.sqlite.rebuild-<pid>`) has no journal and is not synced while it
//!   is loaded; nobody else opens it, and a crash leaves only a stale file that the next
//!   open of the views (or the next rebuild) deletes.
//! - Before the rename, the old database's write-ahead log is checkpointed and removed, so the
//!   new file never meets a stale `views.sqlite-wal`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::access::open_flags;

use rusqlite::Connection;

use super::{
    REBUILD_BATCH_RECORDS, SqlContext, ViewsDb, ViewsError, ViewsReport, batch_records, db_path,
    fold_log, schema,
};
use crate::log::{LogError, Store};

/// Name prefix of a rebuild's fresh database file (followed by the process id).
const REBUILD_PREFIX: &str = "views.sqlite.rebuild-";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ViewsError + '_ {
    move |source| ViewsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn log_io(error: LogError) -> ViewsError {
    match error {
        LogError::Io { path, source } => ViewsError::Io { path, source },
        other => ViewsError::Log(other),
    }
}

/// Removes `path` and its SQLite side files; missing files are fine.
fn remove_with_side_files(path: &Path) -> Result<(), ViewsError> {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = PathBuf::from(name);
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ViewsError::Io { path: file, source }),
        }
    }
    Ok(())
}

/// Deletes rebuild files in `dir` left by crashed or killed rebuilds: those named after a
/// process that is gone (ours is kept: it may be building).
///
/// # Errors
/// [`ViewsError::Io`] when the directory cannot be listed or a file cannot be removed.
pub(super) fn remove_stale(dir: &Path) -> Result<(), ViewsError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ViewsError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(REBUILD_PREFIX))
            .and_then(|rest| rest.parse::<i32>().ok())
        else {
            continue;
        };
        if pid_alive(pid) {
            continue;
        }
        remove_with_side_files(&entry.path())?;
    }
    Ok(())
}

/// Whether a process with this id exists (ours, or another process still rebuilding).
fn pid_alive(pid: i32) -> bool {
    if u32::try_from(pid).is_ok_and(|p| p == std::process::id()) {
        return true;
    }
    rustix::process::Pid::from_raw(pid)
        .is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok())
}

/// Checkpoints the old database's write-ahead log into it and removes the log and the shared
/// memory file, so that only `views.sqlite` itself remains to be replaced.
fn retire_old(path: &Path) -> Result<(), ViewsError> {
    if !path.exists() {
        return Ok(());
    }
    // Leaving WAL mode checkpoints the whole log and deletes it. When that fails (another
    // process has the old views open, or they are damaged), the log is deleted anyway: the old
    // file is about to be replaced, and a stale log must never meet the new one.
    let checkpointed = Connection::open_with_flags(path, open_flags()).and_then(|conn| {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
    });
    if let Err(error) = checkpointed {
        tracing::warn!(path = %path.display(), %error, "could not checkpoint the old views");
    }
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = PathBuf::from(name);
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ViewsError::Io { path: file, source }),
        }
    }
    Ok(())
}

/// See [`super::rebuild`].
pub(super) fn run(store: &Store) -> Result<ViewsReport, ViewsError> {
    let started = Instant::now();
    let live = db_path(store.paths());
    let dir = live
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    crate::log::inbox::create_dir_private(&dir).map_err(log_io)?;
    remove_stale(&dir)?;
    let fresh = dir.join(format!("{REBUILD_PREFIX}{}", std::process::id()));
    remove_with_side_files(&fresh)?;
    let result = build(store, &fresh).and_then(|report| {
        retire_old(&live)?;
        (crate::fault::point("views-rebuild-rename").and_then(|()| std::fs::rename(&fresh, &live)))
            .map_err(io(&live))?;
        crate::log::manifest::sync_dir(&dir).map_err(log_io)?;
        Ok(report)
    });
    match result {
        Ok(mut report) => {
            report.elapsed = started.elapsed();
            Ok(report)
        }
        Err(error) => {
            let _ = remove_with_side_files(&fresh);
            Err(error)
        }
    }
}

/// Loads the whole log into a new database at `path` and syncs it.
fn build(store: &Store, path: &Path) -> Result<ViewsReport, ViewsError> {
    let conn =
        Connection::open_with_flags(path, open_flags()).sql(path, "creating the rebuild file")?;
    conn.execute_batch(schema::BULK_PRAGMAS)
        .sql(path, "setting pragmas")?;
    conn.execute_batch(schema::TABLES)
        .sql(path, "creating the schema")?;
    conn.execute_batch(schema::FOLD_INDEXES)
        .sql(path, "creating the indexes")?;
    let mut db = ViewsDb {
        conn,
        path: path.to_path_buf(),
    };
    db.set_meta("schema_version", schema::SCHEMA_VERSION)?;
    let snapshot = store.snapshot()?;
    let end = snapshot.manifest().next_offset;
    let mut report = ViewsReport::default();
    let batch = batch_records(REBUILD_BATCH_RECORDS);
    let started = Instant::now();
    fold_log(&mut db, &snapshot, end, batch, &mut report)?;
    let folded = started.elapsed();
    // The checkpoint row exists even for an empty log.
    db.set_meta("applied_offset", &report.applied.0.to_string())?;
    db.conn
        .execute_batch(schema::INDEXES)
        .sql(path, "creating the indexes")?;
    let indexed = started.elapsed();
    db.conn
        .execute_batch(schema::FILL_AGGREGATES)
        .sql(path, "summing usage per day and tool calls per session")?;
    tracing::debug!(
        records = report.applied_records,
        fold_ms = folded.as_millis(),
        indexes_ms = (indexed - folded).as_millis(),
        aggregates_ms = (started.elapsed() - indexed).as_millis(),
        "views rebuilt"
    );
    db.conn
        .execute_batch(schema::TRIGGERS)
        .sql(path, "creating the triggers")?;
    let ViewsDb { conn, path: _ } = db;
    conn.close().map_err(|(_, source)| ViewsError::Sqlite {
        path: path.to_path_buf(),
        what: "closing the rebuild file",
        source,
    })?;
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(path))?;
    Ok(report)
}
