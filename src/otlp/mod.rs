//! OpenTelemetry in and out: OTLP requests split into records (`source = otlp`), and the
//! attributes of Claude Code's own telemetry read back from them.
//!
//! Formats come from the OTLP 1.x specification (<https://opentelemetry.io/docs/specs/otlp/>):
//! the `Export{Logs,Metrics,Trace}ServiceRequest` messages of `opentelemetry-proto`, encoded
//! as protobuf or as OTLP/JSON (hex trace and span ids, 64-bit integers as strings, camelCase
//! field names). Claude Code's event and metric names and attributes come from its
//! "Monitoring" documentation (<https://code.claude.com/docs/en/monitoring-usage>).
//!
//! Invariants: a request is split into one record per log record, metric data point and span,
//! each holding a one-item request of the same signal with its resource and scope (nothing of
//! the request is dropped, and one record decodes on its own); decoding never panics and is
//! bounded by the caller's byte limit, gzip included.

pub mod batch;
pub mod forward;
pub mod push;
pub mod receive;
pub mod telemetry;

use std::io::Read;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;

pub use crate::model::Signal;

/// The body encodings of OTLP/HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json` (OTLP/JSON).
    Json,
}

impl Encoding {
    /// The encoding a `Content-Type` names (parameters such as `charset` ignored).
    ///
    /// # Errors
    /// [`OtlpError::ContentType`] for any other media type.
    pub fn from_content_type(content_type: Option<&str>) -> Result<Self, OtlpError> {
        let media = content_type
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/x-protobuf" | "application/protobuf" => Ok(Self::Protobuf),
            "application/json" => Ok(Self::Json),
            _ => Err(OtlpError::ContentType(
                content_type.unwrap_or("(none)").to_owned(),
            )),
        }
    }

    /// The `Content-Type` of this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

/// Why an OTLP request body was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OtlpError {
    /// The `Content-Type` is neither protobuf nor JSON.
    #[error(
        "unsupported content type `{0}` (OTLP/HTTP takes application/x-protobuf or application/json)"
    )]
    ContentType(String),
    /// The `Content-Encoding` is neither gzip nor identity.
    #[error("unsupported content encoding `{0}` (expected gzip or identity)")]
    ContentEncoding(String),
    /// The gzip stream is damaged.
    #[error("the gzip body does not decompress: {0}")]
    Gzip(#[source] std::io::Error),
    /// The body, decompressed, is larger than the limit.
    #[error("the decompressed body is larger than {limit_bytes} bytes")]
    TooLarge {
        /// The limit, bytes.
        limit_bytes: usize,
    },
    /// The body is not a protobuf request of the path's signal.
    #[error("the body is not a protobuf OTLP {signal} request: {source}")]
    Protobuf {
        /// The signal of the path.
        signal: &'static str,
        /// What prost said.
        #[source]
        source: prost::DecodeError,
    },
    /// The body is not an OTLP/JSON request of the path's signal.
    #[error("the body is not an OTLP/JSON {signal} request: {source}")]
    Json {
        /// The signal of the path.
        signal: &'static str,
        /// What serde_json said (with line and column).
        #[source]
        source: serde_json::Error,
    },
}

/// A decoded OTLP export request of any signal.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `ExportLogsServiceRequest`.
    Logs(ExportLogsServiceRequest),
    /// `ExportMetricsServiceRequest`.
    Metrics(ExportMetricsServiceRequest),
    /// `ExportTraceServiceRequest`.
    Traces(ExportTraceServiceRequest),
}

impl Request {
    /// The signal of the request.
    pub fn signal(&self) -> Signal {
        match self {
            Self::Logs(_) => Signal::Logs,
            Self::Metrics(_) => Signal::Metrics,
            Self::Traces(_) => Signal::Traces,
        }
    }

    /// The request as protobuf bytes.
    pub fn encode_protobuf(&self) -> Vec<u8> {
        match self {
            Self::Logs(r) => r.encode_to_vec(),
            Self::Metrics(r) => r.encode_to_vec(),
            Self::Traces(r) => r.encode_to_vec(),
        }
    }

