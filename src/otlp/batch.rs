//! Records as OTLP requests, for pushing to a collector: a hook payload, transcript line, PTY
//! event or bookkeeping record becomes one OTLP log record; an `otlp` record goes back out as
//! the item it was received as. Every item carries `ctrace.offset` (the record's offset in the
//! log, its id: a receiver deduplicates redeliveries by it) and `ctrace.source`.
//!
//! A log record made from a record has: `time_unix_nano` the record's time; `body` the
//! payload as a string when it is UTF-8, else as bytes; `event_name` and attribute
//! `event.name` the hook event, transcript line type, `pty.<kind>` or internal event; attribute
//! `session.id` the record's session. Resource: `service.name` = `claude-code` and
//! `ctrace.store` (the store's directory name, to tell stores apart at a shared collector).

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::metric;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::{Request, Signal, key_value};
use crate::model::{Body, Record};
use opentelemetry_proto::tonic::common::v1::any_value::Value;

/// Attribute naming the record's offset (its id in the store).
pub const OFFSET_ATTRIBUTE: &str = "ctrace.offset";
/// Attribute naming the record's source.
pub const SOURCE_ATTRIBUTE: &str = "ctrace.source";
/// Instrumentation scope of the log records made from records.
pub const SCOPE_NAME: &str = "ctrace";
/// Attribute: the file a transcript line or logged hook payload was read from.
pub const ORIGIN_FILE_ATTRIBUTE: &str = "ctrace.origin.file";
/// Attribute: its byte position in that file.
pub const ORIGIN_POSITION_ATTRIBUTE: &str = "ctrace.origin.position";
/// Attribute: its length in bytes.
pub const ORIGIN_LEN_ATTRIBUTE: &str = "ctrace.origin.len";
/// Attribute: the PTY recording a hook ran inside.
pub const PTY_SESSION_ATTRIBUTE: &str = "ctrace.pty_session";

/// Requests being built from records, one per signal.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    logs: ExportLogsServiceRequest,
    metrics: ExportMetricsServiceRequest,
    traces: ExportTraceServiceRequest,
    /// Log records made from ctrace records, under one resource and scope.
    own: Vec<LogRecord>,
    /// Records added.
    pub records: u64,
    /// Records left out (an `otlp` record of a signal not asked for, or one that no longer
    /// decodes because it was truncated).
    pub skipped: u64,
    resource: Option<Resource>,
}

impl Batch {
    /// An empty batch whose own log records carry `ctrace.store` = `store_name`.
    pub fn new(store_name: &str) -> Self {
        Self {
            resource: Some(Resource {
                attributes: vec![
                    key_value(
                        "service.name",
                        Value::StringValue(crate::export::otlp::SERVICE_NAME.into()),
                    ),
                    key_value("ctrace.store", Value::StringValue(store_name.to_owned())),
                ],
                ..Resource::default()
            }),
            ..Self::default()
        }
    }

    /// An empty batch for the records of `store` (`ctrace.store` = its directory's name).
    pub fn for_store(store: &crate::log::Store) -> Self {
        let name = store
            .paths()
            .root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::new(&name)
    }

    /// Adds the record at `offset`, if its signal is among `signals` (ctrace's own records
    /// are logs).
    pub fn push(&mut self, offset: u64, record: &Record, signals: &[Signal]) {
        let tags = [
            key_value(OFFSET_ATTRIBUTE, Value::IntValue(offset_i64(offset))),
            key_value(
                SOURCE_ATTRIBUTE,
                Value::StringValue(record.source.as_str().to_owned()),
            ),
        ];
        if let Body::Otlp(otlp) = &record.body {
            if !signals.contains(&otlp.signal) {
                self.skipped += 1;
                return;
            }
            match Request::from_raw(otlp.signal, &otlp.raw) {
                Ok(request) => self.push_otlp(request, &tags),
                Err(_) => {
                    self.skipped += 1;
                    return;
                }
            }
        } else {
            if !signals.contains(&Signal::Logs) {
                self.skipped += 1;
                return;
            }
            self.own.push(log_record(record, &tags));
        }
        self.records += 1;
    }

    fn push_otlp(&mut self, request: Request, tags: &[KeyValue]) {
        match request {
            Request::Logs(mut r) => {
                for rl in &mut r.resource_logs {
                    for sl in &mut rl.scope_logs {
                        for log in &mut sl.log_records {
                            log.attributes.extend_from_slice(tags);
                        }
                    }
                }
                self.logs.resource_logs.append(&mut r.resource_logs);
            }
            Request::Metrics(mut r) => {
                for rm in &mut r.resource_metrics {
                    for sm in &mut rm.scope_metrics {
                        for m in &mut sm.metrics {
                            tag_points(m, tags);
                        }
                    }
                }
                self.metrics
                    .resource_metrics
                    .append(&mut r.resource_metrics);
            }
            Request::Traces(mut r) => {
                for rs in &mut r.resource_spans {
                    for ss in &mut rs.scope_spans {
                        for span in &mut ss.spans {
                            span.attributes.extend_from_slice(tags);
                        }
                    }
                }
                self.traces.resource_spans.append(&mut r.resource_spans);
            }
        }
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// The non-empty requests, protobuf-encoded: logs, then metrics, then traces.
    pub fn into_requests(mut self) -> Vec<(Signal, Vec<u8>)> {
        if !self.own.is_empty() {
            self.logs.resource_logs.push(ResourceLogs {
                resource: self.resource.take(),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: SCOPE_NAME.into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..InstrumentationScope::default()
                    }),
                    log_records: std::mem::take(&mut self.own),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            });
        }
        let mut out = Vec::new();
        if !self.logs.resource_logs.is_empty() {
            out.push((Signal::Logs, self.logs.encode_to_vec()));
        }
        if !self.metrics.resource_metrics.is_empty() {
            out.push((Signal::Metrics, self.metrics.encode_to_vec()));
        }
        if !self.traces.resource_spans.is_empty() {
            out.push((Signal::Traces, self.traces.encode_to_vec()));
        }
        out
    }
}

