//! OTLP requests shaped like Claude Code's telemetry, built with the `opentelemetry-proto`
//! messages, and posting them to a running `ctrace serve`.

use std::io::Write;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;

pub use ctrace::otlp::key_value;

use super::http::{Response, Server};

/// Claude Code's resource attributes.
pub fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            key_value("service.name", Any::StringValue("claude-code".into())),
            key_value("service.version", Any::StringValue("2.1.0".into())),
        ],
        ..Resource::default()
    })
}

/// Claude Code's instrumentation scope.
pub fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "com.anthropic.claude_code.events".into(),
        version: "2.1.0".into(),
        ..InstrumentationScope::default()
    })
}

/// A Claude Code event (`claude_code.<name>` log record) of `session` at `time_ns`.
pub fn event(name: &str, session: &str, time_ns: u64, mut attributes: Vec<KeyValue>) -> LogRecord {
    attributes.splice(
        0..0,
        [
            key_value("event.name", Any::StringValue(name.into())),
            key_value("session.id", Any::StringValue(session.into())),
        ],
    );
    LogRecord {
        time_unix_nano: time_ns,
        body: Some(AnyValue {
            value: Some(Any::StringValue(format!("claude_code.{name}"))),
        }),
        attributes,
        ..LogRecord::default()
    }
}

/// One request holding `records` under Claude Code's resource and scope.
pub fn logs_request(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                scope: scope(),
                log_records: records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// gzip of `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// `POST path` with `content_type`, the body gzipped when asked.
pub fn post(
    server: &Server,
    path: &str,
    content_type: &str,
    gzipped: bool,
    body: &[u8],
) -> Response {
    let mut headers = vec![("Content-Type", content_type)];
    let body = if gzipped {
        headers.push(("Content-Encoding", "gzip"));
        gzip(body)
    } else {
        body.to_vec()
    };
    server.request("POST", path, &headers, &body)
}
