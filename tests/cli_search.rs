//! `ctrace search`: phrases, boolean operators, filters, time ranges, PTY text across chunks,
//! CJK words, JSON output, bad queries (exit 2) and an empty store.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup step should fail the test"
)]

mod common;

use std::collections::BTreeSet;

use common::Sandbox;
use serde_json::Value;

/// Hook payloads with their own timestamps, in an NDJSON file that `ingest` reads.
const HOOKS: &[&str] = &[
    r#"{"session_id":"s-jan","hook_event_name":"PostToolUse","tool_name":"Bash","cwd":"/home/u/alpha","timestamp":"2026-01-10T10:00:00Z","tool_input":{"command":"curl localhost"},"tool_response":{"stderr":"connection refused by server"}}"#,
    r#"{"session_id":"s-feb","hook_event_name":"PostToolUse","tool_name":"Read","cwd":"/home/u/beta","timestamp":"2026-02-10T10:00:00Z","tool_input":{"file_path":"/etc/server.conf"},"tool_response":{"content":"the server refused the connection"}}"#,
    r#"{"session_id":"s-mar","hook_event_name":"UserPromptSubmit","cwd":"/home/u/alpha","timestamp":"2026-03-10T10:00:00Z","prompt":"why was the connection refused? fix the error"}"#,
    r#"{"session_id":"s-mar","hook_event_name":"Notification","cwd":"/home/u/alpha","timestamp":"2026-03-10T10:05:00Z","message":"请检查数据库连接错误"}"#,
];

/// A transcript line (assistant text and a tool call).
const TRANSCRIPT: &str = r#"{"type":"assistant","sessionId":"s-tr","uuid":"u1","cwd":"/home/u/gamma","timestamp":"2026-02-20T00:00:00Z","message":{"id":"m1","model":"claude-opus-4-6","role":"assistant","content":[{"type":"text","text":"The connection was refused; retrying with backoff."},{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"sleep 1"}}]}}"#;

/// An asciicast whose output splits `hello world` across two chunks, with colour escapes.
const CAST: &str = "{\"version\": 2, \"width\": 80, \"height\": 24, \"timestamp\": 1767225600}\n\
[0.1, \"o\", \"$ echo \\u001b[1mhello wor\"]\n\
[0.2, \"o\", \"ld\\u001b[0m again\\r\\n\"]\n\
[0.3, \"o\", \"\\u001b[31mcoloured\\u001b[0m output\\r\\n\"]\n";

fn setup() -> Sandbox {
    let sandbox = Sandbox::new();
    let dir = sandbox.path("in");
    std::fs::create_dir_all(dir.join("projects/p")).unwrap();
    std::fs::create_dir_all(dir.join("hooks")).unwrap();
    std::fs::write(dir.join("hooks/h.ndjson"), HOOKS.join("\n") + "\n").unwrap();
    std::fs::write(dir.join("projects/p/s-tr.jsonl"), format!("{TRANSCRIPT}\n")).unwrap();
    std::fs::write(dir.join("rec.cast"), CAST).unwrap();
    sandbox.ok(&["ingest", "--quiet", dir.to_str().unwrap()]);
    sandbox
}

