//! An OTLP export request split into records: one per log record, metric data point and span
//! (a metric without data points is one record too), each a one-item request of the same
//! signal with its resource, scope and schema URLs, redacted, then protobuf-encoded into the
//! record's `raw`.
//!
//! Log records that another ctrace exported or forwarded (scope `ctrace`) are stored as the
//! hook payloads and transcript lines they carry (`rebuild`).
//!
//! The record's time is the item's own (a log record's `time_unix_nano`, else its
//! `observed_time_unix_nano`; a data point's `time_unix_nano`; a span's start), else the
//! arrival time. Its session is the item's `session.id` attribute, else the resource's.

use super::{Request, attribute, batch, event_name, value_text};
use crate::claude::{hook_record, transcript_record};
use crate::ingest::redact::Redactor;
use crate::model::{Body, Origin, OtlpBody, Record, Signal, Source};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    self as metrics_v1, Metric, ResourceMetrics, ScopeMetrics, metric,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// Attribute carrying Claude Code's session id (on every event and metric it sends).
pub const SESSION_ATTRIBUTE: &str = "session.id";

/// Splits `request` into records (see the module docs), redacting every string of each item
/// with `redactor` first. `arrival_ns` is the time for items without one.
pub fn records(request: Request, arrival_ns: u64, redactor: &Redactor) -> Vec<Record> {
    let mut out = Vec::new();
    match request {
        Request::Logs(request) => split_logs(request, arrival_ns, redactor, &mut out),
        Request::Metrics(request) => split_metrics(request, arrival_ns, redactor, &mut out),
        Request::Traces(request) => split_traces(request, arrival_ns, redactor, &mut out),
    }
    out
}

/// The number of items (log records, data points, spans; metrics without points count one)
/// in a request: what [`records`] gives records for.
pub fn item_count(request: &Request) -> usize {
    match request {
        Request::Logs(r) => r
            .resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .map(|sl| sl.log_records.len())
            .sum(),
        Request::Metrics(r) => r
            .resource_metrics
            .iter()
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| &sm.metrics)
            .map(|m| point_count(m).max(1))
            .sum(),
        Request::Traces(r) => r
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum(),
    }
}

/// The bytes the records of `request` will take, about (each item with a copy of its
/// resource and scope): a request with a large resource shared by many small items multiplies
/// in the split, and callers bound this before splitting.
pub fn split_bytes(request: &Request) -> u64 {
    use prost::Message;
    fn shared(resource: &Option<Resource>, scope: &Option<InstrumentationScope>) -> u64 {
        let r = resource.as_ref().map_or(0, Message::encoded_len);
        let s = scope.as_ref().map_or(0, Message::encoded_len);
        (r + s + 32) as u64
    }
    let mut total = 0u64;
    match request {
        Request::Logs(r) => {
            for rl in &r.resource_logs {
                for sl in &rl.scope_logs {
                    let each = shared(&rl.resource, &sl.scope);
                    for log in &sl.log_records {
                        total = total.saturating_add(each + log.encoded_len() as u64);
                    }
                }
            }
        }
        Request::Metrics(r) => {
            for rm in &r.resource_metrics {
                for sm in &rm.scope_metrics {
                    let each = shared(&rm.resource, &sm.scope);
                    for metric in &sm.metrics {
                        let points = point_count(metric).max(1) as u64;
                        // Each point's record holds the metric without the other points: at
                        // most the whole metric.
                        let size = metric.encoded_len() as u64;
                        total = total.saturating_add(points.saturating_mul(
                            each + size.min(size / points + metric.name.len() as u64 + 64),
                        ));
                    }
                }
            }
        }
        Request::Traces(r) => {
            for rs in &r.resource_spans {
                for ss in &rs.scope_spans {
                    let each = shared(&rs.resource, &ss.scope);
                    for span in &ss.spans {
                        total = total.saturating_add(each + span.encoded_len() as u64);
                    }
                }
            }
        }
    }
    total
}

struct Common<'a> {
    resource: &'a Option<Resource>,
    resource_schema: &'a str,
    scope: &'a Option<InstrumentationScope>,
    scope_schema: &'a str,
}

impl Common<'_> {
    fn session(&self, attributes: &[KeyValue]) -> Option<String> {
        attribute(attributes, SESSION_ATTRIBUTE)
            .or_else(|| {
                self.resource
                    .as_ref()
                    .and_then(|r| attribute(&r.attributes, SESSION_ATTRIBUTE))
            })
            .and_then(value_text)
    }
}

fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    attribute(attributes, key).and_then(value_text)
}

