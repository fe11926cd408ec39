//! Retention and removal across the log and the index, with the crash protocol between them.
//!
//! Retention never touches a segment before every consumer has passed it: the bound is the
//! smallest checkpoint of the views and the index (a consumer that does not exist does not hold
//! retention back). After the log drops records, the index documents of those records are
//! deleted; the views keep their aggregates (`docs/retention.md`).
//!
//! Crash protocol: before the log drops records while an index exists, an intent marker
//! `<store>/index/PENDING_DELETES` is written and synced; it is removed once the index
//! documents of those records are deleted. A crash (or a busy index) in between leaves the
//! marker, and the next removal or compaction finishes the job ([`repair_index`]) from the
//! block indexes alone.

use std::path::PathBuf;

use super::CompactError;
use crate::log::retention::{Pins, Policy, Removal, RetentionReport};
use crate::log::{Store, StoreLock};
use crate::segments::Offset;

/// What a removal did to the log and the index.
#[derive(Debug, Clone, Default)]
pub struct RemovalOutcome {
    /// The log's report (records, sessions, segments, bytes).
    pub report: RetentionReport,
    /// Index documents deleted (of records removed now, or by an earlier interrupted removal).
    pub index_documents_deleted: u64,
}

/// The smallest checkpoint of the consumers (views, index); `next` when none exists.
///
/// # Errors
/// [`CompactError::Views`] or [`CompactError::Index`] when a checkpoint cannot be read:
/// retention then does nothing.
pub fn consumers_bound(store: &Store, next: Offset) -> Result<Offset, CompactError> {
    let views = crate::views::applied_offset(store.paths()).map_err(CompactError::Views)?;
    let index = crate::index::applied_offset(store.paths()).map_err(CompactError::Index)?;
    Ok([views, index].into_iter().flatten().fold(next, Offset::min))
}

/// Applies (or with `dry_run` plans) `removal` under `lock` for records below `bound`, then
/// deletes the index documents of removed records, following the crash protocol above.
///
/// # Errors
/// [`CompactError::Retention`] when the log fails (nothing changed, or the change is
/// complete: retention commits through the MANIFEST); [`CompactError::IndexDeletes`] when the
/// log changed but the index documents could not be deleted (the marker stays; the next run
/// retries); [`CompactError::Io`] for the marker itself.
pub fn apply_removal(
    lock: &mut StoreLock<'_>,
    removal: &Removal<'_>,
    bound: Offset,
    dry_run: bool,
) -> Result<RemovalOutcome, CompactError> {
    let mut deleted = repair_index(lock.store())?;
    let marked = !dry_run && mark_index_deletes(lock.store())?;
    let report = lock
        .apply_retention(removal, bound, dry_run)
        .map_err(CompactError::Retention)?;
    if report.applied {
        let offsets = report.removed_offsets();
        deleted += crate::index::delete_offsets(lock.store().paths(), &offsets)
            .map_err(CompactError::IndexDeletes)?;
    }
    if marked {
        clear_index_deletes(lock.store())?;
    }
    Ok(RemovalOutcome {
        report,
        index_documents_deleted: deleted,
    })
}

/// Applies the retention policy `policy` as of `now_ns` (ns since the Unix epoch): takes the
/// store lock (waiting), loads the pins, bounds the removal by the consumers' checkpoints.
///
/// # Errors
/// As [`apply_removal`], plus [`CompactError::Lock`] and pins that cannot be read.
pub fn apply_policy(
    store: &Store,
    policy: &Policy,
    now_ns: u64,
    dry_run: bool,
) -> Result<RemovalOutcome, CompactError> {
    let mut lock = store.lock().map_err(CompactError::Lock)?;
    let pins = Pins::load(store.paths()).map_err(CompactError::Retention)?;
    let bound = consumers_bound(store, lock.manifest().next_offset)?;
    let removal = Removal::Policy {
        policy,
        now_ns,
        pins: &pins,
    };
    apply_removal(&mut lock, &removal, bound, dry_run)
}

/// What [`forget_session`] found.
#[derive(Debug)]
pub enum Forgotten {
    /// The session is pinned: nothing was removed.
    Pinned,
    /// The removal (records 0 when the log holds none of the session).
    Removed(RemovalOutcome),
}

/// Removes every record of `session` from the log (segments rewritten without them, or
/// deleted), whatever the consumers' checkpoints, then from the views and the index; with
/// `dry_run`, only plans. A pinned session is refused ([`Forgotten::Pinned`]).
///
/// # Errors
/// As [`apply_removal`]; [`CompactError::Views`] / [`CompactError::Index`] when the log forgot
/// the session but a consumer did not (running `forget` again finishes it).
pub fn forget_session(
    store: &Store,
    session: &str,
    dry_run: bool,
) -> Result<Forgotten, CompactError> {
    let mut lock = store.lock().map_err(CompactError::Lock)?;
    if Pins::load(store.paths())
        .map_err(CompactError::Retention)?
        .contains(session)
    {
        return Ok(Forgotten::Pinned);
    }
    let bound = lock.manifest().next_offset;
    let mut outcome = apply_removal(&mut lock, &Removal::Session(session), bound, dry_run)?;
    drop(lock);
    if !dry_run {
        crate::views::forget_session(store.paths(), session).map_err(CompactError::Views)?;
        outcome.index_documents_deleted +=
            crate::index::forget_session(store.paths(), session).map_err(CompactError::Index)?;
    }
    Ok(Forgotten::Removed(outcome))
}

