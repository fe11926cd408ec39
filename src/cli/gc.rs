//! `ctrace gc`: apply the retention policy (or show what it would remove).
//!
//! Retention never touches a segment before every consumer has passed it: the bound is the
//! smallest checkpoint of the views and the index (a consumer that does not exist does not
//! hold retention back). After the log changes, index documents of removed records are
//! deleted; the views keep their aggregates (see `docs/retention.md`).

use std::io::Write;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use crate::log::retention::{Pins, Policy, Removal, RetentionReport};
use crate::log::{Store, StoreLock};
use crate::segments::Offset;

/// Arguments of `ctrace gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Show what would be removed (sessions, segments, bytes) without removing anything
    #[arg(long)]
    pub dry_run: bool,
    /// Evaluate the policy as of this time instead of now (RFC 3339 timestamp or date)
    #[arg(long, value_name = "TIME")]
    pub now: Option<String>,
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
}

/// The JSON form of a retention run.
#[derive(Debug, Serialize)]
pub struct GcSummary {
    /// Whether the changes were applied (false for `--dry-run` or when nothing goes).
    pub applied: bool,
    /// Records removed.
    pub records: u64,
    /// Records removed by session (`""`: records without a session).
    pub sessions: std::collections::BTreeMap<String, u64>,
    /// Segment files deleted whole.
    pub segments_deleted: Vec<String>,
    /// Segment files rewritten without some records.
    pub segments_rewritten: Vec<String>,
    /// Segment bytes on disk before.
    pub bytes_before: u64,
    /// Segment bytes on disk after (estimated for a dry run).
    pub bytes_after: u64,
    /// Bytes freed.
    pub freed_bytes: u64,
    /// The consumers' checkpoint: only records below it were considered.
    pub bound: u64,
    /// Segments not considered yet because a consumer has not passed them.
    pub held_back_segments: u64,
    /// Index documents deleted.
    pub index_documents_deleted: u64,
}

impl GcSummary {
    /// The summary of `report`.
    pub fn new(report: &RetentionReport, index_documents_deleted: u64) -> Self {
        let files = |delete: bool| {
            report
                .changes
                .iter()
                .filter(|c| c.delete == delete)
                .map(|c| c.segment.file.clone())
                .collect()
        };
        Self {
            applied: report.applied,
            records: report.records,
            sessions: report.sessions.clone(),
            segments_deleted: files(true),
            segments_rewritten: files(false),
            bytes_before: report.bytes_before,
            bytes_after: report.bytes_after,
            freed_bytes: report.freed_bytes(),
            bound: report.bound.0,
            held_back_segments: report.held_back_segments,
            index_documents_deleted,
        }
    }
}

/// The smallest checkpoint of the consumers (views, index); `next` when none exists.
///
/// # Errors
/// When a consumer's checkpoint cannot be read: retention then does nothing.
pub fn consumers_bound(store: &Store, next: Offset) -> anyhow::Result<Offset> {
    let views =
        crate::views::applied_offset(store.paths()).context("reading the views checkpoint")?;
    let index =
        crate::index::applied_offset(store.paths()).context("reading the index checkpoint")?;
    Ok([views, index].into_iter().flatten().fold(next, Offset::min))
}

/// Applies (or with `dry_run` plans) `removal` under `lock`, then deletes the index documents
/// of removed records. Returns the report and the number of index documents deleted.
///
/// # Errors
/// When the log, or the index after the log changed, fails.
pub fn apply(
    lock: &mut StoreLock<'_>,
    removal: &Removal<'_>,
    bound: Offset,
    dry_run: bool,
) -> anyhow::Result<(RetentionReport, u64)> {
    let mut deleted = repair_index(lock.store())?;
    let marked = !dry_run && mark_index_deletes(lock.store())?;
    let report = lock
        .apply_retention(removal, bound, dry_run)
        .context("applying retention to the log")?;
    if report.applied {
        let offsets = report.removed_offsets();
        deleted += crate::index::delete_offsets(lock.store().paths(), &offsets).context(
            "the log changed, but deleting index documents of removed records failed; \
             the next gc, forget or compact retries (or `ctrace reindex` rebuilds the index)",
        )?;
    }
    if marked {
        clear_index_deletes(lock.store())?;
    }
    Ok((report, deleted))
}

/// The intent marker written before the log drops records while an index exists, and removed
/// once the index documents of those records are deleted. If a crash (or a busy index) comes in
/// between, the next [`repair_index`] finds it.
fn pending_deletes_path(store: &Store) -> std::path::PathBuf {
    store.paths().root.join("index").join("PENDING_DELETES")
}

/// Writes the intent marker when an index exists; returns whether it did.
///
/// # Errors
/// When the marker cannot be written and synced (retention then does not start).
pub fn mark_index_deletes(store: &Store) -> anyhow::Result<bool> {
    if !crate::index::exists(store.paths()) {
        return Ok(false);
    }
    let path = pending_deletes_path(store);
    let file =
        std::fs::File::create(&path).with_context(|| format!("writing {}", path.display()))?;
    crate::fault::point("index-deletes-mark")
        .and_then(|()| file.sync_all())
        .with_context(|| format!("syncing {}", path.display()))?;
    crate::log::manifest::sync_dir(&store.paths().root.join("index"))?;
    Ok(true)
}

