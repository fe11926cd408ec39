//! `ctrace install --telemetry` / `uninstall` (issue 17, "Receive"): the OpenTelemetry variables
//! in settings.json's `env`, run as a subprocess against project settings in a temp dir, with
//! `HOME` inside it, `PATH` on an empty directory (no `claude` to ask for its version) and no
//! `CTRACE_TOKEN` unless a test sets it.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::Sandbox;
use ctrace::cli::install::{DEFAULT_ENDPOINT, TELEMETRY_MARKER, is_ctrace_command};
use serde_json::{Value, json};

/// The variables a loopback install sets, in the order it writes them.
const LOOPBACK_VARS: [(&str, &str); 5] = [
    ("CLAUDE_CODE_ENABLE_TELEMETRY", "1"),
    ("OTEL_LOGS_EXPORTER", "otlp"),
    ("OTEL_METRICS_EXPORTER", "otlp"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", DEFAULT_ENDPOINT),
];

const HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";

/// `ctrace ARGS` in `sandbox` with a clean environment for install.
fn command(sandbox: &Sandbox, args: &[&str]) -> Command {
    let mut command = sandbox.command(args);
    command
        .env("HOME", sandbox.path("home"))
        .env("PATH", sandbox.path("bin"))
        .env_remove("CLAUDE_CONFIG_DIR")
        .env_remove("CTRACE_TOKEN");
    for signal in ["LOGS", "METRICS"] {
        for what in ["ENDPOINT", "PROTOCOL", "HEADERS"] {
            command.env_remove(format!("OTEL_EXPORTER_OTLP_{signal}_{what}"));
        }
    }
    command
}

/// `ctrace VERB --project <project> --claude-version 2.1.200 EXTRA...`.
fn project(sandbox: &Sandbox, verb: &str, extra: &[&str]) -> Command {
    fs::create_dir_all(sandbox.path("project")).unwrap();
    fs::create_dir_all(sandbox.path("bin")).unwrap();
    let dir = sandbox.path("project");
    let mut args = vec![verb, "--project", dir.to_str().unwrap()];
    if verb == "install" {
        args.extend(["--claude-version", "2.1.200"]);
    }
    args.extend_from_slice(extra);
    command(sandbox, &args)
}

fn ok(mut command: Command) -> Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn fails(mut command: Command) -> String {
    let output = command.output().unwrap();
    assert!(!output.status.success(), "{command:?} succeeded");
    String::from_utf8(output.stderr).unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn settings_path(sandbox: &Sandbox) -> PathBuf {
    sandbox.path("project/.claude/settings.json")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

fn write_text(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn write_json(path: &Path, value: &Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap() + "\n";
    write_text(path, &text);
    text
}

/// The names of the files beside settings.json (backups, temp files).
fn siblings(sandbox: &Sandbox) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(sandbox.path("project/.claude"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != "settings.json")
        .collect();
    names.sort();
    names
}

/// The marker's list of names.
fn marked(env: &Value) -> Vec<String> {
    env[TELEMETRY_MARKER]
        .as_str()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// Writes a serve.token (mode 0600) into the sandbox's store.
fn write_token(sandbox: &Sandbox, token: &str) -> PathBuf {
    fs::create_dir_all(sandbox.store()).unwrap();
    let path = sandbox.store().join("serve.token");
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    fs::write(&path, format!("{token}\n")).unwrap();
    path
}

/// Into a project with no settings: the hooks and the five variables plus the marker, and
/// nothing else in `env`.
#[test]
fn telemetry_into_an_empty_project() {
    let sandbox = Sandbox::new();
    let output = ok(project(&sandbox, "install", &["--telemetry"]));
    let summary = stdout(&output);
    assert!(
        summary.starts_with("installed ctrace for ")
            && summary.contains(" hook events and 5 telemetry variables in "),
        "{summary}"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains(DEFAULT_ENDPOINT));
    let settings = read_json(&settings_path(&sandbox));
    let env = settings["env"].as_object().unwrap();
    let mut expected: serde_json::Map<String, Value> = LOOPBACK_VARS
        .iter()
        .map(|(name, value)| ((*name).to_owned(), json!(value)))
        .collect();
    let names: Vec<&str> = LOOPBACK_VARS.iter().map(|(name, _)| *name).collect();
    expected.insert(TELEMETRY_MARKER.to_owned(), json!(names.join(",")));
    assert_eq!(*env, expected);
    let command = settings["hooks"]["Stop"][0]["hooks"][0]["command"]
        .as_str()
        .unwrap();
    assert!(is_ctrace_command(command), "{command}");
}

/// Into settings with other keys, env vars and hooks: all kept in place; with `--http` too.
#[test]
fn telemetry_merges_with_other_env_vars_and_hooks() {
    let sandbox = Sandbox::new();
    let path = settings_path(&sandbox);
    let original = json!({
        "model": "opus",
        "env": {"FOO": "bar", "OTEL_RESOURCE_ATTRIBUTES": "team=a"},
        "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "say done"}]}]},
        "permissions": {"allow": ["Bash(ls)"]}
    });
    write_json(&path, &original);
    ok(project(&sandbox, "install", &["--telemetry", "--http"]));
    let settings = read_json(&path);
    assert_eq!(settings["model"], original["model"]);
    assert_eq!(settings["permissions"], original["permissions"]);
    assert_eq!(settings["hooks"]["Stop"][0], original["hooks"]["Stop"][0]);
    assert_eq!(
        settings["hooks"]["Stop"][1]["hooks"][0]["type"], "http",
        "--http with --telemetry"
    );
    let env = settings["env"].as_object().unwrap();
    let keys: Vec<&str> = env.keys().map(String::as_str).collect();
    assert_eq!(keys[..2], ["FOO", "OTEL_RESOURCE_ATTRIBUTES"], "{keys:?}");
    assert_eq!(env["FOO"], "bar");
    assert_eq!(env["OTEL_RESOURCE_ATTRIBUTES"], "team=a");
    for (name, value) in LOOPBACK_VARS {
        assert_eq!(env[name], value, "{name}");
    }
    let top: Vec<&str> = settings
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(top, ["model", "env", "hooks", "permissions"]);
}

/// Twice is once: the second install leaves the file byte-identical and makes no backup.
#[test]
fn telemetry_install_is_idempotent() {
    let sandbox = Sandbox::new();
    let path = settings_path(&sandbox);
    write_json(&path, &json!({"env": {"FOO": "bar"}}));
    ok(project(&sandbox, "install", &["--telemetry"]));
    let first = fs::read(&path).unwrap();
    assert_eq!(siblings(&sandbox).len(), 1, "one backup");
    let output = ok(project(&sandbox, "install", &["--telemetry"]));
    assert!(stdout(&output).contains("already installed"), "{output:?}");
    assert_eq!(fs::read(&path).unwrap(), first);
    assert_eq!(siblings(&sandbox).len(), 1, "a second backup");
    // A later install without --telemetry leaves the variables.
    ok(project(&sandbox, "install", &[]));
    assert_eq!(fs::read(&path).unwrap(), first);
}

/// `--dry-run` prints the diff and writes nothing, for install and uninstall.
#[test]
fn telemetry_dry_run_writes_nothing() {
    let sandbox = Sandbox::new();
    let diff = stdout(&ok(project(
        &sandbox,
        "install",
        &["--telemetry", "--dry-run"],
    )));
    assert!(
        diff.contains(&format!(
            "+    \"OTEL_EXPORTER_OTLP_ENDPOINT\": \"{DEFAULT_ENDPOINT}\""
        )),
        "{diff}"
    );
    assert!(!sandbox.path("project/.claude").exists());

    let path = settings_path(&sandbox);
    let original = write_json(&path, &json!({"env": {"FOO": "bar"}}));
    let diff = stdout(&ok(project(
        &sandbox,
        "install",
        &[
            "--telemetry",
            "--dry-run",
            "--endpoint",
            "http://localhost:9000",
        ],
    )));
    assert!(
        diff.contains("+    \"OTEL_EXPORTER_OTLP_ENDPOINT\": \"http://localhost:9000\""),
        "{diff}"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), original);
    assert!(siblings(&sandbox).is_empty());

    ok(project(&sandbox, "install", &["--telemetry"]));
    let installed = fs::read_to_string(&path).unwrap();
    let diff = stdout(&ok(project(
        &sandbox,
        "uninstall",
        &["--telemetry", "--dry-run"],
    )));
    assert!(
        diff.contains("-    \"CLAUDE_CODE_ENABLE_TELEMETRY\": \"1\","),
        "{diff}"
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), installed);
}

/// A variable the user set to another value is refused with its name and value, the file
/// unchanged; one they set to ctrace's value stays theirs (uninstall keeps it); `--force`
/// takes the other over.
#[test]
fn a_variable_the_user_set_is_not_clobbered() {
    let sandbox = Sandbox::new();
    let path = settings_path(&sandbox);
    let original = write_json(
        &path,
        &json!({"env": {
            "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector.example:4318",
            "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=s3cret"
        }}),
    );
    let stderr = fails(project(&sandbox, "install", &["--telemetry"]));
    assert!(
        stderr.contains("/env/OTEL_EXPORTER_OTLP_ENDPOINT"),
        "{stderr}"
    );
    assert!(
        stderr.contains("https://collector.example:4318"),
        "{stderr}"
    );
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(fs::read_to_string(&path).unwrap(), original);
    assert!(siblings(&sandbox).is_empty());

    ok(project(&sandbox, "install", &["--telemetry", "--force"]));
    let env = read_json(&path)["env"].clone();
    assert_eq!(env["OTEL_EXPORTER_OTLP_ENDPOINT"], DEFAULT_ENDPOINT);
    assert_eq!(
        env[HEADERS], "x-api-key=s3cret",
        "a loopback install touched the user's headers"
    );
    let marked = marked(&env);
    assert!(!marked.contains(&"CLAUDE_CODE_ENABLE_TELEMETRY".to_owned()));
    assert!(marked.contains(&"OTEL_EXPORTER_OTLP_ENDPOINT".to_owned()));

    ok(project(&sandbox, "uninstall", &[]));
    assert_eq!(
        read_json(&path)["env"],
        json!({"CLAUDE_CODE_ENABLE_TELEMETRY": "1", "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=s3cret"}),
        "uninstall removed the user's own variables"
    );
}

/// Uninstall removes exactly what install added: `uninstall --telemetry` only the variables
/// (hooks kept), plain `uninstall` everything, back to the original bytes; a variable whose
/// value changed since install is left.
#[test]
fn uninstall_removes_exactly_what_was_added() {
    let sandbox = Sandbox::new();
    let path = settings_path(&sandbox);
    let original = write_json(
        &path,
        &json!({
            "env": {"FOO": "bar"},
            "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "say done"}]}]}
        }),
    );
    ok(project(&sandbox, "install", &["--telemetry"]));
    let hooks = read_json(&path)["hooks"].clone();
    let output = ok(project(&sandbox, "uninstall", &["--telemetry"]));
    assert!(
        stdout(&output).starts_with("removed ctrace's 5 telemetry variables from "),
        "{}",
        stdout(&output)
    );
    let settings = read_json(&path);
    assert_eq!(settings["env"], json!({"FOO": "bar"}));
    assert_eq!(
        settings["hooks"], hooks,
        "uninstall --telemetry touched hooks"
    );
    ok(project(&sandbox, "uninstall", &[]));
    assert_eq!(fs::read_to_string(&path).unwrap(), original);

    // Install and uninstall on a file without `env` leave no `env`.
    ok(project(&sandbox, "install", &["--telemetry"]));
    ok(project(&sandbox, "uninstall", &["--telemetry"]));
    ok(project(&sandbox, "install", &["--telemetry"]));
    let mut settings = read_json(&path);
    settings["env"]["OTEL_LOGS_EXPORTER"] = json!("console");
    write_json(&path, &settings);
    let output = ok(project(&sandbox, "uninstall", &[]));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("OTEL_LOGS_EXPORTER"),
        "no note about the variable left"
    );
    assert_eq!(
        read_json(&path)["env"],
        json!({"FOO": "bar", "OTEL_LOGS_EXPORTER": "console"})
    );
}

/// A non-loopback endpoint adds `Authorization=Bearer <token>`: from the store's serve.token,
/// or from `CTRACE_TOKEN` when set; none of them is an error that changes nothing; a loopback
/// endpoint again drops the header.
#[test]
fn a_remote_endpoint_sends_the_token() {
    let sandbox = Sandbox::new();
    let path = settings_path(&sandbox);
    let original = write_json(&path, &json!({"model": "opus"}));
    let remote = ["--telemetry", "--endpoint", "http://10.0.0.5:7317"];
    let stderr = fails(project(&sandbox, "install", &remote));
    assert!(stderr.contains("serve.token"), "{stderr}");
    assert!(stderr.contains("CTRACE_TOKEN"), "{stderr}");
    assert_eq!(fs::read_to_string(&path).unwrap(), original);

    let token = "0123456789abcdef".repeat(4);
    let token_file = write_token(&sandbox, &token);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let output = ok(project(&sandbox, "install", &remote));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(token_file.to_str().unwrap()),
        "the note does not say where the token came from: {stderr}"
    );
    assert!(stderr.contains("readable by you only"), "{stderr}");
    assert!(stderr.contains("do not commit"), "{stderr}");
    // The file and its backup hold the token (now or before): owner only.
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a settings file holding the token is private");
    let env = read_json(&path)["env"].clone();
    assert_eq!(env["OTEL_EXPORTER_OTLP_ENDPOINT"], "http://10.0.0.5:7317");
    assert_eq!(env[HEADERS], format!("Authorization=Bearer {token}"));
    assert!(marked(&env).contains(&HEADERS.to_owned()));

    let other = "f".repeat(64);
    let mut with_env = project(&sandbox, "install", &remote);
    with_env.env("CTRACE_TOKEN", &other);
    let output = with_env.output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    for entry in fs::read_dir(path.parent().unwrap()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("settings.json.bak-")
            && fs::read_to_string(entry.path()).unwrap().contains("Bearer")
        {
            let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name} holds a token and is not private");
        }
    }
    assert_eq!(
        read_json(&path)["env"][HEADERS],
        format!("Authorization=Bearer {other}")
    );

    ok(project(&sandbox, "install", &["--telemetry"]));
    let env = read_json(&path)["env"].clone();
    assert!(env.get(HEADERS).is_none(), "{env}");
    assert_eq!(env["OTEL_EXPORTER_OTLP_ENDPOINT"], DEFAULT_ENDPOINT);

    // A token file others may read is refused, as `ctrace serve` refuses it.
    let before = fs::read_to_string(&path).unwrap();
    fs::set_permissions(&token_file, fs::Permissions::from_mode(0o644)).unwrap();
    let stderr = fails(project(&sandbox, "install", &remote));
    assert!(stderr.contains("serve.token"), "{stderr}");
    assert_eq!(fs::read_to_string(&path).unwrap(), before);
}