    /// The request as OTLP/JSON.
    ///
    /// # Errors
    /// Never for decoded requests; an error would come from serde_json.
    pub fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        match self {
            Self::Logs(r) => serde_json::to_value(r),
            Self::Metrics(r) => serde_json::to_value(r),
            Self::Traces(r) => serde_json::to_value(r),
        }
    }

    /// Decodes a request body (already decompressed) of `signal` in `encoding`.
    ///
    /// # Errors
    /// [`OtlpError::Protobuf`] or [`OtlpError::Json`] when the bytes are not such a request.
    pub fn decode(signal: Signal, encoding: Encoding, bytes: &[u8]) -> Result<Self, OtlpError> {
        let name = signal.as_str();
        let proto = |source| OtlpError::Protobuf {
            signal: name,
            source,
        };
        let json = |source| OtlpError::Json {
            signal: name,
            source,
        };
        Ok(match (signal, encoding) {
            (Signal::Logs, Encoding::Protobuf) => {
                Self::Logs(ExportLogsServiceRequest::decode(bytes).map_err(proto)?)
            }
            (Signal::Metrics, Encoding::Protobuf) => {
                Self::Metrics(ExportMetricsServiceRequest::decode(bytes).map_err(proto)?)
            }
            (Signal::Traces, Encoding::Protobuf) => {
                Self::Traces(ExportTraceServiceRequest::decode(bytes).map_err(proto)?)
            }
            (Signal::Logs, Encoding::Json) => {
                Self::Logs(serde_json::from_slice(bytes).map_err(json)?)
            }
            (Signal::Metrics, Encoding::Json) => {
                Self::Metrics(serde_json::from_slice(bytes).map_err(json)?)
            }
            (Signal::Traces, Encoding::Json) => {
                Self::Traces(serde_json::from_slice(bytes).map_err(json)?)
            }
        })
    }

    /// Decodes a stored record's `raw` (a one-item protobuf request of `signal`).
    ///
    /// # Errors
    /// [`OtlpError::Protobuf`] when `raw` is not one (a truncated record's `raw`).
    pub fn from_raw(signal: Signal, raw: &[u8]) -> Result<Self, OtlpError> {
        Self::decode(signal, Encoding::Protobuf, raw)
    }
}

/// Decompresses a body by its `Content-Encoding` (`gzip`, `identity` or none), to at most
/// `limit_bytes` bytes.
///
/// # Errors
/// [`OtlpError::ContentEncoding`] for another encoding, [`OtlpError::Gzip`] for a damaged
/// stream, [`OtlpError::TooLarge`] past the limit (a gzip bomb stops there).
pub fn decompress(
    content_encoding: Option<&str>,
    body: Vec<u8>,
    limit_bytes: usize,
) -> Result<Vec<u8>, OtlpError> {
    let encoding = content_encoding.unwrap_or("").trim().to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" | "x-gzip" => {
            let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit_bytes));
            let decoder = flate2::read::MultiGzDecoder::new(&body[..]);
            decoder
                .take(limit_bytes as u64 + 1)
                .read_to_end(&mut out)
                .map_err(OtlpError::Gzip)?;
            if out.len() > limit_bytes {
                return Err(OtlpError::TooLarge { limit_bytes });
            }
            Ok(out)
        }
        _ => Err(OtlpError::ContentEncoding(
            content_encoding.unwrap_or("").to_owned(),
        )),
    }
}

/// The answer to an export request (OTLP/HTTP: the `Export*ServiceResponse` of the signal in
/// the request's encoding; `partial_success` set only when items were rejected).
pub fn response_body(signal: Signal, encoding: Encoding, rejected: i64, message: &str) -> Vec<u8> {
    if encoding == Encoding::Json && rejected <= 0 && message.is_empty() {
        // The empty response (`{"partialSuccess":null}` is what serde would write).
        return b"{}".to_vec();
    }
    let message = message.to_owned();
    macro_rules! respond {
        ($response:ident, $partial:ident, $field:ident) => {{
            let response = $response {
                partial_success: (rejected > 0 || !message.is_empty()).then(|| $partial {
                    $field: rejected,
                    error_message: message,
                }),
            };
            match encoding {
                Encoding::Protobuf => response.encode_to_vec(),
                Encoding::Json => serde_json::to_vec(&response).unwrap_or_else(|_| b"{}".to_vec()),
            }
        }};
    }
    match signal {
        Signal::Logs => respond!(
            ExportLogsServiceResponse,
            ExportLogsPartialSuccess,
            rejected_log_records
        ),
        Signal::Metrics => respond!(
            ExportMetricsServiceResponse,
            ExportMetricsPartialSuccess,
            rejected_data_points
        ),
        Signal::Traces => respond!(
            ExportTraceServiceResponse,
            ExportTracePartialSuccess,
            rejected_spans
        ),
    }
}

/// The value of attribute `key` among `attributes`.
pub fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

