//! `ctrace install` / `ctrace uninstall` against real settings files, run as a subprocess with
//! `HOME`, `CLAUDE_CONFIG_DIR` and `CTRACE_HOME` inside a temporary directory. `PATH` points at an
//! empty directory (or at a fake `claude`) so the result does not depend on the machine.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ctrace::cli::install::{HOOK_EVENTS, NOT_INSTALLED, is_ctrace_command};
use serde_json::{Value, json};
use tempfile::TempDir;

/// A sandbox: `home/`, `store/`, `bin/` (on `PATH`) and `project/` inside one temp dir.
struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["home", "store", "bin", "project"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
        }
        Self { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn project_settings(&self) -> PathBuf {
        self.path("project/.claude/settings.json")
    }

    /// `ctrace ARGS` with the sandbox's environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ctrace"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.path("home"))
            .env("CTRACE_HOME", self.path("store"))
            .env("PATH", self.path("bin"))
            .env_remove("CLAUDE_CONFIG_DIR")
            .env_remove("XDG_DATA_HOME")
            .env_remove("USERPROFILE");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs and asserts success.
    fn ok(&self, args: &[&str]) -> Output {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "ctrace {args:?} failed: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// `install --project <project>` plus `extra`.
    fn install_project(&self, extra: &[&str]) -> Output {
        let project = self.path("project");
        let mut args = vec!["install", "--project", project.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.ok(&args)
    }

    fn uninstall_project(&self) -> Output {
        let project = self.path("project");
        self.ok(&["uninstall", "--project", project.to_str().unwrap()])
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
}

fn write_json(path: &Path, value: &Value) -> String {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let text = serde_json::to_string_pretty(value).unwrap() + "\n";
    fs::write(path, &text).unwrap();
    text
}

/// Files in `dir` whose names start with `settings.json.bak-`.
fn backups(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("settings.json.bak-")
        })
        .collect();
    found.sort();
    found
}

fn installed_events() -> Vec<&'static str> {
    HOOK_EVENTS
        .iter()
        .copied()
        .filter(|e| !NOT_INSTALLED.contains(e))
        .collect()
}

fn is_tool_event(event: &str) -> bool {
    matches!(
        event,
        "PreToolUse"
            | "PostToolUse"
            | "PostToolUseFailure"
            | "PermissionRequest"
            | "PermissionDenied"
    )
}

/// The ctrace handlers (their commands) in one event's groups.
fn ctrace_commands(groups: &Value) -> Vec<String> {
    groups
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["hooks"].as_array().unwrap().iter())
        .filter_map(|h| h["command"].as_str())
        .filter(|c| is_ctrace_command(c))
        .map(str::to_owned)
        .collect()
}

/// Asserts `command` is `<this test's ctrace binary> hook`.
fn assert_runs_this_binary(command: &str) {
    let program = command.strip_suffix(" hook");
    assert!(
        program.is_some(),
        "command {command:?} does not end with ` hook`"
    );
    let program = program.unwrap_or_default();
    let program = program.trim_matches('\'');
    let expected = fs::canonicalize(env!("CARGO_BIN_EXE_ctrace")).unwrap();
    assert_eq!(
        fs::canonicalize(program).unwrap(),
        expected,
        "command {command:?}"
    );
}

