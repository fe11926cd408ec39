//! `ctrace ingest` and files it cannot or must not read (issue 14 items 10 and 17): a FIFO named
//! on the command line is refused without blocking, special files found in a walk are skipped
//! and listed, a path that vanished is refused while the rest is ingested, and the exit status
//! is 1 whenever a named or found file was refused.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a failed setup step should fail the test"
)]

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Sandbox;
use ctrace::config::Config;
use ctrace::ingest::Ingester;
use ctrace::log::Store;

const PAYLOAD: &str = r#"{"hook_event_name":"PreToolUse","session_id":"s1","tool_name":"Bash"}"#;

/// Runs `command` and kills it after 60 s, so a regression that blocks fails the test instead
/// of hanging the suite.
fn run_bounded(mut command: Command) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("ctrace ingest blocked for 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

fn good_file(sandbox: &Sandbox) -> std::path::PathBuf {
    let good = sandbox.path("in/hooks.ndjson");
    std::fs::create_dir_all(good.parent().unwrap()).unwrap();
    std::fs::write(&good, format!("{PAYLOAD}\n")).unwrap();
    good
}

#[test]
fn named_fifo_is_refused_without_blocking_and_the_rest_is_ingested() {
    let sandbox = Sandbox::new();
    let good = good_file(&sandbox);
    let fifo = sandbox.path("pipe.jsonl");
    mkfifo(&fifo);
    let output = run_bounded(sandbox.command(&[
        "ingest",
        "-q",
        fifo.to_str().unwrap(),
        good.to_str().unwrap(),
    ]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("pipe.jsonl") && stderr.contains("FIFO"),
        "{stderr}"
    );
    assert_eq!(
        sandbox.cat(&[]).len(),
        1,
        "the regular file was not ingested"
    );
}

#[test]
fn special_files_found_in_a_walk_are_skipped_and_listed() {
    let sandbox = Sandbox::new();
    let good = good_file(&sandbox);
    mkfifo(&sandbox.path("in/pipe.jsonl"));
    let dir = good.parent().unwrap();
    let output = run_bounded(sandbox.command(&["ingest", "-q", dir.to_str().unwrap()]));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("pipe.jsonl") && stdout.contains("FIFO"),
        "{stdout}"
    );
    assert_eq!(sandbox.cat(&[]).len(), 1);
}

#[test]
fn only_invalid_files_named_exits_1() {
    let sandbox = Sandbox::new();
    let cast = sandbox.path("bad.cast");
    std::fs::write(&cast, "not an asciicast\n").unwrap();
    let good = good_file(&sandbox);
    for paths in [vec![&cast], vec![&cast, &good]] {
        let mut args = vec!["ingest", "-q"];
        args.extend(paths.iter().map(|p| p.to_str().unwrap()));
        let output = sandbox.run(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("bad.cast"), "{stderr}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("refused 1"), "{stdout}");
    }
}

#[test]
fn a_path_that_vanished_is_refused_and_the_rest_ingested() {
    let sandbox = Sandbox::new();
    let good = good_file(&sandbox);
    let gone = sandbox.path("in/gone.jsonl");
    let store = Store::open(&sandbox.store(), Config::default()).unwrap();
    let mut lock = store.lock().unwrap();
    let mut ingester = Ingester::new(&mut lock).unwrap();
    ingester.ingest_paths(&[gone.clone(), good]).unwrap();
    let (summary, _) = ingester.finish().unwrap();
    assert_eq!(summary.hook_records, 1);
    let refused: Vec<_> = summary.skipped.iter().filter(|s| s.rejected).collect();
    assert_eq!(refused.len(), 1, "{:?}", summary.skipped);
    assert_eq!(refused[0].path, gone);
}
