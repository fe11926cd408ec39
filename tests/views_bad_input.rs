//! Issue 5, acceptance 4: bad input is reported, nothing is lost, nothing panics — a transcript
//! with unknown line types, missing usage, zero tokens, an unknown model and a broken line, and
//! a malformed `.beads/issues.jsonl` under the session's working directory.

mod common;

use common::Sandbox;
use serde_json::{Value, json};

#[test]
fn bad_transcript_and_beads_file() {
    let sandbox = Sandbox::new();
    let project = sandbox.path("proj");
    std::fs::create_dir_all(project.join(".beads")).unwrap();
    std::fs::write(
        project.join(".beads/issues.jsonl"),
        "{\"id\":\"bd-1\",\"title\":\"Epic\",\"status\":\"open\"}\n\
         {\"id\":\"bd-2\",\"title\":\"Child\",\"status\":\"in_progress\",\"dependencies\":[{\"issue_id\":\"bd-2\",\"depends_on_id\":\"bd-1\",\"type\":\"parent-child\"}]}\n\
         {oops\n\
         [1,2,3]\n",
    )
    .unwrap();
    let cwd = project.to_str().unwrap();
    let s = "bad-session-1";
    let line = |v: Value| v.to_string();
    let usage = |i: u64, o: u64| {
        json!({"input_tokens": i, "output_tokens": o,
        "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
    };
    let lines = [
        line(json!({"type":"user","uuid":"u1","sessionId":s,"cwd":cwd,
            "timestamp":"2026-01-01T00:00:00Z","message":{"role":"user","content":"do it"}})),
        line(
            json!({"type":"mystery-line","uuid":"x1","sessionId":s,"timestamp":"2026-01-01T00:00:01Z"}),
        ),
        line(
            json!({"type":"assistant","uuid":"a1","sessionId":s,"requestId":"r1",
            "timestamp":"2026-01-01T00:00:02Z",
            "message":{"id":"m1","model":"claude-opus-4-6","content":[
                {"type":"tool_use","id":"t1","name":"Bash","input":{"command":"bd update bd-2 --status in_progress"}}]}}),
        ),
        line(
            json!({"type":"user","uuid":"u2","sessionId":s,"timestamp":"2026-01-01T00:00:03Z",
            "message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}}),
        ),
        line(
            json!({"type":"assistant","uuid":"a2","sessionId":s,"requestId":"r2",
            "timestamp":"2026-01-01T00:00:04Z",
            "message":{"id":"m2","model":"claude-opus-4-6","usage":usage(0, 0),"content":[]}}),
        ),
        line(
            json!({"type":"assistant","uuid":"a3","sessionId":s,"requestId":"r3",
            "timestamp":"2026-01-01T00:00:05Z",
            "message":{"id":"m3","model":"claude-future-9","usage":usage(1000, 2000),"content":[]}}),
        ),
        line(
            json!({"type":"assistant","uuid":"a4","sessionId":s,"requestId":"r4",
            "timestamp":"2026-01-01T00:00:06Z",
            "message":{"id":"m4","model":"claude-haiku-4-5-20251001","usage":usage(1_000_000, 0),"content":[]}}),
        ),
        "{\"type\":\"assistant\", broken".to_owned(),
        line(
            json!({"type":"assistant","uuid":"a5","sessionId":s,"requestId":"r5",
            "timestamp":"2026-01-01T00:00:07Z","message":"not an object"}),
        ),
    ];
    let file = sandbox.path(&format!("{s}.jsonl"));
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    sandbox.ingest(&[&file]);
    let compact = sandbox.ok_stdout(&["compact"]);
    assert!(compact.contains("views:"), "{compact}");

    // Nothing lost: every line is a record.
    assert_eq!(sandbox.cat(&[]).len(), lines.len());

    // Unknown model: unpriced (null), listed; known models priced; zero tokens counted as zero.
    let rows: Value =
        serde_json::from_str(&sandbox.ok_stdout(&["cost", "--by", "model", "--json"])).unwrap();
    let rows = rows.as_array().unwrap();
    let by_model = |m: &str| rows.iter().find(|r| r["model"] == m).unwrap();
    assert!(by_model("claude-future-9")["cost_usd"].is_null());
    assert_eq!(
        by_model("claude-future-9")["unpriced_models"],
        json!(["claude-future-9"])
    );
    assert_eq!(by_model("claude-future-9")["output_tokens"], 2000);
    assert_eq!(by_model("claude-haiku-4-5-20251001")["cost_usd"], 1.0);
    assert_eq!(by_model("claude-opus-4-6")["total_tokens"], 0);
    assert_eq!(by_model("claude-opus-4-6")["cost_usd"], 0.0);

    // The session total is unpriced, not a partial number.
    let rows: Value = serde_json::from_str(&sandbox.ok_stdout(&["cost", "--json"])).unwrap();
    assert!(rows[0]["cost_usd"].is_null());

    // The table reports the unpriced model and the input problems.
    let table = sandbox.ok_stdout(&["cost"]);
    assert!(table.contains("unpriced models"), "{table}");
    assert!(table.contains("claude-future-9"), "{table}");
    assert!(table.contains("unknown_line_type"), "{table}");
    assert!(table.contains("missing_usage"), "{table}");

    // Tasks: the good issues are there (bd-2 under bd-1), the bad lines are reported.
    let output = sandbox.ok(&["tasks"]);
    let text = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("bd-1 Epic"), "{text}");
    assert!(text.contains("bd-2 Child"), "{text}");
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(stderr.contains("line 4"), "{stderr}");
    let tree: Value = serde_json::from_str(&sandbox.ok_stdout(&["tree", s, "--json"])).unwrap();
    assert_eq!(tree["children"][0]["children"][0]["id"], "t1");
    assert_eq!(tree["children"][0]["children"][0]["status"], "ok");
}
