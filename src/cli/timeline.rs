//! Folding one session's records into a timeline, and all records into session summaries.
//!
//! Rules (documented in `docs/cli.md`):
//! - Hook events are items; `PostToolUse` / `PostToolUseFailure` close the `PreToolUse` with
//!   the same `tool_use_id` (or, for old payloads without ids, the oldest open call of the same
//!   tool), giving a duration and `ok` / `error`.
//! - Transcript lines add prompts, assistant text, tool calls (closed by the `tool_result` with
//!   the same id; `is_error` gives the status) and system events; progress lines are not shown.
//!   A tool call or prompt already seen through hooks is not repeated.
//! - Subagent items (hook `agent_id`, transcript `agentId`, old inline sidechains) are nested
//!   under the Task/Agent call that started them: linked through `toolUseResult.agentId`,
//!   `agent_progress` lines, `SubagentStart` during an open Task/Agent call, or else the
//!   Task/Agent call whose time span contains them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use super::output::{one_line, summary, tool_input_summary};
use super::time::format_ts;
use crate::log::record::{Body, Source, StoredRecord};

/// How long without records before a session without `SessionEnd` counts as not active.
pub const ACTIVE_WINDOW_NS: u64 = 10 * 60 * 1_000_000_000;

/// One row of `ctrace sessions`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SessionSummary {
    /// Session id.
    pub session: String,
    /// Working directory (project) of the session, when known.
    pub project: Option<String>,
    /// First record time, ns since the epoch.
    pub first_ns: u64,
    /// Last record time, ns since the epoch.
    pub last_ns: u64,
    /// First record time, RFC 3339.
    pub first: String,
    /// Last record time, RFC 3339.
    pub last: String,
    /// `last - first`, ns.
    pub duration_ns: u64,
    /// Records by source.
    pub records: BTreeMap<String, u64>,
    /// Distinct tool calls seen (through hooks or transcript).
    pub tool_calls: u64,
    /// Models seen in transcript lines.
    pub models: BTreeSet<String>,
    /// Records flagged malformed.
    pub malformed: u64,
    /// `ended` (SessionEnd seen, or idle after a finished turn), `active` (records in the last
    /// 10 minutes), or `interrupted` (idle in the middle of a turn); for PTY recordings without
    /// an `exit` record, `recording` (its recorder still holds its inbox file) or `unfinished`.
    pub status: &'static str,
    /// Sessions joined to this one through `CTRACE_PTY_SESSION`: for a PTY recording, the
    /// Claude sessions whose hooks ran inside it; for a Claude session, the recording(s) its
    /// hooks ran in.
    pub linked_sessions: BTreeSet<String>,
    #[serde(skip)]
    tool_ids: HashSet<String>,
    #[serde(skip)]
    tool_calls_without_id: u64,
    #[serde(skip)]
    session_end: bool,
    #[serde(skip)]
    turn_finished: bool,
    #[serde(skip)]
    pty: Option<PtyState>,
}

/// What a session's PTY records say about its recorder.
#[derive(Debug, Clone, Copy, Default)]
struct PtyState {
    exited: bool,
    unsealed: bool,
}

fn parse(raw: &[u8]) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_slice::<Value>(raw) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

