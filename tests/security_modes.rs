//! File modes (issue 14 item 7): under the usual umask 022, every file ctrace creates in the
//! store is 0600 and every directory 0700, checked by walking the store after every command;
//! a store directory made by hand with mode 0755 is tightened to 0700.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::Sandbox;

/// Entries under `dir` whose group or other permission bits are set: `(path, mode)`.
fn loose_entries(dir: &Path) -> Vec<(PathBuf, u32)> {
    let mut out = Vec::new();
    let meta = fs::symlink_metadata(dir).unwrap();
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        out.push((dir.to_path_buf(), mode));
    }
    if meta.is_dir() {
        for entry in fs::read_dir(dir).unwrap() {
            out.extend(loose_entries(&entry.unwrap().path()));
        }
    }
    out
}

/// Runs `ctrace ARGS` with umask 022 (as a user's shell would), asserts success, then walks
/// the store.
fn run_and_walk(sandbox: &Sandbox, args: &[&str], stdin: Option<&[u8]>) {
    let mut command = with_umask_022(&sandbox.command(args));
    let output = match stdin {
        Some(input) => {
            use std::io::Write;
            let mut child = command
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(input).unwrap();
            child.wait_with_output().unwrap()
        }
        None => command.output().unwrap(),
    };
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let loose = loose_entries(&sandbox.store());
    assert!(
        loose.is_empty(),
        "after `ctrace {}`, group/other may access: {loose:#?}",
        args.join(" ")
    );
}

/// The same command run through `sh -c 'umask 022; exec …'`, with the same environment.
fn with_umask_022(inner: &std::process::Command) -> std::process::Command {
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg("umask 022 && exec \"$0\" \"$@\"")
        .arg(inner.get_program())
        .args(inner.get_args())
        .current_dir(sandbox_dir(inner))
        .stdin(std::process::Stdio::null());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command
}

fn sandbox_dir(inner: &std::process::Command) -> PathBuf {
    inner.get_current_dir().unwrap().to_path_buf()
}

/// Issue 14 item 7: the store after every command holds only user-only files and directories.
#[test]
fn every_command_leaves_user_only_modes() {
    let sandbox = Sandbox::new();
    let transcripts = sandbox.path("projects/p");
    fs::create_dir_all(&transcripts).unwrap();
    fs::write(
        transcripts.join("s2.jsonl"),
        br#"{"type":"user","sessionId":"s2","uuid":"u1","timestamp":"2026-01-01T00:00:00Z","message":{"role":"user","content":"hello modes"}}
"#,
    )
    .unwrap();
    let archive = sandbox.path("out.tar.zst");
    let archive = archive.to_str().unwrap();
    let hook = br#"{"session_id":"s1","hook_event_name":"UserPromptSubmit","prompt":"hello"}"#;
    run_and_walk(&sandbox, &["hook"], Some(hook));
    run_and_walk(&sandbox, &["ingest", transcripts.to_str().unwrap()], None);
    for args in [
        &["sessions"][..],
        &["cat"],
        &["stats"],
        &["compact"],
        &["reindex"],
        &["search", "hello"],
        &["cost"],
        &["export", "-o", archive],
        &["import", archive],
        &["gc"],
        &["verify"],
    ] {
        run_and_walk(&sandbox, args, None);
    }
    let exported = fs::metadata(archive).unwrap().permissions().mode() & 0o777;
    assert_eq!(exported, 0o600, "the export archive is readable by others");
    // `record` needs no terminal for a command that exits at once.
    let record = with_umask_022(&sandbox.command(&["record", "--quiet", "--", "true"]))
        .output()
        .unwrap();
    if record.status.success() {
        assert!(
            loose_entries(&sandbox.store()).is_empty(),
            "after `ctrace record`"
        );
    } else {
        eprintln!(
            "SKIP record: {}",
            String::from_utf8_lossy(&record.stderr).trim()
        );
    }
}

/// Issue 14 item 7: a store directory created by hand with mode 0755 (and a 0755
/// subdirectory) is tightened to 0700 by the next command.
#[test]
fn existing_loose_store_is_tightened() {
    let sandbox = Sandbox::new();
    sandbox.hook(br#"{"session_id":"s1","hook_event_name":"Stop"}"#);
    sandbox.ok(&["compact"]);
    for dir in ["", "inbox", "segments", "views", "logs"] {
        let path = sandbox.store().join(dir);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    sandbox.ok(&["cost"]);
    let loose = loose_entries(&sandbox.store());
    assert!(loose.is_empty(), "not tightened: {loose:#?}");
}
