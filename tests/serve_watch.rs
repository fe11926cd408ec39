//! `ctrace serve` watches Claude Code's transcript directories (issue 16, transcript watcher
//! item): a transcript written under `$CLAUDE_CONFIG_DIR/projects` shows up in the store
//! without any hook, and grows as the file grows. Bounded polling waits only.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::io::Write;

use common::Sandbox;
use common::http::Server;

/// The transcript's record count in `/api/sessions` (0 when the session is not there yet).
fn transcript_records(sessions: &serde_json::Value, session: &str) -> u64 {
    sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["session"] == session)
        .and_then(|row| row["records"]["transcript"].as_u64())
        .unwrap_or(0)
}

/// Issue 16, transcript watcher item: lines appended to a new `*.jsonl` under
/// `<claude home>/projects/<project>/` are tailed into the store by the running service (no
/// hook names the file), and lines appended later are added too.
#[test]
fn transcripts_written_while_serving_are_captured() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let source = corpus.join(
        "claude-home/projects/claude-code-viewer-sample/1af7fc5e-8455-4414-9ccd-011d40f70b2a.jsonl",
    );
    let session = "1af7fc5e-8455-4414-9ccd-011d40f70b2a";
    let text = std::fs::read_to_string(&source).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    assert!(lines.len() > 10, "{} lines", lines.len());

    let sandbox = Sandbox::without_redaction();
    let claude = sandbox.path("claude");
    let projects = claude.join("projects");
    std::fs::create_dir_all(&projects).unwrap();
    let home = sandbox.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut command = sandbox.command(&["serve", "--bind", "127.0.0.1:0"]);
    command.env("CLAUDE_CONFIG_DIR", &claude).env("HOME", &home);
    let server = Server::spawn(command);

    // A project directory and a transcript made after the service started.
    let project = projects.join("-work-sample");
    std::fs::create_dir(&project).unwrap();
    let path = project.join(format!("{session}.jsonl"));
    let mut file = std::fs::File::create(&path).unwrap();
    for line in &lines[..10] {
        file.write_all(line.as_bytes()).unwrap();
    }
    file.flush().unwrap();
    server.wait_for("/api/sessions", |rows| {
        transcript_records(rows, session) == 10
    });

    for line in &lines[10..] {
        file.write_all(line.as_bytes()).unwrap();
    }
    file.flush().unwrap();
    let all = lines.len() as u64;
    server.wait_for("/api/sessions", |rows| {
        transcript_records(rows, session) == all
    });
}

/// Issue 16, transcript watcher item: with `--no-watch` the transcript directories are not
/// watched (a hook or `ctrace ingest` brings the lines in instead).
#[test]
fn no_watch_leaves_transcripts_alone() {
    let sandbox = Sandbox::new();
    let claude = sandbox.path("claude");
    let project = claude.join("projects").join("-p");
    std::fs::create_dir_all(&project).unwrap();
    let mut command = sandbox.command(&["serve", "--bind", "127.0.0.1:0", "--no-watch"]);
    command
        .env("CLAUDE_CONFIG_DIR", &claude)
        .env("HOME", sandbox.path("home"));
    let server = Server::spawn(command);
    let line = r#"{"type":"user","sessionId":"nw-1","uuid":"u1","message":{"role":"user","content":"hi"}}"#;
    std::fs::write(project.join("nw-1.jsonl"), format!("{line}\n")).unwrap();
    // A hook after the write: once its pass is done, a watcher would have had its chance.
    let hook = br#"{"hook_event_name":"UserPromptSubmit","session_id":"nw-2","prompt":"p"}"#;
    let response = server.request(
        "POST",
        "/ingest/hook",
        &[("Content-Type", "application/json")],
        hook,
    );
    assert_eq!(response.status, 200);
    server.wait_for("/api/sessions", |rows| {
        rows["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|row| row["session"] == "nw-2")
    });
    let rows = server.json("/api/sessions");
    assert_eq!(transcript_records(&rows, "nw-1"), 0, "{rows}");
}

/// Issue 16, transcript watcher item (startup scan): a transcript written while no service ran
/// is read in by the service's first pass; a restart reads nothing twice; and a transcript
/// directory made after the start is found and scanned.
#[test]
fn transcripts_from_before_the_start_are_captured_once() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let session = "1af7fc5e-8455-4414-9ccd-011d40f70b2a";
    let source = corpus.join(format!(
        "claude-home/projects/claude-code-viewer-sample/{session}.jsonl"
    ));
    let lines = std::fs::read_to_string(&source).unwrap().lines().count() as u64;

    let sandbox = Sandbox::without_redaction();
    let claude = sandbox.path("claude");
    let project = claude.join("projects/-work-sample");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::copy(&source, project.join(format!("{session}.jsonl"))).unwrap();
    // HOME's transcript directory does not exist yet.
    let home = sandbox.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let spawn = || {
        let mut command = sandbox.command(&["serve", "--bind", "127.0.0.1:0"]);
        command.env("CLAUDE_CONFIG_DIR", &claude).env("HOME", &home);
        Server::spawn(command)
    };
    let server = spawn();
    server.wait_for("/api/sessions", |rows| {
        transcript_records(rows, session) == lines
    });

    let late = home.join(".claude/projects/-work-late");
    std::fs::create_dir_all(&late).unwrap();
    let other = "4d5611e5-241a-462a-8d15-5122611a9569";
    let other_source = corpus.join(format!("claude-home/projects/spotter/{other}.jsonl"));
    let other_lines = std::fs::read_to_string(&other_source)
        .unwrap()
        .lines()
        .count() as u64;
    std::fs::copy(&other_source, late.join(format!("{other}.jsonl"))).unwrap();
    server.wait_for("/api/sessions", |rows| {
        transcript_records(rows, other) == other_lines
    });
    drop(server);

    let before = sandbox.cat(&[]).len() as u64;
    let server = spawn();
    // A hook after the restart: once it is folded, the pass that took the startup scan's
    // files (noted before the compactor started) is over too.
    let hook =
        br#"{"hook_event_name":"UserPromptSubmit","session_id":"after-restart","prompt":"p"}"#;
    let response = server.request(
        "POST",
        "/ingest/hook",
        &[("Content-Type", "application/json")],
        hook,
    );
    assert_eq!(response.status, 200, "{}", response.text());
    server.wait_for("/api/health", |health| {
        health["views_checkpoint"].as_u64() == Some(before + 1)
            && health["next_offset"].as_u64() == Some(before + 1)
    });
    let rows = server.json("/api/sessions");
    assert_eq!(transcript_records(&rows, session), lines, "read twice");
    assert_eq!(transcript_records(&rows, other), other_lines, "read twice");
}
