//! The hook event table: which events exist, since which Claude Code version each is accepted,
//! and which of them `install` registers for a given (or detected) Claude Code version.

use std::fmt;
use std::io::Read;
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Every Claude Code hook event, in the order of the event table of the official hooks reference
/// (<https://code.claude.com/docs/en/hooks>, "Hook lifecycle", as published in August 2026:
/// 31 events). `ctrace install` registers all of them except those in [`NOT_INSTALLED`], and
/// only those the installed Claude Code accepts ([`accepted_since`]).
pub const HOOK_EVENTS: &[&str] = &[
    "SessionStart",
    "Setup",
    "UserPromptSubmit",
    "UserPromptExpansion",
    "PreToolUse",
    "PermissionRequest",
    "PermissionDenied",
    "PostToolUse",
    "PostToolUseFailure",
    "PostToolBatch",
    "Notification",
    "MessageDisplay",
    "SubagentStart",
    "SubagentStop",
    "TaskCreated",
    "TaskCompleted",
    "Stop",
    "StopFailure",
    "TeammateIdle",
    "InstructionsLoaded",
    "ConfigChange",
    "CwdChanged",
    "DirectoryAdded",
    "FileChanged",
    "WorktreeCreate",
    "WorktreeRemove",
    "PreCompact",
    "PostCompact",
    "Elicitation",
    "ElicitationResult",
    "SessionEnd",
];

/// Hook events that [`HOOK_EVENTS`] lists but `install` never registers.
///
/// `WorktreeCreate`: a command hook on it *replaces* Claude Code's own `git worktree add` and
/// must print the new worktree's path; a recorder that prints nothing would make every
/// `--worktree` session and every `isolation: "worktree"` subagent fail.
pub const NOT_INSTALLED: &[&str] = &["WorktreeCreate"];

/// The tool events, whose `matcher` filters on the tool name; install gives them `"*"`. The
/// reference's "What the matcher filters" table. Every other event gets no `matcher`, which
/// matches every occurrence (and is the only form events without matcher support accept).
pub(super) const TOOL_EVENTS: &[&str] = &[
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "PermissionRequest",
    "PermissionDenied",
];

/// Claude Code skips a settings file naming an unknown hook event before this version; from it
/// on, unknown event names are ignored (CHANGELOG 2.1.101).
pub(super) const UNKNOWN_EVENTS_IGNORED_SINCE: ClaudeVersion = ClaudeVersion::new(2, 1, 101);

/// How long `claude --version` may take before install gives up on it.
pub(super) const VERSION_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The first Claude Code version whose settings validation accepts `event` as a key of `hooks`,
/// or `None` for a name that is not in [`HOOK_EVENTS`].
///
/// Source: `anthropics/claude-code` `CHANGELOG.md` (through 2.1.114). `PostToolUseFailure` is
/// not in the changelog; 2.1.29 is a conservative bound (the reference listed it by 2026-02-01).
/// Events added after 2.1.114 get 2.1.101, from which unknown names are harmless.
#[must_use]
pub fn accepted_since(event: &str) -> Option<ClaudeVersion> {
    let (major, minor, patch) = match event {
        "PreToolUse" | "PostToolUse" | "Notification" | "Stop" => (1, 0, 38),
        "SubagentStop" => (1, 0, 41),
        "PreCompact" => (1, 0, 48),
        "UserPromptSubmit" => (1, 0, 54),
        "SessionStart" => (1, 0, 62),
        "SessionEnd" => (1, 0, 85),
        "SubagentStart" => (2, 0, 43),
        "PermissionRequest" => (2, 0, 45),
        "Setup" => (2, 1, 10),
        "PostToolUseFailure" => (2, 1, 29),
        "TeammateIdle" | "TaskCompleted" => (2, 1, 33),
        "ConfigChange" => (2, 1, 49),
        "WorktreeCreate" | "WorktreeRemove" => (2, 1, 50),
        "InstructionsLoaded" => (2, 1, 69),
        "Elicitation" | "ElicitationResult" | "PostCompact" => (2, 1, 76),
        "StopFailure" => (2, 1, 78),
        "CwdChanged" | "FileChanged" => (2, 1, 83),
        "TaskCreated" => (2, 1, 84),
        "PermissionDenied" => (2, 1, 89),
        "UserPromptExpansion" | "PostToolBatch" | "MessageDisplay" | "DirectoryAdded" => {
            (2, 1, 101)
        }
        _ => return None,
    };
    Some(ClaudeVersion::new(major, minor, patch))
}

/// A Claude Code version (`2.1.114`): a [`semver::Version`], ordered by semver precedence
/// (a pre-release such as `2.1.0-beta` sorts before `2.1.0`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClaudeVersion(pub semver::Version);

impl ClaudeVersion {
    /// The version `major.minor.patch`.
    #[must_use]
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self(semver::Version::new(major, minor, patch))
    }
}

impl fmt::Display for ClaudeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Text that is not a `MAJOR.MINOR.PATCH` version.
#[derive(Debug, thiserror::Error)]
#[error("not a version (expected MAJOR.MINOR.PATCH, e.g. 2.1.114): {input:?}")]
pub struct ParseVersionError {
    /// The rejected text.
    pub input: String,
    /// What semver found wrong with it.
    #[source]
    pub source: semver::Error,
}

impl FromStr for ClaudeVersion {
    type Err = ParseVersionError;

    /// Semver syntax (`semver` crate), after trimming surrounding whitespace as `claude
    /// --version` output and hand-typed `--claude-version` values may carry.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        semver::Version::parse(s.trim())
            .map(Self)
            .map_err(|source| ParseVersionError {
                input: s.to_owned(),
                source,
            })
    }
}

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
