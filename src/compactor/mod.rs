//! The compactor: the one place that turns new log data into everything derived from it.
//!
//! One pass ([`Compactor::run_once`]) does, in order:
//! 1. **refresh**: seal the inbox and spools into segments (when nobody else holds the store
//!    lock), then tail the transcripts that Stop, SubagentStop, SessionEnd and PreCompact hooks
//!    named (and those the tailer's file watcher saw change, [`Tailer::take_changed`]) and seal
//!    those lines too;
//! 2. **consumers**: bring each [`Consumer`] it was given (the views, then the full-text
//!    index, from the layer above) up to the end of the log, or rebuild it;
//! 3. **retention**: apply the `[retention]` policy, bounded by the consumers' checkpoints,
//!    with the log ↔ consumer crash protocol of [`retention`];
//! 4. **recompression**: rewrite sealed segments at `storage.compaction_zstd_level`.
//!
//! `ctrace compact` runs one pass; every reading command runs step 1 ([`Compactor::refresh`]);
//! a long-running service drives [`service::run`], which waits on a [`service::Trigger`]
//! between passes. Errors are typed ([`CompactError`]) and name the stage that failed.
//!
//! The compactor sits below the views and the index (`ARCHITECTURE.md`): it drives them
//! through the [`Consumer`] trait and never imports them.

pub mod consumer;
pub mod retention;
pub mod service;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use std::collections::BTreeSet;

use crate::log::recompress::RecompressReport;
use crate::log::retention::Policy;
use crate::log::{LogError, SealReport, Store, StoreLock};

pub use consumer::{CatchUp, Consumer, ConsumerError, ConsumerReport};
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
    Tail(#[source] ConsumerError),
    /// Reading the log failed.
    #[error("reading the log")]
    Snapshot(#[source] LogError),
    /// A consumer failed: updating it, reading its checkpoint, forgetting a session.
    #[error("{what} the {consumer}")]
    Consumer {
        /// The consumer ([`Consumer::name`]).
        consumer: &'static str,
        /// What was being done ("updating", "reading the checkpoint of", …).
        what: &'static str,
        /// The consumer's error.
        #[source]
        source: ConsumerError,
    },
    /// Applying retention or a removal to the log failed.
    #[error("applying retention to the log")]
    Retention(#[source] LogError),
    /// The log dropped records but removing them from a consumer failed (its intent marker
    /// stays, and the next removal or pass retries).
    #[error(
        "the log changed, but removing the records it dropped from the {consumer} failed; the \
         next gc, forget or compact retries (`ctrace reindex` rebuilds the index)"
    )]
    ConsumerRemoval {
        /// The consumer ([`Consumer::name`]).
        consumer: &'static str,
        /// The consumer's error.
        #[source]
        source: ConsumerError,
    },
    /// Recompressing sealed segments failed.
    #[error("recompressing sealed segments")]
    Recompress(#[source] LogError),
    /// A file of the compactor's own (a consumer's intent marker) could not be written.
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

/// Reads the lines appended to transcripts since their cursors, during a refresh: the hooks of
/// a turn's end name the transcript, and its new lines are sealed at once. Implemented by the
/// ingest layer above ([`crate::ingest::tail::TranscriptTailer`]).
pub trait Tailer: Sync {
    /// Appends the new lines of `transcripts` under `lock` and seals them; returns the records
    /// added and the seals made.
    ///
    /// # Errors
    /// The tailer's error (what was sealed before it stays).
    fn tail(
        &self,
        lock: &mut StoreLock<'_>,
        transcripts: &BTreeSet<std::path::PathBuf>,
    ) -> Result<(u64, Vec<SealReport>), ConsumerError>;

    /// Transcripts to tail in this refresh besides those hooks named (a file watcher's
    /// changed files), taken: a second call returns only what changed since. None by default.
    fn take_changed(&self) -> BTreeSet<std::path::PathBuf> {
        BTreeSet::new()
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
    /// Consumers (by [`Consumer::name`]) to drop and build again from the whole log.
    pub rebuild: &'a [&'a str],
    /// Update the consumers.
    pub consumers: bool,
    /// How long to wait for another process updating a consumer (10 minutes by default: a
    /// full reindex of a large store takes minutes; `None`: fail at once).
    pub writer_wait: Option<Duration>,
    /// Called once when a consumer's writer has been busy for about a second.
    pub on_wait: Option<&'a dyn Fn()>,
    /// Apply the retention policy, when one is configured.
    pub retention: bool,
    /// Recompress sealed segments, when `storage.compaction_zstd_level` is above 0.
    pub recompress: bool,
}

/// How long a pass waits by default for another process updating a consumer (10 minutes).
pub const WRITER_WAIT: Duration = Duration::from_secs(600);

impl Default for CompactOptions<'_> {
    fn default() -> Self {
        Self {
            rebuild: &[],
            consumers: true,
            writer_wait: Some(WRITER_WAIT),
            on_wait: None,
            retention: true,
            recompress: true,
        }
    }
}

impl std::fmt::Debug for CompactOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompactOptions")
            .field("rebuild", &self.rebuild)
            .field("consumers", &self.consumers)
            .field("writer_wait", &self.writer_wait)
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
    /// Each maintained consumer's pass, in order, with its name.
    pub consumers: Vec<(&'static str, ConsumerReport)>,
    /// Retention, when a policy is configured.
    pub retention: Option<RemovalOutcome>,
    /// Recompression, when a level is configured.
    pub recompress: Option<RecompressReport>,
    /// Wall time of recompression.
    pub recompress_elapsed: Duration,
    /// Wall time of the pass.
    pub elapsed: Duration,
}

/// The compactor of one store and its consumers.
#[derive(Clone, Copy)]
pub struct Compactor<'s> {
    store: &'s Store,
    consumers: &'s [&'s dyn Consumer],
    tailer: Option<&'s dyn Tailer>,
}

