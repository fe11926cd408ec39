//! What a record says: the transcript line and hook payload shapes the fold reads, parsed
//! ahead of the fold (no database access).

use serde_json::Value;

use super::first_line;
use crate::claude::hook::HookPayload;
use crate::claude::tool::{input_description, input_value};
use crate::claude::transcript::{
    AssistantLine, Block, Line, Message, ProgressData, ResultKeys, result_text,
};
use crate::model::{BodyRef, RecordRef};
use crate::views::facts::LineFacts;

/// A tool call found in an assistant line.
#[derive(Debug)]
pub(super) struct ToolUse {
    pub(super) id: String,
    pub(super) name: String,
    /// See [`input_value`].
    pub(super) input: Value,
}

/// A `tool_result` block of a user line.
#[derive(Debug)]
pub(super) struct ToolResult {
    pub(super) tool_use_id: Option<String>,
    pub(super) is_error: bool,
    /// See [`result_text`]; empty unless the fold reads it (an error, or a result that may
    /// announce a task or issue).
    pub(super) text: String,
}

/// The content of a user line's message.
#[derive(Debug)]
pub(super) enum UserContent {
    /// No `message.content` (or it does not parse).
    Missing,
    /// A string: a typed prompt.
    Text(String),
    /// Content blocks.
    Blocks {
        /// The `tool_result` blocks, in order.
        results: Vec<ToolResult>,
        /// The `text` blocks' text, concatenated.
        prompt_text: String,
        /// Every block's `text` field, concatenated (the key of an old sidechain's prompt).
        all_text: String,
        /// `toolUseResult.agentId`, when a string.
        result_agent: Option<String>,
        /// `{"task": toolUseResult.task}` when present (see [`task_created_id`]).
        result_task: Option<Value>,
    },
}

/// What a user line says (the parts the views read).
#[derive(Debug)]
pub(super) struct UserLine {
    pub(super) cwd: Option<String>,
    pub(super) is_meta: bool,
    pub(super) is_compact_summary: bool,
    pub(super) prompt_id: Option<String>,
    pub(super) content: UserContent,
}

/// The JSON a record's fold needs, extracted ahead of the fold (on the reading threads of
/// [`crate::views::fold_log`], so that JSON parsing runs beside the SQLite writes). Absent parts were
/// not needed or did not parse.
#[derive(Debug, Default)]
pub(in crate::views) struct Extracted {
    /// Hook events that read their payload: see [`HookPayload::into_value`].
    pub(super) hook_payload: Option<Value>,
    /// Assistant lines: the tool calls.
    pub(super) tool_uses: Vec<ToolUse>,
    /// User lines.
    pub(super) user: Option<UserLine>,
    /// `agent_progress` lines: `(parentToolUseID, data.agentId)`.
    pub(super) progress: Option<(String, String)>,
    /// Assistant lines: `message.stop_reason` is `end_turn`.
    pub(super) end_turn: bool,
    /// OTLP log records: the Claude Code telemetry event.
    pub(super) telemetry: Option<crate::otlp::telemetry::Event>,
}

impl Extracted {
    /// What the session facts read of a transcript line.
    pub(super) fn line_facts(&self) -> LineFacts {
        LineFacts {
            uses_tool: !self.tool_uses.is_empty(),
            user: self.user.is_some(),
            end_turn: self.end_turn,
        }
    }
}

/// Whether a hook event's fold reads the payload.
pub(super) fn hook_needs_payload(event: &str) -> bool {
    matches!(
        event,
        "UserPromptSubmit" | "PreToolUse" | "PostToolUse" | "PostToolUseFailure"
    )
}

/// Extracts the JSON that [`Folder::apply`] needs from `record` (pure: no database access).
pub(in crate::views) fn extract(record: &RecordRef<'_>) -> Extracted {
    let mut out = Extracted::default();
    if record.session.is_none() {
        return out;
    }
    match &record.body {
        BodyRef::Hook(hook)
            if hook.malformed.is_none() && hook_needs_payload(hook.event.unwrap_or("")) =>
        {
            out.hook_payload = serde_json::from_slice::<HookPayload<'_>>(hook.raw)
                .ok()
                .map(|p| p.into_value(hook.tool_name.unwrap_or("")));
        }
        BodyRef::Transcript(line) if line.malformed.is_none() => {
            match line.line_type.unwrap_or("") {
                "assistant" => {
                    out.tool_uses = extract_tool_uses(line.raw);
                    out.end_turn =
                        memchr::memmem::find(line.raw, b"\"stop_reason\":\"end_turn\"").is_some();
                }
                "user" => out.user = extract_user(line.raw),
                "progress" if line.subtype == Some("agent_progress") => {
                    out.progress = extract_progress(line.raw);
                }
                _ => {}
            }
        }
        BodyRef::Otlp(otlp) if otlp.signal == crate::model::Signal::Logs => {
            out.telemetry = crate::otlp::telemetry::Event::from_raw(otlp.raw);
        }
        _ => {}
    }
    out
}

