//! Retention and removal across the log and its consumers, with the crash protocol between
//! them.
//!
//! Retention never touches a segment before every consumer has passed it: the bound is the
//! smallest checkpoint of the consumers (a consumer that is not built does not hold retention
//! back). After the log drops records, consumers that track removals
//! ([`Consumer::removal_marker_dir`]: the index) remove them too; the views keep their
//! aggregates (`docs/retention.md`).
//!
//! Crash protocol: before the log drops records, an intent marker `PENDING_DELETES` is written
//! and synced in each such consumer's directory (`<store>/index/PENDING_DELETES`); it is
//! removed once that consumer has removed the records. A crash (or a busy consumer) in between
//! leaves the marker, and the next removal or compaction finishes the job ([`repair`]) from the
//! block indexes alone.

use std::path::PathBuf;

use super::CompactError;
use super::consumer::Consumer;
use crate::log::read::TimeRange;
use crate::log::retention::{Pins, Policy, Removal, RetentionReport};
use crate::log::{Store, StoreLock};
use crate::segments::Offset;

/// The intent marker's file name, in a consumer's [`Consumer::removal_marker_dir`].
pub const PENDING_DELETES: &str = "PENDING_DELETES";

/// What a removal did to the log and the consumers.
#[derive(Debug, Clone, Default)]
pub struct RemovalOutcome {
    /// The log's report (records, sessions, segments, bytes).
    pub report: RetentionReport,
    /// Entries the consumers removed (index documents of records removed now, or by an
    /// earlier interrupted removal, or of a forgotten session; views rows of a forgotten
    /// session are not counted).
    pub consumer_entries_removed: u64,
}

/// The smallest checkpoint of `consumers`; `next` when none is built.
///
/// # Errors
/// [`CompactError::Consumer`] when a checkpoint cannot be read: retention then does nothing.
pub(crate) fn consumers_bound(
    store: &Store,
    consumers: &[&dyn Consumer],
    next: Offset,
) -> Result<Offset, CompactError> {
    let mut bound = next;
    for consumer in consumers {
        let checkpoint = consumer
            .checkpoint(store)
            .map_err(|source| CompactError::Consumer {
                consumer: consumer.name(),
                what: "reading the checkpoint of",
                source,
            })?;
        if let Some(checkpoint) = checkpoint {
            bound = bound.min(checkpoint);
        }
    }
    Ok(bound)
}

/// Applies (or with `dry_run` plans) `removal` under `lock` for records below `bound`, then
/// removes the dropped records from the consumers that track removals, following the crash
/// protocol above.
///
/// # Errors
/// [`CompactError::Retention`] when the log fails (nothing changed, or the change is
/// complete: retention commits through the MANIFEST); [`CompactError::ConsumerRemoval`] when
/// the log changed but a consumer could not follow (its marker stays; the next run retries);
/// [`CompactError::Io`] for a marker itself.
pub fn apply_removal(
    lock: &mut StoreLock<'_>,
    consumers: &[&dyn Consumer],
    removal: &Removal<'_>,
    bound: Offset,
    dry_run: bool,
) -> Result<RemovalOutcome, CompactError> {
    let store = lock.store();
    let mut removed = repair(store, consumers)?;
    let marked = if dry_run {
        Vec::new()
    } else {
        mark(store, consumers)?
    };
    let report = lock
        .apply_retention(removal, bound, dry_run)
        .map_err(CompactError::Retention)?;
    if report.applied {
        let offsets = report.removed_offsets();
        for (consumer, _) in &marked {
            removed += remove_from(store, *consumer, &offsets)?;
        }
    }
    for (_, marker) in &marked {
        clear(marker)?;
    }
    Ok(RemovalOutcome {
        report,
        consumer_entries_removed: removed,
    })
}

