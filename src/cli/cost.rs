//! `ctrace cost`: tokens and USD by session, day, model, ... from the views.

use clap::Args;

use crate::log::Store;

/// Arguments of `ctrace cost`.
#[derive(Debug, Args)]
pub struct CostArgs {}

/// Runs `ctrace cost`; returns the exit code.
///
/// # Errors
/// Not built yet.
pub fn run(store: &Store, args: &CostArgs) -> anyhow::Result<i32> {
    let _ = (store, args);
    anyhow::bail!("`ctrace cost` is not built yet")
}