/// Whether this build's serde_json keeps object keys in insertion order.
fn keys_keep_order() -> bool {
    let probe: Value = serde_json::from_str(r#"{"b": 1, "a": 2}"#).unwrap();
    probe.as_object().unwrap().keys().next().map(String::as_str) == Some("b")
}

#[test]
fn fresh_install_creates_valid_json_with_every_event() {
    let sandbox = Sandbox::new();
    let output = sandbox.install_project(&[]);
    let events = installed_events();
    let summary = stdout(&output);
    assert!(
        summary.starts_with(&format!(
            "installed ctrace for {} hook events in ",
            events.len()
        )),
        "{summary}"
    );
    assert!(summary.contains("(new file)"), "{summary}");

    let settings = read_json(&sandbox.project_settings());
    let hooks = settings["hooks"].as_object().unwrap();
    assert_eq!(hooks.len(), events.len());
    for event in &events {
        let groups = hooks[*event]
            .as_array()
            .unwrap_or_else(|| panic!("{event} missing"));
        assert_eq!(groups.len(), 1, "{event}");
        let group = groups[0].as_object().unwrap();
        if is_tool_event(event) {
            assert_eq!(group["matcher"], "*", "{event}");
        } else {
            assert!(!group.contains_key("matcher"), "{event} has a matcher");
        }
        let handlers = group["hooks"].as_array().unwrap();
        assert_eq!(handlers.len(), 1);
        assert_eq!(handlers[0]["type"], "command");
        assert_runs_this_binary(handlers[0]["command"].as_str().unwrap());
    }
    for event in NOT_INSTALLED {
        assert!(!hooks.contains_key(*event), "{event} installed");
    }
    assert!(
        backups(&sandbox.path("project/.claude")).is_empty(),
        "backup of a new file"
    );
}

#[test]
fn user_settings_follow_claude_config_dir_then_home() {
    let sandbox = Sandbox::new();
    sandbox.ok(&["install", "--user"]);
    let home_settings = sandbox.path("home/.claude/settings.json");
    assert!(read_json(&home_settings)["hooks"]["Stop"].is_array());

    let config_dir = sandbox.path("config");
    let output = sandbox
        .command(&["install"])
        .env("CLAUDE_CONFIG_DIR", &config_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(read_json(&config_dir.join("settings.json"))["hooks"]["Stop"].is_array());
}

#[test]
fn merge_keeps_other_keys_and_the_users_own_hooks() {
    let sandbox = Sandbox::new();
    let path = sandbox.project_settings();
    let user_group = json!({"matcher": "Bash", "hooks": [{"type": "command", "command": "echo mine", "timeout": 5}]});
    let original = json!({
        "permissions": {"allow": ["Bash(npm test)"], "deny": []},
        "model": "opus",
        "hooks": {
            "PreToolUse": [user_group.clone()],
            "Stop": [{"hooks": [{"type": "command", "command": "say done"}]}]
        },
        "env": {"FOO": "bar"}
    });
    write_json(&path, &original);

    sandbox.install_project(&[]);
    let settings = read_json(&path);
    for key in ["permissions", "model", "env"] {
        assert_eq!(settings[key], original[key], "{key} changed");
    }
    let pre = settings["hooks"]["PreToolUse"].as_array().unwrap();
    assert_eq!(pre.len(), 2);
    assert_eq!(
        pre[0], user_group,
        "the user's PreToolUse group moved or changed"
    );
    assert_eq!(pre[1]["matcher"], "*");
    assert_runs_this_binary(pre[1]["hooks"][0]["command"].as_str().unwrap());
    let stop = settings["hooks"]["Stop"].as_array().unwrap();
    assert_eq!(stop[0], original["hooks"]["Stop"][0]);
    assert_eq!(ctrace_commands(&settings["hooks"]["Stop"]).len(), 1);

    if keys_keep_order() {
        let keys: Vec<&str> = settings
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["permissions", "model", "hooks", "env"]);
        let events: Vec<&str> = settings["hooks"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .take(2)
            .collect();
        assert_eq!(events, ["PreToolUse", "Stop"]);
    }
}

#[test]
fn second_install_is_byte_identical_and_makes_no_backup() {
    let sandbox = Sandbox::new();
    let path = sandbox.project_settings();
    write_json(&path, &json!({"model": "sonnet"}));
    sandbox.install_project(&[]);
    let first = fs::read(&path).unwrap();
    assert_eq!(backups(&sandbox.path("project/.claude")).len(), 1);

    let output = sandbox.install_project(&[]);
    assert_eq!(
        fs::read(&path).unwrap(),
        first,
        "second install changed the file"
    );
    assert!(
        stdout(&output).contains("already installed"),
        "{}",
        stdout(&output)
    );
    assert_eq!(
        backups(&sandbox.path("project/.claude")).len(),
        1,
        "second backup made"
    );
}

#[test]
fn an_existing_ctrace_entry_is_updated_in_place() {
    let sandbox = Sandbox::new();
    let path = sandbox.project_settings();
    let mine = json!({"hooks": [{"type": "command", "command": "mine"}]});
    write_json(
        &path,
        &json!({"hooks": {
            "PreToolUse": [
                mine.clone(),
                {"matcher": "*", "hooks": [{"type": "command", "command": "/old/place/ctrace hook"}]},
                mine.clone()
            ],
            "Stop": [
                {"hooks": [{"type": "command", "command": "'/old/ctrace' hook"}]},
                {"hooks": [{"type": "command", "command": "/other/ctrace hook --store /s"}]}
            ]
        }}),
    );
    sandbox.install_project(&[]);
    let settings = read_json(&path);
    let pre = settings["hooks"]["PreToolUse"].as_array().unwrap();
    assert_eq!(pre.len(), 3, "ctrace's group duplicated or moved");
    assert_eq!(pre[0], mine);
    assert_eq!(pre[2], mine);
    assert_runs_this_binary(pre[1]["hooks"][0]["command"].as_str().unwrap());
    let stop = ctrace_commands(&settings["hooks"]["Stop"]);
    assert_eq!(stop.len(), 1, "duplicate ctrace handlers kept: {stop:?}");
    assert_eq!(settings["hooks"]["Stop"].as_array().unwrap().len(), 1);
}

#[test]
fn uninstall_restores_the_users_hooks_exactly() {
    let sandbox = Sandbox::new();
    let path = sandbox.project_settings();
    let original = write_json(
        &path,
        &json!({
            "model": "opus",
            "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "echo mine"}]}]}
        }),
    );
    sandbox.install_project(&[]);
    assert_ne!(fs::read_to_string(&path).unwrap(), original);

    let output = sandbox.uninstall_project();
    assert!(
        stdout(&output).starts_with("removed ctrace from "),
        "{}",
        stdout(&output)
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), original);

    let output = sandbox.uninstall_project();
    assert!(
        stdout(&output).contains("not installed"),
        "{}",
        stdout(&output)
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), original);
}

