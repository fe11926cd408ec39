//! The full-text index (`DESIGN.md` §4): tantivy, one document per record, fed from the log
//! after its checkpoint (the next offset to index, kept in the tantivy commit payload).
//!
//! Tantivy types stay inside this module. The index lives in `<store>/index/`; it is optional:
//! a store without it works, and `ctrace reindex` / `ctrace compact` build it.

use std::time::Duration;

use crate::log::{Store, StorePaths};
use crate::segments::Offset;

/// Errors of the index layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// The index is not built yet.
    #[error("the full-text index is not built yet")]
    NotBuilt,
}

/// What one indexing pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexReport {
    /// Documents added (records).
    pub indexed: u64,
    /// The checkpoint after the pass: every record below this offset is indexed.
    pub applied: Offset,
    /// False when the pass stopped at its time budget before the end of the log.
    pub caught_up: bool,
    /// Wall time of the pass.
    pub elapsed: Duration,
}

/// Whether `<store>/index/` holds an index.
pub fn exists(paths: &StorePaths) -> bool {
    paths.root.join("index").join("meta.json").exists()
}

/// The index checkpoint: every record with an offset below it is indexed. `None` when there is
/// no index.
///
/// # Errors
/// [`IndexError`] when the index cannot be opened.
pub fn applied_offset(paths: &StorePaths) -> Result<Option<Offset>, IndexError> {
    let _ = paths;
    Ok(None)
}

/// Indexes the sealed records after the checkpoint, creating the index if missing; stops after
/// `budget` when given (the report says whether it caught up).
///
/// # Errors
/// [`IndexError`].
pub fn catch_up(store: &Store, budget: Option<Duration>) -> Result<IndexReport, IndexError> {
    let _ = (store, budget);
    Err(IndexError::NotBuilt)
}

/// Deletes the documents of the given records (retention). Returns documents deleted.
///
/// # Errors
/// [`IndexError`].
pub fn delete_offsets(paths: &StorePaths, offsets: &[Offset]) -> Result<u64, IndexError> {
    let _ = (paths, offsets);
    Ok(0)
}

/// Deletes every document of one session (`ctrace forget`). Returns documents deleted.
///
/// # Errors
/// [`IndexError`].
pub fn forget_session(paths: &StorePaths, session: &str) -> Result<u64, IndexError> {
    let _ = (paths, session);
    Ok(0)
}
