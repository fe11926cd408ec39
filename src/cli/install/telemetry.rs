//! `ctrace install --telemetry`: the variables in settings.json's top-level `env` object that
//! make Claude Code export its OpenTelemetry logs (events) and metrics to `ctrace serve`, which
//! takes OTLP/HTTP on `/v1/logs`, `/v1/metrics` and `/v1/traces` beside its hook endpoint.
//!
//! The variables and their values are those of Claude Code's "Monitoring" documentation,
//! <https://code.claude.com/docs/en/monitoring-usage>:
//!
//! ```json
//! { "env": { "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
//!            "OTEL_LOGS_EXPORTER": "otlp",
//!            "OTEL_METRICS_EXPORTER": "otlp",
//!            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
//!            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:7317",
//!            "CTRACE_TELEMETRY_VARS": "CLAUDE_CODE_ENABLE_TELEMETRY,OTEL_LOGS_EXPORTER,…" } }
//! ```
//!
//! plus, for an endpoint whose host is not loopback (where `ctrace serve` requires its token),
//! `"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Bearer <token>"`. Claude Code does not expand
//! `$NAME` in `env` values, so unlike the `--http` hooks' `Bearer $CTRACE_TOKEN` the token
//! itself is written: the value of `CTRACE_TOKEN` at install time (the token `--http` hooks
//! send), else the store's `serve.token`, read and checked by `ctrace serve`'s own code; install
//! never makes a token. The export intervals are
//! left at Claude Code's defaults (`OTEL_LOGS_EXPORT_INTERVAL` 5 s, `OTEL_METRIC_EXPORT_INTERVAL`
//! 60 s): the cost records are the `claude_code.api_request` log events, which already arrive
//! within seconds, and shorter metric intervals only multiply requests.
//!
//! Invariants:
//!
//! - **Only ctrace's own variables are touched.** A variable is ctrace's when the marker
//!   [`MARKER`] (a comma-separated list of names, itself an `env` entry because `env` values
//!   must be strings and Claude Code accepts any name there) lists it **and** its value still
//!   has ctrace's form ([`is_ctrace_value`]). Every other key of `env`, and every other
//!   top-level key, keeps its value and its place.
//! - **A value the user set is never silently replaced.** Install leaves a variable that
//!   already holds ctrace's value alone (and does not list it: it stays the user's), and
//!   refuses with [`SettingsError::EnvConflict`] when it holds another one, unless `--force`,
//!   which takes it over (the backup of settings.json keeps the old value).
//! - **Idempotent.** ctrace's variables are rewritten in place (a new endpoint, a new token);
//!   a second install with the same arguments changes nothing.
//! - **Uninstall removes exactly what install added**: the listed variables whose values are
//!   still ctrace's (any listed one with `--force`), the marker, and `env` itself only when
//!   that leaves it empty.

use std::io;
use std::path::Path;

use anyhow::Context;
use serde_json::{Map, Value};

use super::hooks::{INGEST_PATH, TOKEN_ENV, remove_key};
use super::settings::{SettingsError, pointer_escape, type_name};
use super::{InstallArgs, UsageError, is_loopback_url};

/// Where `install --telemetry` points Claude Code's OTLP exporters: `ctrace serve`'s default
/// bind ([`crate::serve::DEFAULT_BIND`]). The exporters append `/v1/logs` and `/v1/metrics`.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:7317";

/// The `env` entry listing, comma-separated, the variables ctrace set.
pub const MARKER: &str = "CTRACE_TELEMETRY_VARS";

/// Turns on Claude Code's telemetry (required for any export).
const ENABLE: &str = "CLAUDE_CODE_ENABLE_TELEMETRY";
/// The OTLP endpoint of every signal; the exporters append `/v1/<signal>`.
const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// Headers of every OTLP request, `key=value` pairs separated by commas.
const HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
/// What the bearer token follows in ctrace's [`HEADERS`] value.
pub(super) const BEARER: &str = "Authorization=Bearer ";

