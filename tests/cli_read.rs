//! The reading commands on a small store built from hook payloads written here: `sessions`,
//! `show` / `replay` (tool calls paired by `tool_use_id`, failures, subagents nested under the
//! Task call), `cat` filters, `verify`, `stats`, `config`, and their exit codes.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::Sandbox;
use serde_json::{Value, json};

const OLD: &str = "sess-alpha-1111";
const LIVE: &str = "sess-alpha-2222";
const BETA: &str = "sess-beta-3333";
const PROJECT: &str = "/work/proj-alpha";
/// Records of the old session.
const OLD_RECORDS: usize = 15;
/// Records written live through `ctrace hook`.
const LIVE_RECORDS: usize = 4;

fn rfc3339(ns: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_nanos(ns)).to_string()
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// The store: one finished session three hours ago (a hook log ingested from a file, so the
/// payloads carry their own `timestamp`), and two live sessions recorded through `ctrace hook`.
struct Fixture {
    sandbox: Sandbox,
    /// Start of the old session, ns (whole milliseconds).
    t0: u64,
}

impl Fixture {
    fn new() -> Self {
        let sandbox = Sandbox::new();
        let t0 = (now_ns() - 3 * 3600 * 1_000_000_000) / 1_000_000 * 1_000_000;
        let ms = |m: u64| t0 + m * 1_000_000;
        let base = |event: &str, at: u64| {
            json!({
                "session_id": OLD,
                "transcript_path": format!("/nonexistent/{OLD}.jsonl"),
                "cwd": PROJECT,
                "permission_mode": "default",
                "hook_event_name": event,
                "timestamp": rfc3339(ms(at)),
            })
        };
        let with = |mut value: Value, extra: Value| {
            for (k, v) in extra.as_object().unwrap() {
                value[k] = v.clone();
            }
            value
        };
        let bash = json!({"command": "cargo build", "description": "Build"});
        let read = json!({"file_path": "/work/proj-alpha/src/missing.rs"});
        let task = json!({"description": "Survey the sources", "prompt": "List them", "subagent_type": "Explore"});
        let grep = json!({"pattern": "fn main"});
        let sleep = json!({"command": "sleep 1000"});
        let payloads = vec![
            with(base("SessionStart", 0), json!({"source": "startup"})),
            with(
                base("UserPromptSubmit", 100),
                json!({"prompt": "Fix the build"}),
            ),
            with(
                base("PreToolUse", 1000),
                json!({"tool_name": "Bash", "tool_input": bash, "tool_use_id": "t1"}),
            ),
            with(
                base("PostToolUse", 2500),
                json!({"tool_name": "Bash", "tool_input": bash, "tool_use_id": "t1", "tool_response": {"stdout": "ok", "stderr": ""}}),
            ),
            with(
                base("PreToolUse", 3000),
                json!({"tool_name": "Read", "tool_input": read, "tool_use_id": "t2"}),
            ),
            with(
                base("PostToolUseFailure", 3250),
                json!({"tool_name": "Read", "tool_input": read, "tool_use_id": "t2", "error": "File does not exist."}),
            ),
            with(
                base("PreToolUse", 4000),
                json!({"tool_name": "Task", "tool_input": task, "tool_use_id": "t3"}),
            ),
            with(
                base("SubagentStart", 4100),
                json!({"agent_id": "ag-1", "agent_type": "Explore"}),
            ),
            with(
                base("PreToolUse", 4200),
                json!({"tool_name": "Grep", "tool_input": grep, "tool_use_id": "t4", "agent_id": "ag-1", "agent_type": "Explore"}),
            ),
            with(
                base("PostToolUse", 4300),
                json!({"tool_name": "Grep", "tool_input": grep, "tool_use_id": "t4", "agent_id": "ag-1", "agent_type": "Explore", "tool_response": {"matches": 1}}),
            ),
            with(
                base("SubagentStop", 4400),
                json!({"agent_id": "ag-1", "agent_type": "Explore", "stop_hook_active": false}),
            ),
            with(
                base("PostToolUse", 5000),
                json!({"tool_name": "Task", "tool_input": task, "tool_use_id": "t3", "tool_response": {"status": "completed", "agentId": "ag-1"}}),
            ),
            with(
                base("PreToolUse", 6000),
                json!({"tool_name": "Bash", "tool_input": sleep, "tool_use_id": "t5"}),
            ),
            with(base("Stop", 7000), json!({"stop_hook_active": false})),
            with(
                base("SessionEnd", 8000),
                json!({"reason": "prompt_input_exit"}),
            ),
        ];
        assert_eq!(payloads.len(), OLD_RECORDS);
        let log = sandbox.path("old-hooks.ndjson");
        let text: String = payloads.iter().map(|p| format!("{p}\n")).collect();
        fs::write(&log, text).unwrap();
        let summary = sandbox.ingest(&[&log]);
        assert_eq!(summary.hook_records, OLD_RECORDS as u64, "{summary:?}");

        let live = |session: &str, event: &str, extra: Value| {
            let value = with(
                json!({"session_id": session, "transcript_path": "/nonexistent/x.jsonl", "cwd": "/work/live", "hook_event_name": event}),
                extra,
            );
            sandbox.hook(value.to_string().as_bytes());
        };
        live(LIVE, "SessionStart", json!({"source": "startup"}));
        live(LIVE, "UserPromptSubmit", json!({"prompt": "hello"}));
        live(BETA, "SessionStart", json!({"source": "resume"}));
        live(
            BETA,
            "PreToolUse",
            json!({"tool_name": "Bash", "tool_input": {"command": "ls"}, "tool_use_id": "t9"}),
        );
        Self { sandbox, t0 }
    }

