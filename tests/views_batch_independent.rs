//! Issue 5: the views do not depend on how the log is cut into fold batches. A rebuild folds
//! the log in transactions of `CTRACE_VIEWS_BATCH_RECORDS` records, with blocks read by
//! `CTRACE_VIEWS_READERS` threads; every table must come out
//! the same whether a batch holds one record or the whole log. This is what lets a rebuild use
//! large batches while incremental compaction folds whatever is new.
//!
//! Two inputs: hook payloads and transcripts of the same sessions, written here so that one
//! subagent's hooks, its own transcript lines, the parent's `agent_progress` lines and the
//! parent's tool result fall on every side of a batch boundary (plus old payloads without
//! `tool_use_id`, paired by tool name); and the shared corpus.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use common::Sandbox;
use serde_json::{Value, json};

/// Every table of the views database, rows sorted, as text (one line per row).
fn dump(sandbox: &Sandbox) -> BTreeMap<String, Vec<String>> {
    let path = sandbox.store().join("views/views.sqlite");
    let conn =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = BTreeMap::new();
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |row| {
                let mut line = String::new();
                for i in 0..columns {
                    let value: rusqlite::types::Value = row.get(i)?;
                    let _ = write!(line, "{value:?}|");
                }
                Ok(line)
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.sort();
        out.insert(table, rows);
    }
    out
}

/// Rebuilds the views in batches of `batch` records, read by `readers` threads, and dumps
/// them.
fn rebuild(sandbox: &Sandbox, (batch, readers): (usize, usize)) -> BTreeMap<String, Vec<String>> {
    let output = sandbox
        .command(&["compact", "--rebuild"])
        .env("CTRACE_VIEWS_BATCH_RECORDS", batch.to_string())
        .env("CTRACE_VIEWS_READERS", readers.to_string())
        .output()
        .unwrap();
    common::assert_success(&["compact", "--rebuild"], &output);
    dump(sandbox)
}

/// Asserts that every `(batch size, reading threads)` gives the tables of the first, naming
/// the first difference.
fn assert_same_views(
    sandbox: &Sandbox,
    batches: &[(usize, usize)],
) -> BTreeMap<String, Vec<String>> {
    let reference = rebuild(sandbox, batches[0]);
    for &batch in &batches[1..] {
        let other = rebuild(sandbox, batch);
        assert_eq!(
            other.keys().collect::<Vec<_>>(),
            reference.keys().collect::<Vec<_>>()
        );
        for (table, rows) in &reference {
            let got = &other[table];
            if got != rows {
                let only_ref: Vec<&String> = rows.iter().filter(|r| !got.contains(r)).collect();
                let only_got: Vec<&String> = got.iter().filter(|r| !rows.contains(r)).collect();
                panic!(
                    "table {table}: (batch, readers) {batch:?} differs from {:?} \
                     ({} vs {} rows)\nonly with {:?}: {:#?}\nonly with {batch:?}: {:#?}",
                    batches[0],
                    rows.len(),
                    got.len(),
                    batches[0],
                    &only_ref[..only_ref.len().min(5)],
                    &only_got[..only_got.len().min(5)],
                );
            }
        }
    }
    reference
}

fn iso(second: u32) -> String {
    format!(
        "2026-03-0{}T{:02}:{:02}:{:02}.000Z",
        1 + second / 86_400,
        second % 86_400 / 3600,
        second % 3600 / 60,
        second % 60
    )
}

