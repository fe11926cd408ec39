//! `ctrace hook` prints nothing, on stdout or stderr, and exits 0 when the store is read-only,
//! missing or not a directory (issue 14 item 12); the payload goes to a spool file that exists
//! only with its content (no empty `spool-*.wal`), and is read from there.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{BIN, Sandbox};

const PAYLOAD: &[u8] = br#"{"session_id":"quiet","hook_event_name":"Stop"}"#;

/// Spool files under `dir` (recursively).
fn spool_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(spool_files(&path));
        } else if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("spool-"))
        {
            out.push(path);
        }
    }
    out
}

fn assert_silent(output: &std::process::Output) {
    assert_eq!(output.status.code(), Some(0));
    assert!(
        output.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        output.stderr.is_empty(),
        "the hook printed on stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn no_empty_spool_files(sandbox: &Sandbox) {
    for file in spool_files(sandbox.root()) {
        assert!(
            fs::metadata(&file).unwrap().len() > 0,
            "empty spool file left: {}",
            file.display()
        );
    }
}

/// Issue 14 item 12: a store path that cannot exist (under a regular file): silent, and the
/// payload is in the fallback spool.
#[test]
fn missing_store_is_silent_and_spools() {
    let sandbox = Sandbox::new();
    fs::write(sandbox.path("file"), b"").unwrap();
    let store = sandbox.path("file/store");
    let output = sandbox
        .command_in(&store, &["hook"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(PAYLOAD)?;
            child.wait_with_output()
        })
        .unwrap();
    assert_silent(&output);
    let spooled = spool_files(&sandbox.tmp());
    assert_eq!(spooled.len(), 1, "the payload must be spooled in $TMPDIR");
    no_empty_spool_files(&sandbox);
}

/// Issue 14 item 12: a store whose `inbox`, `spool` and `logs` cannot be used (regular files
/// in their place): silent, and the payload is read back from the fallback spool once the
/// store is repaired.
#[test]
fn unusable_store_is_silent_and_nothing_is_lost() {
    let sandbox = Sandbox::new();
    fs::create_dir_all(sandbox.store()).unwrap();
    for name in ["inbox", "spool", "logs"] {
        fs::write(sandbox.store().join(name), b"").unwrap();
    }
    assert_silent(&sandbox.run_stdin(&["hook"], PAYLOAD));
    no_empty_spool_files(&sandbox);
    for name in ["inbox", "spool", "logs"] {
        fs::remove_file(sandbox.store().join(name)).unwrap();
    }
    let sessions = sandbox.sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["session"], "quiet");
}

/// Issue 14 item 12: a read-only store (a read-only bind mount in a private mount namespace;
/// skipped visibly where `unshare -m` cannot mount): silent, no empty spool file.
#[test]
fn read_only_store_is_silent() {
    let sandbox = Sandbox::new();
    sandbox.hook(br#"{"session_id":"first","hook_event_name":"Stop"}"#);
    let probe = Command::new("unshare")
        .args(["-m", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !probe {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "`unshare -m` is required under CI=true"
        );
        eprintln!("SKIP: `unshare -m` is not available");
        return;
    }
    let inner = sandbox.command(&[]);
    let mut command = Command::new("unshare");
    command.args([
        "-m",
        "sh",
        "-c",
        "mount --bind \"$S\" \"$S\" && mount -o remount,ro,bind \"$S\" \"$S\" && \
         exec \"$B\" --store \"$S\" hook",
    ]);
    for (key, value) in inner.get_envs() {
        if let Some(value) = value {
            command.env(key, value);
        }
    }
    let output = command
        .env("S", sandbox.store())
        .env("B", BIN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(PAYLOAD)?;
            child.wait_with_output()
        })
        .unwrap();
    assert_silent(&output);
    no_empty_spool_files(&sandbox);
    assert_eq!(spool_files(&sandbox.tmp()).len(), 1);
    assert_eq!(
        sandbox.sessions().len(),
        2,
        "the spooled payload is read back"
    );
}