    fn ms(&self, m: u64) -> u64 {
        self.t0 + m * 1_000_000
    }
}

fn find<'a>(items: &'a [Value], tool_use_id: &str) -> &'a Value {
    items
        .iter()
        .find(|it| it["tool_use_id"] == tool_use_id)
        .unwrap_or_else(|| panic!("no item {tool_use_id} in {items:#?}"))
}

#[test]
fn sessions_summarize_each_session() {
    let f = Fixture::new();
    let sessions = f.sandbox.sessions();
    let ids: Vec<&str> = sessions
        .iter()
        .map(|s| s["session"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[2], OLD, "most recent first: {ids:?}");
    let old = &sessions[2];
    assert_eq!(old["project"], PROJECT);
    assert_eq!(old["first_ns"], f.t0);
    assert_eq!(old["last_ns"], f.ms(8000));
    assert_eq!(old["records"], json!({"hook": OLD_RECORDS}));
    assert_eq!(old["tool_calls"], 5);
    assert_eq!(old["models"], json!([]));
    assert_eq!(old["malformed"], 0);
    assert_eq!(old["status"], "ended");
    for live in &sessions[..2] {
        assert_eq!(live["status"], "active", "{live}");
        assert_eq!(live["records"], json!({"hook": 2}));
        assert_eq!(live["project"], "/work/live");
    }
    let beta = sessions.iter().find(|s| s["session"] == BETA).unwrap();
    assert_eq!(beta["tool_calls"], 1);

    let table = f.sandbox.ok_stdout(&["sessions"]);
    assert!(table.starts_with("SESSION"), "{table}");
    for id in [OLD, LIVE, BETA] {
        assert!(table.contains(id), "{table}");
    }
    assert_eq!(table.lines().count(), 4);
}

#[test]
fn show_pairs_tool_calls_and_nests_subagents() {
    let f = Fixture::new();
    let stdout = f.sandbox.ok_stdout(&["show", OLD, "--json"]);
    let items: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let events: Vec<&str> = items.iter().map(|i| i["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            "SessionStart",
            "UserPromptSubmit",
            "PreToolUse",
            "PreToolUse",
            "PreToolUse",
            "PreToolUse",
            "Stop",
            "SessionEnd"
        ],
        "Post events close their Pre item instead of adding one"
    );
    assert!(items.iter().all(|i| i.get("agent_id").is_none()));
    assert_eq!(items[1]["summary"], "Fix the build");

    let t1 = find(&items, "t1");
    assert_eq!(t1["tool"], "Bash");
    assert_eq!(t1["status"], "ok");
    assert_eq!(t1["duration_ns"], 1_500_000_000u64);
    assert!(
        t1["summary"].as_str().unwrap().contains("cargo build"),
        "{t1}"
    );
    assert_eq!(t1["ts"], f.ms(1000));

    let t2 = find(&items, "t2");
    assert_eq!(t2["status"], "error");
    assert_eq!(t2["duration_ns"], 250_000_000u64);

    let t5 = find(&items, "t5");
    assert_eq!(t5["status"], "pending");
    assert!(t5.get("duration_ns").is_none());

    let task = find(&items, "t3");
    assert_eq!(task["tool"], "Task");
    assert_eq!(task["status"], "ok");
    assert_eq!(task["duration_ns"], 1_000_000_000u64);
    let children = task["children"].as_array().expect("subagent items nested");
    let child_events: Vec<&str> = children
        .iter()
        .map(|c| c["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        child_events,
        ["SubagentStart", "PreToolUse", "SubagentStop"]
    );
    assert!(children.iter().all(|c| c["agent_id"] == "ag-1"));
    assert_eq!(children[1]["tool_use_id"], "t4");
    assert_eq!(children[1]["status"], "ok");
    assert_eq!(children[1]["duration_ns"], 100_000_000u64);

    // The text timeline says the same.
    let text = f.sandbox.ok_stdout(&["show", OLD]);
    assert!(
        text.contains(&format!("session {OLD}: {OLD_RECORDS} records")),
        "{text}"
    );
    assert!(text.contains("[1.5s ok]"), "{text}");
    assert!(text.contains("[250ms error]"), "{text}");
    assert!(text.contains("[pending]"), "{text}");

    // replay is show, for sessions without terminal data.
    assert_eq!(f.sandbox.ok_stdout(&["replay", OLD, "--json"]), stdout);
    assert_eq!(f.sandbox.ok_stdout(&["replay", OLD]), text);
}

#[test]
fn show_resolves_unique_prefixes_and_rejects_others() {
    let f = Fixture::new();
    let items: Vec<Value> =
        serde_json::from_str(&f.sandbox.ok_stdout(&["show", "sess-beta", "--json"])).unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(find(&items, "t9")["status"], "pending");

    for command in ["show", "replay"] {
        let unknown = f.sandbox.run(&[command, "no-such-session"]);
        assert_eq!(unknown.status.code(), Some(2), "{command} unknown");
        let stderr = String::from_utf8_lossy(&unknown.stderr);
        assert!(stderr.contains("no-such-session"), "{stderr}");
        assert!(unknown.stdout.is_empty());

        let ambiguous = f.sandbox.run(&[command, "sess-alpha"]);
        assert_eq!(ambiguous.status.code(), Some(2), "{command} ambiguous");
        let stderr = String::from_utf8_lossy(&ambiguous.stderr);
        assert!(stderr.contains(OLD) && stderr.contains(LIVE), "{stderr}");
        assert!(ambiguous.stdout.is_empty());
    }
}

#[test]
fn cat_filters_by_session_source_and_time() {
    let f = Fixture::new();
    let s = &f.sandbox;
    let all = s.cat(&[]);
    assert_eq!(all.len(), OLD_RECORDS + LIVE_RECORDS);
    assert!(all.iter().all(|r| r.source == "hook" && r.offset.is_some()));

    let old = s.cat(&["--session", OLD]);
    assert_eq!(old.len(), OLD_RECORDS);
    assert!(old.iter().all(|r| r.session.as_deref() == Some(OLD)));
    assert_eq!(old[0].ts, f.t0);
    assert_eq!(old[0].time, rfc3339(f.t0));
    assert!(
        s.cat(&["--session", "sess-alpha"]).is_empty(),
        "--session is exact"
    );

    assert_eq!(s.cat(&["--source", "hook"]).len(), all.len());
    assert!(s.cat(&["--source", "transcript"]).is_empty());

    let recent = s.cat(&["--since", "2h"]);
    assert_eq!(recent.len(), LIVE_RECORDS);
    assert!(recent.iter().all(|r| r.session.as_deref() != Some(OLD)));
    let until = rfc3339(now_ns() - 2 * 3600 * 1_000_000_000);
    let older = s.cat(&["--until", &until]);
    assert_eq!(older.len(), OLD_RECORDS);

    // Both bounds are inclusive.
    let window = s.cat(&[
        "--since",
        &rfc3339(f.ms(3000)),
        "--until",
        &rfc3339(f.ms(5000)),
    ]);
    let ts: Vec<u64> = window.iter().map(|r| r.ts).collect();
    let expected: Vec<u64> = [3000, 3250, 4000, 4100, 4200, 4300, 4400, 5000]
        .iter()
        .map(|m| f.ms(*m))
        .collect();
    assert_eq!(ts, expected);
    assert!(
        s.cat(&["--session", OLD, "--since", "2h"]).is_empty(),
        "filters combine"
    );

    let text = s.ok_stdout(&["cat"]);
    assert_eq!(text.lines().count(), all.len());
    assert!(text.contains("PostToolUseFailure"), "{text}");

    for (flag, value) in [("--since", "soonish"), ("--until", "later-ish")] {
        let bad = s.run(&["cat", flag, value]);
        assert_eq!(bad.status.code(), Some(2), "{flag} {value}");
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert!(stderr.contains(flag) && stderr.contains(value), "{stderr}");
        assert!(bad.stdout.is_empty());
    }
    let bad_source = s.run(&["cat", "--source", "telepathy"]);
    assert_eq!(bad_source.status.code(), Some(2));
}

/// `ctrace ARGS | head -1`: the reader takes one line and goes away; ctrace must exit 0.
fn closed_pipe_exits_0(args: &[&str]) {
    let sandbox = Sandbox::new();
    // Far more output than the pipe and ctrace's buffer hold, so ctrace is still writing when
    // the reader goes away.
    let log = sandbox.path("many.ndjson");
    let text: String = (0..5000)
        .map(|i| {
            let message = format!("notification number {i} with enough text to make a long line");
            format!("{}\n", json!({"session_id": "s-pipe", "hook_event_name": "Notification", "message": message}))
        })
        .collect();
    fs::write(&log, text).unwrap();
    assert_eq!(sandbox.ingest(&[&log]).records, 5000);
    let full = sandbox.ok(args).stdout;
    assert!(full.len() > 512 << 10, "{} bytes of output", full.len());
    let mut child = sandbox
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    assert!(!first.trim().is_empty());
    drop(reader);
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "`ctrace {args:?} | head -1` must exit 0; stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn cat_into_a_closed_pipe_exits_0() {
    closed_pipe_exits_0(&["cat"]);
}

#[test]
fn cat_json_into_a_closed_pipe_exits_0() {
    closed_pipe_exits_0(&["cat", "--json"]);
}

#[test]
fn show_into_a_closed_pipe_exits_0() {
    closed_pipe_exits_0(&["show", "s-pipe"]);
}

#[test]
fn show_json_into_a_closed_pipe_exits_0() {
    closed_pipe_exits_0(&["show", "s-pipe", "--json"]);
}

fn stats(sandbox: &Sandbox) -> Value {
    serde_json::from_str(&sandbox.ok_stdout(&["stats", "--json"])).unwrap()
}

#[test]
fn verify_and_stats_count_sealed_and_unsealed_records() {
    let sandbox = Sandbox::new();
    for i in 0..3 {
        let p = json!({"session_id": "s-stats", "hook_event_name": "Notification", "message": format!("n{i}")});
        sandbox.hook(p.to_string().as_bytes());
    }
    // Neither stats nor verify seals.
    let before = stats(&sandbox);
    assert_eq!(before["records"], 0);
    assert_eq!(before["segments"], 0);
    assert_eq!(before["unsealed_records"], 3);
    assert!(before["unsealed_bytes"].as_u64().unwrap() > 0);
    let verify: Value = serde_json::from_slice(&sandbox.ok(&["verify", "--json"]).stdout).unwrap();
    assert_eq!(verify["clean"], true);
    assert_eq!(verify["inbox_records"], 3);
    assert_eq!(verify["records"], 0);
    assert_eq!(stats(&sandbox)["unsealed_records"], 3);

    assert_eq!(sandbox.cat(&[]).len(), 3);
    let after = stats(&sandbox);
    assert_eq!(after["records"], 3);
    assert_eq!(after["next_offset"], 3);
    assert_eq!(after["segments"], 1);
    assert_eq!(after["unsealed_records"], 0);
    assert!(after["oldest"].is_string() && after["newest"].is_string());
    assert!(after["stored_bytes"].as_u64().unwrap() > 0);
    let text = sandbox.ok_stdout(&["stats"]);
    assert!(text.contains("3 sealed, 0 unsealed"), "{text}");

    let verify = sandbox.ok(&["verify"]);
    let text = String::from_utf8(verify.stdout).unwrap();
    assert!(text.lines().any(|l| l == "clean"), "{text}");
    let verify: Value = serde_json::from_slice(&sandbox.ok(&["verify", "--json"]).stdout).unwrap();
    assert_eq!(verify["records"], 3);
    assert_eq!(verify["segments"], 1);
    assert_eq!(verify["damage"], json!([]));

    // One flipped byte in the middle of the sealed segment is damage: exit 1.
    let segment = fs::read_dir(sandbox.store().join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let mut bytes = fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    fs::write(&segment, bytes).unwrap();
    let damaged = sandbox.run(&["verify"]);
    assert_eq!(damaged.status.code(), Some(1));
    let text = String::from_utf8_lossy(&damaged.stdout);
    assert!(
        text.contains("DAMAGE") && text.lines().any(|l| l == "damaged"),
        "{text}"
    );
    let damaged: Value =
        serde_json::from_slice(&sandbox.run(&["verify", "--json"]).stdout).unwrap();
    assert_eq!(damaged["clean"], false);
    assert!(!damaged["damage"].as_array().unwrap().is_empty());
}

#[test]
fn config_prints_effective_toml_and_names_bad_keys() {
    let sandbox = Sandbox::new();
    let printed = sandbox.ok_stdout(&["config"]);
    assert!(
        printed.lines().any(|l| l.trim() == "[storage]"),
        "{printed}"
    );
    let table: toml::Table = toml::from_str(&printed).unwrap();
    assert_eq!(table["storage"]["zstd_level"].as_integer(), Some(3));
    assert_eq!(table["storage"]["durability"].as_str(), Some("none"));

    // What `config` prints is a valid config file that means the same thing.
    fs::create_dir_all(sandbox.store()).unwrap();
    let file = sandbox.store().join("config.toml");
    fs::write(&file, &printed).unwrap();
    assert_eq!(sandbox.ok_stdout(&["config"]), printed);

    fs::write(&file, "[storage]\nzstd_level = 7\n").unwrap();
    let table: toml::Table = toml::from_str(&sandbox.ok_stdout(&["config"])).unwrap();
    assert_eq!(table["storage"]["zstd_level"].as_integer(), Some(7));

    fs::write(&file, "[storage]\nzstd_level = 99\n").unwrap();
    for args in [&["config"][..], &["sessions"][..]] {
        let bad = sandbox.run(args);
        assert!(!bad.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert!(stderr.contains("storage.zstd_level"), "{stderr}");
        assert!(bad.stdout.is_empty());
    }

    // Forwarding credentials are not printed.
    fs::write(
        &file,
        "[forward]\nendpoint = \"http://c:4318\"\nheaders = { Authorization = \"Bearer s3cret\" }\n",
    )
    .unwrap();
    let printed = sandbox.ok_stdout(&["config"]);
    assert!(!printed.contains("s3cret"), "{printed}");
    let table: toml::Table = toml::from_str(&printed).unwrap();
    assert_eq!(
        table["forward"]["headers"]["Authorization"].as_str(),
        Some("<hidden: 13 bytes>")
    );
    assert_eq!(table["forward"]["endpoint"].as_str(), Some("http://c:4318"));
    // A bad [forward] table is an error naming the key.
    fs::write(&file, "[forward]\nendpoint = \"localhost:4318\"\n").unwrap();
    let bad = sandbox.run(&["config"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("forward.endpoint"));

    // --config names another file; a missing one is an error naming it.
    let other = sandbox.path("other.toml");
    fs::write(&other, "[storage]\nzstd_level = 5\n").unwrap();
    let table: toml::Table =
        toml::from_str(&sandbox.ok_stdout(&["--config", other.to_str().unwrap(), "config"]))
            .unwrap();
    assert_eq!(table["storage"]["zstd_level"].as_integer(), Some(5));
    let missing = sandbox.path("missing.toml");
    let bad = sandbox.run(&["--config", missing.to_str().unwrap(), "config"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("missing.toml"));
}

#[test]
fn empty_store_reads_cleanly() {
    let sandbox = Sandbox::new();
    assert!(sandbox.sessions().is_empty());
    let text = sandbox.ok_stdout(&["sessions"]);
    assert!(text.contains("ctrace demo"), "{text}");
    assert!(sandbox.cat(&[]).is_empty());
    let verify = sandbox.ok_stdout(&["verify"]);
    assert!(verify.lines().any(|l| l == "clean"), "{verify}");
    let unknown = sandbox.run(&["show", "anything"]);
    assert_eq!(unknown.status.code(), Some(2));
}
