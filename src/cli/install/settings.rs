//! The settings file: reading and parsing it, rendering it, the `--dry-run` diff, and the
//! atomic write with a backup of the previous content.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::{Map, Value};

/// What is wrong with a settings file. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The file is not JSON.
    #[error("invalid JSON in {} at line {line}, column {column}", path.display())]
    InvalidJson {
        /// The settings file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A value that must be a JSON object is not (`pointer` is a JSON Pointer; "" is the root).
    #[error("{}: expected an object at {}, found {found}", path.display(), place(pointer))]
    NotAnObject {
        /// The settings file.
        path: PathBuf,
        /// Where, as a JSON Pointer.
        pointer: String,
        /// The JSON type found there.
        found: &'static str,
    },
    /// A value that must be a JSON array is not.
    #[error("{}: expected an array at {}, found {found}", path.display(), place(pointer))]
    NotAnArray {
        /// The settings file.
        path: PathBuf,
        /// Where, as a JSON Pointer.
        pointer: String,
        /// The JSON type found there.
        found: &'static str,
    },
    /// A variable of `env` that install would set holds a value that ctrace did not write
    /// (`install --force` overwrites it). Values of a headers list are shown as `key=…`.
    #[error(
        "{}: {} is {found}, set outside ctrace (ctrace would set {wanted}); change or remove \
         it, or use --force to overwrite it",
        path.display(),
        place(pointer)
    )]
    EnvConflict {
        /// The settings file.
        path: PathBuf,
        /// The variable, as a JSON Pointer (`/env/NAME`).
        pointer: String,
        /// Its value, as JSON.
        found: String,
        /// The value install would write, as JSON.
        wanted: String,
    },
    /// Reading or writing the file (or its backup) failed.
    #[error("i/o on {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// A JSON Pointer for a message: the root is "the top level".
fn place(pointer: &str) -> String {
    if pointer.is_empty() {
        "the top level".to_owned()
    } else {
        format!("{pointer:?}")
    }
}

/// The file's text, or `None` when it does not exist.
pub(super) fn read_settings(path: &Path) -> Result<Option<String>, SettingsError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SettingsError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Parses settings text; a missing or blank file is `{}`. A leading UTF-8 BOM is skipped.
pub(super) fn parse_settings(
    path: &Path,
    text: Option<&str>,
) -> Result<Map<String, Value>, SettingsError> {
    let text = text.unwrap_or("");
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    let value: Value = serde_json::from_str(text).map_err(|source| SettingsError::InvalidJson {
        path: path.to_owned(),
        line: source.line(),
        column: source.column(),
        source,
    })?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(SettingsError::NotAnObject {
            path: path.to_owned(),
            pointer: String::new(),
            found: type_name(&other),
        }),
    }
}

/// Pretty JSON (2-space indent, as Claude Code writes it) and a final newline.
pub(super) fn render(settings: &Map<String, Value>) -> anyhow::Result<String> {
    let mut text = serde_json::to_string_pretty(settings).context("serializing settings")?;
    text.push('\n');
    Ok(text)
}

/// Escapes a key for a JSON Pointer (RFC 6901).
pub(super) fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The JSON type of `value`, for error messages.
pub(super) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Prints the unified diff from `old` (the file as it is) to `new` (what would be written).
pub(super) fn print_diff(
    out: &mut impl Write,
    path: &Path,
    old: &str,
    new: &str,
    unchanged: bool,
) -> io::Result<()> {
    if unchanged {
        return writeln!(out, "no changes to {}", path.display());
    }
    let shown = path.display().to_string();
    let diff = similar::TextDiff::from_lines(old, new);
    write!(
        out,
        "{}",
        diff.unified_diff()
            .context_radius(3)
            .header(&shown, &format!("{shown} (new)"))
    )
}

/// Writes `new` to `path` atomically, after copying `old` (when the file exists) to a backup.
/// Returns the backup's path. With `private` (the old or new content holds a credential, such
/// as the service's token in `OTEL_EXPORTER_OTLP_HEADERS`), the file and the backup are made
/// readable by their owner only (0600) whatever the file's mode was.
pub(super) fn write_settings(
    path: &Path,
    old: Option<&str>,
    new: &str,
    private: bool,
) -> Result<Option<PathBuf>, SettingsError> {
    let io_error = |path: &Path| {
        let path = path.to_owned();
        move |source| SettingsError::Io { path, source }
    };
    // Write through a symlink (dotfiles managers link settings.json) rather than replace it.
    let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let target = if is_link {
        fs::canonicalize(path).map_err(io_error(path))?
    } else {
        path.to_owned()
    };
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(io_error(&dir))?;
    let permissions = if private {
        use std::os::unix::fs::PermissionsExt;
        Some(fs::Permissions::from_mode(0o600))
    } else {
        fs::metadata(&target).ok().map(|m| m.permissions())
    };

    let backup = match old {
        Some(old) => Some(write_backup(path, old, permissions.clone())?),
        None => None,
    };

    // The directory sync is best effort: the rename has happened, and some filesystems
    // refuse to sync a directory.
    let options = crate::fs::Replace {
        permissions,
        dir_sync_best_effort: true,
        ..crate::fs::Replace::default()
    };
    crate::fs::write_atomic(&target, new.as_bytes(), &options).map_err(io_error(&target))?;
    Ok(backup)
}

/// Saves `old` as `<path>.bak-<unix seconds>` (`-1`, `-2`, … appended if taken), with the
/// original file's permissions.
pub(super) fn write_backup(
    path: &Path,
    old: &str,
    permissions: Option<fs::Permissions>,
) -> Result<PathBuf, SettingsError> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = path
        .file_name()
        .map_or_else(|| "settings.json".into(), |n| n.to_string_lossy());
    for attempt in 0..1000_u32 {
        let candidate = match attempt {
            0 => format!("{name}.bak-{secs}"),
            n => format!("{name}.bak-{secs}-{n}"),
        };
        let backup = path.with_file_name(candidate);
        let mut file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&backup)
        {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => {
                return Err(SettingsError::Io {
                    path: backup,
                    source,
                });
            }
        };
        let written = file
            .write_all(old.as_bytes())
            .and_then(|()| permissions.map_or(Ok(()), |p| file.set_permissions(p)))
            .and_then(|()| file.sync_all());
        return match written {
            Ok(()) => Ok(backup),
            Err(source) => Err(SettingsError::Io {
                path: backup,
                source,
            }),
        };
    }
    Err(SettingsError::Io {
        path: path.with_file_name(format!("{name}.bak-{secs}")),
        source: io::ErrorKind::AlreadyExists.into(),
    })
}
