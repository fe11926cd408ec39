//! `ctrace gc`: apply the retention policy (or show what it would remove) through the
//! compactor ([`crate::compactor::retention`], which bounds it by the consumers' checkpoints
//! and keeps the index in step; `docs/retention.md`).

use std::io::Write;

use clap::Args;
use serde::Serialize;

use crate::compactor::RemovalOutcome;
use crate::log::Store;
use crate::log::retention::{Policy, RetentionReport};

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
pub(crate) struct GcSummary {
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

fn run_policy(
    store: &Store,
    policy: &Policy,
    now_ns: u64,
    dry_run: bool,
) -> anyhow::Result<RemovalOutcome> {
    super::refresh(store)?;
    Ok(super::compactor(store).apply_policy(policy, now_ns, dry_run)?)
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
    let outcome = run_policy(store, &policy, now_ns, args.dry_run)?;
    if args.json {
        let summary = GcSummary::new(&outcome.report, outcome.consumer_entries_removed);
        super::output::json_line(&mut out, &summary)?;
        return Ok(0);
    }
    print_report(&mut out, &outcome.report, args.dry_run)?;
    Ok(0)
}

/// Prints a human-readable report.
///
/// # Errors
/// When stdout fails.
pub(crate) fn print_report(
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
