//! `ctrace pin` and `ctrace unpin`: keep a session whatever the retention policy.

use clap::Args;

use crate::log::Store;

/// Arguments of `ctrace pin`.
#[derive(Debug, Args)]
pub struct PinArgs {}

/// Runs `ctrace pin`; returns the exit code.
///
/// # Errors
/// Not built yet.
pub fn run(store: &Store, args: &PinArgs, unpin: bool) -> anyhow::Result<i32> {
    let _ = (store, args, unpin);
    anyhow::bail!("`ctrace pin` is not built yet")
}
