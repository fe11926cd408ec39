//! ctrace's handlers inside the settings' `hooks` table: adding or updating them per event,
//! removing them, and telling a ctrace handler from anyone else's.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Map, Value};

use super::events::TOOL_EVENTS;
use super::settings::{SettingsError, pointer_escape, type_name};
use crate::pty::PTY_SESSION_ENV;

/// The path of `ctrace serve`'s hook endpoint; an `"type": "http"` handler whose URL ends with
/// it is ctrace's.
pub(super) const INGEST_PATH: &str = "/ingest/hook";

/// The environment variable an HTTP handler for a non-loopback service takes its bearer token
/// from (Claude Code expands `$NAME` in `headers` for the names in `allowedEnvVars`).
pub(super) const TOKEN_ENV: &str = "CTRACE_TOKEN";

/// The header of [`crate::pty::PTY_SESSION_HEADER`] as written in settings.json.
const PTY_SESSION_HEADER_NAME: &str = "X-Ctrace-Pty-Session";

/// Seconds Claude Code waits for `ctrace serve` to answer an HTTP hook (it answers after the
/// append, in milliseconds; a service that does not answer costs a turn at most this long).
pub(super) const HTTP_TIMEOUT_S: u64 = 10;

/// What ctrace's handler of one event runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Handler {
    /// `"type": "command"`: this shell command (`/abs/ctrace hook [--store DIR]`).
    Command(String),
    /// `"type": "http"`: Claude Code POSTs the payload to `url` (`ctrace serve`'s
    /// [`INGEST_PATH`]) with an `X-Ctrace-Pty-Session: $CTRACE_PTY_SESSION` header; with
    /// `token`, an `Authorization: Bearer $CTRACE_TOKEN` header too.
    Http {
        /// The endpoint.
        url: String,
        /// Whether the service requires its token (a non-loopback host).
        token: bool,
    },
}

impl Handler {
    fn kind(&self) -> &'static str {
        match self {
            Self::Command(_) => "command",
            Self::Http { .. } => "http",
        }
    }

    /// Makes `handler` (an existing ctrace handler, or an empty map) this handler: a handler of
    /// another type is replaced whole; one of the same type keeps the keys ctrace does not own
    /// (a `timeout` the user set, say).
    fn apply(&self, handler: &mut Map<String, Value>) {
        if handler.get("type").and_then(Value::as_str) != Some(self.kind()) {
            handler.clear();
            handler.insert("type".to_owned(), Value::String(self.kind().to_owned()));
        }
        match self {
            Self::Command(command) => {
                handler.insert("command".to_owned(), Value::String(command.clone()));
            }
            Self::Http { url, token } => {
                handler.insert("url".to_owned(), Value::String(url.clone()));
                if !handler.contains_key("timeout") {
                    handler.insert("timeout".to_owned(), Value::from(HTTP_TIMEOUT_S));
                }
                // The recording the hook runs inside (as `ctrace hook` reads it from its
                // environment), and the token for a service off loopback.
                let mut headers = Map::new();
                let mut names = Vec::new();
                headers.insert(
                    PTY_SESSION_HEADER_NAME.to_owned(),
                    Value::String(format!("${PTY_SESSION_ENV}")),
                );
                names.push(Value::String(PTY_SESSION_ENV.to_owned()));
                if *token {
                    headers.insert(
                        "Authorization".to_owned(),
                        Value::String(format!("Bearer ${TOKEN_ENV}")),
                    );
                    names.push(Value::String(TOKEN_ENV.to_owned()));
                }
                handler.insert("headers".to_owned(), Value::Object(headers));
                handler.insert("allowedEnvVars".to_owned(), Value::Array(names));
            }
        }
    }
}

/// Adds ctrace's handler running `command` to each of `events` (updating an existing one in
/// place) and removes ctrace's handlers from every other event.
#[cfg(test)]
pub(super) fn install_hooks(
    settings: &mut Map<String, Value>,
    path: &Path,
    events: &[&str],
    command: &str,
) -> Result<(), SettingsError> {
    install_handlers(settings, path, events, |_| {
        Handler::Command(command.to_owned())
    })
}