/// The variables with one fixed value, in the order install writes them.
const FIXED: [(&str, &str); 4] = [
    (ENABLE, "1"),
    ("OTEL_LOGS_EXPORTER", "otlp"),
    ("OTEL_METRICS_EXPORTER", "otlp"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
];

/// Every variable install may set, in the order it writes them (and lists them in [`MARKER`]).
const NAMES: [&str; 6] = [
    FIXED[0].0, FIXED[1].0, FIXED[2].0, FIXED[3].0, ENDPOINT, HEADERS,
];

/// Per-signal variables that override the general ones install sets, so that signal does not
/// reach ctrace (Claude Code's "Monitoring" documentation lists them).
const OVERRIDES: [&str; 6] = [
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
];

/// The variables (name, value) install sets for `endpoint`, with the [`HEADERS`] variable when
/// `token` is given (a non-loopback endpoint), in [`NAMES`] order.
pub(super) fn variables(endpoint: &str, token: Option<&str>) -> Vec<(&'static str, String)> {
    let mut wanted: Vec<(&'static str, String)> = FIXED
        .iter()
        .map(|&(name, value)| (name, value.to_owned()))
        .collect();
    wanted.push((ENDPOINT, endpoint.to_owned()));
    if let Some(token) = token {
        wanted.push((HEADERS, format!("{BEARER}{token}")));
    }
    wanted
}

/// Checks an `--endpoint`: `http://` or `https://`, a host, no query or fragment, no spaces,
/// and not a signal's path (`/v1/logs`) or the hook endpoint, which the exporters would
/// extend to `/v1/logs/v1/logs`. A path prefix (a reverse proxy's) is accepted.
pub(super) fn parse_endpoint(url: &str) -> Result<String, String> {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return Err("expected http://HOST:PORT or https://HOST[:PORT] (ctrace serve)".to_owned());
    };
    if super::url_host(url).is_empty() {
        return Err("the URL has no host".to_owned());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("the URL holds spaces or control characters".to_owned());
    }
    if url.contains(['?', '#']) {
        return Err("the URL has a query or fragment; give the service's base URL".to_owned());
    }
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    let path = path.trim_end_matches('/');
    let signal = ["/v1/logs", "/v1/metrics", "/v1/traces"]
        .iter()
        .any(|signal| path.ends_with(signal));
    if signal || path.ends_with(INGEST_PATH) {
        return Err(format!(
            "give the service's base URL, without {path:?}: the exporters append /v1/logs and \
             /v1/metrics themselves"
        ));
    }
    Ok(url.to_owned())
}

/// Whether `token` can follow `Bearer ` in an [`HEADERS`] value unchanged: letters, digits and
/// `-._~+/` (RFC 6750's token68 without its padding `=`), which the list's `,` and `=`
/// splitting and its percent-decoding leave alone. `serve.token` is 64 hex digits.
pub(super) fn is_header_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// Whether `value` has the form ctrace writes for the variable `name`: the fixed value, an
/// endpoint [`parse_endpoint`] accepts, or `Authorization=Bearer <token>`.
pub(super) fn is_ctrace_value(name: &str, value: &Value) -> bool {
    let Some(value) = value.as_str() else {
        return false;
    };
    if let Some(&(_, fixed)) = FIXED.iter().find(|(fixed_name, _)| *fixed_name == name) {
        return value == fixed;
    }
    match name {
        ENDPOINT => parse_endpoint(value).is_ok(),
        HEADERS => value.strip_prefix(BEARER).is_some_and(is_header_token),
        _ => false,
    }
}

/// The names [`MARKER`]'s value lists (only those in [`NAMES`]); none when it is absent or not
/// a string.
fn listed(env: &Map<String, Value>) -> Vec<&'static str> {
    let Some(list) = env.get(MARKER).and_then(Value::as_str) else {
        return Vec::new();
    };
    let names: Vec<&str> = list.split(',').map(str::trim).collect();
    NAMES
        .iter()
        .copied()
        .filter(|name| names.contains(name))
        .collect()
}

