//! The views' session rows, kept between requests while the views file does not change.
//!
//! `/api/sessions` needs every session's row (per-session counts of tool calls and models are
//! two GROUP BYs over `spans` and `usage`: about 0.1 s on a 1,000,000-record store), and the
//! dashboard asks for it on every live update. The rows are read again when the views change:
//! the key is the views' checkpoint and the size, modification time and inode of
//! `views.sqlite` and its WAL, so a commit by the service's compactor or by any other process
//! (`ctrace forget`, `gc`, `compact --rebuild`, which renames a new file in) is seen on the next
//! request. Unsealed records are laid over the rows on every request (not cached).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::log::StorePaths;
use crate::views::summary::SessionRow;
use crate::views::{ViewsDb, ViewsError};

/// What identifies one state of the views file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    checkpoint: u64,
    files: [(u64, i64, i64, u64); 2],
}

/// Size, modification time (s, ns) and inode of `path`; zeros when it does not exist.
fn stamp(path: &Path) -> (u64, i64, i64, u64) {
    std::fs::metadata(path).map_or((0, 0, 0, 0), |m| {
        (m.len(), m.mtime(), m.mtime_nsec(), m.ino())
    })
}

/// The cached rows (one entry: the latest state read).
#[derive(Debug, Default)]
pub(crate) struct SessionRowsCache {
    entry: Mutex<Option<(Key, Arc<Vec<SessionRow>>)>>,
}

impl SessionRowsCache {
    /// The rows of `db` (opened at `paths`), from the cache when the views have not changed
    /// since they were read.
    ///
    /// # Errors
    /// [`ViewsError`] when the views cannot be read.
    pub(crate) fn rows(
        &self,
        paths: &StorePaths,
        db: &ViewsDb,
    ) -> Result<Arc<Vec<SessionRow>>, ViewsError> {
        let file = crate::views::db_path(paths);
        let mut wal = file.clone().into_os_string();
        wal.push("-wal");
        // The stamps before the read: a commit during the read changes them, and the next
        // request reads again.
        let files = [stamp(&file), stamp(Path::new(&wal))];
        let key = Key {
            checkpoint: db.applied()?.0,
            files,
        };
        if let Ok(entry) = self.entry.lock()
            && let Some((cached, rows)) = entry.as_ref()
            && *cached == key
        {
            return Ok(Arc::clone(rows));
        }
        let rows = Arc::new(crate::views::summary::sessions(db, None)?);
        if let Ok(mut entry) = self.entry.lock() {
            *entry = Some((key, Arc::clone(&rows)));
        }
        Ok(rows)
    }
}
