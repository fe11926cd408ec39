//! Folding records into the views, one transaction per batch.
//!
//! Per-record work: hook payloads and the transcript lines that carry prompts, tool calls,
//! tool results, usage or subagent links are parsed (only the fields needed); other lines
//! (hook_progress, bash_progress, snapshots) only count toward their session. Session and
//! subagent aggregates are kept in memory for the batch and written once at its end.

// foldhash-hashed maps (hashbrown's default): the fold looks up session and span ids per
// record, and SipHash was a visible share of a rebuild.
use hashbrown::HashMap;
use std::path::Path;

use rusqlite::{Statement, Transaction, params};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::facts::{LineFacts, SessionFacts};
use super::shell::shell_words;
use super::{SqlContext, ViewsError};
use crate::model::{Malformed, PtyKind, Source, Usage};
use crate::segments::Offset;

/// A record decoded for the views: only the fields they use, strings and payloads borrowed
/// from the block (no copies). Field names follow `model::Record`'s named encoding.
#[derive(Debug, PartialEq, Deserialize)]
pub(super) struct ViewRecord<'a> {
    pub(super) ts: u64,
    pub(super) source: Source,
    #[serde(default, borrow)]
    pub(super) session: Option<&'a str>,
    #[serde(borrow)]
    pub(super) body: ViewBody<'a>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum ViewBody<'a> {
    #[serde(borrow)]
    Hook(HookView<'a>),
    #[serde(borrow)]
    Transcript(TranscriptView<'a>),
    #[serde(borrow)]
    Pty(PtyView<'a>),
    Internal(serde::de::IgnoredAny),
}

/// The PTY fields the views read (the session list's status and project).
#[derive(Debug, PartialEq, Deserialize)]
pub(super) struct PtyView<'a> {
    pub(super) kind: PtyKind,
    #[serde(default, borrow)]
    pub(super) cwd: Option<&'a str>,
}

#[derive(Debug, PartialEq, Deserialize)]
pub(super) struct HookView<'a> {
    #[serde(default, borrow)]
    pub(super) event: Option<&'a str>,
    #[serde(default, borrow)]
    pub(super) tool_name: Option<&'a str>,
    #[serde(default, borrow)]
    pub(super) tool_use_id: Option<&'a str>,
    #[serde(default, borrow)]
    pub(super) agent_id: Option<&'a str>,
    #[serde(default, borrow)]
    pub(super) agent_type: Option<&'a str>,
    #[serde(default, borrow)]
    pub(super) prompt_id: Option<&'a str>,
    #[serde(default, borrow)]
    pub(super) cwd: Option<&'a str>,
    #[serde(default, borrow)]
    pub(super) pty_session: Option<&'a str>,
    #[serde(default)]
    pub(super) malformed: Option<Malformed>,
    #[serde(borrow, with = "serde_bytes")]
    pub(super) raw: &'a [u8],
}

#[derive(Debug, PartialEq, Deserialize)]
pub(super) struct OriginView<'a> {
    #[serde(borrow)]
    pub(super) file: &'a str,
}

#[derive(Debug, PartialEq, Deserialize)]
pub(super) struct TranscriptView<'a> {
    #[serde(default, borrow)]
    pub(super) line_type: Option<&'a str>,
    #[serde(default, borrow)]
    pub(super) subtype: Option<&'a str>,
    #[serde(default, borrow)]
    pub(super) uuid: Option<&'a str>,
    #[serde(default, borrow)]
    pub(super) parent_uuid: Option<&'a str>,
    #[serde(default, borrow)]
    pub(super) request_id: Option<&'a str>,
    #[serde(default, borrow)]
    pub(super) message_id: Option<&'a str>,
    #[serde(default, borrow)]
    pub(super) model: Option<&'a str>,
    #[serde(default)]
    pub(super) usage: Option<Usage>,
    #[serde(default)]
    pub(super) is_sidechain: Option<bool>,
    #[serde(default, borrow)]
    pub(super) agent_id: Option<&'a str>,
    #[serde(default)]
    pub(super) malformed: Option<Malformed>,
    #[serde(borrow)]
    pub(super) origin: OriginView<'a>,
    #[serde(borrow, with = "serde_bytes")]
    pub(super) raw: &'a [u8],
}

/// Decodes the views' part of a record's bytes.
///
/// # Errors
/// The decoder's error when the bytes are not a record.
pub(super) fn decode(bytes: &[u8]) -> Result<ViewRecord<'_>, rmp_serde::decode::Error> {
    rmp_serde::from_slice(bytes)
}

/// Longest text kept in `prompt`, `detail` and `error_text` columns, in characters.
const TEXT_CHARS: usize = 300;

#[derive(Debug, Default)]
struct SessionAgg {
    project: Option<String>,
    transcript_dir: Option<String>,
    first_ns: u64,
    last_ns: u64,
    records: u64,
    hook_records: u64,
    transcript_records: u64,
    malformed: u64,
    ended_ns: Option<u64>,
}

/// A subagent's facts merged within a batch. Times are kept per source and merged only by
/// min/max, so the rows written do not depend on where batch boundaries fall.
#[derive(Debug, Default)]
struct AgentAgg {
    /// First and last hook with this `agent_id` (the last is normally SubagentStop), ns.
    hook: Option<(u64, u64)>,
    /// First and last transcript line of the subagent (its own lines, `agent_progress`), ns.
    lines: Option<(u64, u64)>,
    agent_type: Option<String>,
    parent: Option<String>,
    prompt_key: Option<String>,
    offset: u64,
}

/// Widens a `(first, last)` range by `ts`.
fn widen(range: &mut Option<(u64, u64)>, ts: u64) {
    *range = Some(match *range {
        Some((first, last)) => (first.min(ts), last.max(ts)),
        None => (ts, ts),
    });
}

/// A span's updates merged within a batch (same rules as the SQL upsert).
#[derive(Debug, Default, Clone)]
struct SpanAgg {
    kind: &'static str,
    name: Option<String>,
    agent_id: Option<String>,
    agent_type: Option<String>,
    parent: Option<String>,
    hook_start: Option<u64>,
    hook_end: Option<u64>,
    tx_start: Option<u64>,
    tx_end: Option<u64>,
    error: bool,
    error_text: Option<String>,
    detail: Option<String>,
    prompt_key: Option<String>,
    offset: u64,
}

fn keep<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

/// [`keep`] for a borrowed string: allocates only when the slot is empty.
fn keep_str(slot: &mut Option<String>, value: Option<&str>) {
    if slot.is_none() {
        *slot = value.map(str::to_owned);
    }
}

fn merge_min(slot: &mut Option<u64>, value: Option<u64>) {
    *slot = match (*slot, value) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
}

fn merge_max(slot: &mut Option<u64>, value: Option<u64>) {
    *slot = match (*slot, value) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
}

/// One API response's usage, the best line of the batch so far.
#[derive(Debug, Clone)]
struct UsageRow {
    session: String,
    ts: u64,
    model: String,
    usage: Usage,
    sidechain: bool,
    agent_id: Option<String>,
    tool_name: Option<String>,
    offset: u64,
}

