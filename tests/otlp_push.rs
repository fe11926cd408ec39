//! Pushing to a collector (issue 17, "Forward and push"): `ctrace export --format otlp
//! --endpoint` to a receiver that decodes with the official `opentelemetry-proto` Python
//! package (`tests/otlp/receiver.py`): span counts, parent links and attributes as the
//! `otlp-json` export has them, and every record as one log record; into a second
//! `ctrace serve` (same sessions, same cost); and `[forward]` in `ctrace serve` surviving the
//! receiver being down and restarted, every record delivered exactly once.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::Sandbox;
use common::http::{DEADLINE, Server};
use common::otlp::{Receiver, python};
use serde_json::Value;

fn cost_by_session(sandbox: &Sandbox, store: &Path) -> BTreeMap<String, (u64, f64)> {
    let output = sandbox
        .command_in(store, &["cost", "--json"])
        .output()
        .unwrap();
    common::assert_success(&["cost"], &output);
    let rows: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    rows.iter()
        .map(|r| {
            (
                r["session"].as_str().unwrap().to_owned(),
                (
                    r["total_tokens"].as_u64().unwrap(),
                    r["cost_usd"].as_f64().unwrap_or(0.0),
                ),
            )
        })
        .collect()
}

fn offsets_of(items: &[Value]) -> Vec<u64> {
    items
        .iter()
        .filter(|i| i["signal"] == "logs")
        .map(|i| i["attributes"]["ctrace.offset"].as_u64().unwrap())
        .collect()
}

