//! The hook event table: which events exist, since which Claude Code version each is
//! accepted in settings.json, and which ones filter on a tool name.

use std::fmt;
use std::str::FromStr;

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

/// The hook events `ctrace install --http` gives an `"type": "http"` handler; every other
/// event keeps the command handler.
///
/// These are the events the hooks reference ("Prompt-based hooks") lists as accepting every
/// handler type; it lists the others (`SessionStart`, `SessionEnd`, `Notification`,
/// `PreCompact`, `SubagentStart`, `ConfigChange`, `TeammateIdle`, `WorktreeCreate`,
/// `WorktreeRemove`) as `"type": "command"` only, and events it added later are not listed.
/// Claude Code enforces that at least for `SessionStart`, whose HTTP hooks never fire
/// (anthropics/claude-code#30170, #30171). Conservative by design: an event left out here is
/// still recorded, by the command handler.
pub const HTTP_EVENTS: &[&str] = &[
    "UserPromptSubmit",
    "PreToolUse",
    "PermissionRequest",
    "PostToolUse",
    "PostToolUseFailure",
    "SubagentStop",
    "TaskCompleted",
    "Stop",
];

/// The tool events, whose `matcher` filters on the tool name; install gives them `"*"`. The
/// reference's "What the matcher filters" table. Every other event gets no `matcher`, which
/// matches every occurrence (and is the only form events without matcher support accept).
pub const TOOL_EVENTS: &[&str] = &[
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "PermissionRequest",
    "PermissionDenied",
];

/// Claude Code skips a settings file naming an unknown hook event before this version; from it
/// on, unknown event names are ignored (CHANGELOG 2.1.101).
pub const UNKNOWN_EVENTS_IGNORED_SINCE: ClaudeVersion = ClaudeVersion::new(2, 1, 101);

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