fn push(
    out: &mut Vec<Record>,
    ts: u64,
    session: Option<String>,
    mut body: OtlpBody,
    request: Request,
    redactor: &Redactor,
) {
    body.raw = request.encode_protobuf();
    let mut record = Record {
        ts,
        source: Source::Otlp,
        session,
        body: Body::Otlp(body),
        redactions: 0,
    };
    // Every string of the item, the extracted fields and the session (see
    // `Redactor::redact_record`).
    redactor.redact_record(&mut record);
    out.push(record);
}

/// The hook payload or transcript line a log record of another ctrace's export or forwarding
/// carries (scope [`batch::SCOPE_NAME`], `ctrace.source` hook or transcript), rebuilt as that
/// record: a store fed by another ctrace gets the same sessions, views and costs.
fn rebuild(log: &LogRecord, session: Option<&str>) -> Option<Record> {
    let source = text(&log.attributes, batch::SOURCE_ATTRIBUTE)?;
    let raw = match log.body.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => s.clone().into_bytes(),
        any_value::Value::BytesValue(b) => b.clone(),
        _ => return None,
    };
    let number = |key| attribute(&log.attributes, key).and_then(super::value_u64);
    let origin = text(&log.attributes, batch::ORIGIN_FILE_ATTRIBUTE).map(|file| Origin {
        file,
        position: number(batch::ORIGIN_POSITION_ATTRIBUTE).unwrap_or(0),
        len: number(batch::ORIGIN_LEN_ATTRIBUTE).unwrap_or(raw.len() as u64),
    });
    let ts = log.time_unix_nano;
    match source.as_str() {
        "hook" => {
            let pty = text(&log.attributes, batch::PTY_SESSION_ATTRIBUTE);
            Some(hook_record(raw, ts, pty, origin))
        }
        "transcript" => Some(transcript_record(raw, origin?, ts, session)),
        _ => None,
    }
}

fn split_logs(
    request: ExportLogsServiceRequest,
    arrival_ns: u64,
    redactor: &Redactor,
    out: &mut Vec<Record>,
) {
    for rl in request.resource_logs {
        for sl in &rl.scope_logs {
            let from_ctrace = sl
                .scope
                .as_ref()
                .is_some_and(|scope| scope.name == batch::SCOPE_NAME);
            let common = Common {
                resource: &rl.resource,
                resource_schema: &rl.schema_url,
                scope: &sl.scope,
                scope_schema: &sl.schema_url,
            };
            for log in &sl.log_records {
                if from_ctrace
                    && let Some(mut record) =
                        rebuild(log, common.session(&log.attributes).as_deref())
                {
                    redactor.redact_record(&mut record);
                    out.push(record);
                    continue;
                }
                let ts = [log.time_unix_nano, log.observed_time_unix_nano, arrival_ns]
                    .into_iter()
                    .find(|t| *t != 0)
                    .unwrap_or(arrival_ns);
                let body = OtlpBody {
                    signal: Signal::Logs,
                    name: event_name(log),
                    prompt_id: text(&log.attributes, "prompt.id"),
                    request_id: text(&log.attributes, "request_id"),
                    tool_use_id: text(&log.attributes, "tool_use_id"),
                    truncated: None,
                    raw: Vec::new(),
                };
                let one = ExportLogsServiceRequest {
                    resource_logs: vec![ResourceLogs {
                        resource: common.resource.clone(),
                        scope_logs: vec![ScopeLogs {
                            scope: common.scope.clone(),
                            log_records: vec![log.clone()],
                            schema_url: common.scope_schema.to_owned(),
                        }],
                        schema_url: common.resource_schema.to_owned(),
                    }],
                };
                let session = common.session(&log.attributes);
                push(out, ts, session, body, Request::Logs(one), redactor);
            }
        }
    }
}

fn point_count(metric: &Metric) -> usize {
    match &metric.data {
        None => 0,
        Some(metric::Data::Gauge(d)) => d.data_points.len(),
        Some(metric::Data::Sum(d)) => d.data_points.len(),
        Some(metric::Data::Histogram(d)) => d.data_points.len(),
        Some(metric::Data::ExponentialHistogram(d)) => d.data_points.len(),
        Some(metric::Data::Summary(d)) => d.data_points.len(),
    }
}

