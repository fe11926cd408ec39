//! `ctrace import`: add the records of an export archive to this store.

use clap::Args;

use crate::log::Store;

/// Arguments of `ctrace import`.
#[derive(Debug, Args)]
pub struct ImportArgs {}

/// Runs `ctrace import`; returns the exit code.
///
/// # Errors
/// Not built yet.
pub fn run(store: &Store, args: &ImportArgs) -> anyhow::Result<i32> {
    let _ = (store, args);
    anyhow::bail!("`ctrace import` is not built yet")
}
