//! The compactor: the one place that turns new log data into everything derived from it.
//!
//! One pass ([`Compactor::run_once`]) does, in order:
//! 1. **refresh**: seal the inbox and spools into segments (when nobody else holds the store
//!    lock), then tail the transcripts that Stop, SubagentStop, SessionEnd and PreCompact hooks
//!    named and seal those lines too;
//! 2. **views**: fold new records into the SQLite views (or rebuild them from the whole log);
//! 3. **index**: bring the full-text index up to its checkpoint, when the index exists;
//! 4. **retention**: apply the `[retention]` policy, bounded by the views' and index's
//!    checkpoints, with the log ↔ index crash protocol of [`retention`];
//! 5. **recompression**: rewrite sealed segments at `storage.compaction_zstd_level`.
//!
//! `ctrace compact` runs one pass; every reading command runs step 1 ([`Compactor::refresh`]);
//! a long-running service drives [`service::run`], which waits on a [`service::Trigger`]
//! between passes. Errors are typed ([`CompactError`]) and name the stage that failed.

pub mod retention;
pub mod service;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::index::{CatchUpOptions, IndexError, IndexReport};
use crate::ingest::{IngestError, Ingester};
use crate::log::recompress::RecompressReport;
use crate::log::retention::Policy;
use crate::log::{LogError, SealReport, Store};
use crate::views::{ViewsError, ViewsReport};

pub use retention::RemovalOutcome;

