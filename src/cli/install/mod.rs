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
//! - **HTTP, opt-in.** `--http [--url URL]` gives the events in [`HTTP_EVENTS`] an
//!   `"type": "http"` handler that POSTs the payload to `ctrace serve` (default
//!   `http://127.0.0.1:7317/ingest/hook`): no process per event, but nothing is recorded for
//!   those events while the service is down (Claude Code treats a failed HTTP hook as a
//!   non-blocking error). The other events keep the command handler. An HTTP handler is
//!   ctrace's when its URL's path is `/ingest/hook`; installing without `--http` turns it back
//!   into a command handler. Every HTTP handler sends `X-Ctrace-Pty-Session:
//!   $CTRACE_PTY_SESSION` (the recording a session runs inside, as `ctrace hook` reads it from
//!   its environment); a non-loopback URL also gets `Authorization: Bearer $CTRACE_TOKEN`
//!   (`allowedEnvVars`), so the token stays out of settings.json.
//! - **Version-aware.** Claude Code before 2.1.101 skips a whole settings file that names a hook
//!   event it does not know, so install writes only the events the installed Claude Code accepts
//!   (`claude --version`, or `--claude-version`), and removes ctrace's entries from the others.
//! - **Telemetry, opt-in.** `--telemetry [--endpoint URL]` also sets, in the top-level `env`
//!   object, the variables that make Claude Code export its OpenTelemetry logs and metrics to
//!   `ctrace serve` (`telemetry.rs`: which variables, how ctrace marks its own, and what happens
//!   to a value the user set). Plain `uninstall` removes them with the hooks;
//!   `uninstall --telemetry` removes only them. Install without `--telemetry` leaves them.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::UsageError;
use events::selected_events;
use hooks::{Handler, install_handlers, remove_hooks, shell_quote};
use serde_json::{Map, Value};
use settings::{parse_settings, print_diff, read_settings, render, write_settings};

mod events;
mod hooks;
mod service;
mod settings;
mod telemetry;

pub use events::{
    ClaudeVersion, HOOK_EVENTS, HTTP_EVENTS, NOT_INSTALLED, ParseVersionError, accepted_since,
};
pub use hooks::is_ctrace_command;
pub use settings::SettingsError;
pub use telemetry::{DEFAULT_ENDPOINT, MARKER as TELEMETRY_MARKER};

/// Arguments of `install` and `uninstall`.
#[derive(Debug, Args)]
#[command(group(
    clap::ArgGroup::new("forceable")
        .args(["service", "telemetry"])
        .multiple(true)
))]
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
    /// Instead of hooks: write (uninstall: remove) the systemd user unit that runs
    /// `ctrace serve` for this store, ~/.config/systemd/user/ctrace.service (honours
    /// XDG_CONFIG_HOME); prints the systemctl commands to start it
    #[arg(long, conflicts_with_all = ["project", "user", "claude_version"])]
    pub service: bool,
    /// With --service: replace (uninstall: remove) a unit that ctrace did not write or that
    /// differs. With --telemetry: overwrite variables of `env` set outside ctrace to other
    /// values (uninstall: remove the variables ctrace set even if their values changed since)
    #[arg(long, requires = "forceable")]
    pub force: bool,
    /// Give the events that accept it an HTTP handler that POSTs to `ctrace serve` instead of
    /// running `ctrace hook` (the others keep the command). Those events are not recorded
    /// while the service is down. Ignored by uninstall, which removes both kinds
    #[arg(long, conflicts_with = "service")]
    pub http: bool,
    /// With --http: the service's hook endpoint
    #[arg(
        long,
        value_name = "URL",
        requires = "http",
        default_value = DEFAULT_HOOK_URL,
        value_parser = parse_hook_url
    )]
    pub url: String,
    /// Also set, in settings.json's `env`, the variables that make Claude Code export its
    /// OpenTelemetry logs and metrics (OTLP/HTTP, protobuf) to `ctrace serve`, as
    /// <https://code.claude.com/docs/en/monitoring-usage> describes; a value set outside ctrace
    /// is not overwritten without --force. Uninstall: remove only those variables, not the hooks
    #[arg(long, conflicts_with = "service")]
    pub telemetry: bool,
    /// With --telemetry: the service's base URL (the exporters append /v1/logs, /v1/metrics).
    /// A non-loopback host also gets `OTEL_EXPORTER_OTLP_HEADERS=Authorization=Bearer
    /// <token>`, the token taken from CTRACE_TOKEN, else from the store's serve.token
    #[arg(
        long,
        value_name = "URL",
        requires = "telemetry",
        default_value = DEFAULT_ENDPOINT,
        value_parser = telemetry::parse_endpoint
    )]
    pub endpoint: String,
}