/// Removes exactly the records at `offsets` from the log (segments rewritten sparse, offsets
/// of the others unchanged) and from the index; the views keep what they folded (`compact
/// --rebuild` folds them again). For a record that does not decode, or one that must go.
///
/// # Errors
/// As [`apply_removal`]; [`CompactError::IndexDeletes`] when the log forgot the records but
/// the index did not.
pub fn forget_offsets(
    store: &Store,
    offsets: &[Offset],
    dry_run: bool,
) -> Result<RemovalOutcome, CompactError> {
    let mut lock = store.lock().map_err(CompactError::Lock)?;
    let bound = lock.manifest().next_offset;
    let mut outcome = apply_removal(&mut lock, &Removal::Offsets(offsets), bound, dry_run)?;
    drop(lock);
    if !dry_run && outcome.report.records > 0 && crate::index::exists(store.paths()) {
        outcome.index_documents_deleted += crate::index::delete_offsets(store.paths(), offsets)
            .map_err(CompactError::IndexDeletes)?;
    }
    Ok(outcome)
}

/// The intent marker written before the log drops records while an index exists.
fn pending_deletes_path(store: &Store) -> PathBuf {
    crate::index::index_dir(store.paths()).join("PENDING_DELETES")
}

/// Writes and syncs the intent marker when an index exists; returns whether it did.
fn mark_index_deletes(store: &Store) -> Result<bool, CompactError> {
    if !crate::index::exists(store.paths()) {
        return Ok(false);
    }
    let path = pending_deletes_path(store);
    let io = |source| CompactError::Io {
        path: path.clone(),
        source,
    };
    let file = std::fs::File::create(&path).map_err(io)?;
    crate::fault::point("index-deletes-mark")
        .and_then(|()| file.sync_all())
        .map_err(io)?;
    let dir = crate::index::index_dir(store.paths());
    crate::log::manifest::sync_dir(&dir).map_err(CompactError::Retention)?;
    Ok(true)
}

/// Removes the intent marker (absent is fine).
fn clear_index_deletes(store: &Store) -> Result<(), CompactError> {
    let path = pending_deletes_path(store);
    match crate::fault::point("index-deletes-clear").and_then(|()| std::fs::remove_file(&path)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CompactError::Io { path, source }),
    }
}

/// Finishes an interrupted removal: when the intent marker is present, deletes the index
/// documents of every offset below the log's next offset that no sealed block holds any more
/// (found from the block indexes alone; nothing is decompressed), then removes the marker.
/// Offsets still in the log are never touched, so this is right whenever the crash came.
/// Returns the documents deleted.
///
/// # Errors
/// [`CompactError::Snapshot`] when the log cannot be read, [`CompactError::IndexDeletes`] when
/// the index cannot be changed, [`CompactError::Io`] for the marker.
pub fn repair_index(store: &Store) -> Result<u64, CompactError> {
    if !pending_deletes_path(store).exists() {
        return Ok(0);
    }
    let snapshot = store.snapshot().map_err(CompactError::Snapshot)?;
    let next = snapshot.manifest().next_offset;
    let present = snapshot.segments().iter().flat_map(|segment| {
        segment.blocks().iter().map(|block| {
            let start = block.first_offset.0;
            (start, start + u64::from(block.count))
        })
    });
    let absent = absent_offsets(present.collect(), next);
    let deleted = if absent.is_empty() {
        0
    } else {
        crate::index::delete_offsets(store.paths(), &absent).map_err(CompactError::IndexDeletes)?
    };
    clear_index_deletes(store)?;
    if deleted > 0 {
        tracing::info!(
            deleted,
            "index: removed documents of records retention had removed"
        );
    }
    Ok(deleted)
}

/// The offsets below `next` that none of the `[start, end)` ranges of `present` covers.
fn absent_offsets(mut present: Vec<(u64, u64)>, next: Offset) -> Vec<Offset> {
    present.sort_unstable();
    let mut absent = Vec::new();
    let mut at = 0;
    for (start, end) in present.into_iter().chain([(next.0, next.0)]) {
        absent.extend((at..start.min(next.0)).map(Offset));
        at = at.max(end);
    }
    absent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_offsets_are_the_gaps_below_next() {
        let gaps = absent_offsets(vec![(5, 8), (0, 2), (7, 10)], Offset(12));
        assert_eq!(
            gaps,
            [2, 3, 4, 10, 11]
                .into_iter()
                .map(Offset)
                .collect::<Vec<_>>()
        );
        assert!(absent_offsets(vec![(0, 4)], Offset(4)).is_empty());
        assert_eq!(
            absent_offsets(vec![], Offset(2)),
            vec![Offset(0), Offset(1)]
        );
    }
}
