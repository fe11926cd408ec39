//! `ctrace reindex`: rebuild the full-text index from the log, with a progress bar; prints the
//! index size and the build time.

use std::io::IsTerminal;

use anyhow::Context;
use clap::Args;

use crate::index::{self, CatchUpOptions};
use crate::log::Store;

/// Arguments of `ctrace reindex`.
#[derive(Debug, Args)]
pub struct ReindexArgs {
    /// Commit (checkpoint) after this many records, besides every 256 MiB of payload
    #[arg(long, value_name = "N")]
    pub commit_every: Option<u64>,
    /// No progress bar
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `ctrace reindex`; returns the exit code.
///
/// # Errors
/// When the log cannot be read or the index cannot be written (another process writing it
/// included).
pub fn run(store: &Store, args: &ReindexArgs) -> anyhow::Result<i32> {
    super::refresh(store)?;
    let bar = (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} indexing [{bar:30}] {pos}/{len} records {per_sec} {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    let progress = |done: u64, total: u64| {
        if let Some(bar) = &bar {
            bar.set_length(total);
            bar.set_position(done);
        }
    };
    let report = index::rebuild(
        store,
        &CatchUpOptions {
            budget: None,
            commit_every_records: args.commit_every,
            progress: Some(&progress),
            wait_for_writer: Some(index::WRITER_WAIT),
            on_wait: Some(&|| {
                eprintln!("ctrace: waiting for another process to finish updating the index…");
            }),
        },
    )
    .context("rebuilding the index")?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let status = index::status(store.paths())
        .context("reading the index")?
        .unwrap_or_default();
    let secs = report.elapsed.as_secs_f64();
    let mib = report.raw_bytes as f64 / (1u64 << 20) as f64;
    println!(
        "indexed {} records ({:.1} MiB of payload) in {:.2}s ({:.1} MiB/s); index {:.1} MiB ({:.1}% of payload); checkpoint {}",
        report.indexed,
        mib,
        secs,
        if secs > 0.0 { mib / secs } else { 0.0 },
        status.size_bytes as f64 / (1u64 << 20) as f64,
        if report.raw_bytes > 0 {
            100.0 * status.size_bytes as f64 / report.raw_bytes as f64
        } else {
            0.0
        },
        report.applied
    );
    if report.unreadable > 0 {
        eprintln!(
            "ctrace: {} records could not be read (damaged blocks; see `ctrace verify`) and are not indexed",
            report.unreadable
        );
    }
    Ok(0)
}