/// The signal a record goes out as: an `otlp` record's own, logs for every other record.
pub fn signal_of(record: &Record) -> Signal {
    match &record.body {
        Body::Otlp(otlp) => otlp.signal,
        _ => Signal::Logs,
    }
}

/// About how many bytes `record` adds to a request, protobuf before gzip: its payload, its
/// session, and room for the attributes (`ctrace.offset`, `ctrace.source`, event name,
/// origin). Batches are cut by this ([`crate::config::forward::ForwardConfig::max_batch_bytes`]).
pub fn approx_bytes(record: &Record) -> u64 {
    let origin = match &record.body {
        Body::Hook(hook) => hook.origin.as_ref().map_or(0, |o| o.file.len()),
        Body::Transcript(line) => line.origin.file.len(),
        _ => 0,
    };
    let payload = match &record.body {
        Body::Internal(internal) if !internal.data.is_empty() => internal.data.len(),
        _ => record.raw().len(),
    };
    (payload + record.session.as_ref().map_or(0, String::len) + origin + 256) as u64
}

fn offset_i64(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

fn tag_points(metric: &mut opentelemetry_proto::tonic::metrics::v1::Metric, tags: &[KeyValue]) {
    macro_rules! tag {
        ($d:expr) => {
            for point in &mut $d.data_points {
                point.attributes.extend_from_slice(tags);
            }
        };
    }
    match metric.data.as_mut() {
        None => {}
        Some(metric::Data::Gauge(d)) => tag!(d),
        Some(metric::Data::Sum(d)) => tag!(d),
        Some(metric::Data::Histogram(d)) => tag!(d),
        Some(metric::Data::ExponentialHistogram(d)) => tag!(d),
        Some(metric::Data::Summary(d)) => tag!(d),
    }
}

/// A ctrace record (not `otlp`) as an OTLP log record (see the module docs).
pub fn log_record(record: &Record, tags: &[KeyValue]) -> LogRecord {
    let event = match &record.body {
        Body::Hook(hook) => hook.event.clone(),
        Body::Transcript(line) => line.line_type.clone(),
        Body::Pty(pty) => Some(format!("pty.{:?}", pty.kind).to_lowercase()),
        Body::Internal(internal) => Some(internal.event.clone()),
        Body::Otlp(otlp) => otlp.name.clone(),
    };
    let raw = match &record.body {
        Body::Internal(internal) if !internal.data.is_empty() => &internal.data[..],
        _ => record.raw(),
    };
    let body = match std::str::from_utf8(raw) {
        Ok(text) => Value::StringValue(text.to_owned()),
        Err(_) => Value::BytesValue(raw.to_vec()),
    };
    let mut attributes = tags.to_vec();
    if let Some(session) = &record.session {
        attributes.push(key_value("session.id", Value::StringValue(session.clone())));
    }
    if let Some(event) = &event {
        attributes.push(key_value("event.name", Value::StringValue(event.clone())));
    }
    // What a ctrace receiving this log record needs to rebuild the record
    // (`super::receive`): where a line was read from, the recording a hook ran in.
    let origin = match &record.body {
        Body::Hook(hook) => {
            if let Some(pty) = &hook.pty_session {
                attributes.push(key_value(
                    PTY_SESSION_ATTRIBUTE,
                    Value::StringValue(pty.clone()),
                ));
            }
            hook.origin.as_ref()
        }
        Body::Transcript(line) => Some(&line.origin),
        _ => None,
    };
    if let Some(origin) = origin {
        attributes.extend([
            key_value(
                ORIGIN_FILE_ATTRIBUTE,
                Value::StringValue(origin.file.clone()),
            ),
            key_value(
                ORIGIN_POSITION_ATTRIBUTE,
                Value::IntValue(offset_i64(origin.position)),
            ),
            key_value(
                ORIGIN_LEN_ATTRIBUTE,
                Value::IntValue(offset_i64(origin.len)),
            ),
        ]);
    }
    LogRecord {
        time_unix_nano: record.ts,
        observed_time_unix_nano: record.ts,
        body: Some(AnyValue { value: Some(body) }),
        attributes,
        event_name: event.unwrap_or_default(),
        ..LogRecord::default()
    }
}