/// The metric with only its `i`-th data point, that point's time and attributes.
#[expect(
    clippy::needless_update,
    reason = "one macro for every kind of data: `Gauge` and `Summary` have no field but the points"
)]
fn one_point(metric: &Metric, i: usize) -> (Metric, u64, Vec<KeyValue>) {
    let mut one = Metric {
        name: metric.name.clone(),
        description: metric.description.clone(),
        unit: metric.unit.clone(),
        metadata: metric.metadata.clone(),
        data: None,
    };
    // Only the one point is cloned (the metric's other points are not: a metric of n points
    // is split in O(n), not O(n²)); the data's other fields are plain values.
    macro_rules! pick {
        ($variant:ident, $d:expr) => {{
            let point = $d.data_points[i].clone();
            let (ts, attrs) = (point.time_unix_nano, point.attributes.clone());
            let data = metrics_v1::$variant {
                data_points: vec![point],
                ..*$d
            };
            one.data = Some(metric::Data::$variant(data));
            (ts, attrs)
        }};
    }
    let (ts, attrs) = match &metric.data {
        None => (0, Vec::new()),
        Some(metric::Data::Gauge(d)) => pick!(Gauge, d),
        Some(metric::Data::Sum(d)) => pick!(Sum, d),
        Some(metric::Data::Histogram(d)) => pick!(Histogram, d),
        Some(metric::Data::ExponentialHistogram(d)) => pick!(ExponentialHistogram, d),
        Some(metric::Data::Summary(d)) => pick!(Summary, d),
    };
    (one, ts, attrs)
}

fn split_metrics(
    request: ExportMetricsServiceRequest,
    arrival_ns: u64,
    redactor: &Redactor,
    out: &mut Vec<Record>,
) {
    for rm in request.resource_metrics {
        for sm in &rm.scope_metrics {
            let common = Common {
                resource: &rm.resource,
                resource_schema: &rm.schema_url,
                scope: &sm.scope,
                scope_schema: &sm.schema_url,
            };
            for metric in &sm.metrics {
                let points = point_count(metric);
                for i in 0..points.max(1) {
                    let (one, ts, attrs) = if points == 0 {
                        (metric.clone(), 0, Vec::new())
                    } else {
                        one_point(metric, i)
                    };
                    let body = OtlpBody {
                        signal: Signal::Metrics,
                        name: (!metric.name.is_empty()).then(|| metric.name.clone()),
                        prompt_id: text(&attrs, "prompt.id"),
                        request_id: None,
                        tool_use_id: None,
                        truncated: None,
                        raw: Vec::new(),
                    };
                    let request = ExportMetricsServiceRequest {
                        resource_metrics: vec![ResourceMetrics {
                            resource: common.resource.clone(),
                            scope_metrics: vec![ScopeMetrics {
                                scope: common.scope.clone(),
                                metrics: vec![one],
                                schema_url: common.scope_schema.to_owned(),
                            }],
                            schema_url: common.resource_schema.to_owned(),
                        }],
                    };
                    let ts = if ts == 0 { arrival_ns } else { ts };
                    let session = common.session(&attrs);
                    push(out, ts, session, body, Request::Metrics(request), redactor);
                }
            }
        }
    }
}

fn split_traces(
    request: ExportTraceServiceRequest,
    arrival_ns: u64,
    redactor: &Redactor,
    out: &mut Vec<Record>,
) {
    for rs in request.resource_spans {
        for ss in &rs.scope_spans {
            let common = Common {
                resource: &rs.resource,
                resource_schema: &rs.schema_url,
                scope: &ss.scope,
                scope_schema: &ss.schema_url,
            };
            for span in &ss.spans {
                let body = OtlpBody {
                    signal: Signal::Traces,
                    name: (!span.name.is_empty()).then(|| span.name.clone()),
                    prompt_id: text(&span.attributes, "prompt.id"),
                    request_id: text(&span.attributes, "request_id"),
                    tool_use_id: text(&span.attributes, "tool_use_id"),
                    truncated: None,
                    raw: Vec::new(),
                };
                let request = ExportTraceServiceRequest {
                    resource_spans: vec![ResourceSpans {
                        resource: common.resource.clone(),
                        scope_spans: vec![ScopeSpans {
                            scope: common.scope.clone(),
                            spans: vec![span.clone()],
                            schema_url: common.scope_schema.to_owned(),
                        }],
                        schema_url: common.resource_schema.to_owned(),
                    }],
                };
                let ts = if span.start_time_unix_nano == 0 {
                    arrival_ns
                } else {
                    span.start_time_unix_nano
                };
                let session = common.session(&span.attributes);
                push(out, ts, session, body, Request::Traces(request), redactor);
            }
        }
    }
}

