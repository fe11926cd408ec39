//! `ctrace record` (issue 3) without a terminal on stdin: exit statuses, the child killed, the
//! recorder killed with SIGKILL (store consistent, session `unfinished`), SIGTERM forwarded,
//! and inbox files rolled so a long recording is sealed while it runs.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers"
)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ctrace");

fn ctrace(store: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--store")
        .arg(store)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `(session, status)` of every session.
fn sessions(store: &Path) -> Vec<(String, String)> {
    let output = ctrace(store, &["sessions", "--json"]);
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                v["session"].as_str().unwrap().to_owned(),
                v["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The PTY records of the store as `(kind, offset is set, body)`.
fn pty_records(store: &Path) -> Vec<(String, bool, serde_json::Value)> {
    let output = ctrace(store, &["cat", "--json", "--source", "pty"]);
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let kind = v["body"]["kind"].as_str().unwrap_or_default().to_owned();
            (kind, !v["offset"].is_null(), v["body"].clone())
        })
        .collect()
}

fn assert_verify_clean(store: &Path) {
    let verify = ctrace(store, &["verify"]);
    assert!(
        verify.status.success(),
        "verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[test]
fn exit_status_and_records_of_a_finished_command() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let output = ctrace(
        &store,
        &[
            "record",
            "--",
            "bash",
            "-c",
            "printf '\\e[31mred\\e[0m \\xff\\xfe \\e[' ; echo \"$CTRACE_PTY_SESSION\"; exit 7",
        ],
    );
    assert_eq!(output.status.code(), Some(7));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let [(session, status)] = sessions(&store).try_into().unwrap();
    assert_eq!(status, "ended");
    assert!(
        stdout.contains(&session),
        "child saw CTRACE_PTY_SESSION: {stdout}"
    );
    let records = pty_records(&store);
    assert_eq!(records.first().unwrap().0, "start");
    let start = &records.first().unwrap().2;
    assert!(start["command"].as_str().unwrap().starts_with("bash -c"));
    assert!(start["width"].is_u64() && start["height"].is_u64());
    assert!(start["cwd"].is_string());
    let exit = &records.last().unwrap().2;
    assert_eq!(records.last().unwrap().0, "exit");
    assert_eq!(exit["status"], 7);
    // Output bytes (not UTF-8, a truncated escape) are replayed exactly as printed.
    let replay = ctrace(&store, &["replay", "--no-timing", &session]);
    assert!(replay.status.success());
    assert_eq!(replay.stdout, output.stdout);
    assert_verify_clean(&store);
}

#[test]
fn a_missing_command_exits_127_and_a_killed_child_128_plus_signal() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let missing = ctrace(&store, &["record", "--", "ctrace-no-such-command-here"]);
    assert_eq!(missing.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("command not found"));
    let killed = ctrace(&store, &["record", "-q", "--", "bash", "-c", "kill -9 $$"]);
    assert_eq!(killed.status.code(), Some(137));
    let records = pty_records(&store);
    assert_eq!(records.last().unwrap().2["status"], 137);
    let [(_, status)] = sessions(&store).try_into().unwrap();
    assert_eq!(status, "ended");
    assert_verify_clean(&store);
}

/// Starts `record -- bash -c SCRIPT` and waits until its stdout shows `ready`.
fn start_recorder(store: &Path, script: &str) -> std::process::Child {
    let mut child = Command::new(BIN)
        .arg("--store")
        .arg(store)
        .args(["record", "-q", "--", "bash", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("ready") {
        let n = stdout.read(&mut buffer).unwrap();
        assert!(
            n > 0,
            "recorder ended early: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buffer[..n]);
    }
    // Keep draining in the background so the recorder never blocks on a full pipe.
    std::thread::spawn(move || while stdout.read(&mut buffer).is_ok_and(|n| n > 0) {});
    child
}

#[test]
fn sigkill_of_the_recorder_leaves_a_consistent_store_and_an_unfinished_session() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut recorder = start_recorder(&store, "echo ready; sleep 30");
    // Killed once `ready` is in the inbox (flushed within 100 ms, unless the machine is busy).
    let deadline = Instant::now() + Duration::from_secs(120);
    while !pty_records(&store)
        .iter()
        .any(|(kind, _, body)| kind == "output" && body.to_string().contains("ready"))
    {
        assert!(Instant::now() < deadline, "`ready` never recorded");
        std::thread::sleep(Duration::from_millis(50));
    }
    let [(session, status)] = sessions(&store).try_into().unwrap();
    assert_eq!(status, "recording");
    recorder.kill().unwrap();
    recorder.wait().unwrap();
    let [(again, status)] = sessions(&store).try_into().unwrap();
    assert_eq!(again, session);
    assert_eq!(status, "unfinished");
    let records = pty_records(&store);
    assert_eq!(records.first().unwrap().0, "start");
    assert!(
        records
            .iter()
            .all(|(kind, sealed, _)| kind != "exit" && *sealed)
    );
    let replay = ctrace(&store, &["replay", "--no-timing", &session]);
    assert!(String::from_utf8_lossy(&replay.stdout).contains("ready"));
    assert_verify_clean(&store);
}

#[test]
fn sigterm_is_forwarded_to_the_child() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let recorder = start_recorder(&store, "echo ready; sleep 30");
    let pid = rustix::process::Pid::from_raw(i32::try_from(recorder.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let output = recorder.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(128 + 15));
    let [(_, status)] = sessions(&store).try_into().unwrap();
    assert_eq!(status, "ended");
}

#[test]
fn a_long_recording_is_sealed_while_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let stop = dir.path().join("stop");
    // Ticks until the test says stop, so a slow machine only makes it run longer.
    let script = format!(
        "echo ready; i=0; while [ ! -e '{}' ]; do i=$((i+1)); echo tick $i; sleep 1; done",
        stop.display()
    );
    let mut recorder = start_recorder(&store, &script);
    let started = Instant::now();
    // The inbox file is rolled every ROLL_AFTER (5 s) and sealed by the recorder: poll for it.
    let deadline = started + Duration::from_secs(120);
    loop {
        let records = pty_records(&store);
        if records.iter().any(|(_, sealed, _)| *sealed) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nothing sealed after {:?}: {records:?}",
            started.elapsed()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        recorder.try_wait().unwrap().is_none(),
        "the recording ended"
    );
    let [(_, status)] = sessions(&store).try_into().unwrap();
    assert_eq!(status, "recording");
    std::fs::write(&stop, b"").unwrap();
    let output = recorder.wait_with_output().unwrap();
    assert!(output.status.success());
    let [(session, status)] = sessions(&store).try_into().unwrap();
    assert_eq!(status, "ended");
    let replay = ctrace(&store, &["replay", "--no-timing", &session]);
    let text = String::from_utf8_lossy(&replay.stdout);
    for i in 1..=5 {
        assert!(text.contains(&format!("tick {i}\r\n")), "{text}");
    }
    assert_verify_clean(&store);
}
