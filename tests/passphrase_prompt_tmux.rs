//! The passphrase prompt of encrypted exports, typed by a person in a terminal (issue 14,
//! "Encrypted exports"): under tmux, `export --passphrase` asks twice without echo and writes an
//! age file; `import` asks once and restores every record; two different entries are refused
//! and nothing is written. Skipped when tmux is not installed (`.ci/run` installs it).
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers"
)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

mod common;

use common::tmux::Tmux;

const BIN: &str = env!("CARGO_BIN_EXE_ctrace");
const SECRET: &str = "correct horse battery staple 42";

/// Waits until the plain screen has `count` lines starting with `what`; returns the screen.
fn wait_lines(tmux: &Tmux, what: &str, count: usize) -> String {
    let mut screen = String::new();
    tmux.wait_for(&format!("{what:?} ×{count}"), || {
        screen = tmux.text("t");
        screen.lines().filter(|l| l.starts_with(what)).count() >= count
    });
    screen
}

/// Waits until the pane's terminal has echo off: the prompt is written before echo is turned
/// off, so typing as soon as it shows could be echoed on a busy machine.
fn wait_echo_off(tmux: &Tmux) {
    let tty = String::from_utf8(
        tmux.run(&["display", "-p", "-t", "t", "#{pane_tty}"])
            .stdout,
    )
    .unwrap();
    let tty = tty.trim().to_owned();
    tmux.wait_for("echo off", || {
        let out = Command::new("stty").args(["-F", &tty, "-a"]).output();
        out.is_ok_and(|out| {
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .any(|flag| flag == "-echo")
        })
    });
}

/// Types `text` (and Enter) at a passphrase prompt, once echo is off.
fn type_secret(tmux: &Tmux, text: &str) {
    wait_echo_off(tmux);
    tmux.send("t", text);
}

fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

fn ctrace(store: &Path, args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .arg("--store")
        .arg(store)
        .args(args)
        .env_remove("CTRACE_PASSPHRASE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "ctrace {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn passphrase_is_asked_twice_without_echo_and_imports_back() {
    if !common::tmux::available() {
        eprintln!("SKIP: tmux is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    for n in 0..20 {
        let payload = format!(
            r#"{{"session_id":"prompt-s","hook_event_name":"PostToolUse","tool_name":"Bash","n":{n}}}"#
        );
        ctrace(&a, &["hook"], payload.as_bytes());
    }
    ctrace(&a, &["compact"], b"");
    let archive = dir.path().join("out.tar.zst.age");
    let mismatch = dir.path().join("mismatch.tar.zst.age");
    let b = dir.path().join("b");
    let tmux = Tmux {
        socket: dir.path().join("tmux.sock"),
    };
    let shell = format!(
        "env -u CTRACE_PASSPHRASE TMPDIR={} PS1='$ ' bash --norc --noprofile",
        quote(dir.path())
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "160",
        "-y",
        "50",
        &shell,
    ]);

    // Two different entries: refused, no file.
    tmux.send(
        "t",
        &format!(
            "{} --store {} export --passphrase -o {}; echo EXIT=$?",
            BIN,
            quote(&a),
            quote(&mismatch)
        ),
    );
    wait_lines(&tmux, "ctrace: passphrase:", 1);
    type_secret(&tmux, SECRET);
    wait_lines(&tmux, "ctrace: passphrase (again):", 1);
    type_secret(&tmux, "something else");
    let screen = wait_lines(&tmux, "EXIT=", 1);
    assert!(screen.contains("the two passphrases differ"), "{screen}");
    assert!(!screen.contains("EXIT=0"), "{screen}");
    assert!(!mismatch.exists(), "a refused export left a file");

    // Export: asked twice, nothing echoed.
    tmux.send(
        "t",
        &format!(
            "{} --store {} export --passphrase -o {}; echo EXIT=$?",
            BIN,
            quote(&a),
            quote(&archive)
        ),
    );
    wait_lines(&tmux, "ctrace: passphrase:", 2);
    type_secret(&tmux, SECRET);
    wait_lines(&tmux, "ctrace: passphrase (again):", 2);
    type_secret(&tmux, SECRET);
    let screen = wait_lines(&tmux, "EXIT=0", 1);
    assert!(
        !screen.contains(SECRET),
        "the passphrase was echoed:\n{screen}"
    );
    let sealed = std::fs::read(&archive).unwrap();
    assert!(sealed.starts_with(b"age-encryption.org/v1\n"));

    // Import: asked once; every record comes back.
    tmux.send(
        "t",
        &format!(
            "{} --store {} import {}; echo EXIT=$?",
            BIN,
            quote(&b),
            quote(&archive)
        ),
    );
    wait_lines(&tmux, "ctrace: passphrase:", 3);
    type_secret(&tmux, SECRET);
    let screen = wait_lines(&tmux, "EXIT=", 3);
    assert_eq!(
        screen.lines().filter(|l| l.contains("EXIT=0")).count(),
        2,
        "{screen}"
    );
    assert!(
        !screen.contains(SECRET),
        "the passphrase was echoed:\n{screen}"
    );
    let count = |store: &Path| {
        String::from_utf8(ctrace(store, &["cat", "--json"], b"").stdout)
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(count(&b), 20);
    assert_eq!(count(&b), count(&a));
}