/// `value` as an error message shows it: JSON, with the values of a headers list elided (they
/// are credentials).
fn shown(name: &str, value: &Value) -> String {
    match value.as_str() {
        Some(text) if name == HEADERS => {
            let keys: Vec<String> = text
                .split(',')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) => format!("{key}=…"),
                    None => "…".to_owned(),
                })
                .collect();
            format!("{:?}", keys.join(","))
        }
        _ => value.to_string(),
    }
}

/// Sets `wanted` (from [`variables`]) in `settings`' `env`, following the module's rules: a
/// variable of ctrace's is updated in place, one the user set to the same value is left
/// theirs, one the user set otherwise is a conflict (taken over with `force`). ctrace's
/// variables that `wanted` no longer names (the token header after a switch to a loopback
/// endpoint) are removed. Returns the names ctrace now owns.
///
/// # Errors
/// [`SettingsError::NotAnObject`] when `env` is not an object, [`SettingsError::EnvConflict`]
/// for the first variable (or a marker) the user set otherwise. `settings` may then be partly
/// changed; the caller writes nothing.
pub(super) fn install_telemetry(
    settings: &mut Map<String, Value>,
    path: &Path,
    wanted: &[(&'static str, String)],
    force: bool,
) -> Result<Vec<&'static str>, SettingsError> {
    let env = settings
        .entry("env")
        .or_insert_with(|| Value::Object(Map::new()));
    let found = type_name(env);
    let Value::Object(env) = env else {
        return Err(SettingsError::NotAnObject {
            path: path.to_owned(),
            pointer: "/env".to_owned(),
            found,
        });
    };
    let conflict = |name: &str, found: &Value, wanted: &Value| SettingsError::EnvConflict {
        path: path.to_owned(),
        pointer: format!("/env/{}", pointer_escape(name)),
        found: shown(name, found),
        wanted: shown(name, wanted),
    };
    if let Some(marker) = env.get(MARKER).filter(|marker| !marker.is_string())
        && !force
    {
        return Err(conflict(MARKER, marker, &Value::String(NAMES.join(","))));
    }
    let listed = listed(env);
    let ours = |env: &Map<String, Value>, name: &str| {
        listed.contains(&name) && env.get(name).is_some_and(|v| is_ctrace_value(name, v))
    };
    let mut owned = Vec::new();
    for (name, value) in wanted {
        let value = Value::String(value.clone());
        match env.get(*name) {
            Some(current) if !ours(env, name) && *current == value => continue,
            Some(current) if !ours(env, name) && !force => {
                return Err(conflict(name, current, &value));
            }
            _ => {}
        }
        env.insert((*name).to_owned(), value);
        owned.push(*name);
    }
    for name in NAMES {
        if !owned.contains(&name) && ours(env, name) {
            remove_key(env, name);
        }
    }
    if owned.is_empty() {
        remove_key(env, MARKER);
    } else {
        env.insert(MARKER.to_owned(), Value::String(owned.join(",")));
    }
    Ok(owned)
}

/// Removes ctrace's telemetry variables (those [`MARKER`] lists whose values are still
/// ctrace's; every listed one with `force`) and the marker, then `env` if that leaves it
/// empty. An `env` that is not an object is left alone, as `remove_hooks` leaves a `hooks` of
/// the wrong shape: nothing of ctrace's can be in it. Returns the names removed and the listed
/// names left because their values changed.
pub(super) fn remove_telemetry(settings: &mut Map<String, Value>, force: bool) -> Removed {
    let Some(Value::Object(env)) = settings.get_mut("env") else {
        return Removed::default();
    };
    let mut removed = Removed::default();
    for name in listed(env) {
        match env.get(name) {
            Some(value) if force || is_ctrace_value(name, value) => {
                remove_key(env, name);
                removed.names.push(name);
            }
            Some(_) => removed.kept.push(name),
            None => {}
        }
    }
    let had_marker = env.contains_key(MARKER);
    remove_key(env, MARKER);
    if had_marker && env.is_empty() {
        remove_key(settings, "env");
    }
    removed
}

/// What [`remove_telemetry`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Removed {
    /// The variables removed.
    pub(super) names: Vec<&'static str>,
    /// Variables ctrace had set whose values someone changed since: left in place.
    pub(super) kept: Vec<&'static str>,
}

