//! `ctrace hook`: one payload on stdin → the inbox. The hot path Claude Code runs for every
//! hook event.
//!
//! Contract (`DESIGN.md` §8): exits 0 and prints nothing, on stdout or stderr, whatever happens
//! (empty stdin, invalid JSON, non-UTF-8, full disk, read-only or missing store, bad config, a
//! panic). Touches only the inbox: no lock, no MANIFEST, no transcript parsing. When the inbox
//! append fails, the record goes to `<store>/spool/`, then to a spool directory under
//! `$TMPDIR` (created 0700 and checked, see `log::private`), which the next seal picks up;
//! failures are written to the runtime log when it can be written, and nowhere else.

use std::path::Path;

use crate::config::Config;
use crate::ingest::bounded::read_bounded;
use crate::ingest::hook_record;
use crate::ingest::redact::Redactor;
use crate::log::record::{Body, Truncated};
use crate::log::{LogError, Store, StorePaths, inbox, private};

pub use crate::record::PTY_SESSION_ENV;

/// Runs the hook command; always returns exit code 0.
pub fn run(store_flag: Option<&Path>, config_flag: Option<&Path>) -> i32 {
    // A panic is caught below and logged; the default hook would print it on stderr.
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(|| {
        // The store and its configuration come first: `storage.max_record_bytes` bounds how
        // much of stdin is kept in memory (the rest is counted and hashed, never dropped).
        let (root, config, mut problems) = locate(store_flag, config_flag);
        let (raw, truncated, read_error) =
            read_bounded(std::io::stdin().lock(), config.max_record_bytes());
        let ts = crate::now_ns();
        if let Some(cut) = &truncated {
            problems.push(format!(
                "payload of {} bytes is above storage.max_record_bytes ({} bytes): stored its first bytes, flagged truncated with SHA-256 {}",
                cut.total_bytes,
                config.storage.max_record_bytes,
                cut.sha256_hex()
            ));
        }
        problems.extend(record(&root, config, raw, truncated, ts));
        (read_error, problems)
    });
    let (read_error, problems) = match outcome {
        Ok(result) => result,
        Err(_) => (
            None,
            vec!["panic while recording the hook payload".to_owned()],
        ),
    };
    if read_error.is_some() || !problems.is_empty() {
        report(store_flag, read_error, &problems);
    }
    0
}

/// The store directory and configuration; problems met are returned for the runtime log.
fn locate(
    store_flag: Option<&Path>,
    config_flag: Option<&Path>,
) -> (std::path::PathBuf, Config, Vec<String>) {
    let mut problems = Vec::new();
    let root = match super::store_dir(store_flag) {
        Ok(root) => root,
        Err(e) => {
            problems.push(format!("{e:#}"));
            std::env::temp_dir().join("ctrace-unknown-store")
        }
    };
    let config = match super::load_config(&root, config_flag) {
        Ok(config) => config,
        Err(e) => {
            problems.push(format!(
                "config ignored for this hook, defaults used: {e:#}"
            ));
            Config::default()
        }
    };
    (root, config, problems)
}

/// Appends the payload; returns the problems met (empty when it went straight to the inbox).
fn record(
    root: &Path,
    config: Config,
    raw: Vec<u8>,
    truncated: Option<Truncated>,
    ts: u64,
) -> Vec<String> {
    let mut problems = Vec::new();
    let pty = std::env::var(PTY_SESSION_ENV)
        .ok()
        .filter(|s| !s.is_empty());
    let mut record = hook_record(raw, ts, pty, None);
    if let Body::Hook(body) = &mut record.body {
        body.truncated = truncated;
    }
    // Secrets are replaced before the record is encoded: nothing below sees them.
    Redactor::new(&config.redaction).redact_record(&mut record);
    let bytes = match record.encode() {
        Ok(bytes) => bytes,
        Err(e) => {
            problems.push(format!("cannot encode record: {e}"));
            return problems;
        }
    };
    let store = Store::at(root, config);
    let frame_limit = store.config().frame_limit();
    let appended = inbox::append_shared(
        &store.paths().inbox,
        &bytes,
        frame_limit,
        store.config().storage.durability,
    );
    let Err(first) = appended else {
        return problems;
    };
    if let LogError::Poisoned { .. } = first {
        // Written to the inbox, only its fdatasync failed: the record is in the file and will
        // be sealed from there, so spooling it too would seal it twice.
        problems.push(format!(
            "inbox record written but not synced (not spooled again): {:#}",
            anyhow::Error::from(first)
        ));
        return problems;
    }
    problems.push(format!(
        "inbox append failed: {:#}",
        anyhow::Error::from(first)
    ));
    let paths = StorePaths::new(root);
    for dir in [store_spool(&paths), fallback_spool(&paths)] {
        match dir.and_then(|dir| inbox::spool(&dir, &bytes, frame_limit)) {
            Ok(path) => {
                problems.push(format!("payload spooled to {}", path.display()));
                return problems;
            }
            Err(e) => problems.push(format!("spool failed: {:#}", anyhow::Error::from(e))),
        }
    }
    problems.push("payload could not be stored anywhere".to_owned());
    problems
}

/// `<store>/spool`, created 0700 and checked: ours, not a symlink, not writable by others.
fn store_spool(paths: &StorePaths) -> Result<std::path::PathBuf, LogError> {
    inbox::create_dir_private(&paths.spool)?;
    private::check_dir(&paths.spool, private::DirRule::OwnedPrivate)?;
    Ok(paths.spool.clone())
}

/// The fallback spool under `$TMPDIR`, each level created 0700 and checked.
fn fallback_spool(paths: &StorePaths) -> Result<std::path::PathBuf, LogError> {
    let (base, levels) = paths.fallback_spool_levels();
    private::ensure_spool_dir(&base, &[levels[0].as_str(), levels[1].as_str()])
}

/// Writes problems to the runtime log if it can be written; otherwise they are dropped (the
/// hook never prints).
fn report(store_flag: Option<&Path>, read_error: Option<std::io::Error>, problems: &[String]) {
    let logged = super::store_dir(store_flag)
        .ok()
        .and_then(|root| super::init_logging(&root))
        .is_some();
    if !logged {
        return;
    }
    if let Some(e) = &read_error {
        tracing::error!(error = %e, "reading hook stdin failed; stored what was read");
    }
    for problem in problems {
        tracing::error!("{problem}");
    }
}