/// Where `install --http` points the HTTP handlers: `ctrace serve`'s default bind.
pub const DEFAULT_HOOK_URL: &str = "http://127.0.0.1:7317/ingest/hook";

/// Checks a `--url`: `http://` or `https://`, a host, and the path `/ingest/hook`.
fn parse_hook_url(url: &str) -> Result<String, String> {
    if !hooks::is_ingest_url(url) {
        return Err(format!(
            "expected http://HOST:PORT{} (the hook endpoint of `ctrace serve`)",
            hooks::INGEST_PATH
        ));
    }
    if url_host(url).is_empty() {
        return Err("the URL has no host".to_owned());
    }
    Ok(url.to_owned())
}

/// The host of an `http(s)://HOST[:PORT]/...` URL (brackets kept for IPv6).
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if authority.starts_with('[') {
        return authority.split_inclusive(']').next().unwrap_or(authority);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// Whether the service at `url` is on this machine (it then takes hooks without the token).
fn is_loopback_url(url: &str) -> bool {
    let host = url_host(url);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Runs `install` (or `uninstall` when `remove`). `store` is the global `--store`, written into
/// the hook command when given. Prints a one-line summary (or, with `--dry-run`, a unified diff)
/// on stdout; returns exit code 0.
///
/// # Errors
/// When settings.json cannot be read, parsed or written, or holds a value install would have
/// to overwrite ([`SettingsError`]), when `--project` is not a directory or a needed token is
/// missing ([`UsageError`]), or when the path of the running binary or of the user settings
/// cannot be determined.
pub fn run(args: &InstallArgs, remove: bool, store: Option<&Path>) -> anyhow::Result<i32> {
    if args.service {
        let store = crate::cli::store_dir(store)?;
        return service::run(&store, remove, args.force, args.dry_run);
    }
    let path = settings_path(args)?;
    let old_text = read_settings(&path)?;
    let before = parse_settings(&path, old_text.as_deref())?;
    let mut after = before.clone();
    let change = if remove {
        uninstall_from(&mut after, &path, args)
    } else {
        install_into(&mut after, &path, args, store)?
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
                "ctrace is already installed for {} in {} (unchanged)",
                change.what(),
                path.display()
            )?;
        }
        return Ok(0);
    }
    // The service's token written by `--telemetry` (before or now) keeps the file private.
    let private = [old_text.as_deref().unwrap_or(""), new_text.as_str()]
        .iter()
        .any(|text| text.contains(telemetry::BEARER));
    let backup = write_settings(&path, old_text.as_deref(), &new_text, private)?;
    let note = match &backup {
        Some(backup) => format!("backup: {}", backup.display()),
        None => "new file".to_owned(),
    };
    let done = match (remove, change.hooks) {
        (false, _) => format!("installed ctrace for {} in", change.what()),
        (true, Some(_)) => format!("removed ctrace from {} in", change.what()),
        (true, None) => format!("removed ctrace's {} from", change.what()),
    };
    writeln!(out, "{done} {} ({note})", path.display())?;
    Ok(0)
}

/// What install or uninstall did to the settings, for the summary line.
struct Change {
    /// Hook events installed (uninstall: events ctrace was removed from); `None`: hooks left
    /// alone (`uninstall --telemetry`).
    hooks: Option<usize>,
    /// Telemetry variables ctrace owns after install (uninstall: removed); `None`: telemetry
    /// left alone (install without `--telemetry`).
    telemetry: Option<usize>,
}

impl Change {
    /// "N hook events", "N hook events and M telemetry variables" or "M telemetry variables"
    /// (the telemetry part only with `--telemetry`, or when uninstall removed some).
    fn what(&self) -> String {
        let telemetry = self
            .telemetry
            .filter(|&n| n > 0 || self.hooks.is_none())
            .map(|n| format!("{n} telemetry variables"));
        match (self.hooks, telemetry) {
            (Some(hooks), Some(telemetry)) => format!("{hooks} hook events and {telemetry}"),
            (Some(hooks), None) => format!("{hooks} hook events"),
            (None, Some(telemetry)) => telemetry,
            (None, None) => "nothing".to_owned(),
        }
    }
}

