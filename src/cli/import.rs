//! `ctrace import FILE`: add the records of an export archive to this store.
//!
//! The whole archive is read and every checksum checked first (`crate::ingest::archive::verify`);
//! a damaged, truncated or foreign file is refused naming the member, and the store is not
//! touched. Then the records are added under the store lock, skipping those already present, so
//! importing the same archive again adds nothing.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use crate::ingest::archive;
use crate::log::Store;

/// Arguments of `ctrace import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The archive (`ctrace export` default format, `.tar.zst`)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Only check the archive; do not import
    #[arg(long)]
    pub verify_only: bool,
    /// One JSON object with the counts on stdout
    #[arg(long)]
    pub json: bool,
    /// No progress bar
    #[arg(long, short)]
    pub quiet: bool,
}

fn bar(args: &ImportArgs, total: u64, what: &str) -> Option<indicatif::ProgressBar> {
    (!args.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(&format!(
                "{{spinner}} {what} [{{bar:30}}] {{bytes}}/{{total_bytes}} {{bytes_per_sec}} {{eta}}"
            ))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    })
}

fn reporter(bar: Option<indicatif::ProgressBar>) -> Box<dyn FnMut(u64)> {
    Box::new(move |read| {
        if let Some(bar) = &bar {
            bar.set_position(read);
        }
    })
}

/// Runs `ctrace import`; returns the exit code.
///
/// # Errors
/// When the archive is missing, not an archive, from a newer format, damaged or truncated (the
/// error names the member; nothing is imported), or the store cannot be written.
pub fn run(store: &Store, args: &ImportArgs) -> anyhow::Result<i32> {
    let total = std::fs::metadata(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?
        .len();
    let verifying = bar(args, total, "verifying");
    let manifest = archive::verify(&args.file, reporter(verifying.clone()))
        .with_context(|| format!("refusing {}", args.file.display()))?;
    if let Some(bar) = verifying {
        bar.finish_and_clear();
    }
    if args.verify_only {
        if args.json {
            super::output::json_line(&mut std::io::stdout().lock(), &manifest)?;
        } else {
            println!(
                "{}: ok, {} records of {} sessions, {} members, archive format {} (ctrace {})",
                args.file.display(),
                manifest.records,
                manifest.sessions,
                manifest.members.len(),
                manifest.format_version,
                manifest.ctrace_version
            );
        }
        return Ok(0);
    }
    let mut lock = store.lock()?;
    let importing = bar(args, total, "importing");
    let summary = archive::import(
        &mut lock,
        &args.file,
        &manifest,
        reporter(importing.clone()),
    )
    .with_context(|| format!("importing {}", args.file.display()))?;
    drop(lock);
    if let Some(bar) = importing {
        bar.finish_and_clear();
    }
    if args.json {
        super::output::json_line(&mut std::io::stdout().lock(), &summary)?;
    } else {
        println!(
            "imported {} records from {} ({} already present, {} in the archive){}",
            summary.added,
            args.file.display(),
            summary.already_present,
            summary.archive_records,
            match (summary.first_offset, summary.next_offset) {
                (Some(first), Some(next)) => format!(", offsets {first}..{next}"),
                _ => String::new(),
            }
        );
    }
    Ok(0)
}