#[test]
fn export_pushes_spans_and_records_that_the_reference_decoder_reads() {
    let Some(python) = python() else { return };
    let sandbox = Sandbox::new();
    let store = sandbox.demo_store();
    let receiver = Receiver::start(&python, &sandbox.tmp(), &[]);
    let output = sandbox
        .command_in(
            &store,
            &["export", "--format", "otlp", "--endpoint", &receiver.url()],
        )
        .output()
        .unwrap();
    common::assert_success(&["export", "--format", "otlp"], &output);
    let items = receiver.items();
    // Spans: as many per trace as the otlp-json export has, every parent in the same trace.
    let expected = sandbox.json_lines_in(&store, &["export", "--format", "otlp-json"]);
    let mut by_trace: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for span in items.iter().filter(|i| i["signal"] == "traces") {
        by_trace
            .entry(span["trace_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(span);
    }
    assert_eq!(by_trace.len(), expected.len());
    for request in &expected {
        let spans = request["resourceSpans"][0]["scopeSpans"][0]["spans"]
            .as_array()
            .unwrap();
        let trace = spans[0]["traceId"].as_str().unwrap();
        let got = &by_trace[trace];
        assert_eq!(got.len(), spans.len(), "trace {trace}");
        let ids: BTreeSet<&str> = got.iter().map(|s| s["span_id"].as_str().unwrap()).collect();
        let roots = got
            .iter()
            .filter(|s| s["parent_span_id"].as_str().unwrap().is_empty())
            .count();
        assert_eq!(roots, 1, "one root per trace");
        for span in got {
            let parent = span["parent_span_id"].as_str().unwrap();
            assert!(parent.is_empty() || ids.contains(parent), "{span}");
        }
        // The attributes of the root span, as the otlp-json export gives them.
        let root = got
            .iter()
            .find(|s| s["parent_span_id"].as_str().unwrap().is_empty())
            .unwrap();
        assert_eq!(root["attributes"]["gen_ai.provider.name"], "anthropic");
        assert_eq!(root["resource"]["service.name"], "claude-code");
    }
    // Logs: every sealed record once, with its offset and source.
    let records = sandbox.json_lines_in(&store, &["cat", "--json"]);
    let offsets = offsets_of(&items);
    let unique: BTreeSet<u64> = offsets.iter().copied().collect();
    assert_eq!(offsets.len(), records.len());
    assert_eq!(unique.len(), records.len());
    let expected_offsets: BTreeSet<u64> = records
        .iter()
        .map(|r| r["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(unique, expected_offsets);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("and {} records", records.len())),
        "{stderr}"
    );
    // A receiver that refuses (401 without the header) is a failure, named, exit status 1;
    // with the header it is accepted.
    let strict_dir = sandbox.path("strict");
    std::fs::create_dir_all(&strict_dir).unwrap();
    let strict = Receiver::start(
        &python,
        &strict_dir,
        &["--require-header", "Authorization=Bearer t0ken"],
    );
    let refused = sandbox
        .command_in(
            &store,
            &["export", "--format", "otlp", "--endpoint", &strict.url()],
        )
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"));
    let accepted = sandbox
        .command_in(
            &store,
            &[
                "export",
                "--format",
                "otlp",
                "--endpoint",
                &strict.url(),
                "--header",
                "Authorization=Bearer t0ken",
            ],
        )
        .output()
        .unwrap();
    common::assert_success(&["export", "--header"], &accepted);
    // Bad arguments are usage errors.
    for args in [
        &["export", "--format", "otlp"][..],
        &["export", "--format", "otlp", "--endpoint", "localhost:4318"],
        &["export", "--format", "jsonl", "--endpoint", "http://x"],
        &[
            "export",
            "--format",
            "otlp",
            "--endpoint",
            "http://x",
            "--header",
            "nope",
        ],
    ] {
        let output = sandbox.command_in(&store, args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn a_second_ctrace_fed_by_export_has_the_same_sessions_and_cost() {
    let sandbox = Sandbox::new();
    let store = sandbox.demo_store();
    let second = sandbox.path("second");
    let server = Server::spawn(sandbox.command_in(
        &second,
        &["serve", "--bind", "127.0.0.1:0", "--no-transcripts"],
    ));
    let url = format!("http://{}", server.addr);
    let output = sandbox
        .command_in(&store, &["export", "--format", "otlp", "--endpoint", &url])
        .output()
        .unwrap();
    common::assert_success(&["export", "--format", "otlp"], &output);
    let records = sandbox.json_lines_in(&store, &["cat", "--json"]).len() as u64;
    server.wait_caught_up(records);
    assert_eq!(server.terminate(), Some(0));
    let (a, b) = (
        cost_by_session(&sandbox, &store),
        cost_by_session(&sandbox, &second),
    );
    assert!(!a.is_empty());
    for (session, (tokens, usd)) in &a {
        let (tokens_b, usd_b) = b[session];
        assert_eq!(tokens_b, *tokens, "{session}");
        assert!((usd_b - usd).abs() < 1e-9, "{session}: {usd} vs {usd_b}");
    }
    // The hook and transcript records came back as themselves.
    let hooks = |s: &Path| {
        sandbox
            .json_lines_in(s, &["cat", "--json", "--source", "hook"])
            .len()
    };
    assert_eq!(hooks(&store), hooks(&second));
}

/// A free port on 127.0.0.1 (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn hook(session: &str, n: u64) -> Vec<u8> {
    format!(
        r#"{{"hook_event_name":"UserPromptSubmit","session_id":"{session}","cwd":"/tmp/p","prompt":"prompt {n}"}}"#
    )
    .into_bytes()
}

/// Waits until the receiver holds every offset below `next` (deduplicated).
fn wait_delivered(receiver: &Receiver, next: u64) -> Vec<u64> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let offsets = offsets_of(&receiver.items());
        let unique: BTreeSet<u64> = offsets.iter().copied().collect();
        if unique.len() as u64 == next && unique.iter().all(|o| *o < next) {
            return offsets;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {next} records delivered",
            unique.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn forwarding_survives_the_receiver_being_down_and_delivers_each_record_once() {
    let Some(python) = python() else { return };
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    std::fs::create_dir_all(&store).unwrap();
    let port = free_port();
    std::fs::write(
        store.join("config.toml"),
        format!("[forward]\nendpoint = \"http://127.0.0.1:{port}\"\nbatch = 7\n"),
    )
    .unwrap();
    let start = || {
        Server::spawn(sandbox.command_in(
            &store,
            &["serve", "--bind", "127.0.0.1:0", "--no-transcripts"],
        ))
    };
    let server = start();
    // The receiver is down: records pile up.
    for n in 0..20 {
        assert_eq!(server.post_hook(&hook("fwd-a", n)).status, 200);
    }
    server.wait_caught_up(20);
    let receiver_dir = sandbox.path("receiver");
    std::fs::create_dir_all(&receiver_dir).unwrap();
    let port_arg = port.to_string();
    // Up, but refusing its first requests (503, Retry-After): retried.
    let receiver = Receiver::start(
        &python,
        &receiver_dir,
        &["--port", &port_arg, "--fail-first", "2"],
    );
    wait_delivered(&receiver, 20);
    receiver.stop();
    // Down again while more arrive; then back.
    for n in 20..45 {
        assert_eq!(server.post_hook(&hook("fwd-b", n)).status, 200);
    }
    server.wait_caught_up(45);
    let receiver = Receiver::start(&python, &receiver_dir, &["--port", &port_arg]);
    wait_delivered(&receiver, 45);
    // A restart of the service resends nothing and goes on from its checkpoint.
    assert_eq!(server.terminate(), Some(0));
    let server = start();
    for n in 45..50 {
        assert_eq!(server.post_hook(&hook("fwd-c", n)).status, 200);
    }
    server.wait_caught_up(50);
    let offsets = wait_delivered(&receiver, 50);
    assert_eq!(offsets.len(), 50, "each record delivered exactly once");
    let checkpoint: Value =
        serde_json::from_slice(&std::fs::read(store.join("forward.checkpoint")).unwrap()).unwrap();
    assert_eq!(checkpoint["next_offset"], 50);
    let deadline = Instant::now() + DEADLINE;
    while server.json("/api/health")["forward"]["next_offset"] != 50 {
        assert!(
            Instant::now() < deadline,
            "health does not show the checkpoint"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        server.json("/api/health")["forward"]["endpoint"],
        format!("http://127.0.0.1:{port}").as_str()
    );
    assert_eq!(server.terminate(), Some(0));
}