fn hits(sandbox: &Sandbox, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["search"];
    all.extend_from_slice(args);
    all.push("--json");
    sandbox
        .ok_stdout(&all)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn sessions(sandbox: &Sandbox, args: &[&str]) -> BTreeSet<String> {
    hits(sandbox, args)
        .iter()
        .map(|h| h["session"].as_str().unwrap_or("-").to_owned())
        .collect()
}

fn set(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn words_phrases_and_operators() {
    let sandbox = setup();
    // All words must match (any order).
    assert_eq!(
        sessions(&sandbox, &["connection refused"]),
        set(&["s-jan", "s-feb", "s-mar", "s-tr"])
    );
    // A phrase needs the words adjacent and in order.
    assert_eq!(
        sessions(&sandbox, &["\"connection refused\""]),
        set(&["s-jan", "s-mar"])
    );
    assert_eq!(
        sessions(&sandbox, &["\"refused the connection\""]),
        set(&["s-feb"])
    );
    assert_eq!(
        sessions(&sandbox, &["curl OR backoff"]),
        set(&["s-jan", "s-tr"])
    );
    assert_eq!(
        sessions(&sandbox, &["refused AND NOT server"]),
        set(&["s-mar", "s-tr"])
    );
    assert_eq!(
        sessions(&sandbox, &["refused -server"]),
        set(&["s-mar", "s-tr"])
    );
    // Case-insensitive.
    assert_eq!(sessions(&sandbox, &["ERROR"]), set(&["s-mar"]));
    // CJK words inside a run of CJK text.
    assert_eq!(sessions(&sandbox, &["数据库"]), set(&["s-mar"]));
    assert_eq!(sessions(&sandbox, &["连接"]), set(&["s-mar"]));
    assert!(sessions(&sandbox, &["库连错"]).is_empty());
}

#[test]
fn filters_and_fields() {
    let sandbox = setup();
    assert_eq!(
        sessions(&sandbox, &["refused", "--session", "s-feb"]),
        set(&["s-feb"])
    );
    assert_eq!(
        sessions(&sandbox, &["refused", "--source", "transcript"]),
        set(&["s-tr"])
    );
    assert_eq!(
        sessions(&sandbox, &["refused", "--event", "PostToolUse"]),
        set(&["s-jan", "s-feb"])
    );
    assert_eq!(
        sessions(&sandbox, &["refused", "--event", "assistant"]),
        set(&["s-tr"])
    );
    // Tool names: the hook's tool_name and the transcript's tool_use blocks; any case.
    assert_eq!(
        sessions(&sandbox, &["refused", "--tool", "bash"]),
        set(&["s-jan", "s-tr"])
    );
    assert_eq!(sessions(&sandbox, &["tool:read"]), set(&["s-feb"]));
    assert_eq!(
        sessions(&sandbox, &["refused AND project:alpha"]),
        set(&["s-jan", "s-mar"])
    );
    assert_eq!(
        sessions(&sandbox, &["model:claude-opus-4-6"]),
        set(&["s-tr"])
    );
}

#[test]
fn time_ranges() {
    let sandbox = setup();
    assert_eq!(
        sessions(
            &sandbox,
            &["refused", "--since", "2026-02-01", "--until", "2026-02-28"]
        ),
        set(&["s-feb", "s-tr"])
    );
    assert_eq!(
        sessions(&sandbox, &["refused", "--until", "2026-01-31T23:59:59Z"]),
        set(&["s-jan"])
    );
    // Relative times: the ingested records are old; a hook recorded now is recent.
    sandbox.hook(br#"{"session_id":"s-now","hook_event_name":"UserPromptSubmit","prompt":"connection refused again"}"#);
    assert_eq!(
        sessions(&sandbox, &["refused", "--since", "2h"]),
        set(&["s-now"])
    );
    assert_eq!(
        sessions(&sandbox, &["refused", "--since", "yesterday"]),
        set(&["s-now"])
    );
    let output = sandbox.run(&["search", "refused", "--since", "last tuesday"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn sort_limit_and_json_fields() {
    let sandbox = setup();
    let by_time = hits(&sandbox, &["refused", "-n", "2"]);
    assert_eq!(by_time.len(), 2);
    assert_eq!(by_time[0]["session"], "s-mar");
    assert_eq!(by_time[1]["session"], "s-tr");
    let by_score = hits(&sandbox, &["refused", "--sort", "score"]);
    assert_eq!(by_score.len(), 4);
    assert!(by_score.iter().all(|h| h["score"].as_f64().unwrap() > 0.0));
    let jan = &hits(&sandbox, &["curl"])[0];
    for key in [
        "offset", "ts", "time", "source", "session", "event", "tools", "projects",
    ] {
        assert!(!jan[key].is_null(), "field {key} in {jan}");
    }
    assert_eq!(jan["event"], "PostToolUse");
    assert_eq!(jan["tools"][0], "Bash");
    let snippet = jan["snippet"].as_str().unwrap();
    let [start, end] = [0, 1].map(|i| jan["highlights"][0][i].as_u64().unwrap() as usize);
    assert_eq!(&snippet[start..end], "curl");
    assert_eq!(
        jan["replay"],
        format!("ctrace replay s-jan --at {}", jan["offset"])
    );
    // Text output: session, time, event and tool, snippet, replay command; no colour when
    // stdout is not a terminal.
    let text = sandbox.ok_stdout(&["search", "curl"]);
    assert!(text.contains("s-jan  2026-01-10T10:00:00.000Z  PostToolUse Bash"));
    assert!(text.contains("curl localhost"));
    assert!(text.contains(&format!("ctrace replay s-jan --at {}", jan["offset"])));
    assert!(!text.contains('\x1b'));
}

#[test]
fn pty_text_across_chunks_and_escapes() {
    let sandbox = setup();
    let split = hits(&sandbox, &["\"hello world\""]);
    assert_eq!(split.len(), 1, "{split:?}");
    assert_eq!(split[0]["source"], "pty");
    assert_eq!(split[0]["event"], "pty/output");
    let coloured = hits(&sandbox, &["\"coloured output\""]);
    assert_eq!(coloured.len(), 1);
    // Escape sequences are not words.
    assert!(hits(&sandbox, &["31m"]).is_empty());
}

#[test]
fn bad_queries_exit_2_naming_the_problem() {
    let sandbox = setup();
    for (query, names) in [
        ("\"connection refused", "quote"),
        ("nosuchfield:x", "nosuchfield"),
        ("", "empty"),
        ("   ", "empty"),
        ("NOT refused", "NOT"),
        ("(refused", "parenthes"),
        ("!!!", "no searchable word"),
    ] {
        let output = sandbox.run(&["search", query]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{query:?}: {stderr}");
        assert!(
            stderr.contains(names),
            "{query:?}: message should name {names:?}: {stderr}"
        );
        assert!(output.stdout.is_empty());
    }
    let output = sandbox.run(&["search", "x", "-n", "0"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn empty_store_has_no_hits() {
    let sandbox = Sandbox::new();
    let output = sandbox.ok(&["search", "error"]);
    assert!(output.stdout.is_empty());
    let output = sandbox.ok(&["search", "error", "--json"]);
    assert!(output.stdout.is_empty());
    // A bad query is still an error on an empty store.
    assert_eq!(
        sandbox.run(&["search", "nosuchfield:x"]).status.code(),
        Some(2)
    );
}

#[test]
fn new_records_are_found_without_compact() {
    let sandbox = setup();
    assert!(hits(&sandbox, &["zebrafish"]).is_empty());
    sandbox.hook(br#"{"session_id":"s-new","hook_event_name":"UserPromptSubmit","prompt":"zebrafish genome"}"#);
    assert_eq!(sessions(&sandbox, &["zebrafish"]), set(&["s-new"]));
}

#[test]
fn forget_and_delete_remove_documents() {
    let sandbox = setup();
    let paths = ctrace::log::StorePaths::new(&sandbox.store());
    assert_eq!(sessions(&sandbox, &["curl"]), set(&["s-jan"]));
    let before = ctrace::index::status(&paths).unwrap().unwrap();
    assert_eq!(ctrace::index::forget_session(&paths, "s-jan").unwrap(), 1);
    assert!(hits(&sandbox, &["curl"]).is_empty());
    let feb = hits(&sandbox, &["\"refused the connection\""]);
    let offset = feb[0]["offset"].as_u64().unwrap();
    let deleted = ctrace::index::delete_offsets(
        &paths,
        &[
            ctrace::segments::Offset(offset),
            ctrace::segments::Offset(offset + 1000),
        ],
    )
    .unwrap();
    assert_eq!(deleted, 1);
    assert!(hits(&sandbox, &["\"refused the connection\""]).is_empty());
    let after = ctrace::index::status(&paths).unwrap().unwrap();
    assert_eq!(after.docs, before.docs - 2);
    assert_eq!(after.applied, before.applied, "deletes keep the checkpoint");
}

#[test]
fn replay_command_of_a_hit_starts_the_timeline_there() {
    let sandbox = setup();
    let hit = &hits(&sandbox, &["数据库"])[0];
    let replay = hit["replay"].as_str().unwrap();
    let args: Vec<&str> = replay.split(' ').skip(1).collect();
    assert_eq!(args[0], "replay");
    let text = sandbox.ok_stdout(&args);
    let first = text.lines().next().unwrap();
    assert!(first.starts_with(&format!("session s-mar from offset {}", hit["offset"])));
    assert!(text.contains("Notification"), "{text}");
    assert!(
        !text.contains("UserPromptSubmit") && !text.contains("prompt "),
        "the earlier prompt is not replayed: {text}"
    );
    // The whole timeline has both.
    let all = sandbox.ok_stdout(&["replay", "s-mar"]);
    assert!(all.lines().count() > text.lines().count(), "{all}");
    // An offset outside the session is a usage error.
    let output = sandbox.run(&["replay", "s-mar", "--at", "999999"]);
    assert_eq!(output.status.code(), Some(2));
}