fn content_blocks(map: &serde_json::Map<String, Value>) -> Vec<&Value> {
    map.get("message")
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// Folds all records into per-session summaries, most recent first.
pub fn summarize<'a>(
    records: impl Iterator<Item = &'a StoredRecord>,
    now_ns: u64,
) -> Vec<SessionSummary> {
    let mut sessions: HashMap<String, SessionSummary> = HashMap::new();
    let mut links: BTreeSet<(String, String)> = BTreeSet::new();
    for stored in records {
        let record = &stored.record;
        let Some(id) = &record.session else { continue };
        let s = sessions
            .entry(id.clone())
            .or_insert_with(|| SessionSummary {
                session: id.clone(),
                first_ns: u64::MAX,
                ..SessionSummary::default()
            });
        s.first_ns = s.first_ns.min(record.ts);
        s.last_ns = s.last_ns.max(record.ts);
        *s.records
            .entry(record.source.as_str().to_owned())
            .or_default() += 1;
        match &record.body {
            Body::Hook(hook) => {
                if hook.malformed.is_some() {
                    s.malformed += 1;
                }
                if s.project.is_none() {
                    s.project = hook.cwd.clone();
                }
                if let Some(pty) = &hook.pty_session
                    && pty != id
                {
                    links.insert((id.clone(), pty.clone()));
                }
                match hook.event.as_deref() {
                    Some("PreToolUse") => {
                        match &hook.tool_use_id {
                            Some(id) => {
                                s.tool_ids.insert(id.clone());
                            }
                            None => s.tool_calls_without_id += 1,
                        }
                        s.turn_finished = false;
                    }
                    Some("UserPromptSubmit") => s.turn_finished = false,
                    Some("Stop") => s.turn_finished = true,
                    Some("SessionEnd") => s.session_end = true,
                    _ => {}
                }
            }
            Body::Transcript(line) => {
                if line.malformed.is_some() {
                    s.malformed += 1;
                }
                if let Some(model) = &line.model
                    && !model.starts_with('<')
                {
                    s.models.insert(model.clone());
                }
                let kind = line.line_type.as_deref();
                if !matches!(kind, Some("assistant" | "user" | "system")) {
                    continue;
                }
                let Some(map) = parse(&line.raw) else {
                    continue;
                };
                if s.project.is_none() {
                    s.project = map.get("cwd").and_then(Value::as_str).map(str::to_owned);
                }
                match kind {
                    Some("assistant") => {
                        let mut uses_tool = false;
                        for block in content_blocks(&map) {
                            if block.get("type").and_then(Value::as_str) == Some("tool_use") {
                                uses_tool = true;
                                if let Some(id) = block.get("id").and_then(Value::as_str) {
                                    s.tool_ids.insert(id.to_owned());
                                }
                            }
                        }
                        let stop = map
                            .get("message")
                            .and_then(|m| m.get("stop_reason"))
                            .and_then(Value::as_str);
                        if uses_tool {
                            s.turn_finished = false;
                        } else if stop == Some("end_turn") {
                            s.turn_finished = true;
                        }
                    }
                    Some("user") if !line.is_sidechain.unwrap_or(false) => {
                        s.turn_finished = false;
                    }
                    Some("system") if line.subtype.as_deref() == Some("turn_duration") => {
                        s.turn_finished = true;
                    }
                    _ => {}
                }
            }
            Body::Pty(pty) => {
                let state = s.pty.get_or_insert_default();
                state.exited |= pty.kind == crate::log::record::PtyKind::Exit;
                state.unsealed |= stored.offset.is_none();
                if s.project.is_none() {
                    s.project = pty.cwd.clone();
                }
            }
            _ => {}
        }
    }
    for (claude, pty) in links {
        if let Some(s) = sessions.get_mut(&pty) {
            s.linked_sessions.insert(claude.clone());
        }
        if let Some(s) = sessions.get_mut(&claude) {
            s.linked_sessions.insert(pty);
        }
    }
    let mut out: Vec<SessionSummary> = sessions
        .into_values()
        .map(|mut s| {
            s.tool_calls = s.tool_ids.len() as u64 + s.tool_calls_without_id;
            s.duration_ns = s.last_ns.saturating_sub(s.first_ns);
            s.first = format_ts(s.first_ns);
            s.last = format_ts(s.last_ns);
            // A PTY recording without an `exit` record is still being recorded while its
            // recorder holds its inbox file (records not sealed yet); once every record is
            // sealed, the recorder is gone: `unfinished` (see `crate::record`). Ingested casts
            // were complete files: `ended`.
            let cast = s
                .session
                .starts_with(crate::ingest::asciicast::SESSION_PREFIX);
            let pty_running = s.pty.filter(|p| !p.exited && !s.session_end && !cast);
            let pty_ended = s.pty.is_some_and(|p| p.exited) || (cast && s.pty.is_some());
            s.status = if let Some(pty) = pty_running {
                if pty.unsealed {
                    "recording"
                } else {
                    "unfinished"
                }
            } else if s.session_end || pty_ended {
                "ended"
            } else if now_ns.saturating_sub(s.last_ns) < ACTIVE_WINDOW_NS {
                "active"
            } else if s.turn_finished {
                "ended"
            } else {
                "interrupted"
            };
            s
        })
        .collect();
    out.sort_by(|a, b| b.last_ns.cmp(&a.last_ns).then(a.session.cmp(&b.session)));
    out
}

