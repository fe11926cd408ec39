//! OTLP/HTTP into `ctrace serve` (issue 17, "Receive"): requests built with the
//! `opentelemetry-proto` messages, sent as protobuf and as OTLP/JSON, gzip on and off; every
//! item becomes one `otlp` record with its session, decodable on its own; bad bodies are
//! refused with the status the OTLP specification names and store nothing. The Python SDK
//! client is in `otlp_sdk.rs`.
#![expect(
    clippy::unwrap_used,
    reason = "clippy's allow-unwrap-in-tests covers #[test] functions only, not these helpers; \
              a failed setup step should fail the test"
)]

mod common;

use std::io::Write;
use std::path::Path;

use common::http::Server;
use common::otlp::{event, gzip, key_value, logs_request, post, resource, scope};
use common::{Sandbox, sized_hook};
use ctrace::otlp::Status;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::metrics::v1::{
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

/// `n` `api_request` events of `session`, shaped like Claude Code's.
fn api_requests(session: &str, n: usize) -> ExportLogsServiceRequest {
    let records = (0..n)
        .map(|i| {
            event(
                "api_request",
                session,
                1_780_000_000_000_000_000 + i as u64 * 1_000_000,
                vec![
                    key_value("prompt.id", Any::StringValue(format!("prompt-{}", i / 3))),
                    key_value("event.sequence", Any::IntValue(i as i64)),
                    key_value("model", Any::StringValue("claude-sonnet-4-5".into())),
                    key_value("cost_usd", Any::DoubleValue(0.001 * (i + 1) as f64)),
                    key_value("duration_ms", Any::IntValue(800 + i as i64)),
                    key_value("input_tokens", Any::IntValue(10 + i as i64)),
                    key_value("output_tokens", Any::IntValue(100 + i as i64)),
                    key_value("cache_read_tokens", Any::IntValue(1000)),
                    key_value("cache_creation_tokens", Any::IntValue(0)),
                    key_value("request_id", Any::StringValue(format!("req_{session}_{i}"))),
                ],
            )
        })
        .collect();
    logs_request(records)
}

fn otlp_records(sandbox: &Sandbox, store: &Path) -> Vec<serde_json::Value> {
    sandbox.json_lines_in(store, &["cat", "--json", "--source", "otlp"])
}

#[test]
fn every_log_record_arrives_in_both_encodings_gzip_on_and_off() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let server = Server::start(&sandbox, &store, &[]);
    let mut expected = 0;
    for (i, (content_type, gzipped)) in [
        ("application/x-protobuf", false),
        ("application/x-protobuf", true),
        ("application/json", false),
        ("application/json; charset=utf-8", true),
    ]
    .into_iter()
    .enumerate()
    {
        let session = format!("sess-{i}");
        let request = api_requests(&session, 7);
        let body = if content_type.starts_with("application/json") {
            serde_json::to_vec(&request).unwrap()
        } else {
            request.encode_to_vec()
        };
        let response = post(&server, "/v1/logs", content_type, gzipped, &body);
        assert_eq!(response.status, 200, "{content_type}: {}", response.text());
        if content_type.starts_with("application/json") {
            assert_eq!(response.body, b"{}", "the empty ExportLogsServiceResponse");
        } else {
            assert!(
                response.body.is_empty(),
                "the empty ExportLogsServiceResponse"
            );
        }
        let media = content_type.split(';').next().unwrap();
        assert_eq!(
            response.header("content-type").as_deref(),
            Some(media),
            "answered in the request's encoding"
        );
        expected += 7;
    }
    server.wait_caught_up(expected);
    let records = otlp_records(&sandbox, &store);
    assert_eq!(records.len(), expected as usize);
    for (i, record) in records.iter().enumerate() {
        let session = format!("sess-{}", i / 7);
        assert_eq!(record["session"], session.as_str(), "{record}");
        assert_eq!(record["body"]["signal"], "logs");
        assert_eq!(record["body"]["name"], "api_request");
        let n = i % 7;
        assert_eq!(
            record["body"]["request_id"],
            format!("req_{session}_{n}").as_str()
        );
        // Each record is a one-item request with its resource and scope.
        let otlp = &record["body"]["otlp"];
        assert_eq!(otlp["resourceLogs"].as_array().unwrap().len(), 1);
        let logs = &otlp["resourceLogs"][0]["scopeLogs"][0]["logRecords"];
        assert_eq!(logs.as_array().unwrap().len(), 1);
        assert_eq!(
            otlp["resourceLogs"][0]["scopeLogs"][0]["scope"]["name"],
            "com.anthropic.claude_code.events"
        );
        assert_eq!(
            record["ts"].as_u64().unwrap(),
            1_780_000_000_000_000_000 + n as u64 * 1_000_000
        );
    }
    assert_eq!(server.terminate(), Some(0));
}