/// One tool-span update (any field may be absent).
#[derive(Debug, Default)]
struct SpanUpdate<'a> {
    session: &'a str,
    span_id: &'a str,
    kind: &'static str,
    name: Option<&'a str>,
    agent_id: Option<&'a str>,
    agent_type: Option<&'a str>,
    parent: Option<&'a str>,
    hook_start: Option<u64>,
    hook_end: Option<u64>,
    tx_start: Option<u64>,
    tx_end: Option<u64>,
    error: bool,
    error_text: Option<String>,
    detail: Option<String>,
    prompt_key: Option<String>,
    offset: u64,
}

/// Per-batch aggregates keyed by (session, id), looked up with borrowed keys (no allocation
/// unless the entry is new).
#[derive(Debug)]
struct PerSession<V> {
    map: HashMap<String, HashMap<String, V>>,
}

impl<V> Default for PerSession<V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
        }
    }
}

impl<V> PerSession<V> {
    fn get(&self, session: &str, id: &str) -> Option<&V> {
        self.map.get(session)?.get(id)
    }

    fn get_or_insert_with(&mut self, session: &str, id: &str, new: impl FnOnce() -> V) -> &mut V {
        self.map
            .entry_ref(session)
            .or_default()
            .entry_ref(id)
            .or_insert_with(new)
    }

    /// Empties the map into `(session, [(id, value)])` groups, sorted by session and then by
    /// id (key order, so B-tree inserts touch each page once), with no key copied.
    fn drain_sorted(&mut self) -> Vec<(String, Vec<(String, V)>)> {
        let mut sessions: Vec<(String, Vec<(String, V)>)> = self
            .map
            .drain()
            .map(|(session, ids)| {
                let mut ids: Vec<(String, V)> = ids.into_iter().collect();
                ids.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                (session, ids)
            })
            .collect();
        sessions.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        sessions
    }
}

/// The folder: prepared statements on the batch's transaction, plus in-memory aggregates.
pub(super) struct Folder<'t> {
    path: &'t Path,
    tx: &'t Transaction<'t>,
    sessions: HashMap<String, SessionAgg>,
    agents: PerSession<AgentAgg>,
    spans: PerSession<SpanAgg>,
    usage: HashMap<(String, String), UsageRow>,
    upsert_span: Statement<'t>,
    upsert_usage: Statement<'t>,
    usage_tool: Statement<'t>,
    upsert_turn: Statement<'t>,
    end_turn: Statement<'t>,
    problem: Statement<'t>,
    chain_get: Statement<'t>,
    chain_put: Statement<'t>,
    task_event: Statement<'t>,
    upsert_task: Statement<'t>,
    span_detail: Statement<'t>,
    facts: SessionFacts,
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(TEXT_CHARS) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

fn first_line(text: &str) -> String {
    clip(text.trim().lines().next().unwrap_or(""))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn opt_i64(n: Option<u64>) -> Option<i64> {
    n.map(to_i64)
}

/// Transcript line fields the views need (borrowed where possible; large parts stay raw).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Line<'a> {
    cwd: Option<String>,
    #[serde(rename = "isMeta")]
    is_meta: Option<bool>,
    #[serde(rename = "isCompactSummary")]
    is_compact_summary: Option<bool>,
    #[serde(rename = "promptId")]
    prompt_id: Option<String>,
    #[serde(borrow)]
    message: Option<&'a RawValue>,
    #[serde(rename = "toolUseResult", borrow)]
    tool_use_result: Option<&'a RawValue>,
    #[serde(rename = "parentToolUseID")]
    parent_tool_use_id: Option<String>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Message<'a> {
    #[serde(borrow)]
    content: Option<&'a RawValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Block<'a> {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    name: Option<String>,
    #[serde(borrow)]
    input: Option<&'a RawValue>,
    tool_use_id: Option<String>,
    is_error: Option<bool>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    text: Option<String>,
}

/// An assistant line as [`extract_tool_uses`] reads it: `message.content`'s blocks, parsed in
/// one pass (each level held as a `RawValue` and parsed again would scan the content three
/// times). A line whose `message` or `content` has another shape has no tool calls.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AssistantLine<'a> {
    #[serde(borrow)]
    message: Option<AssistantMessage<'a>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AssistantMessage<'a> {
    #[serde(borrow)]
    content: Option<Vec<Block<'a>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ProgressData {
    #[serde(rename = "agentId")]
    agent_id: Option<String>,
}

/// The input keys the views read; other keys are skipped without building values.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct InputKeys {
    command: Option<Value>,
    file_path: Option<Value>,
    notebook_path: Option<Value>,
    pattern: Option<Value>,
    description: Option<Value>,
    prompt: Option<Value>,
    url: Option<Value>,
    query: Option<Value>,
    path: Option<Value>,
    subagent_type: Option<Value>,
}

/// A tool call's input as a JSON object with only the keys the views read (the whole input
/// for the to-do tools, whose lists they need).
fn input_value(name: &str, raw: Option<&RawValue>) -> Value {
    let Some(raw) = raw else {
        return Value::Null;
    };
    if matches!(name, "TodoWrite" | "TaskUpdate" | "TaskCreate") {
        return serde_json::from_str(raw.get()).unwrap_or(Value::Null);
    }
    let Ok(keys) = serde_json::from_str::<InputKeys>(raw.get()) else {
        return Value::Null;
    };
    let mut map = serde_json::Map::new();
    for (key, value) in [
        ("command", keys.command),
        ("file_path", keys.file_path),
        ("notebook_path", keys.notebook_path),
        ("pattern", keys.pattern),
        ("description", keys.description),
        ("prompt", keys.prompt),
        ("url", keys.url),
        ("query", keys.query),
        ("path", keys.path),
        ("subagent_type", keys.subagent_type),
    ] {
        if let Some(value) = value {
            map.insert(key.to_owned(), value);
        }
    }
    Value::Object(map)
}

/// The hook payload keys the views read.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct HookPayload<'a> {
    prompt: Option<Value>,
    #[serde(borrow)]
    tool_input: Option<&'a RawValue>,
    #[serde(borrow)]
    tool_response: Option<&'a RawValue>,
    error: Option<Value>,
}

impl HookPayload<'_> {
    /// A small JSON object with `prompt`, `tool_input` (see [`input_value`]), `error`, and
    /// `tool_response` only when it can matter (Task/Agent results, task and issue creation).
    fn into_value(self, tool: &str) -> Value {
        let mut map = serde_json::Map::new();
        if let Some(prompt) = self.prompt {
            map.insert("prompt".to_owned(), prompt);
        }
        if let Some(error) = self.error {
            map.insert("error".to_owned(), error);
        }
        let input = input_value(tool, self.tool_input);
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

/// A tool call found in an assistant line.
#[derive(Debug)]
struct ToolUse {
    id: String,
    name: String,
    /// See [`input_value`].
    input: Value,
}

/// A `tool_result` block of a user line.
#[derive(Debug)]
struct ToolResult {
    tool_use_id: Option<String>,
    is_error: bool,
    /// See [`result_text`]; empty unless the fold reads it (an error, or a result that may
    /// announce a task or issue).
    text: String,
}

/// The `toolUseResult` keys the views read (an object's `agentId` and `task`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ResultKeys {
    #[serde(rename = "agentId")]
    agent_id: Option<Value>,
    task: Option<Value>,
}

