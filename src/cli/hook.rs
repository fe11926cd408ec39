//! `ctrace hook`: one payload on stdin → the inbox. The hot path Claude Code runs for every
//! hook event.
//!
//! Contract (`DESIGN.md` §8): exits 0 and prints nothing, on stdout or stderr, whatever happens
//! (empty stdin, invalid JSON, non-UTF-8, full disk, read-only or missing store, bad config, a
//! panic). Touches only the inbox: no lock, no MANIFEST, no transcript parsing. Where the
//! payload goes when the inbox append fails is the library's policy
//! ([`crate::ingest::hook::store_payload`]); failures are written to the runtime log when it
//! can be written, and nowhere else.

use std::path::Path;

use crate::config::Config;
use crate::ingest::bounded::read_bounded;
use crate::ingest::hook::{Payload, Placement, store_payload};
use crate::model::Truncated;

pub use crate::pty::PTY_SESSION_ENV;

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

/// Stores the payload through the library's hook path ([`crate::ingest::hook`]); returns the
/// problems met, as lines for the runtime log (empty when it went straight to the inbox).
fn record(
    root: &Path,
    config: Config,
    raw: Vec<u8>,
    truncated: Option<Truncated>,
    ts: u64,
) -> Vec<String> {
    let pty_session = std::env::var(PTY_SESSION_ENV)
        .ok()
        .filter(|s| !s.is_empty());
    let payload = Payload {
        raw,
        truncated,
        ts,
        pty_session,
    };
    let stored = store_payload(root, config, payload);
    let mut problems: Vec<String> = stored
        .problems
        .into_iter()
        .map(|problem| format!("{:#}", anyhow::Error::from(problem)))
        .collect();
    match stored.placement {
        Placement::Spooled(path) => problems.push(format!("payload spooled to {}", path.display())),
        Placement::Nowhere => problems.push("payload could not be stored anywhere".to_owned()),
        Placement::Inbox | Placement::InboxUnsynced => {}
    }
    problems
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
