//! Issue 15 item 2: one fold. `ctrace show --json`, `ctrace tree --json` and the views
//! (`views/views.sqlite`) agree, for every session of the corpus (hooks and transcripts
//! together), on turns, tool calls, subagents, errors and durations: `show` lays the views'
//! tool calls, subagent nesting and turns over the session's records instead of pairing
//! records a second time.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::Sandbox;
use serde_json::Value;

/// A tool call as the tree has it: status word and duration (ns).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    status: String,
    duration_ns: Option<u64>,
}

/// What the tree says: tool calls, subagents with the tool call they hang under, turn offsets.
#[derive(Debug, Default)]
struct TreeFacts {
    tools: BTreeMap<String, Call>,
    subagents: BTreeMap<String, Option<String>>,
    turns: BTreeSet<u64>,
}

fn walk_tree(node: &Value, parent: Option<&Value>, facts: &mut TreeFacts) {
    let id = node["id"].as_str().unwrap().to_owned();
    match node["kind"].as_str().unwrap() {
        "tool" => {
            let status = match node["status"].as_str().unwrap() {
                "unfinished" => "pending",
                other => other,
            };
            let duration_ns = node["end_ns"]
                .as_u64()
                .map(|end| end.saturating_sub(node["start_ns"].as_u64().unwrap()));
            facts.tools.insert(
                id,
                Call {
                    status: status.to_owned(),
                    duration_ns,
                },
            );
        }
        "subagent" => {
            let under = parent
                .filter(|p| p["kind"] == "tool")
                .map(|p| p["id"].as_str().unwrap().to_owned());
            facts.subagents.insert(id, under);
        }
        "turn" => {
            facts.turns.insert(node["offset"].as_u64().unwrap());
        }
        _ => {}
    }
    for child in node["children"].as_array().unwrap() {
        walk_tree(child, Some(node), facts);
    }
}

/// What `show` says: tool call items, the tool call each agent's items are nested under,
/// prompt items (top level).
#[derive(Debug, Default)]
struct ShowFacts {
    tools: BTreeMap<String, Call>,
    top_tools: BTreeSet<String>,
    agent_parent: BTreeMap<String, BTreeSet<Option<String>>>,
    hook_prompts: BTreeSet<u64>,
    transcript_prompts: BTreeSet<u64>,
}

fn walk_show(item: &Value, parent: Option<&Value>, facts: &mut ShowFacts) {
    let event = item["event"].as_str().unwrap();
    if matches!(event, "PreToolUse" | "tool_use") && item.get("status").is_some() {
        let id = match item["tool_use_id"].as_str() {
            Some(id) => id.to_owned(),
            None => format!("o{}", item["offset"].as_u64().unwrap()),
        };
        if parent.is_none() {
            facts.top_tools.insert(id.clone());
        }
        facts.tools.insert(
            id,
            Call {
                status: item["status"].as_str().unwrap().to_owned(),
                duration_ns: item["duration_ns"].as_u64(),
            },
        );
    }
    if let Some(agent) = item["agent_id"].as_str() {
        let under = parent.and_then(|p| p["tool_use_id"].as_str().map(str::to_owned));
        facts
            .agent_parent
            .entry(agent.to_owned())
            .or_default()
            .insert(under);
    }
    if parent.is_none()
        && item.get("agent_id").is_none()
        && let Some(offset) = item["offset"].as_u64()
    {
        match event {
            "UserPromptSubmit" => facts.hook_prompts.insert(offset),
            "prompt" => facts.transcript_prompts.insert(offset),
            _ => false,
        };
    }
    if let Some(children) = item.get("children").and_then(Value::as_array) {
        for child in children {
            walk_show(child, Some(item), facts);
        }
    }
}

/// The views' tool spans (id → error) and subagent ids of `session`.
fn views_facts(
    conn: &rusqlite::Connection,
    session: &str,
) -> (BTreeMap<String, bool>, BTreeSet<String>) {
    let mut stmt = conn
        .prepare("SELECT span_id, kind, error FROM spans WHERE session = ?1")
        .unwrap();
    let mut tools = BTreeMap::new();
    let mut agents = BTreeSet::new();
    let rows = stmt
        .query_map([session], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (id, kind, error) = row.unwrap();
        if kind == "tool" {
            tools.insert(id, error != 0);
        } else {
            agents.insert(id);
        }
    }
    (tools, agents)
}