/// Errors of the compactor, by stage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompactError {
    /// Taking the store lock (or the recovery it runs) failed.
    #[error("taking the store lock")]
    Lock(#[source] LogError),
    /// Sealing the inbox failed.
    #[error("sealing the inbox")]
    Seal(#[source] LogError),
    /// Tailing the transcripts that hooks named failed.
    #[error("tailing the transcripts that hooks named")]
    Tail(#[source] IngestError),
    /// Reading the log failed.
    #[error("reading the log")]
    Snapshot(#[source] LogError),
    /// Folding the views failed (or their checkpoint could not be read).
    #[error("updating the views")]
    Views(#[source] ViewsError),
    /// Updating the index failed (or its checkpoint could not be read).
    #[error("updating the index")]
    Index(#[source] IndexError),
    /// Applying retention or a removal to the log failed.
    #[error("applying retention to the log")]
    Retention(#[source] LogError),
    /// The log dropped records but deleting their index documents failed.
    #[error(
        "the log changed, but deleting index documents of removed records failed; the next gc, \
         forget or compact retries (or `ctrace reindex` rebuilds the index)"
    )]
    IndexDeletes(#[source] IndexError),
    /// Recompressing sealed segments failed.
    #[error("recompressing sealed segments")]
    Recompress(#[source] LogError),
    /// A file of the compactor's own (the index intent marker) could not be written.
    #[error("i/o on {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl CompactError {
    /// Whether the error means the store cannot be written here (read-only file system,
    /// permission denied, full disk or quota, another user's directory), as opposed to damage
    /// or a bug: readers then go on without sealing.
    pub fn is_unwritable(&self) -> bool {
        crate::log::private::is_unwritable(self)
    }
}

/// What [`Compactor::refresh`] did.
#[derive(Debug, Clone, Default)]
pub struct RefreshReport {
    /// False when another process held the store lock: nothing was sealed (that process seals).
    pub locked: bool,
    /// The seals: the inbox's, then the one of the tailed transcript lines (if any).
    pub seals: Vec<SealReport>,
    /// Transcript lines added by tailing.
    pub tailed_records: u64,
}

impl RefreshReport {
    /// Records sealed by this refresh.
    pub fn records(&self) -> u64 {
        self.seals.iter().map(|seal| seal.records).sum()
    }
}

/// Options of one compaction pass.
pub struct CompactOptions<'a> {
    /// Drop the views and fold them again from the whole log.
    pub rebuild_views: bool,
    /// Update the index (when it exists).
    pub index: bool,
    /// How long to wait for another process's index writer ([`crate::index::WRITER_WAIT`] by
    /// default; `None`: fail with [`IndexError::Busy`] at once).
    pub index_writer_wait: Option<Duration>,
    /// Called once when the index writer has been busy for about a second.
    pub on_index_wait: Option<&'a dyn Fn()>,
    /// Apply the retention policy, when one is configured.
    pub retention: bool,
    /// Recompress sealed segments, when `storage.compaction_zstd_level` is above 0.
    pub recompress: bool,
}

impl Default for CompactOptions<'_> {
    fn default() -> Self {
        Self {
            rebuild_views: false,
            index: true,
            index_writer_wait: Some(crate::index::WRITER_WAIT),
            on_index_wait: None,
            retention: true,
            recompress: true,
        }
    }
}

impl std::fmt::Debug for CompactOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompactOptions")
            .field("rebuild_views", &self.rebuild_views)
            .field("index", &self.index)
            .field("index_writer_wait", &self.index_writer_wait)
            .field("retention", &self.retention)
            .field("recompress", &self.recompress)
            .finish_non_exhaustive()
    }
}

/// What one compaction pass did, stage by stage (`None`: the stage did not run).
#[derive(Debug, Clone, Default)]
pub struct CompactReport {
    /// Sealing and tailing.
    pub refresh: RefreshReport,
    /// The views pass.
    pub views: ViewsReport,
    /// The index pass, when the index exists.
    pub index: Option<IndexReport>,
    /// Retention, when a policy is configured.
    pub retention: Option<RemovalOutcome>,
    /// Recompression, when a level is configured.
    pub recompress: Option<RecompressReport>,
    /// Wall time of recompression.
    pub recompress_elapsed: Duration,
    /// Wall time of the pass.
    pub elapsed: Duration,
}

/// The compactor of one store.
#[derive(Debug, Clone, Copy)]
pub struct Compactor<'s> {
    store: &'s Store,
}

impl<'s> Compactor<'s> {
    /// The compactor of `store`.
    pub fn new(store: &'s Store) -> Self {
        Self { store }
    }

    /// The store.
    pub fn store(&self) -> &'s Store {
        self.store
    }

    /// Seals pending inbox data if nobody else holds the lock, tails the transcripts that
    /// Stop, SubagentStop, SessionEnd and PreCompact hooks named, and seals those too.
    ///
    /// # Errors
    /// [`CompactError::Lock`], [`CompactError::Seal`] or [`CompactError::Tail`];
    /// [`CompactError::is_unwritable`] tells a store that cannot be written here.
    pub fn refresh(&self) -> Result<RefreshReport, CompactError> {
        let Some(mut lock) = self.store.try_lock().map_err(CompactError::Lock)? else {
            tracing::debug!("store lock busy; another process seals");
            return Ok(RefreshReport::default());
        };
        let seal = lock.seal().map_err(CompactError::Seal)?;
        let to_tail = seal.transcripts_to_tail.clone();
        let mut report = RefreshReport {
            locked: true,
            seals: vec![seal],
            tailed_records: 0,
        };
        if !to_tail.is_empty() {
            let mut ingester = Ingester::new(&mut lock).map_err(CompactError::Tail)?;
            ingester
                .tail_transcripts(&to_tail)
                .map_err(CompactError::Tail)?;
            let (summary, seals) = ingester.finish().map_err(CompactError::Tail)?;
            report.tailed_records = summary.records;
            report.seals.extend(seals);
        }
        Ok(report)
    }

    /// One full pass: refresh, views, index, retention, recompression (see the module docs).
    ///
    /// # Errors
    /// The first stage that fails, as a [`CompactError`]; the stages before it are committed.
    pub fn run_once(&self, options: &CompactOptions<'_>) -> Result<CompactReport, CompactError> {
        let started = Instant::now();
        let refresh = self.refresh()?;
        let views = if options.rebuild_views {
            crate::views::rebuild(self.store)
        } else {
            crate::views::catch_up(self.store)
        }
        .map_err(CompactError::Views)?;
        let index = if options.index {
            self.update_index(options)?
        } else {
            None
        };
        let retention = if options.retention {
            self.apply_retention(crate::now_ns())?
        } else {
            retention::repair_index(self.store)?;
            None
        };
        let recompress_started = Instant::now();
        let recompress = if options.recompress {
            self.recompress()?
        } else {
            None
        };
        let recompress_elapsed = recompress_started.elapsed();
        Ok(CompactReport {
            refresh,
            views,
            index,
            retention,
            recompress,
            recompress_elapsed,
            elapsed: started.elapsed(),
        })
    }

    /// Brings the index up to date when it exists.
    fn update_index(
        &self,
        options: &CompactOptions<'_>,
    ) -> Result<Option<IndexReport>, CompactError> {
        if !crate::index::exists(self.store.paths()) {
            return Ok(None);
        }
        let catch_up = CatchUpOptions {
            wait_for_writer: options.index_writer_wait,
            on_wait: options.on_index_wait,
            ..CatchUpOptions::default()
        };
        crate::index::catch_up_with(self.store, &catch_up)
            .map(Some)
            .map_err(CompactError::Index)
    }

    /// Finishes an interrupted index removal, then applies the configured retention policy
    /// as of `now_ns`; `None` when no policy is configured.
    ///
    /// # Errors
    /// As [`retention::apply_policy`].
    pub fn apply_retention(&self, now_ns: u64) -> Result<Option<RemovalOutcome>, CompactError> {
        let repaired = retention::repair_index(self.store)?;
        let policy = Policy::from_config(&self.store.config().retention);
        if policy.is_empty() {
            return Ok(None);
        }
        let mut outcome = retention::apply_policy(self.store, &policy, now_ns, false)?;
        outcome.index_documents_deleted += repaired;
        Ok(Some(outcome))
    }

    /// Recompresses sealed segments at `storage.compaction_zstd_level`; `None` when it is 0.
    ///
    /// # Errors
    /// [`CompactError::Lock`] or [`CompactError::Recompress`].
    pub fn recompress(&self) -> Result<Option<RecompressReport>, CompactError> {
        let level = self.store.config().storage.compaction_zstd_level;
        if level <= 0 {
            return Ok(None);
        }
        let mut lock = self.store.lock().map_err(CompactError::Lock)?;
        lock.recompress(level, None)
            .map(Some)
            .map_err(CompactError::Recompress)
    }
}
