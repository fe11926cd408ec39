//! Issue 15, "Fidelity": hook payloads read from hook logs without a logger time only have the
//! time they were read (the log file's modification time). Such records are marked
//! `arrival_time` and never stretch a session: a session ingested with its hook logs and its
//! transcript spans the transcript's lines and the hooks that carry a logger time (`logged_at`),
//! not the day of the import.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers"
)]

mod common;

use common::Sandbox;
use serde_json::Value;

const SESSION: &str = "cfef384f-4359-49de-94d5-31dfae6a0925";

/// ns since the epoch of an RFC 3339 time.
fn ns(text: &str) -> u64 {
    let t = humantime::parse_rfc3339_weak(text.trim_end_matches('Z').split('+').next().unwrap())
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    u64::try_from(t.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()).unwrap()
}

#[test]
#[cfg_attr(
    corpus_missing,
    ignore = "needs the corpus: ../shared/corpus or CTRACE_CORPUS"
)]
fn a_session_with_hook_logs_keeps_the_transcripts_time_span() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let sandbox = Sandbox::new();
    // Copies: their modification time is now, months after the session.
    let mut files = Vec::new();
    for entry in std::fs::read_dir(corpus.join("hooks")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.starts_with("home-assistant-green-button--logs--") {
            let copy = sandbox.path(&name);
            std::fs::copy(&path, &copy).unwrap();
            files.push(copy);
        }
    }
    let transcript = sandbox.path("chat.jsonl");
    std::fs::copy(
        corpus.join("transcripts/home-assistant-green-button--logs--chat.derived.jsonl"),
        &transcript,
    )
    .unwrap();
    files.push(transcript.clone());
    assert!(files.len() >= 5, "the corpus's hook logs: {files:?}");

    // What the session really spans: its transcript lines and the hooks with a logger time.
    let mut times = Vec::new();
    for line in std::fs::read_to_string(&transcript).unwrap().lines() {
        let value: Value = serde_json::from_str(line).unwrap();
        if value["sessionId"] == SESSION
            && let Some(ts) = value["timestamp"].as_str()
        {
            times.push(ns(ts));
        }
    }
    let mut arrival_payloads = 0;
    for file in &files[..files.len() - 1] {
        let text = std::fs::read(file).unwrap();
        let text = String::from_utf8_lossy(&text);
        // The arrays hold lone surrogate escapes (see SOURCES.md): split without parsing them.
        for payload in text.split("\"session_id\"").skip(1) {
            if !payload.contains(SESSION) || payload.find(SESSION) > Some(50) {
                continue;
            }
            let end = payload.find("\"session_id\"").unwrap_or(payload.len());
            let payload = &payload[..end];
            match payload.split("\"logged_at\": \"").nth(1) {
                Some(rest) => times.push(ns(&rest[..rest.find('"').unwrap()])),
                None => arrival_payloads += 1,
            }
        }
    }
    assert!(
        arrival_payloads > 10,
        "payloads without a time: {arrival_payloads}"
    );
    let (first, last) = (*times.iter().min().unwrap(), *times.iter().max().unwrap());

    let paths: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
    sandbox.ingest(&paths);
    let sessions = sandbox.ok_stdout(&["sessions", "--json"]);
    let row: Value = sessions
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|s| s["session"] == SESSION)
        .expect("the session is listed");
    assert_eq!(row["first_ns"], first, "{row}");
    assert_eq!(
        row["duration_ns"],
        last - first,
        "the session spans its transcript and logged hooks, not the import: {row}"
    );
    // The hook records are kept, marked as timed by their arrival.
    let records = sandbox.ok_stdout(&["cat", "--json", "--session", SESSION]);
    let marked = records
        .lines()
        .filter(|l| l.contains("\"arrival_time\":true"))
        .count();
    assert_eq!(marked, arrival_payloads);
}

/// Old hook payloads without `tool_use_id` (Claude Code 1.0) read from a log without times:
/// each `PostToolUse` still closes the oldest open call of its tool, and calls known only
/// from such hooks keep their arrival times (never 0) in the tree.
#[test]
fn old_payloads_from_a_log_pair_and_keep_arrival_times() {
    let sandbox = Sandbox::new();
    let pre = |cmd: &str| {
        format!(
            r#"{{"session_id":"old1","hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{{"command":"{cmd}"}}}}"#
        )
    };
    let post = r#"{"session_id":"old1","hook_event_name":"PostToolUse","tool_name":"Bash","tool_response":{"stdout":"ok"}}"#;
    let log = format!("[{}, {}, {post}, {post}]", pre("ls"), pre("pwd"));
    let file = sandbox.path("pre_tool_use.json");
    std::fs::write(&file, log).unwrap();
    assert_eq!(sandbox.ingest(&[&file]).records, 4);
    let tree: Value =
        serde_json::from_str(&sandbox.ok_stdout(&["tree", "--json", "old1"])).unwrap();
    let mut calls = Vec::new();
    let mut stack = vec![&tree];
    while let Some(node) = stack.pop() {
        if node["kind"] == "tool" {
            calls.push(node.clone());
        }
        stack.extend(node["children"].as_array().into_iter().flatten());
    }
    assert_eq!(calls.len(), 2, "{tree}");
    for call in &calls {
        assert_eq!(call["status"], "ok", "both calls are closed: {tree}");
        assert!(call["start_ns"].as_u64().unwrap() > 0, "{call}");
    }
}
