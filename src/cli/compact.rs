//! `ctrace compact`: run the compactor once — seal the inbox (tailing transcripts that hooks
//! named), fold new records into the views, bring the full-text index up to date when it exists,
//! and apply the retention policy when one is configured.

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
        let index = crate::index::catch_up(store, None).context("updating the index")?;
        println!(
            "index: {} records indexed in {:.2?}; checkpoint {}",
            index.indexed, index.elapsed, index.applied
        );
    }
    super::gc::auto(store).context("applying retention")?;
    Ok(0)
}
