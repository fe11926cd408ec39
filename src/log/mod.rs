//! The store as a whole: inbox append, sealing under `ctrace.lock`, MANIFEST, recovery and
//! reading (`DESIGN.md` §3).
//!
//! Invariants:
//! - Offsets are dense and assigned only by the sealer, in arrival order, while it holds the
//!   exclusive lock on `ctrace.lock`.
//! - The MANIFEST is the commit point of a seal: segment files it does not name are deleted at
//!   recovery; inbox files it names as consumed are deleted, never sealed again.
//! - Readers take no lock: they read the MANIFEST, map the segments it names, read the inbox
//!   files it has not consumed, and retry if the MANIFEST generation changed meanwhile.
//! - After an fsync error the lock holder is poisoned and refuses to seal.

pub mod inbox;
pub mod manifest;
pub mod private;
pub mod read;
pub mod recompress;

pub mod recover;
pub mod retention;
mod seal;
pub mod verify;

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub use crate::model::{Body, Record, Source, StoredRecord};
pub use manifest::{Cursor, Manifest, SegmentEntry};
pub use read::Snapshot;
pub use seal::SealReport;
pub use verify::{Damage, VerifyReport, verify};

use crate::config::Config;
use crate::segments::{Offset, SegmentError};

/// Errors of the log layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// A segment-level error.
    #[error(transparent)]
    Segment(#[from] SegmentError),
    /// An I/O error on a store file.
    #[error("i/o on {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An fsync failed: the store refuses further writes from this process.
    #[error("fsync failed on {}; the store is poisoned for this process, reopen to recover", path.display())]
    Poisoned {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The MANIFEST does not decode or check.
    #[error(
        "MANIFEST is corrupt: bad {what}; nothing was changed: run `ctrace recover` to rebuild it from the segments"
    )]
    ManifestCorrupt {
        /// Which part.
        what: &'static str,
    },
    /// There is no MANIFEST but `segments/` holds segment files: the MANIFEST was lost.
    /// Nothing is deleted; `ctrace recover` rebuilds it from the segments.
    #[error(
        "MANIFEST {} is missing while segments/ holds {segments} segment files; nothing was changed: run `ctrace recover` to rebuild it from the segments",
        path.display()
    )]
    ManifestMissing {
        /// Where the MANIFEST should be.
        path: PathBuf,
        /// Segment files found.
        segments: usize,
    },
    /// A segment named in the MANIFEST is missing.
    #[error("segment file {} named in MANIFEST is missing", path.display())]
    SegmentMissing {
        /// The expected path.
        path: PathBuf,
    },
    /// A sealed record's bytes do not decode as a record.
    #[error("record at offset {offset} does not decode")]
    RecordDecode {
        /// The record's offset.
        offset: Offset,
        /// The decoder's error.
        #[source]
        source: crate::model::DecodeError,
    },
    /// Something could not be encoded.
    #[error("encoding {what}: {message}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's message.
        message: String,
    },
    /// The pin list (`PINS`) does not parse.
    #[error("pin list {} is corrupt", path.display())]
    PinsCorrupt {
        /// The file.
        path: PathBuf,
    },
    /// A file or directory ctrace would use is unsafe to use (a symlink, another user's, or
    /// writable by others): refused rather than followed.
    #[error("refusing {}: {reason}", path.display())]
    Unsafe {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: private::Unsafe,
    },
    /// Readers kept racing with sealers.
    #[error("store kept changing while taking a snapshot ({attempts} attempts)")]
    SnapshotRace {
        /// Attempts made.
        attempts: u32,
    },
}

/// Paths of a store's files and directories.
#[derive(Debug, Clone)]
pub struct StorePaths {
    /// The store directory (`$CTRACE_HOME`).
    pub root: PathBuf,
    /// `inbox/`.
    pub inbox: PathBuf,
    /// `segments/`.
    pub segments: PathBuf,
    /// `spool/`.
    pub spool: PathBuf,
    /// `MANIFEST`.
    pub manifest: PathBuf,
    /// `ctrace.lock`.
    pub lock: PathBuf,
    /// `logs/`.
    pub logs: PathBuf,
}