/// One item of a session timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// Time, ns since the epoch.
    pub ts: u64,
    /// Time, RFC 3339.
    pub time: String,
    /// Log offset of the record (null while unsealed).
    pub offset: Option<u64>,
    /// `hook` or `transcript`.
    pub source: &'static str,
    /// Hook event, or transcript line kind (`prompt`, `assistant`, `tool_use`, `system/...`).
    pub event: String,
    /// Tool name for tool calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// One-line summary (command, file path, prompt's first line, ...).
    pub summary: String,
    /// Tool call id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<String>,
    /// Pre→Post (or tool_use→tool_result) duration, ns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ns: Option<u64>,
    /// `ok`, `error` or `pending` for tool calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    /// Subagent the item ran in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Items of subagents started by this tool call.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Item>,
    #[serde(skip)]
    end_ts: Option<u64>,
}

impl Item {
    fn new(stored: &StoredRecord, event: String, summary: String) -> Self {
        Self {
            ts: stored.record.ts,
            time: format_ts(stored.record.ts),
            offset: stored.offset.map(|o| o.0),
            source: stored.record.source.as_str(),
            event,
            tool: None,
            summary,
            tool_use_id: None,
            duration_ns: None,
            status: None,
            agent_id: None,
            children: Vec::new(),
            end_ts: None,
        }
    }

    fn close(&mut self, ts: u64, error: bool) {
        self.end_ts = Some(ts);
        self.duration_ns = Some(ts.saturating_sub(self.ts));
        self.status = Some(if error { "error" } else { "ok" });
    }
}

fn is_task_tool(tool: Option<&str>) -> bool {
    matches!(tool, Some("Task" | "Agent"))
}