/// Bad input is refused with the place named, and the file (and its directory) unchanged:
/// settings that are not JSON, `env` that is not an object, a marker that is not a string,
/// endpoints that are not a service's base http(s) URL, a `CTRACE_TOKEN` that cannot go into
/// a header, `--endpoint` or `--force` without `--telemetry`.
#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let sandbox = Sandbox::new();
    let path = settings_path(&sandbox);
    let cases: [(&str, &[&str], &str); 5] = [
        ("{\n  \"env\": {,}\n}\n", &["--telemetry"], "line 2"),
        ("{\"env\": [\"A=1\"]}", &["--telemetry"], "\"/env\""),
        ("{\"env\": \"A=1\"}", &["--telemetry"], "found a string"),
        (
            "{\"env\": {\"CTRACE_TELEMETRY_VARS\": 1}}",
            &["--telemetry"],
            "/env/CTRACE_TELEMETRY_VARS",
        ),
        (
            "{\"env\": {}}",
            &["--endpoint", "http://h:1"],
            "--telemetry",
        ),
    ];
    for (text, args, expected) in cases {
        write_text(&path, text);
        let stderr = fails(project(&sandbox, "install", args));
        assert!(stderr.contains(expected), "{text}: {stderr}");
        if !expected.starts_with("--") {
            assert!(stderr.contains(path.to_str().unwrap()), "{text}: {stderr}");
        }
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
        assert!(siblings(&sandbox).is_empty(), "{:?}", siblings(&sandbox));
    }

    let text = write_json(&path, &json!({"env": {"FOO": "bar"}}));
    for endpoint in [
        "127.0.0.1:7317",
        "ftp://127.0.0.1:7317",
        "http://",
        "http://127.0.0.1:7317/v1/logs",
        "http://127.0.0.1:7317/ingest/hook",
        "http://127.0.0.1:7317/?a=b",
        "http://127.0.0.1:7317 ",
    ] {
        let output = project(
            &sandbox,
            "install",
            &["--telemetry", "--endpoint", endpoint],
        )
        .output()
        .unwrap();
        assert_eq!(output.status.code(), Some(2), "{endpoint} accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--endpoint"), "{endpoint}: {stderr}");
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
    }

    let mut bad_token = project(
        &sandbox,
        "install",
        &["--telemetry", "--endpoint", "http://10.0.0.5:7317"],
    );
    bad_token.env("CTRACE_TOKEN", "a,b=c");
    let stderr = fails(bad_token);
    assert!(stderr.contains("CTRACE_TOKEN"), "{stderr}");
    assert!(!stderr.contains("a,b=c"), "the token was printed: {stderr}");
    assert_eq!(fs::read_to_string(&path).unwrap(), text);

    let stderr = fails(project(&sandbox, "install", &["--force"]));
    assert!(stderr.contains("--telemetry"), "{stderr}");
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    assert!(siblings(&sandbox).is_empty(), "{:?}", siblings(&sandbox));
}
