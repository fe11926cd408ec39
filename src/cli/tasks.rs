//! `ctrace tasks`: to-dos and Beads issues with status, time and cost.

use clap::Args;

use crate::log::Store;

/// Arguments of `ctrace tasks`.
#[derive(Debug, Args)]
pub struct TasksArgs {}

/// Runs `ctrace tasks`; returns the exit code.
///
/// # Errors
/// Not built yet.
pub fn run(store: &Store, args: &TasksArgs) -> anyhow::Result<i32> {
    let _ = (store, args);
    anyhow::bail!("`ctrace tasks` is not built yet")
}
