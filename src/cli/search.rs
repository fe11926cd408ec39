//! `ctrace search`: full-text search over every record (tantivy).

use clap::Args;

use crate::log::Store;

/// Arguments of `ctrace search`.
#[derive(Debug, Args)]
pub struct SearchArgs {}

/// Runs `ctrace search`; returns the exit code.
///
/// # Errors
/// Not built yet.
pub fn run(store: &Store, args: &SearchArgs) -> anyhow::Result<i32> {
    let _ = (store, args);
    anyhow::bail!("`ctrace search` is not built yet")
}