#[test]
fn metrics_and_traces_become_one_record_per_point_and_span() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let server = Server::start(&sandbox, &store, &[]);
    let points = ["input", "output", "cacheRead", "cacheCreation"]
        .iter()
        .map(|kind| NumberDataPoint {
            attributes: vec![
                key_value("type", Any::StringValue((*kind).into())),
                key_value("model", Any::StringValue("claude-sonnet-4-5".into())),
                key_value("session.id", Any::StringValue("metric-session".into())),
            ],
            time_unix_nano: 1_780_000_000_000_000_000,
            value: Some(number_data_point::Value::AsDouble(42.0)),
            ..NumberDataPoint::default()
        })
        .collect();
    let metrics = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics: vec![
                    Metric {
                        name: "claude_code.token.usage".into(),
                        unit: "tokens".into(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: points,
                            aggregation_temporality: 1,
                            is_monotonic: true,
                        })),
                        ..Metric::default()
                    },
                    Metric {
                        name: "claude_code.session.count".into(),
                        ..Metric::default()
                    },
                ],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    let response = post(
        &server,
        "/v1/metrics",
        "application/x-protobuf",
        false,
        &metrics.encode_to_vec(),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let spans = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                scope: scope(),
                spans: (0..3u8)
                    .map(|i| Span {
                        trace_id: vec![1; 16],
                        span_id: vec![i + 1; 8],
                        parent_span_id: if i == 0 { Vec::new() } else { vec![1; 8] },
                        name: format!("span-{i}"),
                        start_time_unix_nano: 1_780_000_000_000_000_000,
                        end_time_unix_nano: 1_780_000_001_000_000_000,
                        attributes: vec![key_value(
                            "session.id",
                            Any::StringValue("trace-session".into()),
                        )],
                        ..Span::default()
                    })
                    .collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    let response = post(
        &server,
        "/v1/traces",
        "application/json",
        true,
        &serde_json::to_vec(&spans).unwrap(),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    server.wait_caught_up(4 + 1 + 3);
    let records = otlp_records(&sandbox, &store);
    let signals: Vec<&str> = records
        .iter()
        .map(|r| r["body"]["signal"].as_str().unwrap())
        .collect();
    assert_eq!(signals.iter().filter(|s| **s == "metrics").count(), 5);
    assert_eq!(signals.iter().filter(|s| **s == "traces").count(), 3);
    let metric_sessions: Vec<&str> = records[..4]
        .iter()
        .map(|r| r["session"].as_str().unwrap())
        .collect();
    assert_eq!(metric_sessions, ["metric-session"; 4]);
    // The span's ids survive the split (hex in OTLP/JSON).
    let span = &records[5]["body"]["otlp"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["traceId"], "01".repeat(16).as_str());
    assert_eq!(records[5]["session"], "trace-session");
    assert_eq!(server.terminate(), Some(0));
}

#[test]
fn bad_bodies_are_refused_and_store_nothing() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let server = Server::start(&sandbox, &store, &[]);
    let good = api_requests("s", 2).encode_to_vec();
    // Not protobuf of the path's signal.
    let response = post(
        &server,
        "/v1/logs",
        "application/x-protobuf",
        false,
        b"\xff\xff\xff\xff garbage",
    );
    assert_eq!(response.status, 400, "{}", response.text());
    // Not OTLP/JSON.
    let response = post(
        &server,
        "/v1/logs",
        "application/json",
        false,
        b"{\"resourceLogs\": 3}",
    );
    assert_eq!(response.status, 400);
    let status: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert!(
        status["message"].as_str().unwrap().contains("OTLP/JSON"),
        "{status}"
    );
    // A damaged gzip stream.
    let mut broken = gzip(&good);
    let middle = broken.len() / 2;
    broken[middle] ^= 0xff;
    let response = server.request(
        "POST",
        "/v1/logs",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "gzip"),
        ],
        &broken,
    );
    assert_eq!(response.status, 400, "{}", response.text());
    // An unknown content encoding and an unknown content type.
    let response = server.request(
        "POST",
        "/v1/logs",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "br"),
        ],
        &good,
    );
    assert_eq!(response.status, 400);
    let response = post(&server, "/v1/logs", "text/plain", false, &good);
    assert_eq!(response.status, 415);
    // A gzip bomb: 200 MB of zeros in well under the body limit stops at the limit.
    let bomb = {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..200 {
            encoder.write_all(&zeros).unwrap();
        }
        encoder.finish().unwrap()
    };
    assert!(bomb.len() < 1 << 20);
    let response = server.request(
        "POST",
        "/v1/logs",
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "gzip"),
        ],
        &bomb,
    );
    assert_eq!(response.status, 413, "{}", response.text());
    // Amplification: a 1 MB resource shared by 2000 small log records would be copied into
    // every record (2 GB): refused before the split.
    let mut amplifier = api_requests("amp", 2000);
    amplifier.resource_logs[0]
        .resource
        .as_mut()
        .unwrap()
        .attributes
        .push(key_value("padding", Any::StringValue("x".repeat(1 << 20))));
    let response = post(
        &server,
        "/v1/logs",
        "application/x-protobuf",
        true,
        &amplifier.encode_to_vec(),
    );
    assert_eq!(response.status, 413, "{}", response.text());
    // The other paths answer too (an exporter that gets 404 retries forever).
    for path in ["/v1/metrics", "/v1/traces"] {
        let response = post(&server, path, "application/x-protobuf", false, b"");
        assert_eq!(
            response.status, 200,
            "{path}: an empty request is a valid one"
        );
    }
    let health = server.json("/api/health");
    assert_eq!(health["unsealed_records"], 0, "{health}");
    assert_eq!(health["next_offset"], 0, "{health}");
    assert!(otlp_records(&sandbox, &store).is_empty());
    assert_eq!(server.terminate(), Some(0));
}