impl std::fmt::Debug for Compactor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.consumers.iter().map(|c| c.name()).collect();
        f.debug_struct("Compactor")
            .field("store", &self.store.paths().root)
            .field("consumers", &names)
            .finish()
    }
}

impl<'s> Compactor<'s> {
    /// The compactor of `store`, driving `consumers` in order (the views before the index).
    pub fn new(store: &'s Store, consumers: &'s [&'s dyn Consumer]) -> Self {
        Self {
            store,
            consumers,
            tailer: None,
        }
    }

    /// The same compactor, tailing the transcripts hooks name with `tailer` on each refresh
    /// (without one, they are left for the next `ctrace ingest`).
    #[must_use]
    pub fn with_tailer(self, tailer: &'s dyn Tailer) -> Self {
        Self {
            tailer: Some(tailer),
            ..self
        }
    }

    /// The consumers it drives.
    pub fn consumers(&self) -> &'s [&'s dyn Consumer] {
        self.consumers
    }

    /// The store.
    pub fn store(&self) -> &'s Store {
        self.store
    }

    /// Seals pending inbox data if nobody else holds the lock, tails the transcripts that
    /// Stop, SubagentStop, SessionEnd and PreCompact hooks named (and the tailer's changed
    /// files), and seals those too.
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
        let mut to_tail = seal.transcripts_to_tail.clone();
        if let Some(tailer) = self.tailer {
            to_tail.extend(tailer.take_changed());
        }
        let mut report = RefreshReport {
            locked: true,
            seals: vec![seal],
            tailed_records: 0,
        };
        if let Some(tailer) = self.tailer.filter(|_| !to_tail.is_empty()) {
            let (records, seals) = tailer
                .tail(&mut lock, &to_tail)
                .map_err(CompactError::Tail)?;
            report.tailed_records = records;
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
        let consumers = if options.consumers {
            self.update_consumers(options)?
        } else {
            Vec::new()
        };
        let retention = if options.retention {
            self.apply_retention(crate::now_ns())?
        } else {
            retention::repair(self.store, self.consumers)?;
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
            consumers,
            retention,
            recompress,
            recompress_elapsed,
            elapsed: started.elapsed(),
        })
    }

    /// Brings every maintained consumer up to the end of the log, in order.
    fn update_consumers(
        &self,
        options: &CompactOptions<'_>,
    ) -> Result<Vec<(&'static str, ConsumerReport)>, CompactError> {
        let mut reports = Vec::new();
        for consumer in self.consumers {
            if !consumer.maintained(self.store) {
                continue;
            }
            let how = CatchUp {
                rebuild: options.rebuild.contains(&consumer.name()),
                writer_wait: options.writer_wait,
                on_wait: options.on_wait,
            };
            let report =
                consumer
                    .catch_up(self.store, &how)
                    .map_err(|source| CompactError::Consumer {
                        consumer: consumer.name(),
                        what: "updating",
                        source,
                    })?;
            reports.push((consumer.name(), report));
        }
        Ok(reports)
    }

    /// Finishes an interrupted removal, then applies the configured retention policy as of
    /// `now_ns` (ns since the Unix epoch); `None` when no policy is configured.
    ///
    /// # Errors
    /// As [`retention::apply_policy`].
    pub fn apply_retention(&self, now_ns: u64) -> Result<Option<RemovalOutcome>, CompactError> {
        let repaired = retention::repair(self.store, self.consumers)?;
        let policy = Policy::from_config(&self.store.config().retention);
        if policy.is_empty() {
            return Ok(None);
        }
        let mut outcome = self.apply_policy(&policy, now_ns, false)?;
        outcome.consumer_entries_removed += repaired;
        Ok(Some(outcome))
    }

    /// Applies `policy` as of `now_ns` (with `dry_run`, only plans): see
    /// [`retention::apply_policy`].
    ///
    /// # Errors
    /// As [`retention::apply_policy`].
    pub fn apply_policy(
        &self,
        policy: &Policy,
        now_ns: u64,
        dry_run: bool,
    ) -> Result<RemovalOutcome, CompactError> {
        retention::apply_policy(self.store, self.consumers, policy, now_ns, dry_run)
    }

    /// Forgets a session in the log and every consumer: see [`retention::forget_session`].
    ///
    /// # Errors
    /// As [`retention::forget_session`].
    pub fn forget_session(
        &self,
        session: &str,
        dry_run: bool,
    ) -> Result<retention::Forgotten, CompactError> {
        retention::forget_session(self.store, self.consumers, session, dry_run)
    }

    /// Removes single records from the log and the consumers: see
    /// [`retention::forget_offsets`].
    ///
    /// # Errors
    /// As [`retention::forget_offsets`].
    pub fn forget_offsets(
        &self,
        offsets: &[crate::segments::Offset],
        dry_run: bool,
    ) -> Result<RemovalOutcome, CompactError> {
        retention::forget_offsets(self.store, self.consumers, offsets, dry_run)
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
