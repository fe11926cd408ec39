//! `ctrace install` / `ctrace uninstall`: add or remove ctrace in Claude Code's settings.json.
//!
//! The target is `DIR/.claude/settings.json` with `--project DIR`, else the user settings:
//! `$CLAUDE_CONFIG_DIR/settings.json`, else `~/.claude/settings.json`. Install adds one matcher
//! group per hook event, in Claude Code's format:
//!
//! ```json
//! { "hooks": { "PreToolUse": [ { "matcher": "*",
//!                                "hooks": [ { "type": "command", "command": "/abs/ctrace hook" } ] } ] } }
//! ```
//!
//! Invariants:
//!
//! - **Only ctrace's own entries are touched.** A handler is ctrace's when it has
//!   `"type": "command"` and its command's program has the basename `ctrace` (or `ctrace.exe`)
//!   or is the running binary's own path (what install writes, whatever the binary is named),
//!   and the next word is `hook` ([`is_ctrace_command`]). Every other key, event, matcher group
//!   and handler keeps its value and its place. Key order survives only when serde_json's
//!   `preserve_order` feature is enabled; without it serde_json writes keys sorted.
//! - **Idempotent.** An existing ctrace handler is updated in place (its command rewritten), extra
//!   copies are removed, and a second install leaves the file byte-identical. Nothing is written,
//!   and no backup is made, when the settings do not change.
//! - **Safe writes.** The previous content is first copied to `settings.json.bak-<unix seconds>`
//!   (same permissions), then the new content is written to a temporary file in the target's
//!   directory, synced, and renamed over the target. A symlinked settings.json stays a symlink:
//!   its target is replaced.
//! - **Invalid input is refused.** Settings that are not valid JSON, or whose `hooks` (or an
//!   event being installed) has the wrong shape, give an error naming the file (and the line
//!   and column) and leave the file untouched.
//! - **Version-aware.** Claude Code before 2.1.101 skips a whole settings file that names a hook
//!   event it does not know, so install writes only the events the installed Claude Code accepts
//!   (`claude --version`, or `--claude-version`), and removes ctrace's entries from the others.

use std::borrow::Cow;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Args;
use serde_json::{Map, Value};

use super::UsageError;

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
const TOOL_EVENTS: &[&str] = &[
    "PreToolUse",
    "PostToolUse",
    "PostToolUseFailure",
    "PermissionRequest",
    "PermissionDenied",
];

/// Claude Code skips a settings file naming an unknown hook event before this version; from it
/// on, unknown event names are ignored (CHANGELOG 2.1.101).
const UNKNOWN_EVENTS_IGNORED_SINCE: ClaudeVersion = ClaudeVersion::new(2, 1, 101);

/// How long `claude --version` may take before install gives up on it.
const VERSION_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

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

/// Arguments of `install` and `uninstall`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Edit the user settings, the default: $CLAUDE_CONFIG_DIR/settings.json, else
    /// ~/.claude/settings.json
    #[arg(long, conflicts_with = "project")]
    pub user: bool,
    /// Edit the project settings (DIR/.claude/settings.json)
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Print the diff instead of writing
    #[arg(long)]
    pub dry_run: bool,
    /// Install only the hook events this Claude Code version accepts [default: the version
    /// `claude --version` prints; every event when it cannot be run]. Ignored by uninstall
    #[arg(long, value_name = "X.Y.Z")]
    pub claude_version: Option<ClaudeVersion>,
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

