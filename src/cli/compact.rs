//! `ctrace compact`: run the compactor once ([`crate::compactor::Compactor::run_once`]) and
//! print one line per stage.

use clap::Args;

use crate::compactor::{CompactOptions, CompactReport};
use crate::log::Store;

/// Arguments of `ctrace compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    /// Drop the views and rebuild them from the whole log
    #[arg(long)]
    pub rebuild: bool,
}

/// Runs `ctrace compact`; prints one line per stage.
///
/// # Errors
/// When sealing, the views, the index, retention or recompression fail.
pub fn run(store: &Store, args: &CompactArgs) -> anyhow::Result<i32> {
    let on_wait = || eprintln!("ctrace: waiting for another process to finish updating the index…");
    let options = CompactOptions {
        rebuild: if args.rebuild { &["views"] } else { &[] },
        on_wait: Some(&on_wait),
        ..CompactOptions::default()
    };
    let report = super::compactor(store).run_once(&options)?;
    print(&report);
    Ok(0)
}

fn print(report: &CompactReport) {
    for (name, pass) in &report.consumers {
        let verb = if *name == "index" {
            "indexed"
        } else {
            "applied"
        };
        println!(
            "{name}: {} records {verb} in {:.2?}; checkpoint {}",
            pass.applied_records, pass.elapsed, pass.checkpoint
        );
    }
    if let Some(retention) = &report.retention {
        let log = &retention.report;
        println!(
            "retention: {} records removed ({} segments deleted, {} rewritten, {} bytes freed)",
            log.records,
            log.deleted_segments(),
            log.rewritten_segments(),
            log.freed_bytes()
        );
    }
    if let Some(recompress) = report.recompress.as_ref().filter(|r| r.segments > 0) {
        println!(
            "recompress: {} segments ({} records) to zstd level {}: {} -> {} bytes in {:.2?}",
            recompress.segments,
            recompress.records,
            recompress.level,
            recompress.bytes_before,
            recompress.bytes_after,
            report.recompress_elapsed
        );
    }
}