/// Adds ctrace's handler `handler(event)` to each of `events` (updating an existing one in
/// place, whatever its type) and removes ctrace's handlers from every other event.
pub(super) fn install_handlers(
    settings: &mut Map<String, Value>,
    path: &Path,
    events: &[&str],
    handler: impl Fn(&str) -> Handler,
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
        upsert_handler(groups, event, &handler(event));
    }
    Ok(())
}

/// Makes `groups` (one event's matcher groups) hold exactly one ctrace handler, `handler`: the
/// first existing one is rewritten in place, later ones are removed, and a new group is
/// appended when there was none. A group holding only ctrace handlers is ctrace's, and gets the
/// canonical matcher.
pub(super) fn upsert_handler(groups: &mut Vec<Value>, event: &str, handler: &Handler) {
    let wanted = handler;
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
                wanted.apply(handler);
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
        groups.push(new_group(event, wanted));
    }
}

/// Sets (tool events) or removes (others) the `matcher` of ctrace's own group.
pub(super) fn set_matcher(group: &mut Map<String, Value>, event: &str) {
    if TOOL_EVENTS.contains(&event) {
        group.insert("matcher".to_owned(), Value::String("*".to_owned()));
    } else {
        remove_key(group, "matcher");
    }
}

/// A new matcher group holding `handler` for `event`.
pub(super) fn new_group(event: &str, wanted: &Handler) -> Value {
    let mut handler = Map::new();
    wanted.apply(&mut handler);
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
pub(super) fn remove_hooks(
    settings: &mut Map<String, Value>,
    pick: impl Fn(&str) -> bool,
) -> usize {
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
pub(super) fn remove_key(map: &mut Map<String, Value>, key: &str) {
    map.retain(|k, _| k != key);
}

/// Removes ctrace's handlers from one event's groups, and the groups this empties. Returns the
/// number of handlers removed.
pub(super) fn remove_from_groups(groups: &mut Vec<Value>) -> usize {
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
/// (its `args`, when present, continue the command's words), or `"type": "http"` with a `url`
/// whose path is [`INGEST_PATH`].
pub(super) fn is_ctrace_handler(handler: &Value) -> bool {
    let Some(handler) = handler.as_object() else {
        return false;
    };
    match handler.get("type").and_then(Value::as_str) {
        Some("command") => {}
        Some("http") => {
            return handler
                .get("url")
                .and_then(Value::as_str)
                .is_some_and(is_ingest_url);
        }
        _ => return false,
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

/// Whether `url` is an `http(s)` URL whose path is [`INGEST_PATH`] (query and fragment
/// ignored).
pub(super) fn is_ingest_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return false;
    };
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    let path = path.split(['?', '#']).next().unwrap_or(path);
    path == INGEST_PATH
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
pub(super) fn is_ctrace_command_with_args(command: &str, args: &[String]) -> bool {
    let with_args = |mut words: Vec<String>| {
        words.extend_from_slice(args);
        is_ctrace_words(&words)
    };
    shlex::split(command).is_some_and(with_args)
        || with_args(command.split_whitespace().map(str::to_owned).collect())
}

pub(super) fn is_ctrace_words(words: &[String]) -> bool {
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
pub(super) fn is_running_binary(program: &str) -> bool {
    static OWN: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    let own = OWN.get_or_init(|| std::env::current_exe().ok());
    own.as_deref().is_some_and(|own| Path::new(program) == own)
}

/// `NAME=value`, a shell variable assignment prefix.
pub(super) fn is_assignment(word: &str) -> bool {
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
pub(super) fn shell_quote(s: &str) -> anyhow::Result<Cow<'_, str>> {
    shlex::try_quote(s).with_context(|| format!("{s:?} cannot be quoted for a shell"))
}