/// Runs `install` (or `uninstall` when `remove`). `store` is the global `--store`, written into
/// the hook command when given. Prints a one-line summary (or, with `--dry-run`, a unified diff)
/// on stdout; returns exit code 0.
///
/// # Errors
/// When settings.json cannot be read, parsed or written ([`SettingsError`]), when `--project`
/// is not a directory ([`UsageError`]), or when the path of the running binary or of the user
/// settings cannot be determined.
pub fn run(args: &InstallArgs, remove: bool, store: Option<&Path>) -> anyhow::Result<i32> {
    let path = settings_path(args)?;
    let old_text = read_settings(&path)?;
    let before = parse_settings(&path, old_text.as_deref())?;
    let mut after = before.clone();

    let (events, changed_events) = if remove {
        let removed = remove_hooks(&mut after, |_| true);
        (Vec::new(), removed)
    } else {
        let command = hook_command(store)?;
        let events = selected_events(args.claude_version.clone());
        install_hooks(&mut after, &path, &events, &command)?;
        let count = events.len();
        (events, count)
    };

    let new_text = render(&after)?;
    let mut out = io::stdout().lock();
    if args.dry_run {
        print_diff(
            &mut out,
            &path,
            old_text.as_deref().unwrap_or(""),
            &new_text,
            before == after,
        )?;
        return Ok(0);
    }
    if before == after {
        if remove {
            writeln!(
                out,
                "ctrace is not installed in {} (unchanged)",
                path.display()
            )?;
        } else {
            writeln!(
                out,
                "ctrace is already installed for {} hook events in {} (unchanged)",
                events.len(),
                path.display()
            )?;
        }
        return Ok(0);
    }
    let backup = write_settings(&path, old_text.as_deref(), &new_text)?;
    let note = match &backup {
        Some(backup) => format!("backup: {}", backup.display()),
        None => "new file".to_owned(),
    };
    let verb = if remove {
        "removed ctrace from"
    } else {
        "installed ctrace for"
    };
    writeln!(
        out,
        "{verb} {changed_events} hook events in {} ({note})",
        path.display()
    )?;
    Ok(0)
}

/// The settings file `args` name: `DIR/.claude/settings.json` for `--project DIR`, else
/// `$CLAUDE_CONFIG_DIR/settings.json`, else `$HOME/.claude/settings.json`.
fn settings_path(args: &InstallArgs) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &args.project {
        if !dir.is_dir() {
            return Err(UsageError(format!("--project {}: not a directory", dir.display())).into());
        }
        return Ok(dir.join(".claude").join("settings.json"));
    }
    let env = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = env("CLAUDE_CONFIG_DIR") {
        return Ok(PathBuf::from(dir).join("settings.json"));
    }
    let home = env("HOME").or_else(|| env("USERPROFILE")).context(
        "cannot find the user settings: set HOME or CLAUDE_CONFIG_DIR, or use --project",
    )?;
    Ok(PathBuf::from(home).join(".claude").join("settings.json"))
}