/// Install: ctrace's hook handlers for the selected events (HTTP ones with `--http`) and, with
/// `--telemetry`, the telemetry variables.
fn install_into(
    settings: &mut Map<String, Value>,
    path: &Path,
    args: &InstallArgs,
    store: Option<&Path>,
) -> anyhow::Result<Change> {
    let command = hook_command(store)?;
    let events = selected_events(args.claude_version.clone());
    let http = args.http.then(|| Handler::Http {
        url: args.url.clone(),
        token: !is_loopback_url(&args.url),
    });
    install_handlers(settings, path, &events, |event| match &http {
        Some(http) if HTTP_EVENTS.contains(&event) => http.clone(),
        _ => Handler::Command(command.clone()),
    })?;
    if args.http {
        http_note(&events, &args.url);
    }
    let telemetry = if args.telemetry {
        Some(telemetry::install_into(settings, path, args, store)?)
    } else {
        None
    };
    Ok(Change {
        hooks: Some(events.len()),
        telemetry,
    })
}

/// Uninstall: ctrace's hook handlers (not with `--telemetry`) and its telemetry variables.
fn uninstall_from(settings: &mut Map<String, Value>, path: &Path, args: &InstallArgs) -> Change {
    let hooks = (!args.telemetry).then(|| remove_hooks(settings, |_| true));
    let removed = telemetry::remove_telemetry(settings, args.force);
    if !removed.kept.is_empty() {
        eprintln!(
            "ctrace: note: left {} in {}: the values changed since ctrace set them \
             (`uninstall --telemetry --force` removes them)",
            removed.kept.join(", "),
            path.display()
        );
    }
    Change {
        hooks,
        telemetry: Some(removed.names.len()),
    }
}

