//! Hook payloads as Claude Code sends them on a hook's stdin (or as the JSON body of an
//! `http` hook): the common input fields `session_id`, `transcript_path`, `cwd`,
//! `hook_event_name`, and per-event fields such as `tool_name`, `tool_use_id`, `tool_input`,
//! `tool_response`, `prompt`, `agent_id`, `agent_type`, `prompt_id`
//! (<https://code.claude.com/docs/en/hooks>, "Hook input").
//!
//! Invariant: every payload gives exactly one record; nothing here fails or panics. A payload
//! that is not a JSON object is flagged with [`Malformed`] and kept byte for byte.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::lenient::{parse_lenient, string};
use super::transcript::parse_timestamp;
#[cfg(doc)]
use crate::model::Malformed;
use crate::model::{Body, HookBody, Origin, Record, Source};

/// Builds a hook record from a payload as received on stdin.
///
/// `ts` is the capture time (ns); `pty_session` is `CTRACE_PTY_SESSION` of the hook's
/// environment; `origin` is set when the payload was read from a file.
pub fn hook_record(
    raw: Vec<u8>,
    ts: u64,
    pty_session: Option<String>,
    origin: Option<Origin>,
) -> Record {
    let parsed = parse_lenient(&raw);
    let map = parsed.object.unwrap_or_default();
    // Payloads read from hook logs may carry the logger's time; live hooks use capture time.
    // A logged payload without one only has the time it was read: marked as such.
    let logged = origin.is_some().then(|| {
        ["timestamp", "logged_at"].iter().find_map(|k| {
            map.get(*k)
                .and_then(Value::as_str)
                .and_then(parse_timestamp)
        })
    });
    let (ts, arrival_time) = match logged {
        Some(Some(logged)) => (logged, false),
        Some(None) => (ts, true),
        None => (ts, false),
    };
    let body = HookBody {
        event: string(&map, "hook_event_name"),
        tool_name: string(&map, "tool_name"),
        tool_use_id: string(&map, "tool_use_id"),
        agent_id: string(&map, "agent_id"),
        agent_type: string(&map, "agent_type"),
        prompt_id: string(&map, "prompt_id"),
        cwd: string(&map, "cwd"),
        transcript_path: string(&map, "transcript_path"),
        agent_transcript_path: string(&map, "agent_transcript_path"),
        pty_session,
        malformed: parsed.malformed,
        origin,
        truncated: None,
        arrival_time,
        raw,
    };
    Record {
        ts,
        source: Source::Hook,
        session: string(&map, "session_id"),
        body: Body::Hook(body),
        redactions: 0,
    }
}

/// The hook payload keys the views read.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HookPayload<'a> {
    /// The `prompt` member.
    pub prompt: Option<Value>,
    /// The `tool_input` member.
    #[serde(borrow)]
    pub tool_input: Option<&'a RawValue>,
    /// The `tool_response` member.
    #[serde(borrow)]
    pub tool_response: Option<&'a RawValue>,
    /// The `error` member.
    pub error: Option<Value>,
}

impl HookPayload<'_> {
    /// A small JSON object with `prompt`, `tool_input` (see [`super::tool::input_value`]), `error`, and
    /// `tool_response` only when it can matter (Task/Agent results, task and issue creation).
    pub fn into_value(self, tool: &str) -> Value {
        let mut map = serde_json::Map::new();
        if let Some(prompt) = self.prompt {
            map.insert("prompt".to_owned(), prompt);
        }
        if let Some(error) = self.error {
            map.insert("error".to_owned(), error);
        }
        let input = super::tool::input_value(tool, self.tool_input);
        if !input.is_null() {
            map.insert("tool_input".to_owned(), input);
        }
        if let Some(raw) = self.tool_response {
            let text = raw.get();
            if matches!(tool, "Task" | "Agent" | "TaskCreate")
                || text.contains("Created issue:")
                || text.contains("Task #")
            {
                if let Ok(value) = serde_json::from_str(text) {
                    map.insert("tool_response".to_owned(), value);
                }
            } else {
                map.insert("tool_response".to_owned(), Value::Null);
            }
        }
        Value::Object(map)
    }
}