impl StorePaths {
    /// Paths under `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            inbox: root.join("inbox"),
            segments: root.join("segments"),
            spool: root.join("spool"),
            manifest: root.join("MANIFEST"),
            lock: root.join("ctrace.lock"),
            logs: root.join("logs"),
        }
    }

    /// The fallback spool directory outside the store, for when the store is not writable:
    /// `$TMPDIR/ctrace-spool-<euid>/<crc32 of the canonical store path>`.
    pub fn fallback_spool(&self) -> PathBuf {
        let (base, levels) = self.fallback_spool_levels();
        base.join(&levels[0]).join(&levels[1])
    }

    /// The fallback spool as `$TMPDIR` and the two directory levels below it that ctrace
    /// creates and checks ([`private::ensure_spool_dir`]).
    pub fn fallback_spool_levels(&self) -> (PathBuf, [String; 2]) {
        let canonical = private::canonical_store_path(&self.root);
        let hash = crc32fast::hash(canonical.as_os_str().as_encoded_bytes());
        (
            std::env::temp_dir(),
            [
                format!("ctrace-spool-{}", private::euid()),
                format!("{hash:08x}"),
            ],
        )
    }

    /// The fallback spool directory if it exists and passes the checks of
    /// [`private::check_spool_dir`]; a directory that fails them is logged and skipped, so
    /// planted files are never read or sealed.
    pub(crate) fn checked_fallback_spool(&self) -> Option<PathBuf> {
        let (base, levels) = self.fallback_spool_levels();
        let levels = [levels[0].as_str(), levels[1].as_str()];
        match private::check_spool_dir(&base, &levels) {
            Ok(true) => Some(self.fallback_spool()),
            Ok(false) => None,
            Err(error) => {
                tracing::warn!(%error, "fallback spool skipped");
                None
            }
        }
    }

    /// The store's own `spool/` if it exists and is a directory (not a symlink); otherwise
    /// logged and skipped.
    pub(crate) fn checked_spool(&self) -> Option<PathBuf> {
        match private::check_dir(&self.spool, private::DirRule::Real) {
            Ok(true) => Some(self.spool.clone()),
            Ok(false) => None,
            Err(error) => {
                tracing::warn!(%error, "spool directory skipped");
                None
            }
        }
    }
}

/// A handle on a store directory. Cheap to create; takes no lock by itself.
#[derive(Debug, Clone)]
pub struct Store {
    paths: StorePaths,
    config: Config,
}

impl Store {
    /// A handle for the store at `root` without touching the file system (the hook path).
    pub fn at(root: &Path, config: Config) -> Self {
        Self {
            paths: StorePaths::new(root),
            config,
        }
    }

    /// Opens the store at `root`, creating its directories (mode 0700) if missing and possible,
    /// and tightening them to 0700 if they are ours. A store that cannot be written (read-only,
    /// another user's) opens for reading.
    ///
    /// # Errors
    /// [`LogError::Io`] when the root cannot be created; [`LogError::Unsafe`] when `inbox/` or
    /// `segments/` is a symlink or not a directory.
    pub fn open(root: &Path, config: Config) -> Result<Self, LogError> {
        let store = Self::at(root, config);
        // The root may be a symlink (the user's choice): its target is checked. It must exist
        // or be creatable.
        let root = private::canonical_store_path(&store.paths.root);
        if !root.is_dir() {
            private::ensure_store_dir(&root)?;
        }
        private::prepare_store_dir(&root)?;
        for dir in [&store.paths.inbox, &store.paths.segments] {
            private::prepare_store_dir(dir)?;
        }
        Ok(store)
    }

