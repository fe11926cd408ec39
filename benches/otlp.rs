//! OTLP receive benchmarks (criterion): the in-process cost of one `POST /v1/logs` of 512
//! Claude Code `claude_code.api_request` log records, without HTTP and without the store:
//! `Request::decode`, then `receive::records` (split into one record per log record, redacted
//! with the default rules), then `Record::encode` of each record. Protobuf and OTLP/JSON bodies,
//! each also timed for the decode alone. Throughput is in records (log records).
//! `scripts/bench_otlp.py` measures the service end to end.
//!
//! Environment: `CTRACE_BENCH_OTLP_BATCH` (default 512): log records per request.

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use ctrace::ingest::redact::Redactor;
use ctrace::otlp::{Encoding, Request, Signal, key_value, receive};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;

mod common;
use common::{MODELS, OrExit};

fn text(key: &str, value: String) -> opentelemetry_proto::tonic::common::v1::KeyValue {
    key_value(key, Value::StringValue(value))
}

/// A logs request of `batch` distinct `api_request` events as Claude Code sends them: string
/// values, no severity, no trace context (the same shape as `scripts/bench_otlp.py`).
fn request(batch: usize) -> ExportLogsServiceRequest {
    let start_ns = 1_767_225_600_000_000_000u64;
    let log_records = (0..batch)
        .map(|n| {
            let session = format!("bench-{:04}", n / 2000);
            LogRecord {
                time_unix_nano: start_ns + n as u64 * 1_000_000,
                observed_time_unix_nano: start_ns + n as u64 * 1_000_000 + 5_000_000,
                body: Some(AnyValue {
                    value: Some(Value::StringValue("claude_code.api_request".into())),
                }),
                attributes: vec![
                    text("event.name", "api_request".into()),
                    text("session.id", session.clone()),
                    text("prompt.id", format!("{session}-p{:06}", n / 20)),
                    text("model", MODELS[n % 3].into()),
                    text(
                        "cost_usd",
                        format!("{:.6}", 0.0005 + (n % 997) as f64 * 0.00013),
                    ),
                    text("duration_ms", (800 + n % 4000).to_string()),
                    text("input_tokens", (3 + n % 50).to_string()),
                    text("output_tokens", (40 + n % 900).to_string()),
                    text("cache_read_tokens", (20000 + n % 30000).to_string()),
                    text("cache_creation_tokens", (n % 3000).to_string()),
                    text("request_id", format!("req_011CV{n:016x}")),
                ],
                ..LogRecord::default()
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    text("service.name", "claude-code".into()),
                    text("service.version", "2.1.0".into()),
                ],
                ..Resource::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "com.anthropic.claude_code.events".into(),
                    version: "2.1.0".into(),
                    ..InstrumentationScope::default()
                }),
                log_records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// Decode, split and encode one body, as `ctrace serve` does before its append: the bytes of
/// the records.
fn receive_body(encoding: Encoding, body: &[u8], redactor: &Redactor) -> usize {
    let request = Request::decode(Signal::Logs, encoding, body).or_exit("decoding");
    let records = receive::records(request, 1_767_225_600_000_000_000, redactor);
    records
        .iter()
        .map(|record| record.encode().or_exit("encoding").len())
        .sum()
}

fn benches(c: &mut Criterion) {
    let batch: usize = std::env::var("CTRACE_BENCH_OTLP_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    let request = Request::Logs(request(batch));
    let protobuf = request.encode_protobuf();
    let json = serde_json::to_vec(&request.to_json().or_exit("to JSON")).or_exit("JSON");
    let redactor = Redactor::new(&Default::default());
    // Both bodies are the same request.
    let stored = receive_body(Encoding::Protobuf, &protobuf, &redactor);
    if receive_body(Encoding::Json, &json, &redactor) != stored {
        eprintln!("bench setup failed: the JSON body gives other records than the protobuf one");
        std::process::exit(1);
    }
    eprintln!(
        "{batch} log records: protobuf {} B, JSON {} B, records {stored} B",
        protobuf.len(),
        json.len()
    );
    let mut group = c.benchmark_group("otlp");
    group.throughput(Throughput::Elements(batch as u64));
    for (name, encoding, body) in [
        ("protobuf", Encoding::Protobuf, &protobuf),
        ("json", Encoding::Json, &json),
    ] {
        group.bench_function(format!("receive_{name}_{batch}"), |b| {
            b.iter(|| black_box(receive_body(encoding, black_box(body), &redactor)));
        });
        group.bench_function(format!("decode_{name}_{batch}"), |b| {
            b.iter(|| {
                black_box(
                    Request::decode(Signal::Logs, encoding, black_box(body)).or_exit("decoding"),
                )
            });
        });
    }
    group.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
    criterion.final_summary();
}
