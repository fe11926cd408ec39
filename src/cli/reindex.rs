//! `ctrace reindex`: rebuild the full-text index from the log.

use clap::Args;

use crate::log::Store;

/// Arguments of `ctrace reindex`.
#[derive(Debug, Args)]
pub struct ReindexArgs {}

/// Runs `ctrace reindex`; returns the exit code.
///
/// # Errors
/// Not built yet.
pub fn run(store: &Store, args: &ReindexArgs) -> anyhow::Result<i32> {
    let _ = (store, args);
    anyhow::bail!("`ctrace reindex` is not built yet")
}
