//! `ctrace tree`: one session as a tree of turns, tool calls and subagents.

use clap::Args;

use crate::log::Store;

/// Arguments of `ctrace tree`.
#[derive(Debug, Args)]
pub struct TreeArgs {}

/// Runs `ctrace tree`; returns the exit code.
///
/// # Errors
/// Not built yet.
pub fn run(store: &Store, args: &TreeArgs) -> anyhow::Result<i32> {
    let _ = (store, args);
    anyhow::bail!("`ctrace tree` is not built yet")
}