/// Builds the timeline of one session from its records (any order; sorted by time here).
pub fn build(records: &[StoredRecord]) -> Vec<Item> {
    let mut sorted: Vec<&StoredRecord> = records.iter().collect();
    sorted.sort_by_key(|r| (r.record.ts, r.offset.map_or(u64::MAX, |o| o.0)));
    let has_prompt_hooks = sorted.iter().any(|r| {
        matches!(&r.record.body, Body::Hook(h) if h.event.as_deref() == Some("UserPromptSubmit"))
    });
    let hook_tool_ids: HashSet<String> = sorted
        .iter()
        .filter_map(|r| match &r.record.body {
            Body::Hook(h) => h.tool_use_id.clone(),
            _ => None,
        })
        .collect();
    let mut items: Vec<Item> = Vec::new();
    let mut open: HashMap<String, usize> = HashMap::new();
    let mut open_by_tool: HashMap<String, Vec<usize>> = HashMap::new();
    // agent id → tool_use_id of the call that started it
    let mut agent_parent: HashMap<String, String> = HashMap::new();
    for stored in sorted {
        let record = &stored.record;
        match &record.body {
            Body::Hook(hook) => {
                let event = hook.event.as_deref().unwrap_or("");
                match event {
                    "PostToolUse" | "PostToolUseFailure" => {
                        let error = event == "PostToolUseFailure"
                            || parse(&hook.raw).is_some_and(|m| {
                                m.get("tool_response")
                                    .and_then(|r| r.get("is_error").or_else(|| r.get("isError")))
                                    .and_then(Value::as_bool)
                                    == Some(true)
                            });
                        let index = match &hook.tool_use_id {
                            Some(id) => open.remove(id),
                            None => hook.tool_name.as_ref().and_then(|t| {
                                let queue = open_by_tool.get_mut(t)?;
                                (!queue.is_empty()).then(|| queue.remove(0))
                            }),
                        };
                        if let Some(i) = index {
                            items[i].close(record.ts, error);
                            if let (Some(agent), Some(id)) = (
                                parse(&hook.raw).and_then(|m| {
                                    m.get("tool_response")
                                        .and_then(|r| r.get("agentId"))
                                        .and_then(Value::as_str)
                                        .map(str::to_owned)
                                }),
                                items[i].tool_use_id.clone(),
                            ) {
                                agent_parent.entry(agent).or_insert(id);
                            }
                            continue;
                        }
                    }
                    "SubagentStart" => {
                        if let Some(agent) = &hook.agent_id {
                            let parent = items.iter().rev().find(|it| {
                                is_task_tool(it.tool.as_deref())
                                    && it.status == Some("pending")
                                    && it
                                        .tool_use_id
                                        .as_ref()
                                        .is_some_and(|id| !agent_parent.values().any(|v| v == id))
                            });
                            if let Some(id) = parent.and_then(|p| p.tool_use_id.clone()) {
                                agent_parent.entry(agent.clone()).or_insert(id);
                            }
                        }
                    }
                    _ => {}
                }
                let (event, detail) = summary(record);
                let mut item = Item::new(stored, event.clone(), detail);
                item.agent_id = hook.agent_id.clone();
                if event == "PreToolUse" {
                    item.tool = hook.tool_name.clone();
                    item.tool_use_id = hook.tool_use_id.clone();
                    item.status = Some("pending");
                    match &hook.tool_use_id {
                        Some(id) => {
                            open.insert(id.clone(), items.len());
                        }
                        None => {
                            if let Some(tool) = &hook.tool_name {
                                open_by_tool
                                    .entry(tool.clone())
                                    .or_default()
                                    .push(items.len());
                            }
                        }
                    }
                }
                items.push(item);
            }
            Body::Transcript(line) => {
                let Some(map) = parse(&line.raw) else {
                    if let Some(kind) = line.malformed {
                        items.push(Item::new(
                            stored,
                            format!("<{}>", kind.as_str()),
                            String::new(),
                        ));
                    }
                    continue;
                };
                let agent = line.agent_id.clone().or_else(|| {
                    line.is_sidechain
                        .unwrap_or(false)
                        .then(|| "sidechain".to_owned())
                });
                if line.line_type.as_deref() == Some("progress") {
                    if let (Some(data), Some(parent)) = (
                        map.get("data"),
                        map.get("parentToolUseID").and_then(Value::as_str),
                    ) && let Some(agent) = data.get("agentId").and_then(Value::as_str)
                    {
                        agent_parent
                            .entry(agent.to_owned())
                            .or_insert_with(|| parent.to_owned());
                    }
                    continue;
                }
                match line.line_type.as_deref() {
                    Some("assistant") => {
                        for block in content_blocks(&map) {
                            match block.get("type").and_then(Value::as_str) {
                                Some("tool_use") => {
                                    let id = block.get("id").and_then(Value::as_str);
                                    if id.is_some_and(|id| hook_tool_ids.contains(id)) {
                                        continue;
                                    }
                                    let name =
                                        block.get("name").and_then(Value::as_str).unwrap_or("?");
                                    let input = block.get("input").and_then(Value::as_object);
                                    let mut item = Item::new(
                                        stored,
                                        "tool_use".into(),
                                        format!("{name} {}", tool_input_summary(name, input)),
                                    );
                                    item.tool = Some(name.to_owned());
                                    item.tool_use_id = id.map(str::to_owned);
                                    item.status = Some("pending");
                                    item.agent_id = agent.clone();
                                    if let Some(id) = id {
                                        open.insert(id.to_owned(), items.len());
                                    }
                                    items.push(item);
                                }
                                Some("text") => {
                                    let text =
                                        block.get("text").and_then(Value::as_str).unwrap_or("");
                                    let mut item =
                                        Item::new(stored, "assistant".into(), one_line(text, 100));
                                    item.agent_id = agent.clone();
                                    items.push(item);
                                }
                                _ => {}
                            }
                        }
                    }
                    Some("user") => {
                        let content = map.get("message").and_then(|m| m.get("content"));
                        let mut prompt = content.and_then(Value::as_str).map(str::to_owned);
                        for block in content_blocks(&map) {
                            match block.get("type").and_then(Value::as_str) {
                                Some("tool_result") => {
                                    let Some(id) = block.get("tool_use_id").and_then(Value::as_str)
                                    else {
                                        continue;
                                    };
                                    if let Some(agent) = map
                                        .get("toolUseResult")
                                        .and_then(|r| r.get("agentId"))
                                        .and_then(Value::as_str)
                                    {
                                        agent_parent
                                            .entry(agent.to_owned())
                                            .or_insert_with(|| id.to_owned());
                                    }
                                    if hook_tool_ids.contains(id) {
                                        continue;
                                    }
                                    if let Some(i) = open.remove(id) {
                                        let error = block.get("is_error").and_then(Value::as_bool)
                                            == Some(true);
                                        items[i].close(record.ts, error);
                                    }
                                }
                                Some("text") if prompt.is_none() => {
                                    prompt = block
                                        .get("text")
                                        .and_then(Value::as_str)
                                        .map(str::to_owned);
                                }
                                _ => {}
                            }
                        }
                        let meta = map.get("isMeta").and_then(Value::as_bool) == Some(true);
                        if let Some(prompt) = prompt
                            && !meta
                            && (agent.is_some() || !has_prompt_hooks)
                        {
                            let mut item =
                                Item::new(stored, "prompt".into(), one_line(&prompt, 100));
                            item.agent_id = agent.clone();
                            items.push(item);
                        }
                    }
                    Some("system") | Some("summary") | None => {
                        let (event, detail) = summary(record);
                        let mut item = Item::new(stored, event, detail);
                        item.agent_id = agent;
                        items.push(item);
                    }
                    _ => {}
                }
            }
            _ => {
                let (event, detail) = summary(record);
                items.push(Item::new(stored, event, detail));
            }
        }
    }
    nest(items, &agent_parent)
}