/// The per-signal variables ([`OVERRIDES`]) set in `settings`' `env` or in this process's
/// environment: they send that signal somewhere other than ctrace.
pub(super) fn overrides(settings: &Map<String, Value>) -> Vec<&'static str> {
    let env = settings.get("env").and_then(Value::as_object);
    OVERRIDES
        .iter()
        .copied()
        .filter(|name| {
            env.is_some_and(|env| env.contains_key(*name)) || std::env::var_os(name).is_some()
        })
        .collect()
}

/// Sets the telemetry variables for `--endpoint` (with the token header when it is not
/// loopback) and tells on stderr what that means. Returns the number of variables ctrace owns.
pub(super) fn install_into(
    settings: &mut Map<String, Value>,
    path: &Path,
    args: &InstallArgs,
    store: Option<&Path>,
) -> anyhow::Result<usize> {
    let endpoint = &args.endpoint;
    let token = if is_loopback_url(endpoint) {
        None
    } else {
        Some(serve_token(endpoint, store)?)
    };
    let wanted = variables(endpoint, token.as_ref().map(|(token, _)| token.as_str()));
    let owned = install_telemetry(settings, path, &wanted, args.force)?;
    eprintln!(
        "ctrace: note: Claude Code sessions started from now on export their OpenTelemetry logs \
         and metrics to {endpoint} (OTLP/HTTP); nothing is received while `ctrace serve` is not \
         running there (`ctrace install --service` keeps it running)"
    );
    for name in overrides(settings) {
        eprintln!(
            "ctrace: warning: {name} is set (in settings.json's env or in this environment) and \
             sends that signal elsewhere than {endpoint}"
        );
    }
    if let Some((_, source)) = &token {
        eprintln!(
            "ctrace: note: {} holds the service's token (from {source}) in \
             OTEL_EXPORTER_OTLP_HEADERS (Claude Code does not expand variables in env values): \
             the file is written readable by you only{}",
            path.display(),
            if args.project.is_some() {
                "; do not commit it (a project's settings.json often is)"
            } else {
                ""
            }
        );
    }
    Ok(owned.len())
}

