//! Issue 5, acceptance 2: on the spotter sessions of the corpus, `ctrace tree --json` pairs
//! every tool call with its result, marks tool errors, and puts every subagent under the call
//! that started it. Expected counts come straight from the raw transcript lines.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed step should fail the test"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::Sandbox;
use serde_json::Value;

/// Tool calls of one transcript file: id → (has a result, result is an error).
#[derive(Debug, Default)]
struct Calls {
    calls: BTreeSet<String>,
    results: BTreeSet<String>,
    errors: BTreeSet<String>,
}

fn count(file: &Path) -> Calls {
    let mut out = Calls::default();
    for line in std::fs::read_to_string(file).unwrap().lines() {
        let Ok(value) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(blocks) = value["message"]["content"].as_array() else {
            continue;
        };
        for block in blocks {
            match block["type"].as_str() {
                Some("tool_use") => {
                    out.calls.insert(block["id"].as_str().unwrap().to_owned());
                }
                Some("tool_result") => {
                    let id = block["tool_use_id"].as_str().unwrap().to_owned();
                    if block["is_error"].as_bool() == Some(true) {
                        out.errors.insert(id.clone());
                    }
                    out.results.insert(id);
                }
                _ => {}
            }
        }
    }
    out
}

fn walk<'a>(
    node: &'a Value,
    parent: Option<&'a Value>,
    out: &mut Vec<(&'a Value, Option<&'a Value>)>,
) {
    out.push((node, parent));
    for child in node["children"].as_array().unwrap() {
        walk(child, Some(node), out);
    }
}

#[test]
#[cfg_attr(
    corpus_missing,
    ignore = "needs the corpus: ../shared/corpus or CTRACE_CORPUS"
)]
fn spotter_tool_calls_pair_and_subagents_nest() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let dir = corpus.join("claude-home/projects/spotter");
    let sandbox = Sandbox::new();
    sandbox.ingest(&[&dir]);
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
            continue;
        }
        let session = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let main = count(&path);
        let mut agents: BTreeMap<String, Calls> = BTreeMap::new();
        let sub_dir = dir.join(&session).join("subagents");
        if let Ok(files) = std::fs::read_dir(&sub_dir) {
            for file in files {
                let file = file.unwrap().path();
                let name = file.file_stem().unwrap().to_str().unwrap();
                agents.insert(name.trim_start_matches("agent-").to_owned(), count(&file));
            }
        }
        let text = sandbox.ok_stdout(&["tree", &session, "--json"]);
        let tree: Value = serde_json::from_str(&text).unwrap();
        let mut nodes = Vec::new();
        walk(&tree, None, &mut nodes);

        // Every tool call appears once, paired, with its error status.
        let mut expected_calls = main.calls.clone();
        let mut expected_results = main.results.clone();
        let mut expected_errors = main.errors.clone();
        for calls in agents.values() {
            expected_calls.extend(calls.calls.iter().cloned());
            expected_results.extend(calls.results.iter().cloned());
            expected_errors.extend(calls.errors.iter().cloned());
        }
        let tools: Vec<&Value> = nodes
            .iter()
            .filter(|(n, _)| n["kind"] == "tool")
            .map(|(n, _)| *n)
            .collect();
        let ids: BTreeSet<String> = tools
            .iter()
            .map(|n| n["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            ids.len(),
            tools.len(),
            "{session}: a tool call appears twice"
        );
        assert_eq!(ids, expected_calls, "{session}: tool calls");
        for tool in &tools {
            let id = tool["id"].as_str().unwrap();
            let status = tool["status"].as_str().unwrap();
            let want = if expected_errors.contains(id) {
                "error"
            } else if expected_results.contains(id) {
                "ok"
            } else {
                "unfinished"
            };
            assert_eq!(status, want, "{session}: status of {id}");
        }
        let paired = tools.iter().filter(|n| n["status"] != "unfinished").count();
        let errors = tools.iter().filter(|n| n["status"] == "error").count();

        // Every subagent file is one subagent node; the ones started by a Task/Agent call sit
        // under it, and their tool calls sit under them.
        let subagents: Vec<(&Value, Option<&Value>)> = nodes
            .iter()
            .filter(|(n, _)| n["kind"] == "subagent")
            .copied()
            .collect();
        assert_eq!(subagents.len(), agents.len(), "{session}: subagents");
        for (node, parent) in &subagents {
            let id = node["id"].as_str().unwrap();
            let calls = &agents[id];
            let parent = parent.unwrap();
            if id.starts_with("acompact") {
                assert_eq!(parent["kind"], "turn", "{session}: compaction agent {id}");
            } else {
                assert_eq!(parent["kind"], "tool", "{session}: parent of subagent {id}");
                let name = parent["name"].as_str().unwrap();
                assert!(
                    name.starts_with("Task") || name.starts_with("Agent"),
                    "{session}: subagent {id} under {name}"
                );
            }
            let children: BTreeSet<String> = node["children"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["kind"] == "tool")
                .map(|c| c["id"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(
                children, calls.calls,
                "{session}: tool calls of subagent {id}"
            );
        }
        eprintln!(
            "{session}: {} tool calls ({paired} paired, {errors} errors), {} subagents nested",
            tools.len(),
            subagents.len()
        );
        checked += 1;
    }
    assert_eq!(checked, 3, "the three spotter main sessions");
}
