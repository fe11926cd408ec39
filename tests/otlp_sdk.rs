//! A real OpenTelemetry client into `ctrace serve` (issue 17, "Tests"): the OpenTelemetry
//! Python SDK with its OTLP/HTTP protobuf and JSON exporters (`tests/otlp/claude_telemetry.py`)
//! sends logs and metrics shaped like Claude Code's; every record the SDK reports exported is
//! stored, in both encodings, gzip on and off, and Claude Code's events reach the views.

mod common;

use std::process::Command;

use common::Sandbox;
use common::http::Server;
use common::otlp::{python, script};
use serde_json::Value;

#[test]
fn the_python_sdk_delivers_every_log_and_metric_point_in_both_encodings() {
    let Some(python) = python() else { return };
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let server = Server::spawn(sandbox.command_in(
        &store,
        &["serve", "--bind", "127.0.0.1:0", "--no-transcripts"],
    ));
    let url = format!("http://{}", server.addr);
    let mut expected = 0;
    let mut sent = Vec::new();
    for (i, (protocol, gzip)) in [
        ("http/protobuf", false),
        ("http/protobuf", true),
        ("http/json", false),
        ("http/json", true),
    ]
    .into_iter()
    .enumerate()
    {
        let session = format!("sdk-{i}");
        let events = sandbox.tmp().join(format!("events-{i}.jsonl"));
        let mut command = Command::new(&python);
        command
            .arg(script("claude_telemetry.py"))
            .args(["--endpoint", &url, "--protocol", protocol])
            .args(["--synthetic", "60", "--session", &session, "--batch", "25"])
            .arg("--dump-events")
            .arg(&events);
        if gzip {
            command.arg("--gzip");
        }
        let output = command.output().unwrap();
        assert!(
            output.status.success(),
            "{protocol} gzip={gzip}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(summary["failed"], 0, "{summary}");
        assert_eq!(summary["logs"], 60, "{summary}");
        let points = summary["metric_points"].as_u64().unwrap();
        assert!(points > 0, "{summary}");
        expected += 60 + points;
        sent.push((session, events, points));
    }
    server.wait_caught_up(expected);
    assert_eq!(server.terminate(), Some(0));
    let output = sandbox
        .command_in(&store, &["cat", "--json", "--source", "otlp"])
        .output()
        .unwrap();
    common::assert_success(&["cat"], &output);
    let records: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len() as u64, expected);
    for (session, events, points) in &sent {
        let mine: Vec<&Value> = records
            .iter()
            .filter(|r| r["session"] == *session)
            .collect();
        let logs: Vec<&Value> = mine
            .iter()
            .copied()
            .filter(|r| r["body"]["signal"] == "logs")
            .collect();
        let metrics = mine
            .iter()
            .filter(|r| r["body"]["signal"] == "metrics")
            .count();
        assert_eq!(metrics as u64, *points, "{session}");
        // The events in the order sent, each named as Claude Code names it.
        let names: Vec<String> = std::fs::read_to_string(events)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let event: Value = serde_json::from_str(l).unwrap();
                event["event"].as_str().unwrap().to_owned()
            })
            .collect();
        let stored: Vec<String> = logs
            .iter()
            .map(|r| r["body"]["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(stored, names, "{session}");
    }
    // The events reach the views: api_request rows reconcile per session (no transcripts here,
    // so every request is missing from the transcript side).
    let output = sandbox
        .command_in(&store, &["cost", "--reconcile", "--json"])
        .output()
        .unwrap();
    common::assert_success(&["cost", "--reconcile"], &output);
    let rows: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    for (session, events, _) in &sent {
        let requests = std::fs::read_to_string(events)
            .unwrap()
            .lines()
            .filter(|l| l.contains("\"api_request\""))
            .count() as u64;
        let reported: u64 = rows
            .iter()
            .filter(|r| r["session"] == *session)
            .map(|r| r["telemetry"]["requests"].as_u64().unwrap())
            .sum();
        assert_eq!(reported, requests, "{session}");
    }
}