/// The token `ctrace serve` at the non-loopback `endpoint` requires, and where it came from:
/// `$CTRACE_TOKEN` (what `--http` hooks send, the content of serve.token in the service's
/// store), else this store's `serve.token`, read and checked by the service's own
/// [`crate::serve::security::load_or_create_token`]. Install never makes a token.
///
/// # Errors
/// [`UsageError`] when `CTRACE_TOKEN` cannot go into a header or neither token exists; the
/// service's [`crate::serve::security::TokenError`] when serve.token is unsafe or malformed.
fn serve_token(endpoint: &str, store: Option<&Path>) -> anyhow::Result<(String, String)> {
    if let Some(token) = std::env::var_os(TOKEN_ENV).filter(|v| !v.is_empty()) {
        return match token.to_str().map(str::trim) {
            Some(token) if is_header_token(token) => {
                Ok((token.to_owned(), format!("${TOKEN_ENV}")))
            }
            _ => Err(UsageError(format!(
                "{TOKEN_ENV} does not hold a token (expected the content of serve.token in \
                 the service's store: 64 hex digits)"
            ))
            .into()),
        };
    }
    let root = crate::cli::store_dir(store)?;
    let file = root.join(crate::serve::security::TOKEN_FILE);
    if std::fs::symlink_metadata(&file).is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
        return Err(UsageError(format!(
            "--endpoint {endpoint} is not loopback, so `ctrace serve` there requires its token, \
             and there is none: set {TOKEN_ENV} to the content of serve.token in that service's \
             store, or run `ctrace serve --bind ADDR:PORT` on this store once to make {}",
            file.display()
        ))
        .into());
    }
    let token = crate::serve::security::load_or_create_token(&root)
        .context("reading the token of `ctrace serve`")?;
    Ok((token, file.display().to_string()))
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

    fn install(settings: &mut Map<String, Value>, endpoint: &str, token: Option<&str>) {
        let wanted = variables(endpoint, token);
        install_telemetry(settings, Path::new("s.json"), &wanted, false).unwrap();
    }

    #[test]
    fn the_default_endpoint_is_the_default_bind() {
        assert_eq!(
            DEFAULT_ENDPOINT,
            format!("http://{}", crate::serve::DEFAULT_BIND)
        );
        assert_eq!(
            super::super::DEFAULT_HOOK_URL,
            format!("{DEFAULT_ENDPOINT}{INGEST_PATH}")
        );
    }

    #[test]
    fn install_then_remove_restores_the_settings() {
        let original = object(json!({"model": "opus", "env": {"FOO": "bar"}}));
        let mut settings = original.clone();
        install(&mut settings, DEFAULT_ENDPOINT, None);
        assert_eq!(
            settings["env"],
            json!({
                "FOO": "bar",
                "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
                "OTEL_LOGS_EXPORTER": "otlp",
                "OTEL_METRICS_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:7317",
                "CTRACE_TELEMETRY_VARS": "CLAUDE_CODE_ENABLE_TELEMETRY,OTEL_LOGS_EXPORTER,\
                    OTEL_METRICS_EXPORTER,OTEL_EXPORTER_OTLP_PROTOCOL,OTEL_EXPORTER_OTLP_ENDPOINT"
            })
        );
        let once = settings.clone();
        install(&mut settings, DEFAULT_ENDPOINT, None);
        assert_eq!(settings, once, "second install changed something");
        let removed = remove_telemetry(&mut settings, false);
        assert_eq!(removed.names.len(), 5);
        assert_eq!(settings, original);

        let mut settings = Map::new();
        install(&mut settings, DEFAULT_ENDPOINT, None);
        remove_telemetry(&mut settings, false);
        assert!(
            settings.is_empty(),
            "an env ctrace made is left: {settings:?}"
        );
    }

    #[test]
    fn the_token_header_follows_the_endpoint() {
        let mut settings = Map::new();
        let token = "ab".repeat(32);
        install(&mut settings, "http://10.0.0.5:7317", Some(&token));
        assert_eq!(
            settings["env"][HEADERS],
            format!("Authorization=Bearer {token}")
        );
        assert!(settings["env"][MARKER].as_str().unwrap().ends_with(HEADERS));
        // A new token (serve.token deleted and made again) replaces the old one in place.
        let new_token = "cd".repeat(32);
        install(&mut settings, "http://10.0.0.5:7317", Some(&new_token));
        assert_eq!(
            settings["env"][HEADERS],
            format!("Authorization=Bearer {new_token}")
        );
        // Back to loopback: ctrace's header goes, the endpoint is rewritten in place.
        install(&mut settings, DEFAULT_ENDPOINT, None);
        assert!(settings["env"].get(HEADERS).is_none());
        assert_eq!(settings["env"][ENDPOINT], DEFAULT_ENDPOINT);
        assert!(!settings["env"][MARKER].as_str().unwrap().contains(HEADERS));
    }

    #[test]
    fn the_users_own_values_stay_theirs() {
        let original = object(json!({"env": {
            "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
            "OTEL_LOGS_EXPORTER": "console"
        }}));
        let mut settings = original.clone();
        let wanted = variables(DEFAULT_ENDPOINT, None);
        let error =
            install_telemetry(&mut settings, Path::new("s.json"), &wanted, false).unwrap_err();
        assert!(matches!(
            error,
            SettingsError::EnvConflict { ref pointer, ref found, .. }
                if pointer == "/env/OTEL_LOGS_EXPORTER" && found == "\"console\""
        ));

        let mut settings = original.clone();
        let owned = install_telemetry(&mut settings, Path::new("s.json"), &wanted, true).unwrap();
        assert!(
            !owned.contains(&ENABLE),
            "the user's own equal value was taken"
        );
        assert!(owned.contains(&"OTEL_LOGS_EXPORTER"));
        remove_telemetry(&mut settings, false);
        assert_eq!(
            settings["env"],
            json!({"CLAUDE_CODE_ENABLE_TELEMETRY": "1"}),
            "uninstall removed the user's variable, or left one of ctrace's"
        );
    }

    #[test]
    fn a_listed_variable_changed_since_is_left() {
        let mut settings = Map::new();
        install(&mut settings, DEFAULT_ENDPOINT, None);
        settings["env"]["OTEL_METRICS_EXPORTER"] = json!("prometheus");
        let removed = remove_telemetry(&mut settings, false);
        assert_eq!(removed.kept, ["OTEL_METRICS_EXPORTER"]);
        assert_eq!(
            Value::Object(settings),
            json!({"env": {"OTEL_METRICS_EXPORTER": "prometheus"}})
        );
    }

    #[test]
    fn secrets_are_not_shown() {
        let value = json!("Authorization=Bearer s3cret,X-Key=abc");
        assert_eq!(shown(HEADERS, &value), "\"Authorization=…,X-Key=…\"");
        assert_eq!(shown(ENDPOINT, &json!(5)), "5");
    }

    #[test]
    fn env_of_the_wrong_shape_is_refused() {
        let mut settings = object(json!({"env": ["A=1"]}));
        let wanted = variables(DEFAULT_ENDPOINT, None);
        let error =
            install_telemetry(&mut settings, Path::new("s.json"), &wanted, false).unwrap_err();
        assert!(
            matches!(error, SettingsError::NotAnObject { ref pointer, .. } if pointer == "/env")
        );
        assert_eq!(remove_telemetry(&mut settings, false), Removed::default());
        let mut settings = object(json!({"env": {MARKER: 1}}));
        let error =
            install_telemetry(&mut settings, Path::new("s.json"), &wanted, false).unwrap_err();
        assert!(
            matches!(error, SettingsError::EnvConflict { ref pointer, .. }
            if pointer == "/env/CTRACE_TELEMETRY_VARS")
        );
    }

    #[test]
    fn endpoints_are_checked() {
        for good in [
            DEFAULT_ENDPOINT,
            "http://127.0.0.1:7317/",
            "https://ctrace.internal",
            "http://[::1]:7317",
            "https://proxy.example/ctrace",
        ] {
            assert_eq!(parse_endpoint(good).as_deref(), Ok(good));
        }
        for bad in [
            "127.0.0.1:7317",
            "ftp://h:1",
            "http://",
            "http://:7317",
            "http://127.0.0.1:7317/v1/logs",
            "http://127.0.0.1:7317/v1/metrics/",
            "http://127.0.0.1:7317/ingest/hook",
            "http://h:1/?x=1",
            "http://h:1 /",
            "http://h:1/#x",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad} accepted");
        }
        assert!(is_header_token(&"0f".repeat(32)));
        for bad in ["", "a,b", "a b", "a=b", "ü", "a\nb"] {
            assert!(!is_header_token(bad), "{bad:?}");
        }
    }
}