/// The content of a user line's message.
#[derive(Debug)]
enum UserContent {
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
struct UserLine {
    cwd: Option<String>,
    is_meta: bool,
    is_compact_summary: bool,
    prompt_id: Option<String>,
    content: UserContent,
}

/// The JSON a record's fold needs, extracted ahead of the fold (on the reading threads of
/// [`super::fold_log`], so that JSON parsing runs beside the SQLite writes). Absent parts were
/// not needed or did not parse.
#[derive(Debug, Default)]
pub(super) struct Extracted {
    /// Hook events that read their payload: see [`HookPayload::into_value`].
    hook_payload: Option<Value>,
    /// Assistant lines: the tool calls.
    tool_uses: Vec<ToolUse>,
    /// User lines.
    user: Option<UserLine>,
    /// `agent_progress` lines: `(parentToolUseID, data.agentId)`.
    progress: Option<(String, String)>,
    /// Assistant lines: `message.stop_reason` is `end_turn`.
    end_turn: bool,
}

impl Extracted {
    /// What the session facts read of a transcript line.
    fn line_facts(&self) -> LineFacts {
        LineFacts {
            uses_tool: !self.tool_uses.is_empty(),
            user: self.user.is_some(),
            end_turn: self.end_turn,
        }
    }
}

/// Whether a hook event's fold reads the payload.
fn hook_needs_payload(event: &str) -> bool {
    matches!(
        event,
        "UserPromptSubmit" | "PreToolUse" | "PostToolUse" | "PostToolUseFailure"
    )
}

/// Extracts the JSON that [`Folder::apply`] needs from `record` (pure: no database access).
pub(super) fn extract(record: &ViewRecord<'_>) -> Extracted {
    let mut out = Extracted::default();
    if record.session.is_none() {
        return out;
    }
    match &record.body {
        ViewBody::Hook(hook)
            if hook.malformed.is_none() && hook_needs_payload(hook.event.unwrap_or("")) =>
        {
            out.hook_payload = serde_json::from_slice::<HookPayload<'_>>(hook.raw)
                .ok()
                .map(|p| p.into_value(hook.tool_name.unwrap_or("")));
        }
        ViewBody::Transcript(line) if line.malformed.is_none() => {
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
        _ => {}
    }
    out
}

/// The tool calls of an assistant line (only parsed when the bytes mention one).
fn extract_tool_uses(raw: &[u8]) -> Vec<ToolUse> {
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

fn extract_user(raw: &[u8]) -> Option<UserLine> {
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

fn extract_progress(raw: &[u8]) -> Option<(String, String)> {
    let parsed = serde_json::from_slice::<Line<'_>>(raw).ok()?;
    let data: ProgressData = parsed
        .data
        .and_then(|d| serde_json::from_str(d.get()).ok())
        .unwrap_or_default();
    Some((parsed.parent_tool_use_id?, data.agent_id?))
}

/// The text of a `tool_result` content (a string or an array of text blocks).
fn result_text(content: Option<&RawValue>) -> String {
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

/// A short description of a tool call's input: the command, path, pattern or description.
pub(crate) fn input_detail(name: &str, input: &Value) -> Option<String> {
    let keys: &[&str] = match name {
        "Bash" => &["command"],
        "Read" | "Write" | "Edit" | "MultiEdit" | "NotebookEdit" => &["file_path", "notebook_path"],
        "Grep" | "Glob" => &["pattern"],
        "Task" | "Agent" => &["description", "prompt"],
        "WebFetch" => &["url"],
        "WebSearch" => &["query"],
        "TaskCreate" => &["subject", "description"],
        "TaskUpdate" => &["taskId"],
        _ => &[
            "description",
            "command",
            "file_path",
            "path",
            "query",
            "url",
            "pattern",
        ],
    };
    keys.iter().find_map(|key| match input.get(*key) {
        Some(Value::String(s)) => Some(first_line(s)),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// One status change of a to-do or Beads issue, found in a tool call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TaskChange {
    /// `todo`, `task` or `beads`.
    pub kind: &'static str,
    /// Id within the session (the to-do text for TodoWrite items without id).
    pub task_id: String,
    /// Title, when the call names one.
    pub title: Option<String>,
    /// New status, normalized to `pending`, `in_progress`, `completed`, `deleted`, `open`,
    /// `blocked` or `closed`.
    pub status: String,
    /// Parent issue (Beads `--parent`).
    pub parent: Option<String>,
}

/// Whether `word` looks like a Beads issue id (`bd-12`, `spotter-dov.1`): letters, digits,
/// `.`, `_` and `-`, with a `-` after the first character.
fn is_issue_id(word: &str) -> bool {
    word.len() > 2
        && word.starts_with(|c: char| c.is_ascii_alphanumeric())
        && word[1..].contains('-')
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Beads commands in a Bash command line: `bd update ID --status S`, `bd close ID...`,
/// `bd reopen ID...`, `bd start ID`. (`bd create` gets its id from the output, see
/// [`beads_created`].)
pub(crate) fn beads_changes(command: &str) -> Vec<TaskChange> {
    let words = shell_words(command);
    let mut changes = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let is_bd = words[i] == "bd" || words[i].ends_with("/bd");
        if !is_bd || i + 1 >= words.len() {
            i += 1;
            continue;
        }
        let verb = words[i + 1].as_str();
        let mut j = i + 2;
        let mut ids = Vec::new();
        let mut status = None;
        let mut title = None;
        let mut parent = None;
        while j < words.len() && ![";", "&", "|"].contains(&words[j].as_str()) {
            let w = &words[j];
            if let Some(v) = w.strip_prefix("--status=") {
                status = Some(v.to_owned());
            } else if w == "--status" || w == "-s" {
                status = words.get(j + 1).cloned();
                j += 1;
            } else if let Some(v) = w.strip_prefix("--title=") {
                title = Some(v.to_owned());
            } else if w == "--title" {
                title = words.get(j + 1).cloned();
                j += 1;
            } else if let Some(v) = w.strip_prefix("--parent=") {
                parent = Some(v.to_owned());
            } else if w == "--parent" {
                parent = words.get(j + 1).cloned();
                j += 1;
            } else if w.starts_with('-') {
                // A flag with a value we do not need: skip the value when it is separate.
                if !w.contains('=')
                    && matches!(
                        w.as_str(),
                        "--reason"
                            | "-r"
                            | "--priority"
                            | "-p"
                            | "--assignee"
                            | "-a"
                            | "--description"
                            | "-d"
                            | "--type"
                            | "-t"
                            | "--notes"
                    )
                {
                    j += 1;
                }
            } else if is_issue_id(w) {
                ids.push(w.clone());
            }
            j += 1;
        }
        let new_status = match verb {
            "close" => Some("closed".to_owned()),
            "reopen" => Some("open".to_owned()),
            "start" => Some("in_progress".to_owned()),
            "update" => status,
            _ => None,
        };
        if let Some(status) = new_status {
            for id in ids {
                changes.push(TaskChange {
                    kind: "beads",
                    task_id: id,
                    title: title.clone(),
                    status: status.clone(),
                    parent: parent.clone(),
                });
            }
        }
        i = j;
    }
    changes
}

/// `bd create "title" ...` in `command` with its output `output` ("Created issue: bd-12"):
/// the new issue.
pub(crate) fn beads_created(command: &str, output: &str) -> Option<TaskChange> {
    let words = shell_words(command);
    let at = words
        .windows(2)
        .position(|w| (w[0] == "bd" || w[0].ends_with("/bd")) && w[1] == "create")?;
    let mut title = None;
    let mut parent = None;
    let mut j = at + 2;
    while j < words.len() && ![";", "&", "|"].contains(&words[j].as_str()) {
        let w = &words[j];
        if let Some(v) = w.strip_prefix("--title=") {
            title = Some(v.to_owned());
        } else if w == "--title" {
            title = words.get(j + 1).cloned();
            j += 1;
        } else if let Some(v) = w.strip_prefix("--parent=") {
            parent = Some(v.to_owned());
        } else if w == "--parent" {
            parent = words.get(j + 1).cloned();
            j += 1;
        } else if w.starts_with('-') {
            if !w.contains('=') {
                j += 1;
            }
        } else if title.is_none() {
            title = Some(w.clone());
        }
        j += 1;
    }
    let marker = "Created issue:";
    let rest = &output[output.find(marker)? + marker.len()..];
    let id = rest
        .split_whitespace()
        .next()?
        .trim_matches(|c: char| !c.is_alphanumeric() && c != '-' && c != '.');
    (!id.is_empty()).then(|| TaskChange {
        kind: "beads",
        task_id: id.to_owned(),
        title,
        status: "open".to_owned(),
        parent,
    })
}

/// To-do changes of a TodoWrite / TaskUpdate call's input (TaskCreate needs its result).
pub(crate) fn todo_changes(name: &str, input: &Value) -> Vec<TaskChange> {
    match name {
        "TodoWrite" => input
            .get("todos")
            .and_then(Value::as_array)
            .map(|todos| {
                todos
                    .iter()
                    .filter_map(|todo| {
                        let content = todo.get("content").and_then(Value::as_str)?;
                        let id = todo
                            .get("id")
                            .and_then(|v| {
                                v.as_str()
                                    .map(str::to_owned)
                                    .or_else(|| v.as_u64().map(|n| n.to_string()))
                            })
                            .unwrap_or_else(|| first_line(content));
                        Some(TaskChange {
                            kind: "todo",
                            task_id: id,
                            title: Some(first_line(content)),
                            status: todo
                                .get("status")
                                .and_then(Value::as_str)
                                .unwrap_or("pending")
                                .to_owned(),
                            parent: None,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
        "TaskUpdate" => {
            let id = input.get("taskId").and_then(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .or_else(|| v.as_u64().map(|n| n.to_string()))
            });
            let status = input.get("status").and_then(Value::as_str);
            match (id, status) {
                (Some(id), Some(status)) => vec![TaskChange {
                    kind: "task",
                    task_id: id,
                    title: input.get("subject").and_then(Value::as_str).map(first_line),
                    status: status.to_owned(),
                    parent: None,
                }],
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    }
}

/// The id TaskCreate's result announces: `toolUseResult.task.id`, else `Task #N` in the text.
fn task_created_id(result: Option<&Value>, text: &str) -> Option<String> {
    if let Some(id) = result
        .and_then(|r| r.get("task"))
        .and_then(|t| t.get("id"))
        .and_then(|v| {
            v.as_str()
                .map(str::to_owned)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
        })
    {
        return Some(id);
    }
    let rest = &text[text.find("Task #")? + "Task #".len()..];
    let id: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (!id.is_empty()).then_some(id)
}

impl<'t> Folder<'t> {
    /// Prepares the statements on `tx`.
    pub(super) fn new(tx: &'t Transaction<'t>, path: &'t Path) -> Result<Self, ViewsError> {
        let prep = |sql: &str| tx.prepare(sql).sql(path, "preparing a statement");
        Ok(Self {
            path,
            tx,
            sessions: HashMap::new(),
            agents: PerSession::default(),
            spans: PerSession::default(),
            usage: HashMap::new(),
            upsert_span: prep(
                "INSERT INTO spans (session, span_id, kind, name, agent_id, agent_type,
                    parent_tool_use_id, hook_start_ns, hook_end_ns, tx_start_ns, tx_end_ns, error,
                    error_text, detail, prompt_key, offset)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?16, ?15)
                 ON CONFLICT (session, span_id) DO UPDATE SET
                    name = coalesce(spans.name, excluded.name),
                    agent_id = coalesce(spans.agent_id, excluded.agent_id),
                    agent_type = coalesce(spans.agent_type, excluded.agent_type),
                    parent_tool_use_id = coalesce(spans.parent_tool_use_id,
                        excluded.parent_tool_use_id),
                    hook_start_ns = coalesce(min(spans.hook_start_ns, excluded.hook_start_ns),
                        spans.hook_start_ns, excluded.hook_start_ns),
                    hook_end_ns = coalesce(max(spans.hook_end_ns, excluded.hook_end_ns),
                        spans.hook_end_ns, excluded.hook_end_ns),
                    tx_start_ns = coalesce(min(spans.tx_start_ns, excluded.tx_start_ns),
                        spans.tx_start_ns, excluded.tx_start_ns),
                    tx_end_ns = coalesce(max(spans.tx_end_ns, excluded.tx_end_ns),
                        spans.tx_end_ns, excluded.tx_end_ns),
                    error = max(spans.error, excluded.error),
                    error_text = coalesce(spans.error_text, excluded.error_text),
                    detail = coalesce(spans.detail, excluded.detail),
                    prompt_key = coalesce(spans.prompt_key, excluded.prompt_key),
                    offset = min(spans.offset, excluded.offset)",
            )?,
            upsert_usage: prep(
                "INSERT INTO usage (message_id, request_id, session, ts_ns, day, model,
                    input_tokens, output_tokens, cache_creation_tokens, cache_creation_1h_tokens,
                    cache_read_tokens, total_tokens, sidechain, agent_id, tool_name, offset)
                 VALUES (?1, ?2, ?3, ?4, ?4 / 86400000000000, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,
                    ?13, ?14, ?15)
                 ON CONFLICT (message_id, request_id) DO UPDATE SET
                    session = excluded.session, ts_ns = excluded.ts_ns, day = excluded.day,
                    model = excluded.model,
                    input_tokens = excluded.input_tokens,
                    output_tokens = excluded.output_tokens,
                    cache_creation_tokens = excluded.cache_creation_tokens,
                    cache_creation_1h_tokens = excluded.cache_creation_1h_tokens,
                    cache_read_tokens = excluded.cache_read_tokens,
                    total_tokens = excluded.total_tokens, sidechain = excluded.sidechain,
                    agent_id = excluded.agent_id,
                    tool_name = coalesce(usage.tool_name, excluded.tool_name),
                    offset = excluded.offset
                 WHERE excluded.total_tokens > usage.total_tokens
                    OR (excluded.total_tokens = usage.total_tokens
                        AND usage.sidechain = 1 AND excluded.sidechain = 0)",
            )?,
            usage_tool: prep(
                "UPDATE usage SET tool_name = ?3
                 WHERE message_id = ?1 AND request_id = ?2 AND tool_name IS NULL",
            )?,
            upsert_turn: prep(
                "INSERT INTO turns (session, turn_id, source, start_ns, prompt, offset)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (session, turn_id) DO UPDATE SET
                    start_ns = min(turns.start_ns, excluded.start_ns),
                    prompt = coalesce(turns.prompt, excluded.prompt),
                    source = CASE WHEN turns.source = excluded.source THEN turns.source
                        ELSE 'both' END",
            )?,
            end_turn: prep(
                "UPDATE turns SET end_ns = coalesce(max(end_ns, ?3), ?3)
                 WHERE session = ?1 AND turn_id = (SELECT turn_id FROM turns
                    WHERE session = ?1 AND start_ns <= ?2 ORDER BY start_ns DESC LIMIT 1)",
            )?,
            problem: prep(
                "INSERT INTO problems (offset, session, kind, detail) VALUES (?1, ?2, ?3, ?4)",
            )?,
            chain_get: prep("SELECT root FROM chains WHERE session = ?1 AND uuid = ?2")?,
            chain_put: prep(
                "INSERT OR IGNORE INTO chains (session, uuid, root) VALUES (?1, ?2, ?3)",
            )?,
            task_event: prep(
                "INSERT OR IGNORE INTO task_events (session, kind, task_id, tool_use_id, ts_ns,
                    status) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?,
            upsert_task: prep(
                "INSERT INTO tasks (session, kind, task_id, title, status, parent_id, created_ns,
                    updated_ns, offset) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)
                 ON CONFLICT (session, kind, task_id) DO UPDATE SET
                    title = coalesce(excluded.title, tasks.title),
                    parent_id = coalesce(excluded.parent_id, tasks.parent_id),
                    status = CASE WHEN excluded.updated_ns >= tasks.updated_ns
                        THEN excluded.status ELSE tasks.status END,
                    created_ns = min(tasks.created_ns, excluded.created_ns),
                    updated_ns = max(tasks.updated_ns, excluded.updated_ns)",
            )?,
            span_detail: prep(
                "SELECT name, detail FROM spans WHERE session = ?1 AND span_id = ?2",
            )?,
            facts: SessionFacts::default(),
        })
    }

    /// Records a problem with the input (reported by `ctrace cost` and listed in the table).
    pub(super) fn problem(
        &mut self,
        offset: Option<u64>,
        session: Option<&str>,
        kind: &str,
        detail: &str,
    ) -> Result<(), ViewsError> {
        self.problem
            .execute(params![offset.map(to_i64), session, kind, clip(detail)])
            .sql(self.path, "recording a problem")
            .map(|_| ())
    }

    /// Folds one record, with its JSON extracted by [`extract`]. The extracted values are
    /// borrowed: they are freed with their block by the reading thread that allocated them.
    pub(super) fn apply(
        &mut self,
        offset: Offset,
        record: &ViewRecord<'_>,
        extracted: &Extracted,
    ) -> Result<(), ViewsError> {
        let Some(session) = record.session else {
            return Ok(());
        };
        self.facts
            .observe(offset.0, session, record, extracted.line_facts());
        let agg = self
            .sessions
            .entry_ref(session)
            .or_insert_with(|| SessionAgg {
                first_ns: u64::MAX,
                ..SessionAgg::default()
            });
        agg.first_ns = agg.first_ns.min(record.ts);
        agg.last_ns = agg.last_ns.max(record.ts);
        agg.records += 1;
        match &record.body {
            ViewBody::Hook(hook) => {
                agg.hook_records += 1;
                if hook.malformed.is_some() {
                    agg.malformed += 1;
                }
                if agg.project.is_none() {
                    agg.project = hook.cwd.map(str::to_owned);
                }
                if hook.malformed.is_none() {
                    self.hook(
                        offset.0,
                        record.ts,
                        session,
                        hook,
                        extracted.hook_payload.as_ref(),
                    )?;
                }
            }
            ViewBody::Transcript(line) => {
                agg.transcript_records += 1;
                if line.malformed.is_some() {
                    agg.malformed += 1;
                }
                if agg.transcript_dir.is_none() {
                    agg.transcript_dir = transcript_dir(line.origin.file);
                }
                if line.malformed.is_none() {
                    self.transcript(offset.0, record.ts, session, line, extracted)?;
                }
            }
            ViewBody::Pty(pty) => {
                if agg.project.is_none() {
                    agg.project = pty.cwd.map(str::to_owned);
                }
            }
            ViewBody::Internal(_) => {}
        }
        Ok(())
    }

    fn span(&mut self, u: SpanUpdate<'_>) -> Result<(), ViewsError> {
        let agg = self
            .spans
            .get_or_insert_with(u.session, u.span_id, || SpanAgg {
                kind: u.kind,
                offset: u.offset,
                ..SpanAgg::default()
            });
        keep_str(&mut agg.name, u.name);
        keep_str(&mut agg.agent_id, u.agent_id);
        keep_str(&mut agg.agent_type, u.agent_type);
        keep_str(&mut agg.parent, u.parent);
        merge_min(&mut agg.hook_start, u.hook_start);
        merge_max(&mut agg.hook_end, u.hook_end);
        merge_min(&mut agg.tx_start, u.tx_start);
        merge_max(&mut agg.tx_end, u.tx_end);
        agg.error |= u.error;
        keep(&mut agg.error_text, u.error_text);
        keep(&mut agg.detail, u.detail);
        keep(&mut agg.prompt_key, u.prompt_key);
        agg.offset = agg.offset.min(u.offset);
        Ok(())
    }

    fn flush_span(&mut self, session: &str, span_id: &str, a: &SpanAgg) -> Result<(), ViewsError> {
        self.upsert_span
            .execute(params![
                session,
                span_id,
                a.kind,
                a.name,
                a.agent_id,
                a.agent_type,
                a.parent,
                opt_i64(a.hook_start),
                opt_i64(a.hook_end),
                opt_i64(a.tx_start),
                opt_i64(a.tx_end),
                i64::from(a.error),
                a.error_text,
                a.detail,
                to_i64(a.offset),
                a.prompt_key,
            ])
            .sql(self.path, "writing a span")
            .map(|_| ())
    }

    /// A span's `(name, detail)`: from this batch, else from the database.
    fn span_facts(&mut self, session: &str, span_id: &str) -> (Option<String>, Option<String>) {
        if let Some(a) = self.spans.get(session, span_id)
            && (a.name.is_some() || a.detail.is_some())
        {
            return (a.name.clone(), a.detail.clone());
        }
        self.span_detail
            .query_row(params![session, span_id], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap_or((None, None))
    }

    /// The batch's aggregate for a subagent, created on first sight; `offset` is that of the
    /// record that mentions it. Callers widen its hook or line times when the record is the
    /// subagent's own.
    fn agent(&mut self, session: &str, agent_id: &str, offset: u64) -> &mut AgentAgg {
        let agg = self
            .agents
            .get_or_insert_with(session, agent_id, || AgentAgg {
                offset: u64::MAX,
                ..AgentAgg::default()
            });
        agg.offset = agg.offset.min(offset);
        agg
    }

    fn task_changes(
        &mut self,
        session: &str,
        tool_use_id: &str,
        ts: u64,
        offset: u64,
        changes: &[TaskChange],
    ) -> Result<(), ViewsError> {
        for change in changes {
            let inserted = self
                .task_event
                .execute(params![
                    session,
                    change.kind,
                    change.task_id,
                    tool_use_id,
                    to_i64(ts),
                    change.status
                ])
                .sql(self.path, "writing a task event")?;
            if inserted == 0 {
                continue;
            }
            self.upsert_task
                .execute(params![
                    session,
                    change.kind,
                    change.task_id,
                    change.title,
                    change.status,
                    change.parent,
                    to_i64(ts),
                    to_i64(offset)
                ])
                .sql(self.path, "writing a task")?;
        }
        Ok(())
    }

    /// Tasks announced by a tool call's start (its input).
    fn tool_started_tasks(
        &mut self,
        session: &str,
        tool_use_id: &str,
        name: &str,
        input: &Value,
        ts: u64,
        offset: u64,
    ) -> Result<(), ViewsError> {
        let mut changes = todo_changes(name, input);
        if name == "Bash"
            && let Some(command) = input.get("command").and_then(Value::as_str)
        {
            changes.extend(beads_changes(command));
        }
        if !changes.is_empty() {
            self.task_changes(session, tool_use_id, ts, offset, &changes)?;
        }
        Ok(())
    }

    /// Tasks announced by a tool call's result (TaskCreate ids, `bd create` ids).
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site per source; a struct would only rename them"
    )]
    fn tool_finished_tasks(
        &mut self,
        session: &str,
        tool_use_id: &str,
        name: Option<&str>,
        result: Option<&Value>,
        text: &str,
        ts: u64,
        offset: u64,
    ) -> Result<(), ViewsError> {
        let maybe_task = text.contains("Task #")
            || result.is_some_and(|r| r.get("task").is_some())
            || text.contains("Created issue:");
        if !maybe_task {
            return Ok(());
        }
        let (stored_name, detail) = self.span_facts(session, tool_use_id);
        let Some(name) = name.map(str::to_owned).or(stored_name) else {
            return Ok(());
        };
        let change = match name.as_str() {
            "TaskCreate" => task_created_id(result, text).map(|id| TaskChange {
                kind: "task",
                task_id: id,
                title: detail,
                status: "pending".to_owned(),
                parent: None,
            }),
            "Bash" => detail.and_then(|c| beads_created(&c, text)),
            _ => None,
        };
        if let Some(change) = change {
            self.task_changes(session, tool_use_id, ts, offset, &[change])?;
        }
        Ok(())
    }

    fn hook(
        &mut self,
        offset: u64,
        ts: u64,
        session: &str,
        hook: &HookView<'_>,
        payload: Option<&Value>,
    ) -> Result<(), ViewsError> {
        let event = hook.event.unwrap_or("");
        if let Some(agent_id) = hook.agent_id {
            let agg = self.agent(session, agent_id, offset);
            widen(&mut agg.hook, ts);
            if agg.agent_type.is_none() {
                agg.agent_type = hook.agent_type.map(str::to_owned);
            }
        }
        let payload = if hook_needs_payload(event) {
            match payload {
                Some(payload) => payload,
                None => return Ok(()),
            }
        } else {
            &Value::Null
        };
        match event {
            "UserPromptSubmit" => {
                let turn_id = hook
                    .prompt_id
                    .map_or_else(|| format!("o{offset}"), str::to_owned);
                let prompt = payload
                    .get("prompt")
                    .and_then(Value::as_str)
                    .map(first_line);
                self.upsert_turn
                    .execute(params![
                        session,
                        turn_id,
                        "hook",
                        to_i64(ts),
                        prompt,
                        to_i64(offset)
                    ])
                    .sql(self.path, "writing a turn")?;
            }
            "Stop" => {
                self.end_turn
                    .execute(params![session, to_i64(ts), to_i64(ts)])
                    .sql(self.path, "ending a turn")?;
            }
            "SessionEnd" => {
                if let Some(agg) = self.sessions.get_mut(session) {
                    agg.ended_ns = Some(ts);
                }
            }
            "PreToolUse" | "PostToolUse" | "PostToolUseFailure" => {
                let name = hook.tool_name;
                let span_id = match hook.tool_use_id.map(str::to_owned) {
                    Some(id) => id,
                    None => match self.open_call_without_id(session, event, name, offset)? {
                        Some(id) => id,
                        None => return Ok(()),
                    },
                };
                let input = payload.get("tool_input").unwrap_or(&Value::Null);
                let mut update = SpanUpdate {
                    session,
                    span_id: &span_id,
                    kind: "tool",
                    name,
                    agent_id: hook.agent_id,
                    offset,
                    ..SpanUpdate::default()
                };
                let subagent_type = input.get("subagent_type").and_then(Value::as_str);
                match event {
                    "PreToolUse" => {
                        update.hook_start = Some(ts);
                        update.detail = name.and_then(|n| input_detail(n, input));
                        update.agent_type = subagent_type;
                        update.prompt_key = prompt_key(input);
                    }
                    "PostToolUse" => update.hook_end = Some(ts),
                    _ => {
                        update.hook_end = Some(ts);
                        update.error = true;
                        update.error_text = payload
                            .get("error")
                            .and_then(Value::as_str)
                            .map(first_line)
                            .or_else(|| Some("PostToolUseFailure".to_owned()));
                    }
                }
                self.span(update)?;
                if event == "PreToolUse" {
                    if let Some(name) = name {
                        self.tool_started_tasks(session, &span_id, name, input, ts, offset)?;
                    }
                } else {
                    let response = payload.get("tool_response");
                    if let Some(agent_id) = response
                        .and_then(|r| r.get("agentId"))
                        .and_then(Value::as_str)
                    {
                        let agg = self.agent(session, agent_id, offset);
                        agg.parent.get_or_insert_with(|| span_id.clone());
                    }
                    let text = match response {
                        Some(Value::String(s)) => s.clone(),
                        Some(r) => r
                            .get("stdout")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                            .unwrap_or_else(|| r.to_string()),
                        None => String::new(),
                    };
                    self.tool_finished_tasks(session, &span_id, name, response, &text, ts, offset)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// For old hook payloads without `tool_use_id`: a Pre gets a synthetic id; a Post closes
    /// the oldest open call of the same tool in the session (earliest hook start, then lowest
    /// offset), whether that call is already in the database or only in this batch.
    ///
    /// # Errors
    ///
    /// [`ViewsError::Sqlite`] when the open calls cannot be read.
    fn open_call_without_id(
        &mut self,
        session: &str,
        event: &str,
        name: Option<&str>,
        offset: u64,
    ) -> Result<Option<String>, ViewsError> {
        if event == "PreToolUse" {
            return Ok(Some(format!("o{offset}")));
        }
        // (hook start, offset, span id): NULL starts sort first, as in SQLite.
        let mut open: Vec<(Option<u64>, u64, String)> = Vec::new();
        let mut in_db: Vec<String> = Vec::new();
        let batch = self.spans.map.get(session);
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT span_id, hook_start_ns, offset FROM spans
                 WHERE session = ?1 AND kind = 'tool' AND name IS ?2 AND span_id LIKE 'o%'
                    AND hook_end_ns IS NULL",
            )
            .sql(self.path, "preparing a statement")?;
        let rows = stmt
            .query_map(params![session, name], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Option<i64>>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })
            .sql(self.path, "reading open tool calls")?;
        for row in rows {
            let (span_id, start, first) = row.sql(self.path, "reading open tool calls")?;
            let start = start.and_then(|s| u64::try_from(s).ok());
            let first = u64::try_from(first).unwrap_or(0);
            match batch.and_then(|ids| ids.get(&span_id)) {
                // Closed in this batch.
                Some(agg) if agg.hook_end.is_some() => {}
                Some(agg) => {
                    let start = match (start, agg.hook_start) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    in_db.push(span_id.clone());
                    open.push((start, first.min(agg.offset), span_id));
                }
                None => open.push((start, first, span_id)),
            }
        }
        drop(stmt);
        // Calls opened in this batch (those also in the database were weighed above).
        for (span_id, agg) in batch.into_iter().flatten() {
            if span_id.starts_with('o')
                && agg.kind == "tool"
                && agg.name.as_deref() == name
                && agg.hook_end.is_none()
                && !in_db.contains(span_id)
            {
                open.push((agg.hook_start, agg.offset, span_id.clone()));
            }
        }
        Ok(open.into_iter().min().map(|(_, _, span_id)| span_id))
    }

    fn transcript(
        &mut self,
        offset: u64,
        ts: u64,
        session: &str,
        line: &TranscriptView<'_>,
        extracted: &Extracted,
    ) -> Result<(), ViewsError> {
        let line_type = line.line_type.unwrap_or("");
        let sidechain = line.is_sidechain == Some(true);
        // The agent this line belongs to: its agentId, or for old inline sidechains the root
        // of its parentUuid chain.
        let agent_id: Option<String> = match (line.agent_id, sidechain) {
            (Some(id), true) => Some(id.to_owned()),
            (None, true) => self.sidechain_root(session, line)?,
            _ => None,
        };
        if let Some(agent_id) = agent_id.as_deref() {
            widen(&mut self.agent(session, agent_id, offset).lines, ts);
        }
        match line_type {
            "assistant" => self.assistant(
                offset,
                ts,
                session,
                line,
                agent_id.as_deref(),
                &extracted.tool_uses,
            ),
            "user" => match &extracted.user {
                Some(user) => self.user(offset, ts, session, line, agent_id.as_deref(), user),
                None => Ok(()),
            },
            "progress" => {
                if let Some((parent, agent)) = &extracted.progress {
                    let agg = self.agent(session, agent, offset);
                    widen(&mut agg.lines, ts);
                    agg.parent.get_or_insert_with(|| parent.clone());
                }
                Ok(())
            }
            "system" => {
                if line.subtype == Some("turn_duration") && !sidechain {
                    self.end_turn
                        .execute(params![session, to_i64(ts), to_i64(ts)])
                        .sql(self.path, "ending a turn")?;
                }
                Ok(())
            }
            "summary"
            | "file-history-snapshot"
            | "queue-operation"
            | "custom-title"
            | "tag"
            | "pr-link"
            | "last-prompt"
            | "agent-name" => Ok(()),
            other => self.problem(
                Some(offset),
                Some(session),
                "unknown_line_type",
                &format!("transcript line type {other:?} in {}", line.origin.file),
            ),
        }
    }

    fn sidechain_root(
        &mut self,
        session: &str,
        line: &TranscriptView<'_>,
    ) -> Result<Option<String>, ViewsError> {
        let Some(uuid) = line.uuid else {
            return Ok(None);
        };
        let parent_root: Option<String> = match line.parent_uuid {
            Some(parent) => self
                .chain_get
                .query_row(params![session, parent], |row| row.get(0))
                .ok(),
            None => None,
        };
        let root = parent_root.unwrap_or_else(|| format!("sidechain:{uuid}"));
        self.chain_put
            .execute(params![session, uuid, root])
            .sql(self.path, "writing a sidechain link")?;
        Ok(Some(root))
    }

    fn assistant(
        &mut self,
        offset: u64,
        ts: u64,
        session: &str,
        line: &TranscriptView<'_>,
        agent_id: Option<&str>,
        tool_uses: &[ToolUse],
    ) -> Result<(), ViewsError> {
        let sidechain = line.is_sidechain == Some(true);
        let mut first_tool: Option<String> = None;
        {
            for ToolUse { id, name, input } in tool_uses {
                let (id, name) = (id.as_str(), name.as_str());
                self.span(SpanUpdate {
                    session,
                    span_id: id,
                    kind: "tool",
                    name: Some(name),
                    agent_id,
                    agent_type: input.get("subagent_type").and_then(Value::as_str),
                    tx_start: Some(ts),
                    detail: input_detail(name, input),
                    prompt_key: prompt_key(input),
                    offset,
                    ..SpanUpdate::default()
                })?;
                self.tool_started_tasks(session, id, name, input, ts, offset)?;
                first_tool.get_or_insert_with(|| name.to_owned());
            }
        }
        let Some(usage) = &line.usage else {
            if line.message_id.is_some() {
                self.problem(
                    Some(offset),
                    Some(session),
                    "missing_usage",
                    &format!("assistant line without usage in {}", line.origin.file),
                )?;
            }
            return Ok(());
        };
        let Some(model) = line.model else {
            return self.problem(
                Some(offset),
                Some(session),
                "usage_without_model",
                &format!(
                    "assistant line with usage but no model in {}",
                    line.origin.file
                ),
            );
        };
        let message_id = line
            .message_id
            .map_or_else(|| format!("offset:{offset}"), str::to_owned);
        let request_id = line.request_id.unwrap_or_default().to_owned();
        let row = UsageRow {
            session: session.to_owned(),
            ts,
            model: model.to_owned(),
            usage: usage.clone(),
            sidechain,
            agent_id: agent_id.map(str::to_owned),
            tool_name: first_tool,
            offset,
        };
        match self.usage.entry((message_id, request_id)) {
            hashbrown::hash_map::Entry::Vacant(slot) => {
                slot.insert(row);
            }
            hashbrown::hash_map::Entry::Occupied(mut slot) => {
                let old = slot.get_mut();
                let (new_total, old_total) = (row.usage.total(), old.usage.total());
                let better = new_total > old_total
                    || (new_total == old_total && old.sidechain && !sidechain);
                let tool = old.tool_name.take().or(row.tool_name.clone());
                if better {
                    *old = row;
                }
                old.tool_name = tool;
            }
        }
        Ok(())
    }

    fn user(
        &mut self,
        offset: u64,
        ts: u64,
        session: &str,
        line: &TranscriptView<'_>,
        agent_id: Option<&str>,
        user: &UserLine,
    ) -> Result<(), ViewsError> {
        if let Some(cwd) = &user.cwd
            && let Some(agg) = self.sessions.get_mut(session)
            && agg.project.is_none()
        {
            agg.project = Some(cwd.clone());
        }
        let sidechain = line.is_sidechain == Some(true);
        let first_sidechain_line = sidechain && line.parent_uuid.is_none();
        let prompt_line = !sidechain && !user.is_meta && !user.is_compact_summary;
        match &user.content {
            UserContent::Missing => Ok(()),
            UserContent::Text(text) => {
                if first_sidechain_line && let Some(agent) = agent_id {
                    let key = text_key(text);
                    let agg = self.agent(session, agent, offset);
                    agg.prompt_key.get_or_insert(key);
                }
                if prompt_line {
                    self.prompt(offset, ts, session, user.prompt_id.as_deref(), text)?;
                }
                Ok(())
            }
            UserContent::Blocks {
                results,
                prompt_text,
                all_text,
                result_agent,
                result_task,
            } => {
                if first_sidechain_line && let Some(agent) = agent_id {
                    let key = text_key(all_text);
                    let agg = self.agent(session, agent, offset);
                    agg.prompt_key.get_or_insert(key);
                }
                let any_result = !results.is_empty();
                for result in results {
                    let Some(id) = result.tool_use_id.as_deref() else {
                        continue;
                    };
                    let error = result.is_error;
                    self.span(SpanUpdate {
                        session,
                        span_id: id,
                        kind: "tool",
                        agent_id,
                        tx_end: Some(ts),
                        error,
                        error_text: error.then(|| first_line(&result.text)),
                        offset,
                        ..SpanUpdate::default()
                    })?;
                    if let Some(agent) = result_agent.as_deref() {
                        let agg = self.agent(session, agent, offset);
                        agg.parent.get_or_insert_with(|| id.to_owned());
                    }
                    self.tool_finished_tasks(
                        session,
                        id,
                        None,
                        result_task.as_ref(),
                        &result.text,
                        ts,
                        offset,
                    )?;
                }
                if !any_result && prompt_line && !prompt_text.is_empty() {
                    self.prompt(offset, ts, session, user.prompt_id.as_deref(), prompt_text)?;
                }
                Ok(())
            }
        }
    }

    fn prompt(
        &mut self,
        offset: u64,
        ts: u64,
        session: &str,
        prompt_id: Option<&str>,
        text: &str,
    ) -> Result<(), ViewsError> {
        let turn_id = prompt_id.map_or_else(|| format!("o{offset}"), str::to_owned);
        self.upsert_turn
            .execute(params![
                session,
                turn_id,
                "transcript",
                to_i64(ts),
                first_line(text),
                to_i64(offset)
            ])
            .sql(self.path, "writing a turn")
            .map(|_| ())
    }

    /// Writes the batch's session and subagent aggregates.
    pub(super) fn finish(&mut self) -> Result<(), ViewsError> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "INSERT INTO sessions (session, project, transcript_dir, first_ns, last_ns,
                    records, hook_records, transcript_records, malformed, ended_ns)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (session) DO UPDATE SET
                    project = coalesce(sessions.project, excluded.project),
                    transcript_dir = coalesce(sessions.transcript_dir, excluded.transcript_dir),
                    first_ns = min(sessions.first_ns, excluded.first_ns),
                    last_ns = max(sessions.last_ns, excluded.last_ns),
                    records = sessions.records + excluded.records,
                    hook_records = sessions.hook_records + excluded.hook_records,
                    transcript_records = sessions.transcript_records
                        + excluded.transcript_records,
                    malformed = sessions.malformed + excluded.malformed,
                    ended_ns = coalesce(excluded.ended_ns, sessions.ended_ns)",
            )
            .sql(self.path, "preparing a statement")?;
        for (session, a) in self.sessions.drain() {
            stmt.execute(params![
                session,
                a.project,
                a.transcript_dir,
                to_i64(a.first_ns),
                to_i64(a.last_ns),
                to_i64(a.records),
                to_i64(a.hook_records),
                to_i64(a.transcript_records),
                to_i64(a.malformed),
                opt_i64(a.ended_ns),
            ])
            .sql(self.path, "writing a session")?;
        }
        drop(stmt);
        // Key order: B-tree inserts in order touch each page once.
        // Sorted by reference: the rows are large, the keys are compared in place.
        let usage: Vec<((String, String), UsageRow)> = self.usage.drain().collect();
        let mut order: Vec<&((String, String), UsageRow)> = usage.iter().collect();
        order.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for ((message_id, request_id), u) in order {
            self.upsert_usage
                .execute(params![
                    message_id,
                    request_id,
                    u.session,
                    to_i64(u.ts),
                    u.model,
                    to_i64(u.usage.input_tokens),
                    to_i64(u.usage.output_tokens),
                    to_i64(u.usage.cache_creation_input_tokens),
                    to_i64(u.usage.ephemeral_1h_input_tokens),
                    to_i64(u.usage.cache_read_input_tokens),
                    to_i64(u.usage.total()),
                    i64::from(u.sidechain),
                    u.agent_id,
                    u.tool_name,
                    to_i64(u.offset),
                ])
                .sql(self.path, "writing usage")?;
            if let Some(tool) = &u.tool_name {
                self.usage_tool
                    .execute(params![message_id, request_id, tool])
                    .sql(self.path, "writing usage")?;
            }
        }
        for (session, agents) in self.agents.drain_sorted() {
            for (agent_id, a) in agents {
                self.span(SpanUpdate {
                    session: &session,
                    span_id: &agent_id,
                    kind: "subagent",
                    agent_type: a.agent_type.as_deref(),
                    parent: a.parent.as_deref(),
                    prompt_key: a.prompt_key,
                    hook_start: a.hook.map(|(first, _)| first),
                    hook_end: a.hook.map(|(_, last)| last),
                    tx_start: a.lines.map(|(first, _)| first),
                    tx_end: a.lines.map(|(_, last)| last),
                    offset: a.offset,
                    ..SpanUpdate::default()
                })?;
            }
        }
        for (session, spans) in self.spans.drain_sorted() {
            for (span_id, a) in &spans {
                self.flush_span(&session, span_id, a)?;
            }
        }
        self.facts.write(self.tx, self.path)
    }
}

/// The key that links a Task/Agent call to the sidechain it started (old transcripts): the
/// first 200 characters of the prompt, whitespace-trimmed.
fn text_key(text: &str) -> String {
    text.trim().chars().take(200).collect()
}

fn prompt_key(input: &Value) -> Option<String> {
    input.get("prompt").and_then(Value::as_str).map(text_key)
}

/// `projects/<dir>` of a transcript path: the Claude Code project directory name.
fn transcript_dir(file: &str) -> Option<String> {
    let mut parts = file.split('/');
    parts.by_ref().find(|p| *p == "projects")?;
    parts.next().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beads_commands() {
        let changes = beads_changes(
            "cd x && bd update bd-12 --status in_progress && bd close bd-3 bd-4 --reason done",
        );
        let got: Vec<(String, String)> = changes
            .iter()
            .map(|c| (c.task_id.clone(), c.status.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("bd-12".into(), "in_progress".into()),
                ("bd-3".into(), "closed".into()),
                ("bd-4".into(), "closed".into())
            ]
        );
        let created = beads_created(
            "bd create \"Fix the parser\" -p 1 --parent bd-1",
            "✓ Created issue: bd-7\n  Title: Fix the parser",
        )
        .unwrap();
        assert_eq!(created.task_id, "bd-7");
        assert_eq!(created.title.as_deref(), Some("Fix the parser"));
        assert_eq!(created.parent.as_deref(), Some("bd-1"));
        assert!(beads_changes("echo bd is great").is_empty());
        assert_eq!(beads_changes("bd close x-1 2>&1").len(), 1);
        // Issue 15 (shlex): an escaped quote stays in the title, a cut-off command keeps its id.
        let created =
            beads_created(r#"bd create "say \"hi\"" -p 1"#, "Created issue: bd-8").unwrap();
        assert_eq!(created.title.as_deref(), Some(r#"say "hi""#));
        let cut = beads_changes(r#"bd close bd-9 --reason "half a reas"#);
        assert_eq!(cut.len(), 1);
        assert_eq!(cut[0].task_id, "bd-9");
    }

    #[test]
    fn todo_write_items() {
        let input: Value = serde_json::json!({"todos": [
            {"content": "Write tests", "status": "in_progress", "activeForm": "Writing tests"},
            {"content": "Ship", "status": "pending"}
        ]});
        let changes = todo_changes("TodoWrite", &input);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].status, "in_progress");
        assert_eq!(changes[1].task_id, "Ship");
        assert_eq!(
            task_created_id(None, "Task #4 created successfully: x"),
            Some("4".into())
        );
    }

    #[test]
    fn project_dir_of_transcript() {
        assert_eq!(
            transcript_dir("/h/.claude/projects/-work-x/abc.jsonl").as_deref(),
            Some("-work-x")
        );
        assert_eq!(transcript_dir("/tmp/x.jsonl"), None);
    }
}
