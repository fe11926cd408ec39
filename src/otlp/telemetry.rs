//! Claude Code's own telemetry read back from `otlp` records: the fields of its log events
//! that the views keep (`telemetry` table, `docs/views.md`).
//!
//! Source: Claude Code's "Monitoring" documentation
//! (<https://code.claude.com/docs/en/monitoring-usage>), "Events": every event carries
//! `session.id`, `prompt.id`, `event.timestamp` and `event.sequence`; `api_request` carries
//! `model`, `cost_usd`, `duration_ms`, `input_tokens`, `output_tokens`, `cache_read_tokens`,
//! `cache_creation_tokens`, `request_id`; `api_error` `model`, `error`, `status_code`,
//! `duration_ms`, `attempt`; `tool_result` `tool_name`, `tool_use_id`, `success`,
//! `duration_ms`, `error`. Numbers may arrive as strings; both are read.

use opentelemetry_proto::tonic::common::v1::KeyValue;

use super::{Request, attribute, event_name, value_bool, value_f64, value_text, value_u64};

/// One telemetry log event with the fields the views keep; absent fields are `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    /// The event name without `claude_code.` (`api_request`, `api_error`, `tool_result`,
    /// `user_prompt`, `tool_decision`, ...).
    pub name: String,
    /// `prompt.id`.
    pub prompt_id: Option<String>,
    /// `request_id` (Anthropic API request id; the transcript's `requestId`).
    pub request_id: Option<String>,
    /// `tool_use_id`.
    pub tool_use_id: Option<String>,
    /// `tool_name`.
    pub tool_name: Option<String>,
    /// `model`.
    pub model: Option<String>,
    /// `cost_usd`: what Claude Code says the request cost, USD.
    pub cost_usd: Option<f64>,
    /// `duration_ms`.
    pub duration_ms: Option<u64>,
    /// `input_tokens`.
    pub input_tokens: Option<u64>,
    /// `output_tokens`.
    pub output_tokens: Option<u64>,
    /// `cache_read_tokens`.
    pub cache_read_tokens: Option<u64>,
    /// `cache_creation_tokens`.
    pub cache_creation_tokens: Option<u64>,
    /// `success` (tool results).
    pub success: Option<bool>,
    /// `status_code` (API errors).
    pub status_code: Option<u64>,
    /// `attempt` (API errors: 1 for the first try).
    pub attempt: Option<u64>,
    /// `error` (API errors, failed tool results).
    pub error: Option<String>,
    /// `event.sequence`: the event's place in its session.
    pub sequence: Option<u64>,
}

impl Event {
    /// The event of the first log record in `raw` (an `otlp` record of signal logs); `None`
    /// when `raw` does not decode (a truncated record) or holds no named log record.
    pub fn from_raw(raw: &[u8]) -> Option<Self> {
        let Ok(Request::Logs(request)) = Request::from_raw(super::Signal::Logs, raw) else {
            return None;
        };
        let log = request
            .resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .flat_map(|sl| &sl.log_records)
            .next()?;
        Some(Self::from_attributes(event_name(log)?, &log.attributes))
    }

    /// The event named `name` with `attributes`.
    pub fn from_attributes(name: String, attributes: &[KeyValue]) -> Self {
        let text = |key| attribute(attributes, key).and_then(value_text);
        let count = |key| attribute(attributes, key).and_then(value_u64);
        Self {
            prompt_id: text("prompt.id"),
            request_id: text("request_id"),
            tool_use_id: text("tool_use_id"),
            tool_name: text("tool_name"),
            model: text("model"),
            cost_usd: attribute(attributes, "cost_usd")
                .and_then(value_f64)
                .filter(|f| f.is_finite()),
            duration_ms: count("duration_ms"),
            input_tokens: count("input_tokens"),
            output_tokens: count("output_tokens"),
            cache_read_tokens: count("cache_read_tokens"),
            cache_creation_tokens: count("cache_creation_tokens"),
            success: attribute(attributes, "success").and_then(value_bool),
            status_code: count("status_code"),
            attempt: count("attempt"),
            error: text("error"),
            sequence: count("event.sequence"),
            name,
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use prost::Message;

    use super::*;
    use crate::otlp::key_value;

    #[test]
    fn reads_an_api_request_with_numbers_as_strings_or_numbers() {
        let log = LogRecord {
            body: Some(opentelemetry_proto::tonic::common::v1::AnyValue {
                value: Some(Value::StringValue("claude_code.api_request".into())),
            }),
            attributes: vec![
                key_value("model", Value::StringValue("claude-opus-4-6".into())),
                key_value("cost_usd", Value::StringValue("0.0123".into())),
                key_value("input_tokens", Value::IntValue(12)),
                key_value("output_tokens", Value::StringValue("34".into())),
                key_value("duration_ms", Value::DoubleValue(1500.4)),
                key_value("request_id", Value::StringValue("req_1".into())),
            ],
            ..LogRecord::default()
        };
        let raw = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![log],
                    ..ScopeLogs::default()
                }],
                ..ResourceLogs::default()
            }],
        }
        .encode_to_vec();
        let event = Event::from_raw(&raw).unwrap();
        assert_eq!(event.name, "api_request");
        assert_eq!(event.cost_usd, Some(0.0123));
        assert_eq!(event.input_tokens, Some(12));
        assert_eq!(event.output_tokens, Some(34));
        assert_eq!(event.duration_ms, Some(1500));
        assert_eq!(event.request_id.as_deref(), Some("req_1"));
        assert_eq!(Event::from_raw(&raw[..raw.len() - 3]), None);
    }
}
