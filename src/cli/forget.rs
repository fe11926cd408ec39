//! `ctrace forget`: remove one session from log, views and index.

use clap::Args;

use crate::log::Store;

/// Arguments of `ctrace forget`.
#[derive(Debug, Args)]
pub struct ForgetArgs {}

/// Runs `ctrace forget`; returns the exit code.
///
/// # Errors
/// Not built yet.
pub fn run(store: &Store, args: &ForgetArgs) -> anyhow::Result<i32> {
    let _ = (store, args);
    anyhow::bail!("`ctrace forget` is not built yet")
}