/// The file's text, or `None` when it does not exist.
fn read_settings(path: &Path) -> Result<Option<String>, SettingsError> {
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
fn parse_settings(path: &Path, text: Option<&str>) -> Result<Map<String, Value>, SettingsError> {
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
fn render(settings: &Map<String, Value>) -> anyhow::Result<String> {
    let mut text = serde_json::to_string_pretty(settings).context("serializing settings")?;
    text.push('\n');
    Ok(text)
}

/// The hook command: the running binary's absolute path (shell-quoted when needed), ` hook`,
/// and ` --store <absolute DIR>` when `store` is given.
fn hook_command(store: Option<&Path>) -> anyhow::Result<String> {
    let exe = std::env::current_exe().context("finding the path of the running ctrace binary")?;
    let exe = exe
        .to_str()
        .with_context(|| format!("ctrace's path is not UTF-8: {}", exe.display()))?;
    let mut command = format!("{} hook", shell_quote(exe)?);
    if let Some(store) = store {
        let store = std::path::absolute(store)
            .with_context(|| format!("making --store {} absolute", store.display()))?;
        let store = store
            .to_str()
            .with_context(|| format!("--store is not UTF-8: {}", store.display()))?;
        command.push_str(" --store ");
        command.push_str(&shell_quote(store)?);
    }
    Ok(command)
}

/// The events to install: all of [`HOOK_EVENTS`] but [`NOT_INSTALLED`], narrowed to those
/// `version` (else the detected Claude Code version) accepts. Explains narrowing on stderr.
fn selected_events(version: Option<ClaudeVersion>) -> Vec<&'static str> {
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
fn detect_claude_version() -> Option<ClaudeVersion> {
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

/// Adds ctrace's handler to each of `events` (updating an existing one in place) and removes
/// ctrace's handlers from every other event.
fn install_hooks(
    settings: &mut Map<String, Value>,
    path: &Path,
    events: &[&str],
    command: &str,
) -> Result<(), SettingsError> {
    remove_hooks(settings, |event| !events.contains(&event));
    if events.is_empty() {
        return Ok(());
    }
    let hooks = settings
        .entry("hooks")
        .or_insert_with(|| Value::Object(Map::new()));
    let found = type_name(hooks);
    let Value::Object(hooks) = hooks else {
        return Err(SettingsError::NotAnObject {
            path: path.to_owned(),
            pointer: "/hooks".to_owned(),
            found,
        });
    };
    for &event in events {
        let groups = hooks
            .entry(event)
            .or_insert_with(|| Value::Array(Vec::new()));
        let found = type_name(groups);
        let Value::Array(groups) = groups else {
            return Err(SettingsError::NotAnArray {
                path: path.to_owned(),
                pointer: format!("/hooks/{}", pointer_escape(event)),
                found,
            });
        };
        upsert_handler(groups, event, command);
    }
    Ok(())
}

/// Makes `groups` (one event's matcher groups) hold exactly one ctrace handler running
/// `command`: the first existing one is rewritten in place, later ones are removed, and a new
/// group is appended when there was none. A group holding only ctrace handlers is ctrace's, and
/// gets the canonical matcher.
fn upsert_handler(groups: &mut Vec<Value>, event: &str, command: &str) {
    let mut placed = false;
    let mut emptied = vec![false; groups.len()];
    for (index, group) in groups.iter_mut().enumerate() {
        let Some(group) = group.as_object_mut() else {
            continue;
        };
        let Some(Value::Array(handlers)) = group.get_mut("hooks") else {
            continue;
        };
        let ours = !handlers.is_empty() && handlers.iter().all(is_ctrace_handler);
        let before = handlers.len();
        let mut kept_here = false;
        handlers.retain_mut(|handler| {
            if !is_ctrace_handler(handler) {
                return true;
            }
            if placed {
                return false;
            }
            placed = true;
            kept_here = true;
            if let Some(handler) = handler.as_object_mut() {
                handler.insert("command".to_owned(), Value::String(command.to_owned()));
            }
            true
        });
        if handlers.is_empty() && before > 0 {
            emptied[index] = true;
        }
        if ours && kept_here {
            set_matcher(group, event);
        }
    }
    let mut emptied = emptied.into_iter();
    groups.retain(|_| !emptied.next().unwrap_or(false));
    if !placed {
        groups.push(new_group(event, command));
    }
}

/// Sets (tool events) or removes (others) the `matcher` of ctrace's own group.
fn set_matcher(group: &mut Map<String, Value>, event: &str) {
    if TOOL_EVENTS.contains(&event) {
        group.insert("matcher".to_owned(), Value::String("*".to_owned()));
    } else {
        remove_key(group, "matcher");
    }
}

/// A new matcher group running `command` for `event`.
fn new_group(event: &str, command: &str) -> Value {
    let mut handler = Map::new();
    handler.insert("type".to_owned(), Value::String("command".to_owned()));
    handler.insert("command".to_owned(), Value::String(command.to_owned()));
    let mut group = Map::new();
    set_matcher(&mut group, event);
    group.insert(
        "hooks".to_owned(),
        Value::Array(vec![Value::Object(handler)]),
    );
    Value::Object(group)
}

/// Removes ctrace's handlers from the events `pick` selects, then the matcher groups, event
/// arrays and `hooks` object that this leaves empty (and only those). Values of an unexpected
/// shape are left alone. Returns the number of events ctrace was removed from.
fn remove_hooks(settings: &mut Map<String, Value>, pick: impl Fn(&str) -> bool) -> usize {
    let Some(Value::Object(hooks)) = settings.get_mut("hooks") else {
        return 0;
    };
    let mut events_changed = 0;
    let mut emptied_events = Vec::new();
    for (event, groups) in hooks.iter_mut() {
        if !pick(event) {
            continue;
        }
        let Value::Array(groups) = groups else {
            continue;
        };
        if remove_from_groups(groups) > 0 {
            events_changed += 1;
            if groups.is_empty() {
                emptied_events.push(event.clone());
            }
        }
    }
    for event in &emptied_events {
        remove_key(hooks, event);
    }
    if events_changed > 0 && hooks.is_empty() {
        remove_key(settings, "hooks");
    }
    events_changed
}

/// Removes `key` from `map`, keeping the order of the other keys (`Map::remove` swaps the last
/// key into its place under `preserve_order`, and `shift_remove` exists only with that feature).
fn remove_key(map: &mut Map<String, Value>, key: &str) {
    map.retain(|k, _| k != key);
}

/// Removes ctrace's handlers from one event's groups, and the groups this empties. Returns the
/// number of handlers removed.
fn remove_from_groups(groups: &mut Vec<Value>) -> usize {
    let mut removed = 0;
    let mut emptied = vec![false; groups.len()];
    for (index, group) in groups.iter_mut().enumerate() {
        let Some(Value::Array(handlers)) = group.get_mut("hooks") else {
            continue;
        };
        let before = handlers.len();
        handlers.retain(|handler| !is_ctrace_handler(handler));
        let gone = before - handlers.len();
        removed += gone;
        emptied[index] = gone > 0 && handlers.is_empty();
    }
    let mut emptied = emptied.into_iter();
    groups.retain(|_| !emptied.next().unwrap_or(false));
    removed
}

/// Whether a hook handler is ctrace's: `"type": "command"` and a [`is_ctrace_command`] command
/// (its `args`, when present, continue the command's words).
fn is_ctrace_handler(handler: &Value) -> bool {
    let Some(handler) = handler.as_object() else {
        return false;
    };
    if handler.get("type").and_then(Value::as_str) != Some("command") {
        return false;
    }
    let Some(command) = handler.get("command").and_then(Value::as_str) else {
        return false;
    };
    let args: Vec<String> = match handler.get("args") {
        Some(Value::Array(args)) => args
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    is_ctrace_command_with_args(command, &args)
}

/// Whether a shell command runs ctrace's hook: after optional `NAME=value` assignments, a
/// program whose basename is `ctrace` (or `ctrace.exe`) or that is the running binary's path,
/// then the word `hook`.
#[must_use]
pub fn is_ctrace_command(command: &str) -> bool {
    is_ctrace_command_with_args(command, &[])
}

/// Whether `command` followed by the words `args` runs ctrace's hook. `command` is split into
/// words by `shlex` (POSIX quoting, as the shell that runs hooks does). When that fails (an
/// unterminated quote) or finds no ctrace, its whitespace-separated words are tried as written,
/// so an unquoted Windows path (`C:\Users\me\ctrace.exe hook`), whose backslashes a POSIX
/// shell would remove, is still recognised.
fn is_ctrace_command_with_args(command: &str, args: &[String]) -> bool {
    let with_args = |mut words: Vec<String>| {
        words.extend_from_slice(args);
        is_ctrace_words(&words)
    };
    shlex::split(command).is_some_and(with_args)
        || with_args(command.split_whitespace().map(str::to_owned).collect())
}

fn is_ctrace_words(words: &[String]) -> bool {
    let mut words = words.iter().skip_while(|w| is_assignment(w));
    let Some(program) = words.next() else {
        return false;
    };
    let name = program.rsplit(['/', '\\']).next().unwrap_or(program);
    let name = name
        .strip_suffix(".exe")
        .or_else(|| name.strip_suffix(".EXE"))
        .unwrap_or(name);
    (name == "ctrace" || is_running_binary(program)) && words.next().is_some_and(|w| w == "hook")
}

/// Whether `program` is the path of the running binary, which is what install writes: a
/// binary installed under another name (`ctrace-dev`, `ct`) still recognises its own entries.
fn is_running_binary(program: &str) -> bool {
    static OWN: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    let own = OWN.get_or_init(|| std::env::current_exe().ok());
    own.as_deref().is_some_and(|own| Path::new(program) == own)
}

/// `NAME=value`, a shell variable assignment prefix.
fn is_assignment(word: &str) -> bool {
    let Some((name, _)) = word.split_once('=') else {
        return false;
    };
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `s` as one shell word (`shlex` quoting: unchanged when no shell treats its characters
/// specially, else quoted).
///
/// # Errors
/// When `s` holds a NUL byte, which no shell word can.
fn shell_quote(s: &str) -> anyhow::Result<Cow<'_, str>> {
    shlex::try_quote(s).with_context(|| format!("{s:?} cannot be quoted for a shell"))
}

/// Escapes a key for a JSON Pointer (RFC 6901).
fn pointer_escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The JSON type of `value`, for error messages.
fn type_name(value: &Value) -> &'static str {
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
fn print_diff(
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
/// Returns the backup's path.
fn write_settings(
    path: &Path,
    old: Option<&str>,
    new: &str,
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
    let permissions = fs::metadata(&target).ok().map(|m| m.permissions());

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
fn write_backup(
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn every_event_has_a_version_and_no_duplicates() {
        for (i, event) in HOOK_EVENTS.iter().enumerate() {
            assert!(accepted_since(event).is_some(), "{event} has no version");
            assert!(!HOOK_EVENTS[..i].contains(event), "{event} listed twice");
        }
        for event in TOOL_EVENTS.iter().chain(NOT_INSTALLED) {
            assert!(HOOK_EVENTS.contains(event), "{event} is not in HOOK_EVENTS");
        }
        assert_eq!(HOOK_EVENTS.len(), 31);
        assert_eq!(accepted_since("NoSuchEvent"), None);
    }

    #[test]
    fn versions_parse_and_order() {
        let v: ClaudeVersion = "2.1.114".parse().unwrap();
        assert_eq!(v, ClaudeVersion::new(2, 1, 114));
        assert!(ClaudeVersion::new(2, 1, 9) < ClaudeVersion::new(2, 1, 10));
        assert!(ClaudeVersion::new(1, 0, 99) < ClaudeVersion::new(2, 0, 0));
        assert_eq!(v.to_string(), "2.1.114");
        // Issue 15: `semver` parses; surrounding whitespace is tolerated, pre-releases sort
        // before their release, and every version the corpus records parses.
        assert_eq!(
            " 2.0.14\n".parse::<ClaudeVersion>().unwrap(),
            ClaudeVersion::new(2, 0, 14)
        );
        let beta: ClaudeVersion = "2.1.101-beta.1".parse().unwrap();
        assert!(ClaudeVersion::new(2, 1, 100) < beta && beta < UNKNOWN_EVENTS_IGNORED_SINCE);
        for seen in [
            "2.1.39", "1.0.59", "1.0.98", "2.1.38", "2.1.72", "2.0.28", "1.0.24",
        ] {
            assert!(seen.parse::<ClaudeVersion>().is_ok(), "{seen}");
        }
        for bad in [
            "", "2", "2.1", "2.1.x", "2.1.1.4", "v2.1.1", "2..1", "-1.0.0",
        ] {
            assert!(bad.parse::<ClaudeVersion>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn recognises_ctrace_commands() {
        for yes in [
            "/usr/local/bin/ctrace hook",
            "ctrace hook",
            "'/home/a b/bin/ctrace' hook --store '/x y'",
            "\"/home/a b/ctrace\" hook",
            "/home/a\\ b/ctrace hook",
            "CTRACE_HOME=/tmp/s /opt/ctrace hook",
            "'C:\\Users\\me\\ctrace.exe' hook",
            "C:\\Users\\me\\ctrace.exe hook",
            "  ctrace   hook  ",
            // Issue 15: shlex refuses an unterminated quote; the raw words still match.
            "/usr/bin/ctrace hook --store '/x y",
            "ctrace hook # installed by ctrace",
        ] {
            assert!(is_ctrace_command(yes), "{yes:?} not recognised");
        }
        for no in [
            "",
            "ctrace",
            "ctrace cat",
            "ctrace-dev hook",
            "/bin/notctrace hook",
            "echo ctrace hook",
            "'ctrace hook'",
            "/usr/bin/ctrace --store /x hook",
        ] {
            assert!(!is_ctrace_command(no), "{no:?} recognised");
        }
    }

    #[test]
    fn handler_args_continue_the_command() {
        let handler = json!({"type": "command", "command": "/bin/ctrace", "args": ["hook"]});
        assert!(is_ctrace_handler(&handler));
        let http = json!({"type": "http", "command": "/bin/ctrace hook"});
        assert!(!is_ctrace_handler(&http));
    }

    #[test]
    fn quoting_round_trips_through_the_splitter() {
        for s in [
            "/usr/bin/ctrace",
            "/a b/c",
            "it's",
            "/x/$HOME/`y`",
            "C:\\a b\\c.exe",
            "é/ü",
        ] {
            let quoted = shell_quote(s).unwrap();
            assert_eq!(
                shlex::split(&quoted),
                Some(vec![s.to_owned()]),
                "{s:?} → {quoted}"
            );
            assert!(
                is_ctrace_command(&format!("{quoted}/ctrace hook")),
                "{quoted}"
            );
        }
        assert_eq!(shell_quote("/usr/bin/ctrace").unwrap(), "/usr/bin/ctrace");
        assert!(shell_quote("a\0b").is_err());
    }

    #[test]
    fn install_then_remove_restores_the_settings() {
        let original = object(json!({
            "model": "opus",
            "hooks": {
                "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "mine"}]}],
                "Custom": "left alone"
            }
        }));
        let mut settings = original.clone();
        let events = ["PreToolUse", "Stop"];
        install_hooks(
            &mut settings,
            Path::new("s.json"),
            &events,
            "/x/ctrace hook",
        )
        .unwrap();
        let once = settings.clone();
        install_hooks(
            &mut settings,
            Path::new("s.json"),
            &events,
            "/x/ctrace hook",
        )
        .unwrap();
        assert_eq!(settings, once, "second install changed something");
        assert_eq!(
            settings["hooks"]["PreToolUse"][1],
            json!({"matcher": "*", "hooks": [{"type": "command", "command": "/x/ctrace hook"}]})
        );
        assert_eq!(
            settings["hooks"]["Stop"],
            json!([{"hooks": [{"type": "command", "command": "/x/ctrace hook"}]}])
        );
        assert_eq!(remove_hooks(&mut settings, |_| true), 2);
        assert_eq!(settings, original);
    }

    #[test]
    fn existing_handler_is_updated_in_place_and_duplicates_dropped() {
        let mut settings = object(json!({"hooks": {"Stop": [
            {"hooks": [{"type": "command", "command": "mine"}]},
            {"matcher": "", "hooks": [{"type": "command", "command": "/old/ctrace hook", "timeout": 5}]},
            {"hooks": [{"type": "command", "command": "after"}, {"type": "command", "command": "ctrace hook"}]}
        ]}}));
        install_hooks(
            &mut settings,
            Path::new("s.json"),
            &["Stop"],
            "/new/ctrace hook",
        )
        .unwrap();
        assert_eq!(
            settings["hooks"]["Stop"],
            json!([
                {"hooks": [{"type": "command", "command": "mine"}]},
                {"hooks": [{"type": "command", "command": "/new/ctrace hook", "timeout": 5}]},
                {"hooks": [{"type": "command", "command": "after"}]}
            ])
        );
    }

    #[test]
    fn unselected_events_lose_ctrace_only() {
        let mut settings = object(json!({"hooks": {
            "Setup": [{"hooks": [{"type": "command", "command": "ctrace hook"}]}],
            "Stop": [{"hooks": [{"type": "command", "command": "mine"}]}]
        }}));
        install_hooks(&mut settings, Path::new("s.json"), &[], "ctrace hook").unwrap();
        assert_eq!(
            Value::Object(settings),
            json!({"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "mine"}]}]}})
        );
    }

    #[test]
    fn wrong_shapes_are_errors_naming_the_place() {
        let mut settings = object(json!({"hooks": []}));
        let err = install_hooks(&mut settings, Path::new("s.json"), &["Stop"], "c").unwrap_err();
        assert!(
            matches!(err, SettingsError::NotAnObject { ref pointer, .. } if pointer == "/hooks")
        );
        let mut settings = object(json!({"hooks": {"Stop": {}}}));
        let err = install_hooks(&mut settings, Path::new("s.json"), &["Stop"], "c").unwrap_err();
        assert!(
            matches!(err, SettingsError::NotAnArray { ref pointer, .. } if pointer == "/hooks/Stop")
        );
        let err = parse_settings(Path::new("s.json"), Some("[1]")).unwrap_err();
        assert!(
            matches!(err, SettingsError::NotAnObject { ref pointer, .. } if pointer.is_empty())
        );
        let err = parse_settings(Path::new("s.json"), Some("{\n  \"a\": 1,\n}")).unwrap_err();
        assert!(matches!(err, SettingsError::InvalidJson { line: 3, .. }));
    }

    #[test]
    fn blank_and_bom_files_parse() {
        assert!(
            parse_settings(Path::new("s"), Some(" \n"))
                .unwrap()
                .is_empty()
        );
        assert!(parse_settings(Path::new("s"), None).unwrap().is_empty());
        assert_eq!(
            parse_settings(Path::new("s"), Some("\u{feff}{\"a\":1}")).unwrap()["a"],
            1
        );
    }
}