    /// The store's paths.
    pub fn paths(&self) -> &StorePaths {
        &self.paths
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Appends one record to the shared inbox (`inbox/active.wal`). Safe to call from many
    /// processes at once; durable per `storage.durability`.
    ///
    /// # Errors
    /// [`LogError::Encode`], [`LogError::Io`] or [`LogError::Poisoned`].
    pub fn append(&self, record: &Record) -> Result<(), LogError> {
        let bytes = record.encode().map_err(|e| LogError::Encode {
            what: "record",
            message: e.to_string(),
        })?;
        inbox::append_shared(
            &self.paths.inbox,
            &bytes,
            self.config.frame_limit(),
            self.config.storage.durability,
        )
    }

    /// Creates a producer-owned inbox file (`inbox/<prefix>-<pid>-<ns>.wal`).
    ///
    /// # Errors
    /// [`LogError::Io`].
    pub fn producer(&self, prefix: &str) -> Result<inbox::ProducerInbox, LogError> {
        inbox::ProducerInbox::create(
            &self.paths.inbox,
            prefix,
            self.config.frame_limit(),
            self.config.storage.durability,
        )
    }

    /// Takes the exclusive store lock (waiting for it) and runs recovery.
    ///
    /// # Errors
    /// [`LogError::Io`] or [`LogError::ManifestCorrupt`].
    pub fn lock(&self) -> Result<StoreLock<'_>, LogError> {
        StoreLock::acquire(self, true)
            .map(|lock| lock.ok_or(LogError::SnapshotRace { attempts: 0 }))?
    }

    /// Takes the exclusive store lock if nobody holds it, and runs recovery.
    ///
    /// # Errors
    /// [`LogError::Io`] or [`LogError::ManifestCorrupt`].
    pub fn try_lock(&self) -> Result<Option<StoreLock<'_>>, LogError> {
        StoreLock::acquire(self, false)
    }

    /// Seals pending inbox data if the lock is free (what every reading command does first, so
    /// no daemon is needed). Returns `None` when another process holds the lock.
    ///
    /// # Errors
    /// As [`StoreLock::seal`].
    pub fn refresh(&self) -> Result<Option<SealReport>, LogError> {
        match self.try_lock()? {
            Some(mut lock) => lock.seal().map(Some),
            None => Ok(None),
        }
    }

    /// A consistent read view: sealed segments plus unsealed inbox records.
    ///
    /// # Errors
    /// [`LogError`] when the MANIFEST or a segment cannot be read.
    pub fn snapshot(&self) -> Result<Snapshot, LogError> {
        Snapshot::take(self)
    }
}

/// The exclusive store lock. While held, this process may seal and apply retention.
#[derive(Debug)]
pub struct StoreLock<'a> {
    store: &'a Store,
    _file: File,
    manifest: Manifest,
    poisoned: bool,
    recovered: RecoveryReport,
}

/// What recovery found and cleaned up when the lock was taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Temp files removed.
    pub temp_files_removed: u32,
    /// Segment files not named in the MANIFEST removed: never committed (interrupted seals),
    /// superseded, or retired by the last commit.
    pub orphan_segments_removed: u32,
    /// Segment files not named in the MANIFEST that hold committed records no listed segment
    /// covers: kept, reported by `verify`.
    pub unlisted_segments_kept: u32,
    /// Inbox files already sealed (named in the MANIFEST) removed.
    pub consumed_inbox_removed: u32,
}

impl<'a> StoreLock<'a> {
    fn acquire(store: &'a Store, wait: bool) -> Result<Option<Self>, LogError> {
        // The root may be a symlink (the user's choice): its target must be ours.
        private::ensure_store_dir(&private::canonical_store_path(&store.paths.root))?;
        let io = |source| private::io_error(&store.paths.lock, source);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(private::FILE_MODE)
            .custom_flags(private::NOFOLLOW)
            .open(&store.paths.lock)
            .map_err(io)?;
        if wait {
            file.lock().map_err(io)?;
        } else {
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
                Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        for dir in [&store.paths.inbox, &store.paths.segments] {
            private::ensure_store_dir(dir)?;
        }
        let manifest = load_manifest(&store.paths)?;
        let mut lock = Self {
            store,
            _file: file,
            manifest,
            poisoned: false,
            recovered: RecoveryReport::default(),
        };
        lock.recover()?;
        Ok(Some(lock))
    }

    /// The store.
    pub fn store(&self) -> &'a Store {
        self.store
    }

