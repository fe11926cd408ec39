//! The passphrase of an encrypted export: from `CTRACE_PASSPHRASE` when it is set (scripts and
//! tests), else asked on the terminal without echo. Never a command-line argument, which every
//! user of the machine can read in `ps`; the environment variable is readable by the same user
//! (`/proc/PID/environ`), so the prompt is the safer choice (`docs/security.md`).

use std::io::IsTerminal;

use age::secrecy::{ExposeSecret, SecretString};

use super::UsageError;

/// The environment variable read for the passphrase.
pub const ENV: &str = "CTRACE_PASSPHRASE";

/// The passphrase from [`ENV`], else from a prompt on the terminal (asked twice when
/// `confirm`); `None` when [`ENV`] is not set and stdin is not a terminal.
///
/// # Errors
/// An empty passphrase, a [`ENV`] that is not UTF-8, two entries that differ, or a terminal
/// that cannot be read.
pub fn get(confirm: bool) -> anyhow::Result<Option<SecretString>> {
    if let Some(value) = std::env::var_os(ENV) {
        let Ok(value) = value.into_string() else {
            return Err(UsageError(format!("{ENV} is not valid UTF-8")).into());
        };
        if value.is_empty() {
            return Err(UsageError(format!("{ENV} is set but empty")).into());
        }
        return Ok(Some(SecretString::from(value)));
    }
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    let first = SecretString::from(rpassword::prompt_password("ctrace: passphrase: ")?);
    if first.expose_secret().is_empty() {
        return Err(UsageError("empty passphrase".into()).into());
    }
    if confirm {
        let again = SecretString::from(rpassword::prompt_password("ctrace: passphrase (again): ")?);
        if again.expose_secret() != first.expose_secret() {
            return Err(UsageError("the two passphrases differ".into()).into());
        }
    }
    Ok(Some(first))
}
