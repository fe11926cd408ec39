//! How the views database is opened: never through a symlink (`SQLITE_OPEN_NOFOLLOW`), and,
//! for a store that cannot be written (read-only mount, full disk, another user's store),
//! folded from the log into an in-memory SQLite database for the one command, so that nothing
//! is written to the store.

use std::path::PathBuf;

use rusqlite::{Connection, ErrorCode};

use super::{SqlContext, ViewsDb, ViewsError, catch_up_db, schema};
use crate::log::Store;

/// SQLite's default open flags plus `SQLITE_OPEN_NOFOLLOW`: a symlinked database file is
/// refused, never followed out of the store.
pub(crate) fn open_flags() -> rusqlite::OpenFlags {
    rusqlite::OpenFlags::default() | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW
}

/// Whether `error` means the views could not be written (as opposed to damage or a bug).
pub fn is_unwritable(error: &ViewsError) -> bool {
    if crate::log::private::is_unwritable(error) {
        return true;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(rusqlite::Error::SqliteFailure(failure, _)) =
            e.downcast_ref::<rusqlite::Error>()
            && matches!(
                failure.code,
                ErrorCode::ReadOnly | ErrorCode::DiskFull | ErrorCode::PermissionDenied
            )
        {
            return true;
        }
        cause = e.source();
    }
    false
}

impl ViewsDb {
    /// An empty views database in memory, with the schema.
    ///
    /// # Errors
    /// [`ViewsError::Sqlite`].
    pub fn in_memory() -> Result<Self, ViewsError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().sql(&path, "opening in memory")?;
        for (batch, what) in [
            (schema::TABLES, "creating the schema"),
            (schema::INDEXES, "creating the indexes"),
            (schema::TRIGGERS, "creating the triggers"),
        ] {
            conn.execute_batch(batch).sql(&path, what)?;
        }
        let db = Self { conn, path };
        db.set_meta("schema_version", schema::SCHEMA_VERSION)?;
        Ok(db)
    }
}

/// [`super::open_current`], or, when the views cannot be written, the views folded from the
/// sealed log in memory; the second value is the error that made it fall back.
///
/// # Errors
/// [`ViewsError`] other than "cannot write", or from the in-memory fold.
pub fn open_current_or_memory(store: &Store) -> Result<(ViewsDb, Option<ViewsError>), ViewsError> {
    match super::open_current(store) {
        Ok(db) => Ok((db, None)),
        Err(error) if is_unwritable(&error) => {
            tracing::warn!(%error, "views cannot be written; folding them in memory");
            let mut db = ViewsDb::in_memory()?;
            catch_up_db(store, &mut db)?;
            Ok((db, Some(error)))
        }
        Err(error) => Err(error),
    }
}