/// Moves subagent items under the tool call that started them.
fn nest(items: Vec<Item>, agent_parent: &HashMap<String, String>) -> Vec<Item> {
    let mut top: Vec<Item> = Vec::new();
    let mut by_agent: BTreeMap<String, Vec<Item>> = BTreeMap::new();
    for item in items {
        match &item.agent_id {
            Some(agent) => by_agent.entry(agent.clone()).or_default().push(item),
            None => top.push(item),
        }
    }
    let index: HashMap<String, usize> = top
        .iter()
        .enumerate()
        .filter_map(|(i, it)| it.tool_use_id.clone().map(|id| (id, i)))
        .collect();
    let mut orphans = Vec::new();
    for (agent, children) in by_agent {
        let parent = agent_parent
            .get(&agent)
            .and_then(|id| index.get(id))
            .copied();
        let parent = parent.or_else(|| {
            // Fall back to the Task/Agent call whose span contains the subagent's first item.
            let first = children.first()?.ts;
            top.iter().position(|it| {
                is_task_tool(it.tool.as_deref())
                    && it.ts <= first
                    && it.end_ts.is_none_or(|end| first <= end)
            })
        });
        match parent {
            Some(i) => top[i].children.extend(children),
            None => orphans.extend(children),
        }
    }
    for item in &mut top {
        item.children.sort_by_key(|c| c.ts);
    }
    top.extend(orphans);
    top.sort_by_key(|it| it.ts);
    top
}

/// Whether a record belongs in timelines (everything but PTY data, which replay shows).
pub fn in_timeline(record: &crate::log::record::Record) -> bool {
    !matches!(record.source, Source::Pty)
}
