//! `ctrace ingest PATH...`: bulk ingest of transcripts and hook payloads.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;

use crate::ingest::{IngestSummary, Ingester};
use crate::log::Store;

/// Arguments of `ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files or directories: a ~/.claude/projects tree, transcripts (.jsonl), hook payloads
    /// (.json object or array, .ndjson)
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Print the summary as JSON
    #[arg(long)]
    pub json: bool,
    /// No progress bar
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs `ingest`. Exits 1 when any file named or found was refused (an asciicast that does not
/// parse, a FIFO, socket or device, a file that vanished or cannot be read), after ingesting
/// everything else, like `tar` and `cp`; the summary says which.
///
/// # Errors
/// When a path cannot be read or the store fails.
pub fn run(store: &Store, args: &IngestArgs) -> anyhow::Result<i32> {
    for path in &args.paths {
        if !path.exists() {
            return Err(super::UsageError(format!(
                "{}: no such file or directory",
                path.display()
            ))
            .into());
        }
    }
    let bar = (!args.quiet && std::io::stderr().is_terminal())
        .then(|| progress_bar(total_bytes(&args.paths)));
    let mut lock = store.lock()?;
    let mut ingester = Ingester::new(&mut lock)?;
    if let Some(bar) = bar.clone() {
        ingester.on_progress(move |bytes| bar.inc(bytes));
    }
    ingester.ingest_paths(&args.paths)?;
    let (summary, _) = ingester.finish()?;
    drop(lock);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut out = std::io::stdout().lock();
    let rejected: Vec<_> = summary.skipped.iter().filter(|s| s.rejected).collect();
    let code = if rejected.is_empty() { 0 } else { 1 };
    for file in &rejected {
        eprintln!("ctrace: refused {}", file.reason);
    }
    if args.json {
        super::output::json_line(&mut out, &summary)?;
    } else {
        write_summary(&mut out, &summary, rejected.len())?;
    }
    Ok(code)
}

/// The bytes of every file under `paths`, for the progress bar only: nothing is opened here.
fn total_bytes(paths: &[PathBuf]) -> u64 {
    paths
        .iter()
        .map(|p| {
            walkdir::WalkDir::new(p)
                .into_iter()
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_file())
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum::<u64>()
        })
        .sum()
}

/// A progress bar over `total` bytes, on stderr.
fn progress_bar(total: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} ingesting [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar
}

/// The summary for a person; `rejected` files were listed on stderr already.
fn write_summary(
    out: &mut impl Write,
    summary: &IngestSummary,
    rejected: usize,
) -> std::io::Result<()> {
    let secs = summary.elapsed_ns as f64 / 1e9;
    writeln!(
        out,
        "ingested {} files ({} unchanged): {} records ({} transcript lines, {} hook payloads), {:.1} MB in {:.2}s ({:.1} MB/s)",
        summary.files,
        summary.unchanged_files,
        summary.records,
        summary.transcript_records,
        summary.hook_records,
        summary.bytes as f64 / 1e6,
        secs,
        if secs > 0.0 {
            summary.bytes as f64 / 1e6 / secs
        } else {
            0.0
        },
    )?;
    if summary.malformed_total() > 0 {
        let kinds: Vec<String> = summary
            .malformed
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        writeln!(
            out,
            "malformed (stored raw, flagged): {} ({})",
            summary.malformed_total(),
            kinds.join(", ")
        )?;
    }
    if summary.truncated > 0 {
        writeln!(
            out,
            "truncated: {} records above storage.max_record_bytes kept their first bytes, size and SHA-256",
            summary.truncated
        )?;
    }
    if summary.pending_tail_bytes > 0 {
        writeln!(
            out,
            "waiting: {} bytes of unterminated last lines (taken at the next ingest once complete)",
            summary.pending_tail_bytes
        )?;
    }
    for skipped in summary.skipped.iter().filter(|s| !s.rejected) {
        writeln!(
            out,
            "skipped {}: {}",
            skipped.path.display(),
            skipped.reason
        )?;
    }
    if rejected > 0 {
        writeln!(
            out,
            "refused {} of the files named or found (listed on stderr); the rest were ingested",
            rejected
        )?;
    }
    Ok(())
}
