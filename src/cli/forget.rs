//! `ctrace forget`: remove one session from log, views and index; or, with `--offset`, single
//! records from the log and the index.
//!
//! The inbox is sealed first, then every segment holding a record of the session is rewritten
//! without it (or deleted when nothing else is left), whatever the consumers' checkpoints:
//! the views and the index forget the session themselves. A pinned session is refused.

use anyhow::Context;
use clap::Args;

use super::gc::{GcSummary, apply, print_report};
use crate::log::Store;
use crate::log::retention::{Pins, Removal};

/// Arguments of `ctrace forget`.
#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Session id
    #[arg(required_unless_present = "offset", conflicts_with = "offset")]
    pub session: Option<String>,
    /// Remove the record at this log offset instead (repeatable): for a record that does not
    /// decode, or one that must go; the views keep what they folded (`compact --rebuild`
    /// refolds them)
    #[arg(long, value_name = "N")]
    pub offset: Vec<u64>,
    /// Show what would be removed without removing anything
    #[arg(long)]
    pub dry_run: bool,
    /// Print as JSON
    #[arg(long)]
    pub json: bool,
}

/// Runs `ctrace forget`; returns the exit code: 0 when records were removed (or would be), 1
/// when the log holds no record of the session, 2 when it is pinned.
///
/// # Errors
/// When the store, the views or the index cannot be changed.
pub fn run(store: &Store, args: &ForgetArgs) -> anyhow::Result<i32> {
    super::refresh(store)?;
    let Some(session) = args.session.as_deref() else {
        return forget_offsets(store, args);
    };
    let mut lock = store.lock().context("taking the store lock")?;
    if Pins::load(store.paths())?.contains(session) {
        eprintln!("ctrace forget: session {session} is pinned; `ctrace unpin {session}` first");
        return Ok(2);
    }
    let bound = lock.manifest().next_offset;
    let (report, index_deleted) =
        apply(&mut lock, &Removal::Session(session), bound, args.dry_run)?;
    let mut index_forgotten = 0;
    if !args.dry_run {
        crate::views::forget_session(store.paths(), session)
            .context("the log forgot the session, but the views did not")?;
        index_forgotten = crate::index::forget_session(store.paths(), session)
            .context("the log forgot the session, but the index did not")?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        super::output::json_line(
            &mut out,
            &GcSummary::new(&report, index_deleted + index_forgotten),
        )?;
    } else {
        print_report(&mut out, &report, args.dry_run)?;
    }
    Ok(if report.records == 0 { 1 } else { 0 })
}

/// `forget --offset N...`: removes exactly those records from the log (segments rewritten
/// sparse, offsets of the others unchanged) and from the index. Exit 1 when none was found.
fn forget_offsets(store: &Store, args: &ForgetArgs) -> anyhow::Result<i32> {
    let offsets: Vec<crate::segments::Offset> = args
        .offset
        .iter()
        .copied()
        .map(crate::segments::Offset)
        .collect();
    let mut lock = store.lock().context("taking the store lock")?;
    let bound = lock.manifest().next_offset;
    let (report, index_deleted) =
        apply(&mut lock, &Removal::Offsets(&offsets), bound, args.dry_run)?;
    drop(lock);
    let mut index_forgotten = 0;
    if !args.dry_run && report.records > 0 && crate::index::exists(store.paths()) {
        index_forgotten = crate::index::delete_offsets(store.paths(), &offsets)
            .context("the log forgot the records, but the index did not")?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        super::output::json_line(
            &mut out,
            &GcSummary::new(&report, index_deleted + index_forgotten),
        )?;
    } else {
        print_report(&mut out, &report, args.dry_run)?;
    }
    Ok(if report.records == 0 { 1 } else { 0 })
}
