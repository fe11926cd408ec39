//! `ctrace config`: print the effective configuration as TOML.

use std::io::Write;

use crate::config::Config;

/// Runs `config`.
///
/// # Errors
/// I/O errors writing stdout.
pub fn run(config: &Config) -> anyhow::Result<i32> {
    let text = config.to_toml()?;
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(0)
}
