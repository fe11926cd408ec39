//! The consumers of the log: derived stores (the SQLite views, the full-text index) that the
//! compactor keeps in step with the log, each up to a checkpoint offset.
//!
//! The compactor sits below them: it knows this trait, not the views or the index. The layer
//! above (the CLI, a service) hands it the consumers to drive, in order (`views` before
//! `index`). A consumer's checkpoint bounds retention: no record at or above the smallest
//! checkpoint is removed, so nothing is dropped before every consumer has seen it.

use std::path::PathBuf;
use std::time::Duration;

use crate::log::Store;
use crate::segments::Offset;

/// A consumer's error, kept whole (callers may downcast to the consumer's own error type).
pub type ConsumerError = Box<dyn std::error::Error + Send + Sync>;

/// How a pass updates a consumer.
#[derive(Default)]
pub struct CatchUp<'a> {
    /// Drop what the consumer holds and apply the whole log again.
    pub rebuild: bool,
    /// How long to wait for another process updating the same consumer (`None`: fail at once
    /// with the consumer's "busy" error).
    pub writer_wait: Option<Duration>,
    /// Called once when the wait has lasted about a second (to tell the user).
    pub on_wait: Option<&'a dyn Fn()>,
}

impl std::fmt::Debug for CatchUp<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatchUp")
            .field("rebuild", &self.rebuild)
            .field("writer_wait", &self.writer_wait)
            .finish_non_exhaustive()
    }
}

/// What one pass did to one consumer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerReport {
    /// Records applied (folded, indexed) in this pass.
    pub applied_records: u64,
    /// The checkpoint after the pass: every record below it is applied.
    pub checkpoint: Offset,
    /// Records that could not be read or decoded (damaged blocks) and were passed over.
    pub unreadable_records: u64,
    /// Wall time of the pass.
    pub elapsed: Duration,
}

/// A derived store the compactor keeps in step with the log.
pub trait Consumer: Sync {
    /// Its name in reports and errors (`"views"`, `"index"`).
    fn name(&self) -> &'static str;

    /// Whether a pass should update it in `store`. The views are always maintained; the index
    /// only once it was created (`ctrace search` or `reindex` creates it).
    fn maintained(&self, store: &Store) -> bool;

    /// The checkpoint: every record below it is applied; `None` when it is not built (then it
    /// does not hold retention back).
    ///
    /// # Errors
    /// When the stored checkpoint cannot be read (retention then does nothing).
    fn checkpoint(&self, store: &Store) -> Result<Option<Offset>, ConsumerError>;

    /// Applies the records from its checkpoint to the end of the log.
    ///
    /// # Errors
    /// The consumer's error; what was committed before it stays.
    fn catch_up(&self, store: &Store, how: &CatchUp<'_>) -> Result<ConsumerReport, ConsumerError>;

    /// The directory of the intent marker for removals, when records the log drops must be
    /// removed here too (the index deletes their documents; the views keep their aggregates
    /// and return `None`). Only consulted when [`Consumer::maintained`].
    fn removal_marker_dir(&self, store: &Store) -> Option<PathBuf>;

    /// Removes what it holds of the records at `offsets` (dropped from the log); returns how
    /// many entries it removed.
    ///
    /// # Errors
    /// The consumer's error (the intent marker stays, and the next run retries).
    fn remove_offsets(&self, store: &Store, offsets: &[Offset]) -> Result<u64, ConsumerError>;

    /// Forgets everything of `session`; returns how many entries it removed.
    ///
    /// # Errors
    /// The consumer's error.
    fn forget_session(&self, store: &Store, session: &str) -> Result<u64, ConsumerError>;
}
