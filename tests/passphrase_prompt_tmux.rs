//! The passphrase prompt of encrypted exports, typed by a person in a terminal (issue 14,
//! "Encrypted exports"): under tmux, `export --passphrase` asks twice without echo and writes an
//! age file; `import` asks once and restores every record; two different entries are refused
//! and nothing is written. Skipped when tmux is not installed (`.ci/run` installs it).
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ctrace");
const SECRET: &str = "correct horse battery staple 42";

struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        let output = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("-f")
            .arg("/dev/null")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn screen(&self) -> String {
        String::from_utf8(self.run(&["capture-pane", "-p", "-t", "t"]).stdout).unwrap()
    }

    fn type_line(&self, text: &str) {
        self.run(&["send-keys", "-t", "t", "-l", text]);
        self.run(&["send-keys", "-t", "t", "Enter"]);
    }

    /// Waits until the screen has `count` lines starting with `what`; returns the screen.
    fn wait_for(&self, what: &str, count: usize) -> String {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if screen.lines().filter(|l| l.starts_with(what)).count() >= count {
                return screen;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what:?} (×{count}); screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
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
    if Command::new("tmux").arg("-V").output().is_err() {
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
    tmux.type_line(&format!(
        "{} --store {} export --passphrase -o {}; echo EXIT=$?",
        BIN,
        quote(&a),
        quote(&mismatch)
    ));
    tmux.wait_for("ctrace: passphrase:", 1);
    tmux.type_line(SECRET);
    tmux.wait_for("ctrace: passphrase (again):", 1);
    tmux.type_line("something else");
    let screen = tmux.wait_for("EXIT=", 1);
    assert!(screen.contains("the two passphrases differ"), "{screen}");
    assert!(!screen.contains("EXIT=0"), "{screen}");
    assert!(!mismatch.exists(), "a refused export left a file");

    // Export: asked twice, nothing echoed.
    tmux.type_line(&format!(
        "{} --store {} export --passphrase -o {}; echo EXIT=$?",
        BIN,
        quote(&a),
        quote(&archive)
    ));
    tmux.wait_for("ctrace: passphrase:", 2);
    tmux.type_line(SECRET);
    tmux.wait_for("ctrace: passphrase (again):", 2);
    tmux.type_line(SECRET);
    let screen = tmux.wait_for("EXIT=0", 1);
    assert!(
        !screen.contains(SECRET),
        "the passphrase was echoed:\n{screen}"
    );
    let sealed = std::fs::read(&archive).unwrap();
    assert!(sealed.starts_with(b"age-encryption.org/v1\n"));

    // Import: asked once; every record comes back.
    tmux.type_line(&format!(
        "{} --store {} import {}; echo EXIT=$?",
        BIN,
        quote(&b),
        quote(&archive)
    ));
    tmux.wait_for("ctrace: passphrase:", 3);
    tmux.type_line(SECRET);
    let screen = tmux.wait_for("EXIT=", 3);
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
