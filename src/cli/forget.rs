//! `ctrace forget`: remove one session from log, views and index; or, with `--offset`, single
//! records from the log and the index.
//!
//! The inbox is sealed first, then every segment holding a record of the session is rewritten
//! without it (or deleted when nothing else is left), whatever the consumers' checkpoints:
//! the views and the index forget the session themselves. A pinned session is refused.

use clap::Args;

use super::gc::{GcSummary, print_report};
use crate::compactor::retention::Forgotten;
use crate::log::Store;
use crate::segments::Offset;

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
    let outcome = match args.session.as_deref() {
        Some(session) => match super::compactor(store).forget_session(session, args.dry_run)? {
            Forgotten::Pinned => {
                eprintln!(
                    "ctrace forget: session {session} is pinned; `ctrace unpin {session}` first"
                );
                return Ok(2);
            }
            Forgotten::Removed(outcome) => outcome,
        },
        None => {
            let offsets: Vec<Offset> = args.offset.iter().copied().map(Offset).collect();
            super::compactor(store).forget_offsets(&offsets, args.dry_run)?
        }
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        super::output::json_line(
            &mut out,
            &GcSummary::new(&outcome.report, outcome.consumer_entries_removed),
        )?;
    } else {
        print_report(&mut out, &outcome.report, args.dry_run)?;
    }
    Ok(if outcome.report.records == 0 { 1 } else { 0 })
}
