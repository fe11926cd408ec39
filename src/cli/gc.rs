//! `ctrace gc`: apply the retention policy (or show what it would remove).

use clap::Args;

use crate::log::Store;

/// Arguments of `ctrace gc`.
#[derive(Debug, Args)]
pub struct GcArgs {}

/// Runs `ctrace gc`; returns the exit code.
///
/// # Errors
/// Not built yet.
pub fn run(store: &Store, args: &GcArgs) -> anyhow::Result<i32> {
    let _ = (store, args);
    anyhow::bail!("`ctrace gc` is not built yet")
}

/// Applies the retention policy as part of `ctrace compact`, when one is configured.
///
/// # Errors
/// When retention fails.
pub fn auto(store: &Store) -> anyhow::Result<()> {
    let _ = store;
    Ok(())
}
