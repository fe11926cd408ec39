//! Which hook events `install` registers for a given (or detected) Claude Code version; the
//! event table itself is Claude Code's and lives in `crate::claude::events`.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use crate::claude::events::{
    ClaudeVersion, HOOK_EVENTS, HTTP_EVENTS, NOT_INSTALLED, ParseVersionError, TOOL_EVENTS,
    UNKNOWN_EVENTS_IGNORED_SINCE, accepted_since,
};

/// How long `claude --version` may take before install gives up on it.
pub(super) const VERSION_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The events to install: all of [`HOOK_EVENTS`] but [`NOT_INSTALLED`], narrowed to those
/// `version` (else the detected Claude Code version) accepts. Explains narrowing on stderr.
pub(super) fn selected_events(version: Option<ClaudeVersion>) -> Vec<&'static str> {
    let candidates: Vec<&'static str> = HOOK_EVENTS
        .iter()
        .copied()
        .filter(|e| !NOT_INSTALLED.contains(e))
        .collect();
    let Some(version) = version.or_else(detect_claude_version) else {
        eprintln!(
            "ctrace: note: could not run `claude --version`; installing all {} hook events \
             (Claude Code before {UNKNOWN_EVENTS_IGNORED_SINCE} skips a whole settings file that \
             names a hook event it does not know: pass --claude-version X.Y.Z to install fewer)",
            candidates.len()
        );
        return candidates;
    };
    if version >= UNKNOWN_EVENTS_IGNORED_SINCE {
        return candidates;
    }
    let accepted: Vec<&'static str> = candidates
        .iter()
        .copied()
        .filter(|e| accepted_since(e).is_some_and(|since| since <= version))
        .collect();
    if accepted.len() < candidates.len() {
        eprintln!(
            "ctrace: note: Claude Code {version} accepts {} of ctrace's {} hook events; installing \
             those (run `ctrace install` again after upgrading Claude Code)",
            accepted.len(),
            candidates.len()
        );
    }
    accepted
}

/// Runs `claude --version` (at most [`VERSION_PROBE_TIMEOUT`]) and parses the first word that
/// is a version; `None` when that fails.
pub(super) fn detect_claude_version() -> Option<ClaudeVersion> {
    let mut child = Command::new("claude")
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + VERSION_PROBE_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                // Give up on it; the kill can only fail if it already exited.
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    };
    if !status.success() {
        return None;
    }
    let mut output = String::new();
    child.stdout.take()?.read_to_string(&mut output).ok()?;
    output.split_whitespace().find_map(|word| word.parse().ok())
}