#[test]
fn uninstall_drops_hooks_left_empty() {
    let sandbox = Sandbox::new();
    sandbox.install_project(&[]);
    sandbox.uninstall_project();
    assert_eq!(read_json(&sandbox.project_settings()), json!({}));
}

#[test]
fn dry_run_writes_nothing_and_prints_a_diff() {
    let sandbox = Sandbox::new();
    let output = sandbox.install_project(&["--dry-run"]);
    let diff = stdout(&output);
    assert!(diff.contains("+++ "), "{diff}");
    assert!(diff.contains("@@"), "{diff}");
    assert!(diff.contains("+    \"PreToolUse\": ["), "{diff}");
    assert!(
        !sandbox.path("project/.claude").exists(),
        "dry run created .claude/"
    );

    let path = sandbox.project_settings();
    let original = write_json(&path, &json!({"model": "opus"}));
    let diff = stdout(&sandbox.install_project(&["--dry-run"]));
    assert!(diff.contains("\"model\": \"opus\""), "{diff}");
    assert_eq!(fs::read_to_string(&path).unwrap(), original);
    assert!(backups(&sandbox.path("project/.claude")).is_empty());

    sandbox.install_project(&[]);
    let installed = fs::read_to_string(&path).unwrap();
    let project = sandbox.path("project");
    let output = sandbox.ok(&[
        "uninstall",
        "--dry-run",
        "--project",
        project.to_str().unwrap(),
    ]);
    assert!(
        stdout(&output).contains("-    \"PreToolUse\": ["),
        "{}",
        stdout(&output)
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), installed);
}

#[test]
fn invalid_json_is_an_error_and_leaves_the_file_alone() {
    let sandbox = Sandbox::new();
    let path = sandbox.project_settings();
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let broken = "{\n  \"model\": \"opus\",,\n}\n";
    fs::write(&path, broken).unwrap();
    let project = sandbox.path("project");
    for verb in ["install", "uninstall"] {
        let output = sandbox.run(&[verb, "--project", project.to_str().unwrap()]);
        assert!(!output.status.success(), "{verb} accepted invalid JSON");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(path.to_str().unwrap()), "{stderr}");
        assert!(stderr.contains("line 2"), "{stderr}");
        assert_eq!(fs::read_to_string(&path).unwrap(), broken);
        let entries: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(entries.len(), 1, "backup or temp file left behind");
    }
}

#[test]
fn hooks_of_the_wrong_shape_are_refused() {
    let sandbox = Sandbox::new();
    let path = sandbox.project_settings();
    let original = write_json(&path, &json!({"hooks": ["not", "an", "object"]}));
    let project = sandbox.path("project");
    let output = sandbox.run(&["install", "--project", project.to_str().unwrap()]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("/hooks"));
    assert_eq!(fs::read_to_string(&path).unwrap(), original);
}

#[test]
fn a_backup_holds_the_previous_content() {
    let sandbox = Sandbox::new();
    let path = sandbox.project_settings();
    let original = "{\"model\":\"opus\"}";
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, original).unwrap();
    let output = sandbox.install_project(&[]);
    let found = backups(&sandbox.path("project/.claude"));
    assert_eq!(found.len(), 1);
    assert_eq!(fs::read_to_string(&found[0]).unwrap(), original);
    assert!(stdout(&output).contains(&format!("(backup: {})", found[0].display())));

    sandbox.uninstall_project();
    assert_eq!(backups(&sandbox.path("project/.claude")).len(), 2);
}

#[test]
fn store_flag_goes_into_the_command_as_an_absolute_path() {
    let sandbox = Sandbox::new();
    let project = sandbox.path("project");
    sandbox.ok(&[
        "--store",
        "my store",
        "install",
        "--project",
        project.to_str().unwrap(),
    ]);
    let settings = read_json(&sandbox.project_settings());
    let commands = ctrace_commands(&settings["hooks"]["Stop"]);
    let expected_store = fs::canonicalize(sandbox.dir.path())
        .unwrap()
        .join("my store");
    let expected = format!(" hook --store '{}'", expected_store.display());
    assert!(
        commands[0].ends_with(&expected),
        "{commands:?} does not end with {expected}"
    );
}

