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

/// The Python with the OpenTelemetry packages (`CTRACE_OTLP_PYTHON`, made by
/// `.ci/setup-otlp.sh`); `None` with a visible SKIP line when unset, except under `CI=true`,
/// where it is a failure.
pub fn python() -> Option<std::path::PathBuf> {
    if let Some(python) = std::env::var_os("CTRACE_OTLP_PYTHON").filter(|v| !v.is_empty()) {
        return Some(python.into());
    }
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true"),
        "CTRACE_OTLP_PYTHON is not set (CI=true: source .ci/setup-otlp.sh)"
    );
    eprintln!(
        "SKIP: CTRACE_OTLP_PYTHON is not set (source .ci/setup-otlp.sh for the OpenTelemetry Python tests)"
    );
    None
}

/// A script of `tests/otlp/`.
pub fn script(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/otlp")
        .join(name)
}

/// `tests/otlp/receiver.py` running; dropping it kills it.
pub struct Receiver {
    child: std::process::Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The JSON Lines file of what it received.
    pub out: std::path::PathBuf,
}

impl Receiver {
    /// Starts the receiver in `dir` with `extra` arguments (`--port P` to choose the port),
    /// appending to `dir/received.jsonl`; waits until it listens.
    pub fn start(python: &std::path::Path, dir: &std::path::Path, extra: &[&str]) -> Self {
        let port_file = dir.join(format!("port-{}", std::process::id()));
        let _ = std::fs::remove_file(&port_file);
        let out = dir.join("received.jsonl");
        let child = std::process::Command::new(python)
            .arg(script("receiver.py"))
            .arg("--port-file")
            .arg(&port_file)
            .arg("--out")
            .arg(&out)
            .args(extra)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + super::http::DEADLINE;
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file)
                && let Ok(port) = text.trim().parse()
            {
                break port;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "receiver.py did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        Self { child, port, out }
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every item received so far.
    pub fn items(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        // A line the receiver is still writing (no newline yet) is left for the next look.
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// Stops it (SIGTERM) and waits.
    pub fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