/// Tells (stderr) what `--http` installed and its trade-off.
fn http_note(events: &[&str], url: &str) {
    let over_http = events.iter().filter(|e| HTTP_EVENTS.contains(e)).count();
    eprintln!(
        "ctrace: note: {over_http} of {} events POST to {url} (HTTP hooks); the other {} keep \
         `ctrace hook`, which Claude Code accepts for every event. Nothing is recorded for the \
         HTTP events while `ctrace serve` is not running there (`ctrace install --service` \
         keeps it running).",
        events.len(),
        events.len() - over_http
    );
    if !is_loopback_url(url) {
        eprintln!(
            "ctrace: note: {url} is not on this machine: the handlers send \
             `Authorization: Bearer $CTRACE_TOKEN`; set CTRACE_TOKEN, in the environment Claude \
             Code runs in, to the content of serve.token in the service's store"
        );
    }
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

#[cfg(test)]
mod tests {
    use super::events::{TOOL_EVENTS, UNKNOWN_EVENTS_IGNORED_SINCE};
    use super::hooks::{install_hooks, is_ctrace_handler};
    use super::*;
    use serde_json::{Map, Value, json};

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
        install_commands(&mut settings, &events);
        let once = settings.clone();
        install_commands(&mut settings, &events);
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

    fn install_commands(settings: &mut Map<String, Value>, events: &[&str]) {
        install_hooks(settings, Path::new("s.json"), events, "/x/ctrace hook").unwrap();
    }

    fn install_http(settings: &mut Map<String, Value>, events: &[&str], url: &str) {
        let http = Handler::Http {
            url: url.to_owned(),
            token: !is_loopback_url(url),
        };
        install_handlers(settings, Path::new("s.json"), events, |event| {
            if HTTP_EVENTS.contains(&event) {
                http.clone()
            } else {
                Handler::Command("/x/ctrace hook".to_owned())
            }
        })
        .unwrap();
    }

    #[test]
    fn http_events_are_known_events() {
        for event in HTTP_EVENTS {
            assert!(HOOK_EVENTS.contains(event), "{event} is not in HOOK_EVENTS");
            assert!(!NOT_INSTALLED.contains(event), "{event} is never installed");
        }
        assert!(!HTTP_EVENTS.contains(&"SessionStart"));
    }

    #[test]
    fn http_install_switches_handlers_both_ways_and_is_idempotent() {
        let original = object(json!({"hooks": {"Stop": [
            {"hooks": [{"type": "http", "url": "http://example.com/mine"}]}
        ]}}));
        let mut settings = original.clone();
        let events = ["SessionStart", "PreToolUse", "Stop"];
        install_commands(&mut settings, &events);
        let commands = settings.clone();
        install_http(&mut settings, &events, DEFAULT_HOOK_URL);
        let http = json!({"type": "http", "url": DEFAULT_HOOK_URL, "timeout": 10,
                          "headers": {"X-Ctrace-Pty-Session": "$CTRACE_PTY_SESSION"},
                          "allowedEnvVars": ["CTRACE_PTY_SESSION"]});
        assert_eq!(
            settings["hooks"]["PreToolUse"],
            json!([{"matcher": "*", "hooks": [http]}])
        );
        assert_eq!(settings["hooks"]["Stop"][1], json!({"hooks": [http]}));
        assert_eq!(
            settings["hooks"]["SessionStart"],
            json!([{"hooks": [{"type": "command", "command": "/x/ctrace hook"}]}]),
            "SessionStart keeps the command"
        );
        assert_eq!(
            settings["hooks"]["Stop"][0], original["hooks"]["Stop"][0],
            "someone else's http hook is not ctrace's"
        );
        let once = settings.clone();
        install_http(&mut settings, &events, DEFAULT_HOOK_URL);
        assert_eq!(settings, once, "second --http install changed something");
        // A timeout the user set survives a reinstall of the same type.
        settings["hooks"]["Stop"][1]["hooks"][0]["timeout"] = json!(3);
        install_http(&mut settings, &events, DEFAULT_HOOK_URL);
        assert_eq!(settings["hooks"]["Stop"][1]["hooks"][0]["timeout"], 3);
        // Without --http, the command handlers come back in place.
        install_commands(&mut settings, &events);
        assert_eq!(settings, commands);
        install_http(&mut settings, &events, DEFAULT_HOOK_URL);
        assert_eq!(remove_hooks(&mut settings, |_| true), 3);
        assert_eq!(settings, original);
    }

    #[test]
    fn a_remote_url_sends_the_token_from_the_environment() {
        let mut settings = Map::new();
        let url = "http://10.0.0.5:7317/ingest/hook";
        install_http(&mut settings, &["Stop"], url);
        assert_eq!(
            settings["hooks"]["Stop"][0]["hooks"][0],
            json!({"type": "http", "url": url, "timeout": 10,
                   "headers": {"X-Ctrace-Pty-Session": "$CTRACE_PTY_SESSION",
                               "Authorization": "Bearer $CTRACE_TOKEN"},
                   "allowedEnvVars": ["CTRACE_PTY_SESSION", "CTRACE_TOKEN"]})
        );
        install_http(&mut settings, &["Stop"], DEFAULT_HOOK_URL);
        assert_eq!(
            settings["hooks"]["Stop"][0]["hooks"][0],
            json!({"type": "http", "url": DEFAULT_HOOK_URL, "timeout": 10,
                   "headers": {"X-Ctrace-Pty-Session": "$CTRACE_PTY_SESSION"},
                   "allowedEnvVars": ["CTRACE_PTY_SESSION"]})
        );
    }

    #[test]
    fn hook_urls_are_checked() {
        for good in [
            DEFAULT_HOOK_URL,
            "https://ctrace.internal/ingest/hook",
            "http://[::1]:7317/ingest/hook",
        ] {
            assert_eq!(parse_hook_url(good).as_deref(), Ok(good));
        }
        for bad in [
            "127.0.0.1:7317/ingest/hook",
            "http://127.0.0.1:7317/",
            "http://127.0.0.1:7317/ingest/hooks",
            "ftp://h/ingest/hook",
            "http:///ingest/hook",
        ] {
            assert!(parse_hook_url(bad).is_err(), "{bad} accepted");
        }
        for (url, loopback) in [
            (DEFAULT_HOOK_URL, true),
            ("http://localhost:1/ingest/hook", true),
            ("http://[::1]:1/ingest/hook", true),
            ("http://127.9.9.9/ingest/hook", true),
            ("http://10.0.0.5:7317/ingest/hook", false),
            ("http://ctrace.example/ingest/hook", false),
        ] {
            assert_eq!(is_loopback_url(url), loopback, "{url}");
        }
        assert!(is_ctrace_handler(
            &json!({"type": "http", "url": "http://h:1/ingest/hook?x=1"})
        ));
        assert!(!is_ctrace_handler(
            &json!({"type": "http", "url": "http://h:1/other"})
        ));
    }
}