/// Removes the intent marker.
///
/// # Errors
/// When it exists and cannot be removed.
pub fn clear_index_deletes(store: &Store) -> anyhow::Result<()> {
    let path = pending_deletes_path(store);
    match crate::fault::point("index-deletes-clear").and_then(|()| std::fs::remove_file(&path)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("removing {}", path.display()))),
    }
}

/// Finishes an interrupted removal: when the intent marker is present, deletes the index
/// documents of every offset below the log's next offset that no sealed block holds any more
/// (found from the block indexes alone; nothing is decompressed), then removes the marker.
/// Offsets still in the log are never touched, so this is right whenever the crash came.
/// Returns the documents deleted.
///
/// # Errors
/// When the log or the index cannot be read or changed.
pub fn repair_index(store: &Store) -> anyhow::Result<u64> {
    if !pending_deletes_path(store).exists() {
        return Ok(0);
    }
    let snapshot = store.snapshot().context("reading the log")?;
    let next = snapshot.manifest().next_offset;
    let mut present: Vec<(u64, u64)> = snapshot
        .segments()
        .iter()
        .flat_map(|segment| {
            segment.blocks().iter().map(|block| {
                let start = block.first_offset.0;
                (start, start + u64::from(block.count))
            })
        })
        .collect();
    present.sort_unstable();
    let mut absent = Vec::new();
    let mut at = 0;
    for (start, end) in present.into_iter().chain([(next.0, next.0)]) {
        absent.extend((at..start.min(next.0)).map(Offset));
        at = at.max(end);
    }
    let deleted = if absent.is_empty() {
        0
    } else {
        crate::index::delete_offsets(store.paths(), &absent)
            .context("deleting index documents of removed records")?
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

fn run_policy(
    store: &Store,
    policy: &Policy,
    now_ns: u64,
    dry_run: bool,
) -> anyhow::Result<(RetentionReport, u64)> {
    super::refresh(store)?;
    let mut lock = store.lock().context("taking the store lock")?;
    let pins = Pins::load(store.paths())?;
    let bound = consumers_bound(store, lock.manifest().next_offset)?;
    let removal = Removal::Policy {
        policy,
        now_ns,
        pins: &pins,
    };
    apply(&mut lock, &removal, bound, dry_run)
}

/// Runs `ctrace gc`; returns the exit code (0, also when nothing goes).
///
/// # Errors
/// When the store cannot be read or changed, or `--now` is not a time.
pub fn run(store: &Store, args: &GcArgs) -> anyhow::Result<i32> {
    let now_ns = match &args.now {
        Some(text) => super::time::parse_time(text, crate::now_ns(), "--now")?,
        None => crate::now_ns(),
    };
    let policy = Policy::from_config(&store.config().retention);
    let mut out = std::io::stdout().lock();
    if policy.is_empty() {
        if args.json {
            let empty = RetentionReport::default();
            super::output::json_line(&mut out, &GcSummary::new(&empty, 0))?;
        } else {
            writeln!(
                out,
                "no retention policy is configured ([retention] in config.toml): everything is kept"
            )?;
        }
        return Ok(0);
    }
    let (report, index_deleted) = run_policy(store, &policy, now_ns, args.dry_run)?;
    if args.json {
        super::output::json_line(&mut out, &GcSummary::new(&report, index_deleted))?;
        return Ok(0);
    }
    print_report(&mut out, &report, args.dry_run)?;
    Ok(0)
}

/// Prints a human-readable report.
///
/// # Errors
/// When stdout fails.
pub fn print_report(
    out: &mut impl Write,
    report: &RetentionReport,
    dry_run: bool,
) -> std::io::Result<()> {
    let verb = if dry_run { "would remove" } else { "removed" };
    if report.changes.is_empty() {
        writeln!(out, "nothing to remove")?;
    } else {
        writeln!(
            out,
            "{verb} {} records of {} sessions: {} segments deleted, {} rewritten; {} -> {} bytes on disk ({} freed{})",
            report.records,
            report.sessions.len(),
            report.deleted_segments(),
            report.rewritten_segments(),
            report.bytes_before,
            report.bytes_after,
            report.freed_bytes(),
            if dry_run && report.rewritten_segments() > 0 {
                ", estimated"
            } else {
                ""
            }
        )?;
        for (session, records) in &report.sessions {
            let name = if session.is_empty() {
                "(no session)"
            } else {
                session
            };
            writeln!(out, "  session {name}: {records} records")?;
        }
        for change in &report.changes {
            writeln!(
                out,
                "  segment {}: {} ({} of {} records)",
                change.segment.file,
                if change.delete { "delete" } else { "rewrite" },
                change.removed.len(),
                change.segment.record_count
            )?;
        }
    }
    if report.held_back_segments > 0 {
        writeln!(
            out,
            "{} newer segments wait until the views and index pass offset {}",
            report.held_back_segments, report.bound
        )?;
    }
    Ok(())
}

/// Applies the retention policy as part of `ctrace compact`, when one is configured; prints
/// one line.
///
/// # Errors
/// When retention fails.
pub fn auto(store: &Store) -> anyhow::Result<()> {
    repair_index(store)?;
    let policy = Policy::from_config(&store.config().retention);
    if policy.is_empty() {
        return Ok(());
    }
    let (report, _) = run_policy(store, &policy, crate::now_ns(), false)?;
    println!(
        "retention: {} records removed ({} segments deleted, {} rewritten, {} bytes freed)",
        report.records,
        report.deleted_segments(),
        report.rewritten_segments(),
        report.freed_bytes()
    );
    Ok(())
}
