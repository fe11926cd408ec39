//! A private tmux server for tests that drive programs as a person would (`send-keys`,
//! `capture-pane`); killed when dropped.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Whether tmux can run here (tests skip with a message otherwise; `.ci/run` installs it).
pub fn available() -> bool {
    Command::new("tmux").arg("-V").output().is_ok()
}

/// A tmux server on its own socket, without the user's configuration.
pub struct Tmux {
    /// The server's socket.
    pub socket: PathBuf,
}

impl Tmux {
    /// Runs a tmux command against this server; panics with tmux's stderr when it fails.
    pub fn run(&self, args: &[&str]) -> Output {
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

    /// The visible screen of `target`, with colour escapes.
    pub fn capture(&self, target: &str) -> String {
        String::from_utf8(self.run(&["capture-pane", "-p", "-e", "-t", target]).stdout).unwrap()
    }

    /// The visible screen of `target` as plain text (trailing spaces trimmed by tmux).
    pub fn text(&self, target: &str) -> String {
        String::from_utf8(self.run(&["capture-pane", "-p", "-t", target]).stdout).unwrap()
    }

    /// Types `keys` literally into `target`, then Enter.
    pub fn send(&self, target: &str, keys: &str) {
        self.run(&["send-keys", "-t", target, "-l", keys]);
        self.run(&["send-keys", "-t", target, "Enter"]);
    }

    /// Waits (60 s at most) until `done` holds; `what` names it in the failure.
    pub fn wait_for(&self, what: &str, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}"
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
