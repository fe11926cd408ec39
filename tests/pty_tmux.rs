//! End to end under tmux (issue 3, acceptance 2): record a real interactive `bash` that prints
//! coloured output, runs a full-screen program (`less`) and is resized; replay the session in a
//! second tmux window of the final size; the `capture-pane` screens (with colours) match.
//! Skipped when tmux is not installed.
use std::path::Path;
use std::process::Command;

mod common;

use common::tmux::Tmux;

const BIN: &str = env!("CARGO_BIN_EXE_ctrace");

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

#[test]
fn replay_in_a_second_window_shows_the_same_screen() {
    if !common::tmux::available() {
        eprintln!("SKIP: tmux is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let recorded = dir.path().join("recorded.done");
    let replayed = dir.path().join("replayed.done");
    let tmux = Tmux {
        socket: dir.path().join("tmux.sock"),
    };
    let bin = shell_quote(Path::new(BIN));
    let store_arg = shell_quote(&store);
    let record = format!(
        "{bin} --store {store_arg} record -q -- env PS1='$ ' bash --norc --noprofile; touch {}; sleep 600",
        shell_quote(&recorded)
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-x",
        "80",
        "-y",
        "24",
        "-s",
        "rec",
        &record,
    ]);
    // capture-pane trims the space after `$`.
    tmux.wait_for("the prompt", || {
        tmux.capture("rec").trim_start().starts_with('$')
    });
    // Resize first, then clear: the rest is drawn at the final size in both windows.
    tmux.run(&["resize-window", "-t", "rec", "-x", "100", "-y", "30"]);
    tmux.send("rec", "stty size");
    // The recorder resizes its PTY when its SIGWINCH is handled, which may come after this
    // `stty` ran on a busy machine: asked again every 2 s.
    let mut polls = 0;
    tmux.wait_for("the new size", || {
        polls += 1;
        if polls % 20 == 0 {
            tmux.send("rec", "stty size");
        }
        tmux.capture("rec").contains("30 100")
    });
    tmux.send("rec", "clear");
    tmux.send(
        "rec",
        r"for i in 1 2 3 4 5 6; do printf '\e[3%dmcolour %d\e[0m \e[1;4%dmbold on bg\e[0m\n' $i $i $i; done",
    );
    tmux.wait_for("coloured output", || {
        tmux.capture("rec").contains("colour 6")
    });
    tmux.send("rec", "seq 1 200 | less");
    tmux.wait_for("less", || tmux.capture("rec").contains("\n29\n"));
    tmux.run(&["send-keys", "-t", "rec", "q"]);
    tmux.wait_for("less to quit", || !tmux.capture("rec").contains("\n29\n"));
    tmux.send("rec", "printf '\\e[7mdone\\e[0m\\n'");
    tmux.wait_for("done", || tmux.capture("rec").contains("done"));
    tmux.send("rec", "exit");
    tmux.wait_for("the recording to end", || recorded.exists());
    let recorded_screen = tmux.capture("rec");

    let sessions = Command::new(BIN)
        .arg("--store")
        .arg(&store)
        .args(["sessions", "--json"])
        .output()
        .unwrap();
    let session: serde_json::Value = serde_json::from_slice(&sessions.stdout).unwrap();
    assert_eq!(session["status"], "ended", "{session}");
    let id = session["session"].as_str().unwrap().to_owned();
    let cat = Command::new(BIN)
        .arg("--store")
        .arg(&store)
        .args(["cat", "--json", "--source", "pty"])
        .output()
        .unwrap();
    let cat = String::from_utf8(cat.stdout).unwrap();
    assert!(
        cat.lines()
            .any(|l| l.contains("\"resize\"") && l.contains("\"width\":100")),
        "no resize record"
    );

    let replay = format!(
        "{bin} --store {store_arg} replay --speed 4 --idle-limit 0.2 {id}; touch {}; sleep 600",
        shell_quote(&replayed)
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-x",
        "100",
        "-y",
        "30",
        "-s",
        "play",
        &replay,
    ]);
    tmux.wait_for("the replay to end", || replayed.exists());
    let replayed_screen = tmux.capture("play");
    assert!(recorded_screen.contains("colour 6"), "{recorded_screen}");
    assert_eq!(
        replayed_screen, recorded_screen,
        "replayed screen differs from the recorded one"
    );
}
