//! Issue 5: hook events alone give a tree (turns from UserPromptSubmit → Stop, tool calls paired
//! Pre/Post/PostToolUseFailure by `tool_use_id`, a subagent under the Task call that started
//! it), and the hook path never creates the views database.

mod common;

use common::Sandbox;
use serde_json::{Value, json};

#[test]
fn hooks_alone_fold_into_a_tree() {
    let sandbox = Sandbox::new();
    let s = "hook-session-1";
    let base = json!({"session_id": s, "cwd": "/tmp/x", "transcript_path": "/nonexistent.jsonl"});
    let event = |name: &str, extra: Value| {
        let mut v = base.clone();
        v["hook_event_name"] = json!(name);
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        sandbox.hook(v.to_string().as_bytes());
    };
    event("UserPromptSubmit", json!({"prompt": "fix the build"}));
    event(
        "PreToolUse",
        json!({"tool_name": "Bash", "tool_use_id": "t1", "tool_input": {"command": "cargo build"}}),
    );
    event(
        "PostToolUse",
        json!({"tool_name": "Bash", "tool_use_id": "t1", "tool_response": {"stdout": "ok"}}),
    );
    event(
        "PreToolUse",
        json!({"tool_name": "Bash", "tool_use_id": "t2", "tool_input": {"command": "false"}}),
    );
    event(
        "PostToolUseFailure",
        json!({"tool_name": "Bash", "tool_use_id": "t2", "error": "exit 1"}),
    );
    event(
        "PreToolUse",
        json!({"tool_name": "Task", "tool_use_id": "t3",
        "tool_input": {"subagent_type": "Explore", "description": "look", "prompt": "look around"}}),
    );
    event(
        "SubagentStart",
        json!({"agent_id": "ag1", "agent_type": "Explore"}),
    );
    event(
        "PreToolUse",
        json!({"tool_name": "Read", "tool_use_id": "t4", "agent_id": "ag1",
        "agent_type": "Explore", "tool_input": {"file_path": "/tmp/x/a.rs"}}),
    );
    event(
        "PostToolUse",
        json!({"tool_name": "Read", "tool_use_id": "t4", "agent_id": "ag1", "agent_type": "Explore"}),
    );
    event(
        "SubagentStop",
        json!({"agent_id": "ag1", "agent_type": "Explore"}),
    );
    event(
        "PostToolUse",
        json!({"tool_name": "Task", "tool_use_id": "t3",
        "tool_response": {"agentId": "ag1", "content": []}}),
    );
    event(
        "PreToolUse",
        json!({"tool_name": "Grep", "tool_use_id": "t5", "tool_input": {"pattern": "x"}}),
    );
    event("Stop", json!({}));
    assert!(
        !sandbox.store().join("views").exists(),
        "the hook path must not create the views"
    );

    let tree: Value = serde_json::from_str(&sandbox.ok_stdout(&["tree", s, "--json"])).unwrap();
    let turns = tree["children"].as_array().unwrap();
    assert_eq!(turns.len(), 1);
    let turn = &turns[0];
    assert_eq!(turn["kind"], "turn");
    assert_eq!(turn["name"], "fix the build");
    assert_eq!(turn["status"], "ok");
    let tools: Vec<(&str, &str)> = turn["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        tools,
        vec![
            ("t1", "ok"),
            ("t2", "error"),
            ("t3", "ok"),
            ("t5", "unfinished")
        ]
    );
    let task = &turn["children"][2];
    assert_eq!(task["children"][0]["kind"], "subagent");
    assert_eq!(task["children"][0]["name"], "Explore");
    assert_eq!(task["children"][0]["children"][0]["id"], "t4");
    assert_eq!(turn["children"][1]["error"], "exit 1");

    let mermaid = sandbox.ok_stdout(&["tree", s, "--mermaid"]);
    assert!(mermaid.starts_with("flowchart TD"));
    assert!(mermaid.contains("classDef error"));
    assert!(mermaid.contains(":::error"));
    assert!(mermaid.contains("$0.0000"));
}
