//! `ctrace compact`: run the compactor once — seal the inbox (tailing transcripts that hooks
//! named), fold new records into the views, bring the full-text index up to date when it exists,
//! apply the retention policy when one is configured, and recompress sealed segments at
//! `storage.compaction_zstd_level`.

use anyhow::Context;
use clap::Args;

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
/// When sealing, the views, the index or retention fail.
pub fn run(store: &Store, args: &CompactArgs) -> anyhow::Result<i32> {
    super::refresh(store)?;
    let views = if args.rebuild {
        crate::views::rebuild(store)
    } else {
        crate::views::catch_up(store)
    }
    .context("updating the views")?;
    println!(
        "views: {} records applied in {:.2?}; checkpoint {}",
        views.applied_records, views.elapsed, views.applied
    );
    if crate::index::exists(store.paths()) {
        let on_wait =
            || eprintln!("ctrace: waiting for another process to finish updating the index…");
        let index = crate::index::catch_up_with(
            store,
            &crate::index::CatchUpOptions {
                wait_for_writer: Some(crate::index::WRITER_WAIT),
                on_wait: Some(&on_wait),
                ..crate::index::CatchUpOptions::default()
            },
        )
        .context("updating the index")?;
        println!(
            "index: {} records indexed in {:.2?}; checkpoint {}",
            index.indexed, index.elapsed, index.applied
        );
    }
    super::gc::auto(store).context("applying retention")?;
    let level = store.config().storage.compaction_zstd_level;
    if level > 0 {
        let started = std::time::Instant::now();
        let report = store
            .lock()
            .and_then(|mut lock| lock.recompress(level, None))
            .context("recompressing sealed segments")?;
        if report.segments > 0 {
            println!(
                "recompress: {} segments ({} records) to zstd level {level}: {} -> {} bytes in {:.2?}",
                report.segments,
                report.records,
                report.bytes_before,
                report.bytes_after,
                started.elapsed()
            );
        }
    }
    Ok(0)
}