/// The tool calls of an assistant line (only parsed when the bytes mention one).
pub(super) fn extract_tool_uses(raw: &[u8]) -> Vec<ToolUse> {
    if memchr::memmem::find(raw, b"\"tool_use\"").is_none() {
        return Vec::new();
    }
    let Ok(parsed) = serde_json::from_slice::<AssistantLine<'_>>(raw) else {
        return Vec::new();
    };
    parsed
        .message
        .and_then(|message| message.content)
        .unwrap_or_default()
        .into_iter()
        .filter(|block| block.kind == "tool_use")
        .filter_map(|block| {
            let (Some(id), Some(name)) = (block.id, block.name) else {
                return None;
            };
            let input = input_value(&name, block.input);
            Some(ToolUse { id, name, input })
        })
        .collect()
}

pub(super) fn extract_user(raw: &[u8]) -> Option<UserLine> {
    let parsed = serde_json::from_slice::<Line<'_>>(raw).ok()?;
    let message: Message<'_> = parsed
        .message
        .and_then(|m| serde_json::from_str(m.get()).ok())
        .unwrap_or_default();
    let content = match message.content {
        None => UserContent::Missing,
        Some(content) if content.get().starts_with('"') => {
            UserContent::Text(serde_json::from_str(content.get()).unwrap_or_default())
        }
        Some(content) => {
            let blocks: Vec<Block<'_>> = serde_json::from_str(content.get()).unwrap_or_default();
            let keys: ResultKeys = parsed
                .tool_use_result
                .and_then(|raw| serde_json::from_str(raw.get()).ok())
                .unwrap_or_default();
            let mut results = Vec::new();
            let mut prompt_text = String::new();
            let mut all_text = String::new();
            for block in blocks {
                if let Some(text) = &block.text {
                    all_text.push_str(text);
                }
                match block.kind.as_str() {
                    "tool_result" => {
                        // The text is read for an error, or for a task or issue the call
                        // created (see `Folder::tool_finished_tasks`); most results need
                        // neither, and their (often large) content is not decoded.
                        let is_error = block.is_error == Some(true);
                        let needs_text = is_error
                            || keys.task.is_some()
                            || block.content.is_some_and(|c| {
                                c.get().contains("Task #") || c.get().contains("Created issue:")
                            });
                        results.push(ToolResult {
                            is_error,
                            text: if needs_text {
                                result_text(block.content)
                            } else {
                                String::new()
                            },
                            tool_use_id: block.tool_use_id,
                        });
                    }
                    "text" => {
                        if let Some(text) = &block.text {
                            prompt_text.push_str(text);
                        }
                    }
                    _ => {}
                }
            }
            UserContent::Blocks {
                results,
                prompt_text,
                all_text,
                result_agent: keys.agent_id.and_then(|v| match v {
                    Value::String(s) => Some(s),
                    _ => None,
                }),
                result_task: keys.task.map(|task| {
                    let mut map = serde_json::Map::new();
                    map.insert("task".to_owned(), task);
                    Value::Object(map)
                }),
            }
        }
    };
    Some(UserLine {
        cwd: parsed.cwd,
        is_meta: parsed.is_meta == Some(true),
        is_compact_summary: parsed.is_compact_summary == Some(true),
        prompt_id: parsed.prompt_id,
        content,
    })
}

pub(super) fn extract_progress(raw: &[u8]) -> Option<(String, String)> {
    let parsed = serde_json::from_slice::<Line<'_>>(raw).ok()?;
    let data: ProgressData = parsed
        .data
        .and_then(|d| serde_json::from_str(d.get()).ok())
        .unwrap_or_default();
    Some((parsed.parent_tool_use_id?, data.agent_id?))
}

/// A short description of a tool call's input, one line ([`input_description`]).
pub(super) fn input_detail(name: &str, input: &Value) -> Option<String> {
    input_description(name, input).map(|text| first_line(&text))
}
