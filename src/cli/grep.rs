//! `ctrace grep`: regex scan over the decompressed log.

use clap::Args;

use crate::log::Store;

/// Arguments of `ctrace grep`.
#[derive(Debug, Args)]
pub struct GrepArgs {}

/// Runs `ctrace grep`; returns the exit code.
///
/// # Errors
/// Not built yet.
pub fn run(store: &Store, args: &GrepArgs) -> anyhow::Result<i32> {
    let _ = (store, args);
    anyhow::bail!("`ctrace grep` is not built yet")
}