/// Writes `lines` as JSONL.
fn write_jsonl(path: &Path, lines: &[Value]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut text = String::new();
    for line in lines {
        text.push_str(&line.to_string());
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// One session with a subagent seen through hooks, its own transcript, the parent's progress
/// lines and the parent's tool result, and old hook payloads without `tool_use_id`.
fn write_session(root: &Path, n: u32) {
    let session = format!("00000000-0000-4000-8000-{n:012}");
    let agent = format!("a{n:07x}");
    let cwd = "/work/project";
    let project = root.join("claude/projects/-work-project");
    let transcript = project.join(format!("{session}.jsonl"));
    let agent_file = project.join(format!("{session}/subagents/agent-{agent}.jsonl"));
    let t0 = n * 1000;
    let usage = |input: u64| {
        json!({"input_tokens": input, "output_tokens": 50, "cache_creation_input_tokens": 10,
               "cache_read_input_tokens": 100})
    };
    let line = |uuid: &str, parent: Option<&str>, second: u32, extra: Value| {
        let mut v = json!({"uuid": uuid, "parentUuid": parent, "sessionId": session,
            "cwd": cwd, "isSidechain": false, "userType": "external",
            "timestamp": iso(t0 + second)});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    let task = format!("toolu_task_{n}");
    let bash = format!("toolu_bash_{n}");
    let main = vec![
        line(
            "u1",
            None,
            0,
            json!({"type": "user", "message": {"role": "user", "content": "look around"}}),
        ),
        line(
            "a1",
            Some("u1"),
            2,
            json!({"type": "assistant", "requestId": format!("req_{n}_1"),
            "message": {"id": format!("msg_{n}_1"), "role": "assistant", "model": "claude-opus-4-6",
                "usage": usage(1000),
                "content": [{"type": "tool_use", "id": task, "name": "Task",
                    "input": {"subagent_type": "Explore", "description": "explore",
                              "prompt": "Explore the project"}}]}}),
        ),
        line(
            "p1",
            Some("a1"),
            5,
            json!({"type": "progress", "parentToolUseID": task,
            "data": {"type": "agent_progress", "agentId": agent,
                     "message": {"type": "assistant", "message": {"usage": usage(5)}}}}),
        ),
        line(
            "p2",
            Some("p1"),
            9,
            json!({"type": "progress", "parentToolUseID": task,
            "data": {"type": "agent_progress", "agentId": agent}}),
        ),
        line(
            "u2",
            Some("p2"),
            20,
            json!({"type": "user", "toolUseResult": {"agentId": agent, "status": "completed"},
            "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": task,
                "content": [{"type": "text", "text": "found it"}]}]}}),
        ),
        line(
            "a2",
            Some("u2"),
            22,
            json!({"type": "assistant", "requestId": format!("req_{n}_2"),
            "message": {"id": format!("msg_{n}_2"), "role": "assistant", "model": "claude-opus-4-6",
                "usage": usage(2000),
                "content": [{"type": "tool_use", "id": bash, "name": "Bash",
                    "input": {"command": "cargo test"}}]}}),
        ),
        line(
            "u3",
            Some("a2"),
            30,
            json!({"type": "user", "message": {"role": "user", "content": [{"type": "tool_result",
                "tool_use_id": bash, "is_error": true, "content": "exit 101"}]}}),
        ),
    ];
    write_jsonl(&transcript, &main);
    let side = |uuid: &str, parent: Option<&str>, second: u32, extra: Value| {
        let mut v = line(uuid, parent, second, extra);
        v["isSidechain"] = json!(true);
        v["agentId"] = json!(agent);
        v
    };
    let read = format!("toolu_read_{n}");
    let sub = vec![
        side(
            "s1",
            None,
            3,
            json!({"type": "user", "message": {"role": "user", "content": "Explore the project"}}),
        ),
        side(
            "s2",
            Some("s1"),
            6,
            json!({"type": "assistant", "requestId": format!("req_{n}_s"),
            "message": {"id": format!("msg_{n}_s"), "role": "assistant",
                "model": "claude-haiku-4-5-20251001", "usage": usage(300),
                "content": [{"type": "tool_use", "id": read, "name": "Read",
                    "input": {"file_path": "/work/project/README.md"}}]}}),
        ),
        side(
            "s3",
            Some("s2"),
            8,
            json!({"type": "user", "message": {"role": "user", "content": [{"type": "tool_result",
                "tool_use_id": read, "content": "# project"}]}}),
        ),
    ];
    write_jsonl(&agent_file, &sub);
    let base = json!({"session_id": session, "cwd": cwd,
        "transcript_path": transcript.to_string_lossy()});
    let hook = |event: &str, extra: Value| {
        let mut v = base.clone();
        v["hook_event_name"] = json!(event);
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    let mut hooks = vec![
        hook("UserPromptSubmit", json!({"prompt": "look around"})),
        hook(
            "PreToolUse",
            json!({"tool_name": "Task", "tool_use_id": task,
            "tool_input": {"subagent_type": "Explore", "prompt": "Explore the project"}}),
        ),
        hook(
            "SubagentStart",
            json!({"agent_id": agent, "agent_type": "Explore"}),
        ),
        hook(
            "PreToolUse",
            json!({"tool_name": "Read", "tool_use_id": read, "agent_id": agent,
            "agent_type": "Explore", "tool_input": {"file_path": "/work/project/README.md"}}),
        ),
        hook(
            "PostToolUse",
            json!({"tool_name": "Read", "tool_use_id": read, "agent_id": agent,
            "agent_type": "Explore"}),
        ),
        hook(
            "SubagentStop",
            json!({"agent_id": agent, "agent_type": "Explore",
            "agent_transcript_path": agent_file.to_string_lossy()}),
        ),
        hook(
            "PostToolUse",
            json!({"tool_name": "Task", "tool_use_id": task,
            "tool_response": {"agentId": agent, "status": "completed"}}),
        ),
    ];
    // Old payloads without tool_use_id: two Bash calls open at once, then closed in order.
    for i in 0..2 {
        hooks.push(hook(
            "PreToolUse",
            json!({"tool_name": "Bash", "tool_input": {"command": format!("make {i}")}}),
        ));
    }
    for _ in 0..2 {
        hooks.push(hook(
            "PostToolUse",
            json!({"tool_name": "Bash", "tool_response": {"stdout": "ok"}}),
        ));
    }
    hooks.push(hook("Stop", json!({"stop_hook_active": false})));
    write_jsonl(&root.join(format!("hooks/{session}.ndjson")), &hooks);
}

#[test]
fn generated_sessions_fold_the_same_in_any_batch_size() {
    let sandbox = Sandbox::new();
    let data = sandbox.path("data");
    for n in 0..4 {
        write_session(&data, n);
    }
    // Hooks first, then transcripts: a subagent's hook and line records are far apart.
    sandbox.ingest(&[&data.join("hooks")]);
    sandbox.ingest(&[&data.join("claude")]);
    let views = assert_same_views(
        &sandbox,
        &[
            (1_000_000, 1),
            (1, 1),
            (2, 2),
            (3, 3),
            (5, 2),
            (8, 1),
            (13, 4),
        ],
    );
    // The subagent spans carry both kinds of times, whatever the batching.
    let subagents: Vec<&String> = views["spans"]
        .iter()
        .filter(|row| row.contains("Text(\"subagent\")"))
        .collect();
    assert_eq!(subagents.len(), 4, "{subagents:#?}");
    for row in subagents {
        assert!(
            !row.contains("Null|Null|Null|Null"),
            "a subagent without times: {row}"
        );
    }
}

#[test]
#[cfg_attr(
    corpus_missing,
    ignore = "needs the corpus: ../shared/corpus or CTRACE_CORPUS"
)]
fn corpus_folds_the_same_in_any_batch_size() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let sandbox = Sandbox::new();
    sandbox.ingest(&[
        &corpus.join("claude-home"),
        &corpus.join("transcripts"),
        &corpus.join("hooks"),
    ]);
    // The corpus spans dozens of blocks, so several reading threads interleave.
    let views = assert_same_views(
        &sandbox,
        &[(1_000_000, 1), (1_000_000, 3), (7, 2), (1000, 1), (1000, 4)],
    );
    assert!(views["spans"].len() > 1000, "{}", views["spans"].len());
}
