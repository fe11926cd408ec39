//! `ctrace install --service` / `ctrace uninstall --service`: the systemd user unit that runs
//! `ctrace serve` (`$XDG_CONFIG_HOME/systemd/user/ctrace.service`, else
//! `~/.config/systemd/user/ctrace.service`).
//!
//! Invariants:
//! - a unit that exists with other content is replaced only with `--force`; the same content
//!   leaves the file untouched (install is idempotent);
//! - the unit is written atomically (temp file, sync, rename) with mode 0644, as systemd expects;
//! - uninstall removes the unit only when it is ctrace's (its first line is [`MARKER`]), so a
//!   hand-written `ctrace.service` is never deleted without `--force`;
//! - nothing here runs `systemctl`: the commands to run are printed.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::UsageError;

/// The first line of the unit ctrace writes; uninstall looks for it.
pub const MARKER: &str =
    "# Written by `ctrace install --service`; `ctrace uninstall --service` removes it.";

/// The unit's file name.
pub const UNIT: &str = "ctrace.service";

/// The unit file: `$XDG_CONFIG_HOME/systemd/user/ctrace.service`, else
/// `$HOME/.config/systemd/user/ctrace.service`.
fn unit_path() -> anyhow::Result<PathBuf> {
    let env = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    let config = match env("XDG_CONFIG_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(
            env("HOME")
                .context("cannot find the systemd user directory: set HOME or XDG_CONFIG_HOME")?,
        )
        .join(".config"),
    };
    Ok(config.join("systemd").join("user").join(UNIT))
}

/// `text` quoted for a systemd `ExecStart=` word or `Environment=` value when it needs it
/// (spaces, quotes, backslashes; `%` is doubled: systemd expands specifiers).
fn systemd_quote(text: &str) -> anyhow::Result<String> {
    if text.chars().any(char::is_control) {
        return Err(UsageError(format!("path {text:?} has control characters")).into());
    }
    let text = text.replace('%', "%%");
    if !text.contains([' ', '"', '\'', '\\', ';', '$']) {
        return Ok(text);
    }
    let escaped = text
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('$', "$$");
    Ok(format!("\"{escaped}\""))
}

/// The unit running `exe --store store serve`; `claude_config` (the `CLAUDE_CONFIG_DIR` at
/// install time) is passed on so the transcript watcher watches the same directory.
///
/// No `PrivateTmp=`: when the store cannot take a payload, `ctrace hook` (run by Claude Code,
/// outside the unit) spools it under `$TMPDIR/ctrace-spool-<euid>/`, and the service must see
/// that directory to drain it.
pub fn unit_text(exe: &Path, store: &Path, claude_config: Option<&Path>) -> anyhow::Result<String> {
    let word = |path: &Path| -> anyhow::Result<String> {
        let text = path
            .to_str()
            .with_context(|| format!("path is not UTF-8: {}", path.display()))?;
        systemd_quote(text)
    };
    let environment = match claude_config {
        Some(dir) => format!("Environment=CLAUDE_CONFIG_DIR={}\n", word(dir)?),
        None => String::new(),
    };
    Ok(format!(
        "{MARKER}
[Unit]
Description=ctrace: records Claude Code sessions (HTTP hook target, API, compactor, transcript watcher)

[Service]
Type=simple
ExecStart={exe} --store {store} serve
{environment}Restart=on-failure
RestartSec=2
UMask=0077
NoNewPrivileges=yes
LockPersonality=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
SystemCallArchitectures=native

[Install]
WantedBy=default.target
",
        exe = word(exe)?,
        store = word(store)?,
    ))
}

/// Runs `install --service` (or `uninstall --service` when `remove`) for the store `store`
/// (absolute). Prints what it did and, after an install, the `systemctl` commands to run.
///
/// # Errors
/// When the unit path cannot be found, a different unit exists (without `force`), or the
/// file cannot be written or removed.
pub fn run(store: &Path, remove: bool, force: bool, dry_run: bool) -> anyhow::Result<i32> {
    let path = unit_path()?;
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => {
            return Err(error).with_context(|| format!("reading {}", path.display()));
        }
    };
    let mut out = std::io::stdout().lock();
    if remove {
        return uninstall(&path, existing.as_deref(), force, dry_run, &mut out);
    }
    let exe = std::env::current_exe().context("finding the path of the running ctrace binary")?;
    let store = std::path::absolute(store)
        .with_context(|| format!("making the store path {} absolute", store.display()))?;
    let claude_config = std::env::var_os("CLAUDE_CONFIG_DIR")
        .filter(|v| !v.is_empty())
        .map(|dir| std::path::absolute(PathBuf::from(dir)))
        .transpose()
        .context("making CLAUDE_CONFIG_DIR absolute")?;
    let text = unit_text(&exe, &store, claude_config.as_deref())?;
    match existing.as_deref() {
        Some(old) if old == text => {
            writeln!(out, "{} is already installed (unchanged)", path.display())?;
        }
        Some(_) if !force => {
            return Err(UsageError(format!(
                "{} exists with other content; use --force to replace it",
                path.display()
            ))
            .into());
        }
        _ if dry_run => {
            writeln!(out, "would write {}:\n{text}", path.display())?;
            return Ok(0);
        }
        _ => {
            let dir = crate::fs::parent_dir(&path);
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let options = crate::fs::Replace {
                prefix: ".ctrace.service.",
                permissions: Some(std::fs::Permissions::from_mode(0o644)),
                dir_sync_best_effort: true,
                ..crate::fs::Replace::default()
            };
            crate::fs::write_atomic(&path, text.as_bytes(), &options)
                .with_context(|| format!("writing {}", path.display()))?;
            writeln!(out, "wrote {}", path.display())?;
        }
    }
    writeln!(
        out,
        "start it now and at login with:\n  systemctl --user daemon-reload && systemctl --user enable --now ctrace\n\
         (to keep it running after logout: loginctl enable-linger \"$USER\")"
    )?;
    Ok(0)
}

/// Removes ctrace's unit (any unit with `force`).
fn uninstall(
    path: &Path,
    existing: Option<&str>,
    force: bool,
    dry_run: bool,
    out: &mut impl Write,
) -> anyhow::Result<i32> {
    let Some(text) = existing else {
        writeln!(out, "no {} (unchanged)", path.display())?;
        return Ok(0);
    };
    if !force && text.lines().next() != Some(MARKER) {
        return Err(UsageError(format!(
            "{} was not written by ctrace; use --force to remove it",
            path.display()
        ))
        .into());
    }
    if dry_run {
        writeln!(out, "would remove {}", path.display())?;
        return Ok(0);
    }
    std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
    writeln!(
        out,
        "removed {}; stop it with: systemctl --user disable --now ctrace && systemctl --user daemon-reload",
        path.display()
    )?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_systemd() {
        assert_eq!(systemd_quote("/usr/bin/ctrace").unwrap(), "/usr/bin/ctrace");
        assert_eq!(systemd_quote("/a b/c").unwrap(), "\"/a b/c\"");
        assert_eq!(systemd_quote("/50%/x").unwrap(), "/50%%/x");
        assert_eq!(systemd_quote("/a\"b c").unwrap(), "\"/a\\\"b c\"");
        assert!(systemd_quote("/a\nb").is_err());
    }
}
