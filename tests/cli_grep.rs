//! `ctrace grep`: regex over raw payloads, -i, -F, -c, -n, filters, time ranges, JSON, exit
//! codes; the count equals a scan of `cat --json` payloads with the same regex.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup step should fail the test"
)]

mod common;

use common::Sandbox;
use serde_json::Value;

const HOOKS: &[&str] = &[
    r#"{"session_id":"g-1","hook_event_name":"PostToolUse","tool_name":"Bash","timestamp":"2026-01-10T10:00:00Z","tool_input":{"command":"make"},"tool_response":{"stderr":"error[E0308]: mismatched types at src/main.rs:12"}}"#,
    r#"{"session_id":"g-2","hook_event_name":"PostToolUse","tool_name":"Read","timestamp":"2026-02-10T10:00:00Z","tool_input":{"file_path":"/tmp/ERROR.log"},"tool_response":{"content":"exit code 137"}}"#,
    r#"{"session_id":"g-2","hook_event_name":"UserPromptSubmit","timestamp":"2026-03-10T10:00:00Z","prompt":"what does a.b*c mean?"}"#,
];

fn setup() -> Sandbox {
    let sandbox = Sandbox::new();
    let dir = sandbox.path("in");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("h.ndjson"), HOOKS.join("\n") + "\n").unwrap();
    sandbox.ok(&["ingest", "--quiet", dir.to_str().unwrap()]);
    sandbox
}

fn matches(sandbox: &Sandbox, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["grep"];
    all.extend_from_slice(args);
    all.push("--json");
    let output = sandbox.run(&all);
    assert!(matches!(output.status.code(), Some(0 | 1)), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn count(sandbox: &Sandbox, args: &[&str]) -> u64 {
    let mut all = vec!["grep", "-c"];
    all.extend_from_slice(args);
    let output = sandbox.run(&all);
    String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn regex_case_and_fixed_strings() {
    let sandbox = setup();
    let found = matches(&sandbox, &[r"error\[E\d+\]"]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["matched"], "error[E0308]");
    assert_eq!(found[0]["session"], "g-1");
    assert_eq!(found[0]["tool"], "Bash");
    assert_eq!(
        found[0]["replay"],
        format!("ctrace replay g-1 --at {}", found[0]["offset"])
    );
    assert_eq!(count(&sandbox, &["error"]), 1);
    assert_eq!(count(&sandbox, &["-i", "error"]), 2);
    // -F: the dot and star are literal.
    assert_eq!(count(&sandbox, &["-F", "a.b*c"]), 1);
    assert_eq!(count(&sandbox, &["-F", "a.bbc"]), 0);
    // Anchored patterns match the payload itself, not its encoding.
    assert_eq!(count(&sandbox, &[r#"^\{"session_id":"g-2""#]), 2);
    assert_eq!(count(&sandbox, &[r"\bcode 137\b"]), 1);
}

#[test]
fn filters_limits_and_exit_codes() {
    let sandbox = setup();
    assert_eq!(count(&sandbox, &["-i", "error", "--session", "g-2"]), 1);
    assert_eq!(count(&sandbox, &["-i", "error", "--tool", "bash"]), 1);
    assert_eq!(
        count(&sandbox, &["session_id", "--event", "UserPromptSubmit"]),
        1
    );
    assert_eq!(
        count(&sandbox, &["session_id", "--source", "transcript"]),
        0
    );
    assert_eq!(
        count(
            &sandbox,
            &[
                "session_id",
                "--since",
                "2026-02-01",
                "--until",
                "2026-02-28"
            ]
        ),
        1
    );
    assert_eq!(matches(&sandbox, &["session_id", "-n", "2"]).len(), 2);
    // Text output names the session, time, event, tool and the replay command.
    let text = sandbox.ok_stdout(&["grep", "mismatched"]);
    assert!(text.contains("g-1  2026-01-10T10:00:00.000Z  PostToolUse Bash"));
    assert!(text.contains("mismatched types"));
    assert!(text.contains("ctrace replay g-1 --at "));
    // No match: exit 1 (as grep); bad regex: exit 2.
    assert_eq!(sandbox.run(&["grep", "zebrafish"]).status.code(), Some(1));
    let bad = sandbox.run(&["grep", "(unclosed"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("(unclosed"));
    assert_eq!(sandbox.run(&["grep", ""]).status.code(), Some(2));
}

#[test]
#[cfg_attr(
    corpus_missing,
    ignore = "needs the corpus: ../shared/corpus or CTRACE_CORPUS"
)]
fn corpus_count_equals_a_scan_of_payloads() {
    let Some(corpus) = common::corpus() else {
        return;
    };
    let sandbox = Sandbox::new();
    let (hooks, transcripts) = (corpus.join("hooks"), corpus.join("transcripts"));
    sandbox.ok(&[
        "ingest",
        "--quiet",
        hooks.to_str().unwrap(),
        transcripts.to_str().unwrap(),
    ]);
    let records = sandbox.cat(&[]);
    for (pattern, insensitive) in [
        ("error", false),
        ("error", true),
        (r"exit code \d+", false),
        (r"\bBash\b", false),
    ] {
        let regex = regex::bytes::RegexBuilder::new(pattern)
            .case_insensitive(insensitive)
            .build()
            .unwrap();
        let expected = records.iter().filter(|r| regex.is_match(&r.raw)).count() as u64;
        let mut args = vec![pattern];
        if insensitive {
            args.push("-i");
        }
        assert_eq!(count(&sandbox, &args), expected, "pattern {pattern:?}");
    }
}

#[test]
fn record_chained_across_frames_is_scanned() {
    let sandbox = setup();
    // Over the 1 MiB frame limit: stored as a chain of frames, read through the slow path.
    let filler = "x ".repeat(900_000);
    let payload = format!(
        r#"{{"session_id":"g-big","hook_event_name":"UserPromptSubmit","prompt":"{filler} needle-at-the-end"}}"#
    );
    sandbox.hook(payload.as_bytes());
    let found = matches(&sandbox, &["needle-at-the-end"]);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["session"], "g-big");
    assert!(found[0]["offset"].is_u64(), "sealed: {}", found[0]);
    assert_eq!(count(&sandbox, &["-i", "error"]), 2);
}