impl Request {
    /// Calls `f` on every string the request carries (attribute keys and values, bodies,
    /// names, descriptions, units, status messages, trace states): what redaction rewrites.
    pub fn strings(&mut self, f: &mut dyn FnMut(&mut String)) {
        match self {
            Request::Logs(r) => {
                for rl in &mut r.resource_logs {
                    resource_strings(&mut rl.resource, f);
                    f(&mut rl.schema_url);
                    for sl in &mut rl.scope_logs {
                        scope_strings(&mut sl.scope, f);
                        f(&mut sl.schema_url);
                        for log in &mut sl.log_records {
                            log_strings(log, f);
                        }
                    }
                }
            }
            Request::Metrics(r) => {
                for rm in &mut r.resource_metrics {
                    resource_strings(&mut rm.resource, f);
                    f(&mut rm.schema_url);
                    for sm in &mut rm.scope_metrics {
                        scope_strings(&mut sm.scope, f);
                        f(&mut sm.schema_url);
                        for metric in &mut sm.metrics {
                            metric_strings(metric, f);
                        }
                    }
                }
            }
            Request::Traces(r) => {
                for rs in &mut r.resource_spans {
                    resource_strings(&mut rs.resource, f);
                    f(&mut rs.schema_url);
                    for ss in &mut rs.scope_spans {
                        scope_strings(&mut ss.scope, f);
                        f(&mut ss.schema_url);
                        for span in &mut ss.spans {
                            span_strings(span, f);
                        }
                    }
                }
            }
        }
    }
}

fn attributes_strings(attributes: &mut [KeyValue], f: &mut dyn FnMut(&mut String)) {
    for kv in attributes {
        f(&mut kv.key);
        if let Some(value) = kv.value.as_mut() {
            any_strings(value, f);
        }
    }
}

fn any_strings(value: &mut AnyValue, f: &mut dyn FnMut(&mut String)) {
    match value.value.as_mut() {
        Some(any_value::Value::StringValue(s)) => f(s),
        Some(any_value::Value::ArrayValue(array)) => {
            for v in &mut array.values {
                any_strings(v, f);
            }
        }
        Some(any_value::Value::KvlistValue(list)) => attributes_strings(&mut list.values, f),
        _ => {}
    }
}

fn resource_strings(resource: &mut Option<Resource>, f: &mut dyn FnMut(&mut String)) {
    if let Some(resource) = resource {
        attributes_strings(&mut resource.attributes, f);
    }
}

fn scope_strings(scope: &mut Option<InstrumentationScope>, f: &mut dyn FnMut(&mut String)) {
    if let Some(scope) = scope {
        f(&mut scope.name);
        f(&mut scope.version);
        attributes_strings(&mut scope.attributes, f);
    }
}

fn log_strings(log: &mut LogRecord, f: &mut dyn FnMut(&mut String)) {
    f(&mut log.severity_text);
    f(&mut log.event_name);
    if let Some(body) = log.body.as_mut() {
        any_strings(body, f);
    }
    attributes_strings(&mut log.attributes, f);
}

fn metric_strings(metric: &mut Metric, f: &mut dyn FnMut(&mut String)) {
    f(&mut metric.name);
    f(&mut metric.description);
    f(&mut metric.unit);
    attributes_strings(&mut metric.metadata, f);
    macro_rules! points {
        ($d:expr) => {
            for point in &mut $d.data_points {
                attributes_strings(&mut point.attributes, f);
                for exemplar in &mut point.exemplars {
                    attributes_strings(&mut exemplar.filtered_attributes, f);
                }
            }
        };
    }
    match metric.data.as_mut() {
        None => {}
        Some(metric::Data::Gauge(d)) => points!(d),
        Some(metric::Data::Sum(d)) => points!(d),
        Some(metric::Data::Histogram(d)) => points!(d),
        Some(metric::Data::ExponentialHistogram(d)) => points!(d),
        Some(metric::Data::Summary(d)) => {
            for point in &mut d.data_points {
                attributes_strings(&mut point.attributes, f);
            }
        }
    }
}

fn span_strings(span: &mut Span, f: &mut dyn FnMut(&mut String)) {
    f(&mut span.name);
    f(&mut span.trace_state);
    attributes_strings(&mut span.attributes, f);
    for event in &mut span.events {
        f(&mut event.name);
        attributes_strings(&mut event.attributes, f);
    }
    for link in &mut span.links {
        f(&mut link.trace_state);
        attributes_strings(&mut link.attributes, f);
    }
    if let Some(status) = span.status.as_mut() {
        f(&mut status.message);
    }
}