fn json(sandbox: &Sandbox, args: &[&str]) -> Value {
    serde_json::from_str(&sandbox.ok_stdout(args)).unwrap()
}

#[test]
#[cfg_attr(
    corpus_missing,
    ignore = "needs the corpus: ../shared/corpus or CTRACE_CORPUS"
)]
fn show_tree_and_views_agree_on_every_corpus_session() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let sandbox = Sandbox::new();
    sandbox.ingest(&[&corpus.join("claude-home"), &corpus.join("hooks")]);
    let sessions = sandbox.sessions();
    assert!(sessions.len() > 5, "{} sessions", sessions.len());
    let conn = rusqlite::Connection::open_with_flags(
        sandbox.store().join("views/views.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let (mut calls, mut nested, mut turns) = (0, 0, 0);
    for row in &sessions {
        let id = row["session"].as_str().unwrap();
        let tree = json(&sandbox, &["tree", id, "--json"]);
        let show = json(&sandbox, &["show", id, "--json"]);
        let mut t = TreeFacts::default();
        walk_tree(&tree, None, &mut t);
        let mut s = ShowFacts::default();
        for item in show.as_array().unwrap() {
            walk_show(item, None, &mut s);
        }
        let (view_tools, view_agents) = views_facts(&conn, id);

        // Tool calls: the views' spans are the tree's tool nodes; `sessions` counts them.
        let tree_ids: BTreeSet<&String> = t.tools.keys().collect();
        assert_eq!(tree_ids, view_tools.keys().collect(), "session {id}: tools");
        assert_eq!(
            row["tool_calls"],
            view_tools.len(),
            "session {id}: tool_calls"
        );
        // Every tool call `show` lists is one of them, with the tree's status and duration.
        for (call, facts) in &s.tools {
            assert_eq!(t.tools.get(call), Some(facts), "session {id}: call {call}");
            assert_eq!(
                facts.status == "error",
                view_tools[call],
                "session {id}: error of {call}"
            );
        }
        // Errors: every failed call of the views is a failed item of `show`.
        for (call, error) in &view_tools {
            if *error && let Some(shown) = s.tools.get(call) {
                assert_eq!(shown.status, "error", "session {id}: call {call}");
            }
        }
        calls += s.tools.len();

        // Subagents: the tree's are the views'; `show` nests each one's items under the same
        // tool call (or leaves them at the top level when the tree does).
        assert_eq!(
            t.subagents.keys().collect::<BTreeSet<_>>(),
            view_agents.iter().collect(),
            "session {id}: subagents"
        );
        for (agent, parents) in &s.agent_parent {
            let Some(under) = t.subagents.get(agent) else {
                panic!("session {id}: show has agent {agent} the tree does not");
            };
            // Items of an agent nested under another agent's call sit at the top level.
            let expected = under.clone().filter(|call| s.top_tools.contains(call));
            if expected.is_some() {
                nested += 1;
            }
            assert_eq!(
                parents,
                &BTreeSet::from([expected]),
                "session {id}: agent {agent}"
            );
        }

        // Turns: each turn of the tree starts at a prompt item of `show`; each transcript
        // prompt `show` lists at the top level starts a turn.
        for offset in &t.turns {
            assert!(
                s.hook_prompts.contains(offset) || s.transcript_prompts.contains(offset),
                "session {id}: turn at offset {offset} is not a prompt of show"
            );
        }
        for offset in &s.transcript_prompts {
            assert!(
                t.turns.contains(offset),
                "session {id}: prompt at offset {offset} is not a turn of the tree"
            );
        }
        turns += t.turns.len();
    }
    assert!(calls > 100, "{calls} tool calls compared");
    assert!(turns > 10, "{turns} turns compared");
    eprintln!(
        "{} sessions: {calls} tool calls, {nested} nested subagents, {turns} turns agree",
        sessions.len()
    );
}