#[test]
fn secrets_in_attributes_are_redacted_before_storage() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let server = Server::start(&sandbox, &store, &[]);
    let secret = format!("sk-ant-api03-{}", "A1b2C3d4".repeat(12));
    let mut request = api_requests("s", 1);
    request.resource_logs[0].scope_logs[0].log_records[0]
        .attributes
        .push(key_value(
            "prompt",
            Any::StringValue(format!("use the key {secret} please")),
        ));
    let response = post(
        &server,
        "/v1/logs",
        "application/x-protobuf",
        false,
        &request.encode_to_vec(),
    );
    assert_eq!(response.status, 200);
    server.wait_caught_up(1);
    let records = otlp_records(&sandbox, &store);
    assert_eq!(records.len(), 1);
    let line = records[0].to_string();
    assert!(!line.contains(&secret), "the secret was stored: {line}");
    assert!(
        records[0]["body"]["otlp"]
            .to_string()
            .contains("use the key")
    );
    assert_eq!(server.terminate(), Some(0));
}

mod hostile {
    //! Any bytes as a request body: decoding never panics; what decodes splits into records
    //! that encode, decode, and read back as one-item requests (the fuzz target
    //! `fuzz/fuzz_targets/otlp_request.rs` runs the same check under libFuzzer).
    use ctrace::ingest::redact::Redactor;
    use ctrace::log::Record;
    use ctrace::otlp::{Encoding, Request, Signal, decompress, receive};
    use proptest::prelude::*;

    use super::api_requests;
    use prost::Message;

    fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
        let redactor = Redactor::new(&Default::default());
        let _ = decompress(Some("gzip"), bytes.to_vec(), 1 << 16);
        for signal in [Signal::Logs, Signal::Metrics, Signal::Traces] {
            for encoding in [Encoding::Protobuf, Encoding::Json] {
                let Ok(request) = Request::decode(signal, encoding, bytes) else {
                    continue;
                };
                let items = receive::item_count(&request);
                let records = receive::records(request, 7, &redactor);
                prop_assert_eq!(records.len(), items);
                for record in &records {
                    let encoded = record.encode().unwrap();
                    prop_assert_eq!(&Record::decode(&encoded).unwrap(), record);
                    let one = Request::from_raw(signal, record.raw()).unwrap();
                    prop_assert_eq!(receive::item_count(&one), 1);
                }
            }
        }
        Ok(())
    }

    /// Nesting far deeper than any real request is refused, not a stack overflow.
    #[test]
    fn deep_nesting_is_an_error() {
        let depth = 100_000;
        let mut json = String::from(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":"#);
        json.push_str(&r#"{"arrayValue":{"values":["#.repeat(depth));
        json.push_str(&"]}}".repeat(depth));
        json.push_str("}]}]}]}");
        assert!(Request::decode(Signal::Logs, Encoding::Json, json.as_bytes()).is_err());
        // The protobuf equivalent: AnyValue.array_value (field 5) → ArrayValue.values (1), in a
        // log record's body (5), in ScopeLogs (2), ResourceLogs (2), the request (1).
        fn field(tag: u8, payload: &[u8]) -> Vec<u8> {
            let mut out = vec![tag << 3 | 2];
            prost::encoding::encode_varint(payload.len() as u64, &mut out);
            out.extend_from_slice(payload);
            out
        }
        let mut inner: Vec<u8> = Vec::new();
        for _ in 0..2_000 {
            inner = field(5, &field(1, &inner));
        }
        for tag in [5, 2, 2, 1] {
            inner = field(tag, &inner);
        }
        assert!(Request::decode(Signal::Logs, Encoding::Protobuf, &inner).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            check(&bytes)?;
        }

        #[test]
        fn damaged_requests(
            flips in prop::collection::vec((any::<prop::sample::Index>(), 1..=255u8), 1..6),
            json in any::<bool>(),
        ) {
            let request = api_requests("s", 3);
            let mut bytes = if json {
                serde_json::to_vec(&request).unwrap()
            } else {
                request.encode_to_vec()
            };
            for (at, mask) in flips {
                let at = at.index(bytes.len());
                bytes[at] ^= mask;
            }
            check(&bytes)?;
        }
    }
}

/// While the inbox holds more unsealed bytes than `--max-inbox` (the compactor cannot keep
/// up; here: another process holds the store lock, so nothing seals), OTLP requests get 429
/// with `Retry-After` and store nothing; once the backlog is sealed they are taken again.
#[test]
fn a_backlog_above_the_inbox_limit_is_answered_429_with_retry_after() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    sandbox.hook(&sized_hook("backlog", 0, 600));
    sandbox.ok(&["compact"]);
    for n in 1..4 {
        sandbox.hook(&sized_hook("backlog", n, 600));
    }
    let lock = sandbox.lock_store();
    let server = Server::start(&sandbox, &store, &["--max-inbox", "1KiB"]);
    let body = api_requests("s", 2).encode_to_vec();
    let response = post(&server, "/v1/logs", "application/x-protobuf", false, &body);
    assert_eq!(response.status, 429, "{}", response.text());
    assert!(
        response.header("retry-after").is_some(),
        "{}",
        response.head
    );
    assert!(!response.body.is_empty(), "a google.rpc.Status body");
    assert_eq!(server.json("/api/health")["unsealed_records"], 3);
    // The lock goes; the next wake (a hook) seals the backlog and requests are taken again.
    drop(lock);
    assert_eq!(server.post_hook(&sized_hook("backlog", 4, 600)).status, 200);
    server.wait_caught_up(5);
    let response = post(&server, "/v1/logs", "application/x-protobuf", false, &body);
    assert_eq!(response.status, 200, "{}", response.text());
    server.wait_caught_up(7);
    assert_eq!(otlp_records(&sandbox, &store).len(), 2);
    assert_eq!(server.terminate(), Some(0));
}