/// Applies the retention policy `policy` as of `now_ns` (ns since the Unix epoch): takes the
/// store lock (waiting), loads the pins, bounds the removal by the consumers' checkpoints.
///
/// # Errors
/// As [`apply_removal`], plus [`CompactError::Lock`] and pins that cannot be read.
pub fn apply_policy(
    store: &Store,
    consumers: &[&dyn Consumer],
    policy: &Policy,
    now_ns: u64,
    dry_run: bool,
) -> Result<RemovalOutcome, CompactError> {
    let mut lock = store.lock().map_err(CompactError::Lock)?;
    let pins = Pins::load(store.paths()).map_err(CompactError::Retention)?;
    let bound = consumers_bound(store, consumers, lock.manifest().next_offset)?;
    let removal = Removal::Policy {
        policy,
        now_ns,
        pins: &pins,
    };
    apply_removal(&mut lock, consumers, &removal, bound, dry_run)
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
/// deleted), whatever the consumers' checkpoints, then from every consumer; with `dry_run`,
/// only plans. A pinned session is refused ([`Forgotten::Pinned`]).
///
/// # Errors
/// As [`apply_removal`]; [`CompactError::Consumer`] when the log forgot the session but a
/// consumer did not (running `forget` again finishes it).
pub fn forget_session(
    store: &Store,
    consumers: &[&dyn Consumer],
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
    let removal = Removal::Session(session);
    let mut outcome = apply_removal(&mut lock, consumers, &removal, bound, dry_run)?;
    drop(lock);
    if !dry_run {
        for consumer in consumers {
            let removed = consumer.forget_session(store, session).map_err(|source| {
                CompactError::Consumer {
                    consumer: consumer.name(),
                    what: "the log forgot the session, but not",
                    source,
                }
            })?;
            if consumer.removal_marker_dir(store).is_some() {
                outcome.consumer_entries_removed += removed;
            }
        }
    }
    Ok(Forgotten::Removed(outcome))
}

/// Removes exactly the records at `offsets` from the log (segments rewritten sparse, offsets
/// of the others unchanged) and from the consumers that track removals; the views keep what
/// they folded (`compact --rebuild` folds them again). For a record that does not decode, or
/// one that must go.
///
/// # Errors
/// As [`apply_removal`].
pub fn forget_offsets(
    store: &Store,
    consumers: &[&dyn Consumer],
    offsets: &[Offset],
    dry_run: bool,
) -> Result<RemovalOutcome, CompactError> {
    let mut lock = store.lock().map_err(CompactError::Lock)?;
    let bound = lock.manifest().next_offset;
    let removal = Removal::Offsets(offsets);
    apply_removal(&mut lock, consumers, &removal, bound, dry_run)
}

/// The consumers that track removals and are maintained, with their marker paths.
fn trackers<'c>(store: &Store, consumers: &[&'c dyn Consumer]) -> Vec<(&'c dyn Consumer, PathBuf)> {
    consumers
        .iter()
        .filter(|consumer| consumer.maintained(store))
        .filter_map(|consumer| {
            let dir = consumer.removal_marker_dir(store)?;
            Some((*consumer, dir.join(PENDING_DELETES)))
        })
        .collect()
}

/// Writes and syncs the intent marker of every tracking consumer; returns them.
fn mark<'c>(
    store: &Store,
    consumers: &[&'c dyn Consumer],
) -> Result<Vec<(&'c dyn Consumer, PathBuf)>, CompactError> {
    let marked = trackers(store, consumers);
    for (_, path) in &marked {
        let io = |source| CompactError::Io {
            path: path.clone(),
            source,
        };
        let file = std::fs::File::create(path).map_err(io)?;
        crate::fault::point("removal-mark")
            .and_then(|()| file.sync_all())
            .map_err(io)?;
        if let Some(dir) = path.parent() {
            crate::log::manifest::sync_dir(dir).map_err(CompactError::Retention)?;
        }
    }
    Ok(marked)
}

/// Removes one intent marker (absent is fine).
fn clear(path: &std::path::Path) -> Result<(), CompactError> {
    match crate::fault::point("removal-clear").and_then(|()| std::fs::remove_file(path)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CompactError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn remove_from(
    store: &Store,
    consumer: &dyn Consumer,
    offsets: &[Offset],
) -> Result<u64, CompactError> {
    consumer
        .remove_offsets(store, offsets)
        .map_err(|source| CompactError::ConsumerRemoval {
            consumer: consumer.name(),
            source,
        })
}

/// Finishes interrupted removals: for each tracking consumer whose intent marker is present,
/// removes the entries of every offset below the log's next offset that no sealed block holds
/// any more (found from the block indexes alone; nothing is decompressed), then removes the
/// marker. Offsets still in the log are never touched, so this is right whenever the crash
/// came. Returns the entries removed.
///
/// # Errors
/// [`CompactError::Snapshot`] when the log cannot be read, [`CompactError::ConsumerRemoval`]
/// when a consumer cannot be changed, [`CompactError::Io`] for a marker.
pub fn repair(store: &Store, consumers: &[&dyn Consumer]) -> Result<u64, CompactError> {
    let pending: Vec<_> = trackers(store, consumers)
        .into_iter()
        .filter(|(_, marker)| marker.exists())
        .collect();
    if pending.is_empty() {
        return Ok(0);
    }
    let snapshot = store.snapshot().map_err(CompactError::Snapshot)?;
    let next = snapshot.manifest().next_offset;
    let present = snapshot
        .blocks(.., TimeRange::default())
        .iter()
        .map(|block| (block.first.0, block.end.0))
        .collect();
    let absent = absent_offsets(present, next);
    let mut removed = 0;
    for (consumer, marker) in pending {
        let now = if absent.is_empty() {
            0
        } else {
            remove_from(store, consumer, &absent)?
        };
        clear(&marker)?;
        if now > 0 {
            tracing::info!(
                consumer = consumer.name(),
                removed = now,
                "removed entries of records retention had removed"
            );
        }
        removed += now;
    }
    Ok(removed)
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
