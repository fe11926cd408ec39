//! Transcript lines as Claude Code writes them under `~/.claude/projects/<project>/<session>.jsonl`:
//! `type`, `subtype`, `uuid`, `parentUuid`, `sessionId`, `timestamp`, `requestId`,
//! `isSidechain`, `agentId`, `cwd`, `promptId`, and `message` (`id`, `model`, `usage`,
//! `content` blocks of type `text`, `tool_use`, `tool_result`, `thinking`).
//!
//! Invariant: every line gives exactly one record; nothing here fails or panics. A line that
//! is not a JSON object is flagged with [`Malformed`] and kept byte for byte.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::lenient::{parse_lenient, string};
#[cfg(doc)]
use crate::model::Malformed;
use crate::model::{Body, Origin, Record, Source, TranscriptBody, Usage};

fn usage(value: &Value) -> Option<Usage> {
    let map = value.as_object()?;
    let n = |key: &str| map.get(key).and_then(Value::as_u64).unwrap_or(0);
    let cache = map.get("cache_creation").and_then(Value::as_object);
    let c = |key: &str| {
        cache
            .and_then(|c| c.get(key))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    Some(Usage {
        input_tokens: n("input_tokens"),
        output_tokens: n("output_tokens"),
        cache_creation_input_tokens: n("cache_creation_input_tokens"),
        cache_read_input_tokens: n("cache_read_input_tokens"),
        ephemeral_5m_input_tokens: c("ephemeral_5m_input_tokens"),
        ephemeral_1h_input_tokens: c("ephemeral_1h_input_tokens"),
    })
}

/// Parses an RFC 3339 UTC timestamp (`2025-06-26T11:45:51.979Z`) into ns since the epoch.
pub fn parse_timestamp(text: &str) -> Option<u64> {
    let time = humantime::parse_rfc3339_weak(text.trim_end_matches('Z')).ok()?;
    let nanos = time.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
    u64::try_from(nanos).ok()
}

/// Builds a transcript record from one line (without its terminator).
///
/// The record's `ts` is the line's `timestamp` when it has one, else `fallback_ts`; its
/// session is the line's `sessionId`, else `fallback_session` (derived from the file path).
pub fn transcript_record(
    raw: Vec<u8>,
    origin: Origin,
    fallback_ts: u64,
    fallback_session: Option<&str>,
) -> Record {
    let parsed = parse_lenient(&raw);
    let map = parsed.object.unwrap_or_default();
    let message = map.get("message").and_then(Value::as_object);
    let line_type = string(&map, "type");
    let subtype = string(&map, "subtype").or_else(|| {
        map.get("data")
            .and_then(Value::as_object)
            .and_then(|data| string(data, "type"))
    });
    let ts = map
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(parse_timestamp)
        .unwrap_or(fallback_ts);
    let body = TranscriptBody {
        line_type,
        subtype,
        uuid: string(&map, "uuid"),
        parent_uuid: string(&map, "parentUuid"),
        request_id: string(&map, "requestId"),
        message_id: message.and_then(|m| string(m, "id")),
        model: message.and_then(|m| string(m, "model")),
        usage: message.and_then(|m| m.get("usage")).and_then(usage),
        is_sidechain: map.get("isSidechain").and_then(Value::as_bool),
        agent_id: string(&map, "agentId"),
        malformed: parsed.malformed,
        origin,
        truncated: None,
        raw,
    };
    Record {
        ts,
        source: Source::Transcript,
        session: string(&map, "sessionId").or_else(|| fallback_session.map(str::to_owned)),
        body: Body::Transcript(body),
        redactions: 0,
    }
}

/// Transcript line fields the views need (borrowed where possible; large parts stay raw).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Line<'a> {
    /// The `cwd` member.
    pub cwd: Option<String>,
    /// The `isMeta` member.
    #[serde(rename = "isMeta")]
    pub is_meta: Option<bool>,
    /// The `isCompactSummary` member.
    #[serde(rename = "isCompactSummary")]
    pub is_compact_summary: Option<bool>,
    /// The `promptId` member.
    #[serde(rename = "promptId")]
    pub prompt_id: Option<String>,
    /// The `message` member.
    #[serde(borrow)]
    pub message: Option<&'a RawValue>,
    /// The `toolUseResult` member.
    #[serde(rename = "toolUseResult", borrow)]
    pub tool_use_result: Option<&'a RawValue>,
    /// The `parentToolUseID` member.
    #[serde(rename = "parentToolUseID")]
    pub parent_tool_use_id: Option<String>,
    /// The `data` member.
    #[serde(borrow)]
    pub data: Option<&'a RawValue>,
}

/// A line's `message` as the views read it: only its `content` (a string or blocks), kept raw.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Message<'a> {
    /// The `content` member.
    #[serde(borrow)]
    pub content: Option<&'a RawValue>,
}

/// One block of `message.content`: `text`, `tool_use` (`id`, `name`, `input`), `tool_result`
/// (`tool_use_id`, `is_error`, `content`) or `thinking`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Block<'a> {
    /// The `type` member.
    #[serde(rename = "type")]
    pub kind: String,
    /// The `id` member.
    pub id: Option<String>,
    /// The `name` member.
    pub name: Option<String>,
    /// The `input` member.
    #[serde(borrow)]
    pub input: Option<&'a RawValue>,
    /// The `tool_use_id` member.
    pub tool_use_id: Option<String>,
    /// The `is_error` member.
    pub is_error: Option<bool>,
    /// The `content` member.
    #[serde(borrow)]
    pub content: Option<&'a RawValue>,
    /// The `text` member.
    pub text: Option<String>,
}

/// An assistant line as the views' fold reads it: `message.content`'s blocks, parsed in
/// one pass (each level held as a `RawValue` and parsed again would scan the content three
/// times). A line whose `message` or `content` has another shape has no tool calls.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AssistantLine<'a> {
    /// The `message` member.
    #[serde(borrow)]
    pub message: Option<AssistantMessage<'a>>,
}

/// An assistant line's `message`: its content blocks.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AssistantMessage<'a> {
    /// The `content` member.
    #[serde(borrow)]
    pub content: Option<Vec<Block<'a>>>,
}

/// The `data` of a `progress` line of type `agent_progress`: the subagent it reports on.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ProgressData {
    /// The `agentId` member.
    #[serde(rename = "agentId")]
    pub agent_id: Option<String>,
}

/// The `toolUseResult` keys the views read (an object's `agentId` and `task`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResultKeys {
    /// The `agentId` member.
    #[serde(rename = "agentId")]
    pub agent_id: Option<Value>,
    /// The `task` member.
    pub task: Option<Value>,
}

/// The text of a `tool_result` content (a string or an array of text blocks).
pub fn result_text(content: Option<&RawValue>) -> String {
    let Some(raw) = content else {
        return String::new();
    };
    match serde_json::from_str::<Value>(raw.get()) {
        Ok(Value::String(s)) => s,
        Ok(Value::Array(items)) => items
            .iter()
            .filter_map(|item| item.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}
