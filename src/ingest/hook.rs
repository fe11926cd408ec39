//! Storing one hook payload: redact, encode, append to the inbox, and where the inbox cannot
//! take it, spool it. The policy behind `ctrace hook` (and the service's HTTP hook target):
//! a payload is never dropped while any place can take it, and never stored twice.
//!
//! Order of places (`DESIGN.md` §8, `docs/security.md`):
//! 1. `<store>/inbox/active.wal`, appended under a shared lock with the store's durability;
//! 2. `<store>/spool/`, created 0700 and checked;
//! 3. the fallback spool `$TMPDIR/ctrace-spool-<uid>/<crc32 of the canonical store path>/`,
//!    each level created 0700 and checked.
//!
//! The next seal picks spooled files up. An inbox append whose data reached the file but whose
//! `fdatasync` failed is *not* spooled again: the seal takes the record from the inbox, so a
//! second copy would be sealed twice.

use std::path::{Path, PathBuf};

use crate::claude::hook_record;
use crate::config::Config;
use crate::ingest::redact::Redactor;
use crate::log::{LogError, Store, StorePaths, inbox, private};
use crate::model::{Body, Truncated};

/// Where a payload was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Appended to the inbox and synced as the store's durability asks.
    Inbox,
    /// Written to the inbox, but syncing it failed: the record is in the file (it reaches the
    /// disk with the page cache) and is sealed from there.
    InboxUnsynced,
    /// Written to this spool file (the inbox append failed).
    Spooled(PathBuf),
    /// Nowhere: the record could not be encoded, or no place could be written.
    Nowhere,
}

impl Placement {
    /// Whether the payload is in a file the next seal reads.
    pub fn is_stored(&self) -> bool {
        !matches!(self, Self::Nowhere)
    }
}

/// A problem met while storing a payload; the payload may still be stored (see
/// [`Stored::placement`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HookProblem {
    /// The record could not be encoded (MessagePack).
    #[error("cannot encode record")]
    Encode(#[source] rmp_serde::encode::Error),
    /// The inbox append wrote the record but its sync failed (not spooled again).
    #[error("inbox record written but not synced (not spooled again)")]
    InboxUnsynced(#[source] LogError),
    /// The inbox append failed; the record went on to a spool.
    #[error("inbox append failed")]
    Inbox(#[source] LogError),
    /// One spool directory could not take the record.
    #[error("spool failed")]
    Spool(#[source] LogError),
}

/// The outcome of [`store_payload`].
#[derive(Debug)]
pub struct Stored {
    /// Where the payload went.
    pub placement: Placement,
    /// What went wrong on the way, in order (empty when it went straight to the inbox).
    pub problems: Vec<HookProblem>,
}

/// One hook payload as it arrived, before it becomes a record.
#[derive(Debug, Clone)]
pub struct Payload {
    /// The payload bytes kept (at most `storage.max_record_bytes`; see `truncated`).
    pub raw: Vec<u8>,
    /// Set when the payload was longer than what was kept: its full size and SHA-256.
    pub truncated: Option<Truncated>,
    /// Arrival time, ns since the Unix epoch.
    pub ts: u64,
    /// The PTY recording the hook ran inside (`CTRACE_PTY_SESSION`), if any.
    pub pty_session: Option<String>,
}

/// Redacts, encodes and stores `payload` in the store at `root`: inbox, else the store's
/// spool, else the fallback spool. Never panics on bad input: a payload that is not JSON is
/// stored as it is (the record's `raw` keeps the bytes).
pub fn store_payload(root: &Path, config: Config, payload: Payload) -> Stored {
    let mut problems = Vec::new();
    let mut record = hook_record(payload.raw, payload.ts, payload.pty_session, None);
    if let Body::Hook(body) = &mut record.body {
        body.truncated = payload.truncated;
    }
    // Secrets are replaced before the record is encoded: nothing below sees them.
    Redactor::new(&config.redaction).redact_record(&mut record);
    let bytes = match record.encode() {
        Ok(bytes) => bytes,
        Err(e) => {
            problems.push(HookProblem::Encode(e));
            return Stored {
                placement: Placement::Nowhere,
                problems,
            };
        }
    };
    let mut stored = store_encoded(root, config, &[bytes]);
    problems.append(&mut stored.problems);
    stored.problems = problems;
    stored
}

/// Stores encoded records (each a [`crate::model::Record::encode`]) together, in order, by the
/// policy of [`store_payload`]: one inbox append (one write, one sync) for all of them, else
/// one spool file. The records go to one place or none: never some here and some there.
pub fn store_encoded(root: &Path, config: Config, records: &[Vec<u8>]) -> Stored {
    let mut problems = Vec::new();
    let store = Store::at(root, config);
    let frame_limit = store.config().frame_limit();
    let mut frames = Vec::with_capacity(records.iter().map(|r| r.len() + 16).sum::<usize>() + 64);
    for record in records {
        crate::segments::frame::encode_record(&mut frames, record, frame_limit);
    }
    let appended = inbox::append_shared_frames(
        &store.paths().inbox,
        &frames,
        store.config().storage.durability,
    );
    let placement = match appended {
        Ok(()) => Placement::Inbox,
        Err(error @ LogError::Poisoned { .. }) => {
            problems.push(HookProblem::InboxUnsynced(error));
            Placement::InboxUnsynced
        }
        Err(error) => {
            problems.push(HookProblem::Inbox(error));
            spool(store.paths(), &frames, &mut problems)
        }
    };
    Stored {
        placement,
        problems,
    }
}

/// Writes the framed records to the first spool that takes them.
fn spool(paths: &StorePaths, frames: &[u8], problems: &mut Vec<HookProblem>) -> Placement {
    for dir in [store_spool(paths), fallback_spool(paths)] {
        match dir.and_then(|dir| inbox::spool_frames(&dir, frames)) {
            Ok(path) => return Placement::Spooled(path),
            Err(e) => problems.push(HookProblem::Spool(e)),
        }
    }
    Placement::Nowhere
}

/// `<store>/spool`, created 0700 and checked: ours, not a symlink, not writable by others.
fn store_spool(paths: &StorePaths) -> Result<PathBuf, LogError> {
    inbox::create_dir_private(&paths.spool)?;
    private::check_dir(&paths.spool, private::DirRule::OwnedPrivate)?;
    Ok(paths.spool.clone())
}

/// The fallback spool under `$TMPDIR`, each level created 0700 and checked.
fn fallback_spool(paths: &StorePaths) -> Result<PathBuf, LogError> {
    let (base, levels) = paths.fallback_spool_levels();
    private::ensure_spool_dir(&base, &[levels[0].as_str(), levels[1].as_str()])
}
