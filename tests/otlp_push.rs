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

use common::http::{DEADLINE, Server};
use common::otlp::{Receiver, python};
use common::{Sandbox, hook_payload, sized_hook};
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
    let server = Server::start(&sandbox, &second, &[]);
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

/// A free port on 127.0.0.1 (bound and released) below the kernel's ephemeral range
/// (32768 and up by default), so that no client socket or `--bind :0` of another test takes
/// it before the receiver binds it.
fn free_port() -> u16 {
    let seed = u64::from(std::process::id())
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos() as u64;
    (0..2000_u64)
        .map(|i| 20_000 + u16::try_from((seed + i * 7919) % 12_000).unwrap_or(0))
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .unwrap_or_else(|| panic!("no free port in 20000..32000"))
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
    let start = || Server::start(&sandbox, &store, &[]);
    let server = start();
    // The receiver is down: records pile up.
    for n in 0..20 {
        assert_eq!(server.post_hook(&hook_payload("fwd-a", n)).status, 200);
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
    // Stopped only once the service took the answers (a receiver stopped before answering
    // gets that batch again, rightly).
    server.wait_for("/api/health", |health| {
        health["forward"]["next_offset"] == 20
    });
    receiver.stop();
    // Down again while more arrive; then back.
    for n in 20..45 {
        assert_eq!(server.post_hook(&hook_payload("fwd-b", n)).status, 200);
    }
    server.wait_caught_up(45);
    let receiver = Receiver::start(&python, &receiver_dir, &["--port", &port_arg]);
    wait_delivered(&receiver, 45);
    server.wait_for("/api/health", |health| {
        health["forward"]["next_offset"] == 45
    });
    // A restart of the service resends nothing and goes on from its checkpoint.
    assert_eq!(server.terminate(), Some(0));
    let server = start();
    for n in 45..50 {
        assert_eq!(server.post_hook(&hook_payload("fwd-c", n)).status, 200);
    }
    server.wait_caught_up(50);
    let offsets = wait_delivered(&receiver, 50);
    assert_eq!(offsets.len(), 50, "each record delivered exactly once");
    // The checkpoint is written after the receiver's answer, so after its lines: wait for it.
    server.wait_for("/api/health", |health| {
        health["forward"]["next_offset"] == 50
    });
    let checkpoint: Value =
        serde_json::from_slice(&std::fs::read(store.join("forward.checkpoint")).unwrap()).unwrap();
    assert_eq!(checkpoint["next_offset"], 50);
    assert_eq!(
        server.json("/api/health")["forward"]["endpoint"],
        format!("http://127.0.0.1:{port}").as_str()
    );
    assert_eq!(server.terminate(), Some(0));
}

/// A collector that refuses requests above a size (413, as an OpenTelemetry Collector's
/// receiver does past its body limit) and takes the others, keeping the `ctrace.offset` of
/// every log record it took.
struct SizeLimited {
    addr: std::net::SocketAddr,
    offsets: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
    refused: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// The next this many requests are answered 401 (credentials refused).
    deny: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl SizeLimited {
    /// Listens on a free port; bodies above `limit` bytes once decompressed get 413.
    fn start(limit: usize) -> Self {
        use std::sync::{Arc, Mutex, atomic::AtomicUsize};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let offsets = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(AtomicUsize::new(0));
        let deny = Arc::new(AtomicUsize::new(0));
        let (o, r, d) = (
            Arc::clone(&offsets),
            Arc::clone(&refused),
            Arc::clone(&deny),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                // An aborted connection is no reason to stop listening.
                let stream = match stream {
                    Ok(stream) => stream,
                    Err(error) => {
                        eprintln!("collector: accept failed: {error}");
                        continue;
                    }
                };
                let (o, r, d) = (Arc::clone(&o), Arc::clone(&r), Arc::clone(&d));
                std::thread::spawn(move || Self::serve(stream, limit, &o, &r, &d));
            }
        });
        Self {
            addr,
            offsets,
            refused,
            deny,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the requests of one connection (keep-alive) until it closes.
    fn serve(
        stream: std::net::TcpStream,
        limit: usize,
        offsets: &std::sync::Mutex<Vec<u64>>,
        refused: &std::sync::atomic::AtomicUsize,
        deny: &std::sync::atomic::AtomicUsize,
    ) {
        use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
        use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
        use prost::Message;
        use std::io::{BufRead, BufReader, Read, Write};
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let path = line.split(' ').nth(1).unwrap_or("").to_owned();
            let (mut length, mut gzip) = (0, false);
            loop {
                line.clear();
                // The client gave up mid-request (its timeout): this connection is done.
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                gzip |= lower.starts_with("content-encoding:") && lower.contains("gzip");
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            if gzip {
                let mut plain = Vec::new();
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_end(&mut plain)
                    .unwrap();
                body = plain;
            }
            let denied = deny
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    |n| n.checked_sub(1),
                )
                .is_ok();
            let answer = if denied {
                "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"
            } else if body.len() > limit {
                refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n"
            } else {
                if path == "/v1/logs" {
                    let request = ExportLogsServiceRequest::decode(&body[..]).unwrap();
                    let mut taken = offsets.lock().unwrap();
                    for log in request
                        .resource_logs
                        .iter()
                        .flat_map(|rl| &rl.scope_logs)
                        .flat_map(|sl| &sl.log_records)
                    {
                        let offset = log.attributes.iter().find_map(|kv| {
                            match kv.value.as_ref()?.value.as_ref()? {
                                Any::IntValue(n) if kv.key == "ctrace.offset" => Some(*n as u64),
                                _ => None,
                            }
                        });
                        taken.push(offset.unwrap());
                    }
                }
                "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"
            };
            if writer.write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
    }

    fn offsets(&self) -> Vec<u64> {
        self.offsets.lock().unwrap().clone()
    }
}

/// 25 hooks of 50 KB and one of 300 KB, sealed in the sandbox's store with `config`; the
/// offset of the large one.
fn large_records(sandbox: &Sandbox, config: &str) -> u64 {
    std::fs::create_dir_all(sandbox.store()).unwrap();
    std::fs::write(sandbox.store().join("config.toml"), config).unwrap();
    for n in 0..26 {
        let size = if n == 10 { 300_000 } else { 50_000 };
        sandbox.hook(&sized_hook("big", n, size));
    }
    sandbox.ok(&["compact"]);
    10
}

/// Review finding 4: `[forward]` cuts batches at `max_batch_bytes`, and a batch the collector
/// refuses as too large (413) is halved until it is taken; a record refused on its own is
/// dropped (logged with its offset) and every other record is delivered exactly once.
#[test]
fn forwarding_halves_batches_a_collector_refuses_as_too_large() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let collector = SizeLimited::start(200_000);
    let big = large_records(
        &sandbox,
        &format!(
            "[forward]\nendpoint = \"{}\"\nmax_batch_bytes = \"1MiB\"\n",
            collector.url()
        ),
    );
    let server = Server::start(&sandbox, &store, &[]);
    server.wait_for_or(
        "/api/health",
        |health| health["forward"]["next_offset"] == 26,
        || {
            format!(
                "collector took {:?}, refused {} requests\nruntime log:\n{}",
                collector.offsets(),
                collector.refused.load(std::sync::atomic::Ordering::SeqCst),
                sandbox.runtime_log()
            )
        },
    );
    let mut offsets = collector.offsets();
    offsets.sort_unstable();
    let expected: Vec<u64> = (0..26).filter(|o| *o != big).collect();
    assert_eq!(offsets, expected, "each record but the refused one, once");
    assert!(collector.refused.load(std::sync::atomic::Ordering::SeqCst) > 1);
    assert_eq!(server.terminate(), Some(0));
    let logs = sandbox.runtime_log();
    assert!(
        logs.lines()
            .any(|l| l.contains("ERROR") && l.contains(&format!("first_offset={big}"))),
        "{logs}"
    );
}

/// A collector refusing the credentials (401: a wrong or expired token in `[forward]
/// headers`) refuses the destination, not the records: forwarding holds at its checkpoint and
/// retries (1 s, doubling) until the collector takes them; nothing is dropped, each record
/// arrives once.
#[test]
fn forwarding_holds_while_the_collector_refuses_the_credentials() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let collector = SizeLimited::start(10 << 20);
    collector.deny.store(3, std::sync::atomic::Ordering::SeqCst);
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(
        store.join("config.toml"),
        format!("[forward]\nendpoint = \"{}\"\n", collector.url()),
    )
    .unwrap();
    for n in 0..10 {
        sandbox.hook(&hook_payload("auth", n));
    }
    sandbox.ok(&["compact"]);
    let server = Server::start(&sandbox, &store, &[]);
    server.wait_for("/api/health", |health| {
        health["forward"]["next_offset"] == 10
    });
    assert_eq!(collector.deny.load(std::sync::atomic::Ordering::SeqCst), 0);
    let mut offsets = collector.offsets();
    offsets.sort_unstable();
    assert_eq!(offsets, (0..10).collect::<Vec<u64>>(), "every record, once");
    assert_eq!(server.terminate(), Some(0));
    let logs = sandbox.runtime_log();
    assert!(
        logs.lines()
            .any(|l| l.contains("ERROR") && l.contains("401") && l.contains("holds here")),
        "{logs}"
    );
}

/// Review finding 4, `ctrace export --format otlp`: the same halving; the record refused on its
/// own is named on stderr by its offset and the exit status is 1.
#[test]
fn export_halves_requests_a_collector_refuses_as_too_large() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let collector = SizeLimited::start(200_000);
    let big = large_records(&sandbox, "[forward]\nmax_batch_bytes = \"1MiB\"\n");
    let output = sandbox
        .command_in(
            &store,
            &["export", "--format", "otlp", "--endpoint", &collector.url()],
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("record {big} not delivered")),
        "{stderr}"
    );
    assert!(stderr.contains("and 25 records"), "{stderr}");
    let mut offsets = collector.offsets();
    offsets.sort_unstable();
    let expected: Vec<u64> = (0..26).filter(|o| *o != big).collect();
    assert_eq!(offsets, expected, "each record but the refused one, once");
}