/// Decode amplification: 16 MB of empty log records (2 bytes each on the wire, 184 bytes
/// each decoded: 1.5 GB) and its OTLP/JSON twin (`{}` per record) are refused with 413 and a
/// `google.rpc.Status` before anything is decoded, and store nothing; so is a body above the
/// 16 MiB decompressed limit. A large ordinary request (512 records) is still taken whole.
#[test]
fn amplifying_bodies_are_refused_before_decoding() {
    let sandbox = Sandbox::new();
    let store = sandbox.store();
    let server = Server::start(&sandbox, &store, &[]);
    fn field(tag: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![tag << 3 | 2];
        prost::encoding::encode_varint(payload.len() as u64, &mut out);
        out.extend_from_slice(payload);
        out
    }
    // ExportLogsServiceRequest { resource_logs: [{ scope_logs: [{ log_records: [{}; 8M] }] }] }
    let hostile = field(1, &field(2, &b"\x12\x00".repeat(8_000_000)));
    assert!(hostile.len() < 16 << 20);
    let response = post(
        &server,
        "/v1/logs",
        "application/x-protobuf",
        false,
        &hostile,
    );
    assert_eq!(response.status, 413, "{}", response.text());
    let status = Status::decode(&response.body[..]).unwrap();
    assert_eq!(status.code, 3, "INVALID_ARGUMENT");
    // The same, gzip-compressed (a few kilobytes on the wire).
    let response = post(
        &server,
        "/v1/logs",
        "application/x-protobuf",
        true,
        &hostile,
    );
    assert_eq!(response.status, 413, "{}", response.text());
    // OTLP/JSON: 5 million `{}`.
    let mut json = String::from(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":["#);
    json.push_str(&vec!["{}"; 5_000_000].join(","));
    json.push_str("]}]}]}");
    let response = post(
        &server,
        "/v1/logs",
        "application/json",
        true,
        json.as_bytes(),
    );
    assert_eq!(response.status, 413, "{}", response.text());
    let status: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(status["code"], 3, "{status}");
    // Empty attributes of one log record (`KeyValue` is 2 bytes on the wire too), and empty
    // data points of one metric.
    let attributes = field(1, &field(2, &field(2, &b"\x32\x00".repeat(8_000_000))));
    let response = post(
        &server,
        "/v1/logs",
        "application/x-protobuf",
        true,
        &attributes,
    );
    assert_eq!(response.status, 413, "{}", response.text());
    let points = field(
        1,
        &field(2, &field(2, &field(5, &b"\x0a\x00".repeat(8_000_000)))),
    );
    let response = post(
        &server,
        "/v1/metrics",
        "application/x-protobuf",
        true,
        &points,
    );
    assert_eq!(response.status, 413, "{}", response.text());
    // Above the decompressed limit: 17 MiB of one string attribute.
    let mut big = api_requests("big", 1);
    big.resource_logs[0].scope_logs[0].log_records[0]
        .attributes
        .push(key_value("padding", Any::StringValue("x".repeat(17 << 20))));
    let response = post(
        &server,
        "/v1/logs",
        "application/x-protobuf",
        true,
        &big.encode_to_vec(),
    );
    assert_eq!(response.status, 413, "{}", response.text());
    let health = server.json("/api/health");
    assert_eq!(health["unsealed_records"], 0, "{health}");
    assert_eq!(health["next_offset"], 0, "{health}");
    // An ordinary large request is taken whole.
    let body = api_requests("ordinary", 512).encode_to_vec();
    let response = post(&server, "/v1/logs", "application/x-protobuf", false, &body);
    assert_eq!(response.status, 200, "{}", response.text());
    let json = serde_json::to_vec(&api_requests("ordinary-json", 512)).unwrap();
    let response = post(&server, "/v1/logs", "application/json", false, &json);
    assert_eq!(response.status, 200, "{}", response.text());
    server.wait_caught_up(1024);
    assert_eq!(otlp_records(&sandbox, &store).len(), 1024);
    assert_eq!(server.terminate(), Some(0));
}