#[test]
fn events_follow_the_claude_code_version() {
    let sandbox = Sandbox::new();
    let path = sandbox.project_settings();
    let mine = json!([{"hooks": [{"type": "command", "command": "mine"}]}]);
    write_json(&path, &json!({"hooks": {"StopFailure": mine.clone()}}));

    sandbox.install_project(&["--claude-version", "2.0.30"]);
    let old_events = [
        "PreToolUse",
        "PostToolUse",
        "Notification",
        "Stop",
        "SubagentStop",
        "PreCompact",
        "UserPromptSubmit",
        "SessionStart",
        "SessionEnd",
    ];
    let settings = read_json(&path);
    let hooks = settings["hooks"].as_object().unwrap();
    for event in old_events {
        assert_eq!(ctrace_commands(&hooks[event]).len(), 1, "{event}");
    }
    assert_eq!(hooks.len(), old_events.len() + 1, "{hooks:?}");
    assert_eq!(
        hooks["StopFailure"], mine,
        "the user's own StopFailure hook changed"
    );

    sandbox.install_project(&["--claude-version", "2.1.200"]);
    let settings = read_json(&path);
    assert_eq!(
        settings["hooks"].as_object().unwrap().len(),
        installed_events().len()
    );

    sandbox.install_project(&["--claude-version", "2.0.30"]);
    let settings = read_json(&path);
    let hooks = settings["hooks"].as_object().unwrap();
    assert_eq!(
        hooks.len(),
        old_events.len() + 1,
        "newer events not removed"
    );
    assert_eq!(hooks["StopFailure"], mine);
}

#[cfg(unix)]
#[test]
fn the_version_comes_from_claude_on_path() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    let fake = sandbox.path("bin/claude");
    fs::write(&fake, "#!/bin/sh\necho '1.0.50 (Claude Code)'\n").unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let output = sandbox.install_project(&[]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("Claude Code 1.0.50"));
    let settings = read_json(&sandbox.project_settings());
    let mut events: Vec<&str> = settings["hooks"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    events.sort_unstable();
    assert_eq!(
        events,
        [
            "Notification",
            "PostToolUse",
            "PreCompact",
            "PreToolUse",
            "Stop",
            "SubagentStop"
        ]
    );
}

#[cfg(unix)]
#[test]
fn a_symlinked_settings_file_stays_a_symlink() {
    let sandbox = Sandbox::new();
    let real = sandbox.path("dotfiles/settings.json");
    write_json(&real, &json!({"model": "opus"}));
    let link = sandbox.project_settings();
    fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    sandbox.install_project(&[]);
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(read_json(&real)["model"], "opus");
    assert!(read_json(&real)["hooks"]["Stop"].is_array());
}

#[test]
fn bad_usage_exits_2() {
    let sandbox = Sandbox::new();
    let missing = sandbox.path("no-such-project");
    let output = sandbox.run(&["install", "--project", missing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let project = sandbox.path("project");
    let output = sandbox.run(&["install", "--user", "--project", project.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let output = sandbox.run(&["install", "--claude-version", "two"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(!sandbox.path("home/.claude").exists());
}

/// Issue 14 item 19: a binary installed under another name recognises the exact command it
/// writes, so a second install adds no second copy and uninstall removes it.
#[test]
fn renamed_binary_recognises_its_own_entries() {
    let sandbox = Sandbox::new();
    let renamed = sandbox.path("bin/ct-dev");
    fs::copy(env!("CARGO_BIN_EXE_ctrace"), &renamed).unwrap();
    let project = sandbox.path("project");
    let install = |verb: &str| {
        let mut command = Command::new(&renamed);
        command
            .args([verb, "--project", project.to_str().unwrap()])
            .current_dir(sandbox.dir.path())
            .env("HOME", sandbox.path("home"))
            .env("CTRACE_HOME", sandbox.path("store"))
            .env("PATH", sandbox.path("bin"))
            .env_remove("CLAUDE_CONFIG_DIR");
        // A child another test thread forks while the copy is open holds its write descriptor
        // until that child execs: the kernel answers ETXTBSY for a moment (up to 30 s here, as
        // that child may wait for a CPU that long on a loaded machine).
        let mut tries = 0;
        let output = loop {
            match command.output() {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 1500 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other.unwrap(),
            }
        };
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    install("install");
    install("install");
    let settings = read_json(&sandbox.project_settings());
    for (event, groups) in settings["hooks"].as_object().unwrap() {
        let handlers: usize = groups
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["hooks"].as_array().map_or(0, Vec::len))
            .sum();
        assert_eq!(handlers, 1, "{event}: {groups}");
    }
    install("uninstall");
    let settings = read_json(&sandbox.project_settings());
    assert!(settings.get("hooks").is_none(), "{settings}");
}