    /// The MANIFEST as of the last commit.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// What recovery did when the lock was taken.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovered
    }

    /// Deletes temp files (in the store root only those of lock holders, the MANIFEST's and
    /// the pin list's, and the others once [`STALE_TEMP_AFTER`] old: the forwarder writes its
    /// checkpoint without the lock), consumed inbox files, and segment files the MANIFEST does not name
    /// *only* when they are provably not needed ([`recover::unlisted_segment`]): never
    /// committed, superseded by listed segments, or retired by the last commit. An unlisted
    /// segment holding committed offsets that no listed segment covers is kept and reported
    /// (`verify` names it; `ctrace recover` can list it again).
    fn recover(&mut self) -> Result<(), LogError> {
        let paths = &self.store.paths;
        let live: std::collections::HashSet<&str> = self
            .manifest
            .segments
            .iter()
            .map(|s| s.file.as_str())
            .collect();
        let mut report = RecoveryReport::default();
        for dir in [&paths.root, &paths.segments, &paths.inbox] {
            for name in list_dir(dir)? {
                let path = dir.join(&name);
                if name.ends_with(".tmp") {
                    if dir == &paths.root && !lock_holders_temp(&name) && !stale_temp(&path) {
                        // Another writer's (the forwarder's checkpoint), maybe being written.
                        continue;
                    }
                    remove_file(&path)?;
                    report.temp_files_removed += 1;
                } else if dir == &paths.segments
                    && name.ends_with(".seg")
                    && !live.contains(name.as_str())
                {
                    match recover::unlisted_segment(&self.manifest, &name) {
                        recover::Unlisted::Committed => {
                            tracing::error!(file = %path.display(), "segment not named in MANIFEST holds committed records: kept (see `ctrace verify`, `ctrace recover`)");
                            report.unlisted_segments_kept += 1;
                        }
                        verdict => {
                            tracing::warn!(file = %path.display(), ?verdict, "removing segment not named in MANIFEST");
                            remove_file(&path)?;
                            report.orphan_segments_removed += 1;
                        }
                    }
                }
            }
        }
        for consumed in &self.manifest.consumed_inbox {
            let path = paths.root.join(consumed);
            if path.exists() {
                remove_file(&path)?;
                report.consumed_inbox_removed += 1;
            }
        }
        if report != RecoveryReport::default() {
            tracing::info!(?report, "recovery");
        }
        self.recovered = report;
        Ok(())
    }
}

/// Loads the MANIFEST, refusing a missing one while segment files exist (a lost MANIFEST is
/// damage to repair with `ctrace recover`, never an empty store).
///
/// # Errors
/// [`LogError::ManifestMissing`]; as [`Manifest::load`].
pub fn load_manifest(paths: &StorePaths) -> Result<Manifest, LogError> {
    let manifest = Manifest::load(&paths.manifest)?;
    if manifest.generation == 0 && manifest.segments.is_empty() {
        match std::fs::symlink_metadata(&paths.manifest) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let segments = list_dir(&paths.segments)?
                    .iter()
                    .filter(|n| n.ends_with(".seg"))
                    .count();
                if segments > 0 {
                    return Err(LogError::ManifestMissing {
                        path: paths.manifest.clone(),
                        segments,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(manifest)
}

/// Names of the entries of `dir` (empty when it does not exist).
fn list_dir(dir: &Path) -> Result<Vec<String>, LogError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(LogError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| LogError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// The fault point `name` ([`crate::fault::point`]) before an operation on `path`.
fn fault_point(name: &str, path: &Path) -> Result<(), LogError> {
    crate::fault::point(name).map_err(|source| LogError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn remove_file(path: &Path) -> Result<(), LogError> {
    crate::fs::remove_if_exists(path)
        .map(|_| ())
        .map_err(|source| LogError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// A temp file in the store root of another writer than the lock holder (e.g. the
/// forwarder's `forward.checkpoint.*.tmp`) is removed by recovery only once it is this old
/// (1 hour): younger, it may be being written.
pub const STALE_TEMP_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

/// Whether `name` (a `*.tmp` file in the store root) is written only under the store lock:
/// the MANIFEST's and the pin list's temp files, left over only by a holder that died.
fn lock_holders_temp(name: &str) -> bool {
    name.starts_with("MANIFEST.") || name.starts_with("PINS.")
}

/// Whether the file at `path` was last modified [`STALE_TEMP_AFTER`] ago or more (an
/// unreadable time counts as stale: such a file is removed as before).
fn stale_temp(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .and_then(|meta| meta.modified())
        .ok()
        .and_then(|modified| modified.elapsed().ok())
        .is_none_or(|age| age >= STALE_TEMP_AFTER)
}