/// An attribute value as text: strings as they are, numbers and booleans formatted; `None`
/// for arrays, maps, bytes and empty strings.
pub fn value_text(value: &any_value::Value) -> Option<String> {
    use any_value::Value;
    match value {
        Value::StringValue(s) if !s.is_empty() => Some(s.clone()),
        Value::IntValue(n) => Some(n.to_string()),
        Value::DoubleValue(f) => Some(f.to_string()),
        Value::BoolValue(b) => Some(b.to_string()),
        _ => None,
    }
}

/// An attribute value as a number: ints and doubles, and strings that parse as one (Claude
/// Code has sent numeric attributes as strings).
pub fn value_f64(value: &any_value::Value) -> Option<f64> {
    use any_value::Value;
    match value {
        Value::IntValue(n) => Some(*n as f64),
        Value::DoubleValue(f) => Some(*f),
        Value::StringValue(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// An attribute value as a non-negative integer (token counts, durations); doubles are
/// rounded, negative values and non-numbers give `None`.
pub fn value_u64(value: &any_value::Value) -> Option<u64> {
    use any_value::Value;
    match value {
        Value::IntValue(n) => u64::try_from(*n).ok(),
        Value::StringValue(s) => s.trim().parse::<u64>().ok().or_else(|| {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f.round() as u64)
        }),
        Value::DoubleValue(f) if f.is_finite() && *f >= 0.0 => Some(f.round() as u64),
        _ => None,
    }
}

/// An attribute value as a boolean (`true`/`false` as booleans or strings).
pub fn value_bool(value: &any_value::Value) -> Option<bool> {
    use any_value::Value;
    match value {
        Value::BoolValue(b) => Some(*b),
        Value::StringValue(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A log record's event name without Claude Code's `claude_code.` prefix: the record's
/// `event_name`, else its `event.name` attribute, else its body when that is a string.
pub fn event_name(record: &opentelemetry_proto::tonic::logs::v1::LogRecord) -> Option<String> {
    let name = if !record.event_name.is_empty() {
        Some(record.event_name.clone())
    } else if let Some(name) = attribute(&record.attributes, "event.name").and_then(value_text) {
        Some(name)
    } else {
        match record.body.as_ref().and_then(|b| b.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) if !s.is_empty() && s.len() <= 256 => {
                Some(s.clone())
            }
            _ => None,
        }
    }?;
    Some(
        name.strip_prefix("claude_code.")
            .map(str::to_owned)
            .unwrap_or(name),
    )
}

/// Builds an attribute (for tests and the exporters).
pub fn key_value(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

/// A one-line summary of an `otlp` record for `ctrace cat` and timelines: what an event
/// reported (`claude-opus-4-6 $0.0123 1.5s in 12 out 34`), a data point's value and
/// attributes, a span's duration; empty when `raw` does not decode.
pub fn summary(signal: Signal, raw: &[u8]) -> String {
    use opentelemetry_proto::tonic::metrics::v1::number_data_point;
    let Ok(request) = Request::from_raw(signal, raw) else {
        return String::new();
    };
    match request {
        Request::Logs(r) => {
            let Some(log) = r
                .resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .flat_map(|sl| &sl.log_records)
                .next()
            else {
                return String::new();
            };
            let event = telemetry::Event::from_attributes(String::new(), &log.attributes);
            let mut parts = Vec::new();
            parts.extend(event.model.clone());
            parts.extend(event.tool_name.clone());
            if let Some(success) = event.success {
                parts.push(if success { "ok" } else { "failed" }.to_owned());
            }
            if let Some(status) = event.status_code {
                parts.push(format!("HTTP {status}"));
            }
            if let Some(attempt) = event.attempt {
                parts.push(format!("attempt {attempt}"));
            }
            if let Some(cost) = event.cost_usd {
                parts.push(format!("${cost:.4}"));
            }
            if let Some(ms) = event.duration_ms {
                parts.push(crate::model::format_duration(ms.saturating_mul(1_000_000)));
            }
            for (label, n) in [
                ("in", event.input_tokens),
                ("out", event.output_tokens),
                ("cache read", event.cache_read_tokens),
                ("cache write", event.cache_creation_tokens),
            ] {
                if let Some(n) = n {
                    parts.push(format!("{label} {n}"));
                }
            }
            if let Some(error) = event.error {
                parts.push(error);
            }
            parts.join(" ")
        }
        Request::Metrics(r) => {
            let Some(metric) = r
                .resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .flat_map(|sm| &sm.metrics)
                .next()
            else {
                return String::new();
            };
            use opentelemetry_proto::tonic::metrics::v1::metric::Data;
            let point = match &metric.data {
                Some(Data::Sum(d)) => d.data_points.first(),
                Some(Data::Gauge(d)) => d.data_points.first(),
                _ => None,
            };
            let Some(point) = point else {
                return metric.unit.clone();
            };
            let value = match point.value {
                Some(number_data_point::Value::AsInt(n)) => n.to_string(),
                Some(number_data_point::Value::AsDouble(f)) => format!("{f}"),
                None => String::new(),
            };
            let attrs: Vec<String> = point
                .attributes
                .iter()
                .filter(|kv| kv.key != "session.id")
                .filter_map(|kv| {
                    let v = kv.value.as_ref()?.value.as_ref().and_then(value_text)?;
                    Some(format!("{}={v}", kv.key))
                })
                .collect();
            format!("{value} {} {}", metric.unit, attrs.join(" "))
                .trim()
                .to_owned()
        }
        Request::Traces(r) => {
            let Some(span) = r
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .flat_map(|ss| &ss.spans)
                .next()
            else {
                return String::new();
            };
            let ns = span
                .end_time_unix_nano
                .saturating_sub(span.start_time_unix_nano);
            crate::model::format_duration(ns)
        }
    }
}

/// Every string of an `otlp` record's request, one per line (the searchable text); empty
/// when `raw` does not decode.
pub fn text(signal: Signal, raw: &[u8]) -> String {
    let Ok(mut request) = Request::from_raw(signal, raw) else {
        return String::new();
    };
    let mut out = String::new();
    request.strings(&mut |s| {
        if !s.is_empty() {
            out.push_str(s);
            out.push('\n');
        }
    });
    out
}

/// `google.rpc.Status`, the body of OTLP/HTTP error responses (fields 1 and 2 of
/// `google/rpc/status.proto`; `details` is neither written nor read): what `ctrace serve`
/// answers a refused OTLP request with, and what the pusher reads from a collector's refusal.
/// Source: <https://opentelemetry.io/docs/specs/otlp/#failures-1>.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct Status {
    /// gRPC status code (`3` INVALID_ARGUMENT, `8` RESOURCE_EXHAUSTED, `14` UNAVAILABLE, ...).
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// What was wrong, for people.
    #[prost(string, tag = "2")]
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OTLP/JSON as JavaScript and Python exporters write it: ints as numbers or strings,
    /// whole doubles without a fraction, enums as integers.
    #[test]
    fn otlp_json_variants_decode() {
        let logs = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"claude-code"}}]},
            "scopeLogs":[{"scope":{"name":"com.anthropic.claude_code.events"},"logRecords":[
              {"timeUnixNano":"1767225600123000000","severityNumber":9,"body":{"stringValue":"claude_code.api_request"},
               "attributes":[{"key":"a","value":{"intValue":42}},{"key":"b","value":{"intValue":"43"}},
                 {"key":"c","value":{"doubleValue":1}},{"key":"d","value":{"doubleValue":0.25}},
                 {"key":"session.id","value":{"stringValue":"s"}}],
               "traceId":"fce9e9505416365333209d7bf72f44c2","spanId":"efebac8e921ea65a"},
              {"timeUnixNano":1767225600123000001,"body":{"stringValue":"x"}}]}]}]}"#;
        let Request::Logs(request) = Request::decode(Signal::Logs, Encoding::Json, logs).unwrap()
        else {
            panic!("not logs")
        };
        let records = &request.resource_logs[0].scope_logs[0].log_records;
        assert_eq!(records[0].time_unix_nano, 1_767_225_600_123_000_000);
        assert_eq!(records[1].time_unix_nano, 1_767_225_600_123_000_001);
        let attrs = &records[0].attributes;
        assert_eq!(attribute(attrs, "a").and_then(value_u64), Some(42));
        assert_eq!(attribute(attrs, "b").and_then(value_u64), Some(43));
        assert_eq!(attribute(attrs, "c").and_then(value_f64), Some(1.0));
        assert_eq!(records[0].trace_id.len(), 16);
        let metrics = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"claude_code.cost.usage","unit":"USD",
            "sum":{"aggregationTemporality":1,"isMonotonic":true,"dataPoints":[
              {"asDouble":5,"timeUnixNano":"1"},{"asInt":"7","timeUnixNano":2}]}}]}]}]}"#;
        assert!(Request::decode(Signal::Metrics, Encoding::Json, metrics).is_ok());
    }
}
