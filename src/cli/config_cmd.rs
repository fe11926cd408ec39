//! `ctrace config`: print the effective configuration as TOML.

use std::io::Write;

use crate::config::Config;

/// Runs `config`. The values of `forward.headers` (credentials, as a rule) are replaced by
/// `<hidden: N bytes>`, so the output can be pasted into a bug report; everything else is
/// printed as it is in force.
///
/// # Errors
/// I/O errors writing stdout.
pub fn run(config: &Config) -> anyhow::Result<i32> {
    let mut shown = config.clone();
    for value in shown.forward.headers.values_mut() {
        *value = format!("<hidden: {} bytes>", value.len());
    }
    let mut text = shown.to_toml()?;
    if !shown.forward.headers.is_empty() {
        text.insert_str(
            0,
            "# forward.headers values are hidden; they are in the configuration file\n",
        );
    }
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(0)
}
