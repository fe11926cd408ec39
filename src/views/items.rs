//! A session's records as timeline items for `ctrace show` and `ctrace replay`. Nothing is
//! folded here: tool calls' status and duration, the tool call each subagent is nested under,
//! and which prompts start turns come from the views (`views::shape`, the same tree as
//! `ctrace tree`); the records of the session, read through the offset ranges the views keep
//! for it, only give each item its time and text.
//!
//! Rules (documented in `docs/cli.md`):
//! - Every hook event is an item, except a `PostToolUse` / `PostToolUseFailure` of a tool call
//!   already shown by its `PreToolUse` or `tool_use`.
//! - Transcript lines add assistant text, tool calls not seen through hooks, subagent prompts,
//!   the main agent's prompts that start a turn of the tree, and system events; progress lines
//!   are not shown.
//! - Subagent items are nested under the tool call the tree puts the subagent under.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use super::record_text::summary;
use crate::claude::summary::{one_line, tool_input_summary};
use crate::model::format_ts;
use crate::model::{Body, Source, StoredRecord};
use crate::views::shape::{SessionShape, ToolFacts};
use crate::views::tree::Status;

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
    /// The tool call's (or, on the prompt that starts a turn, the turn's) duration as the views
    /// have it, ns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ns: Option<u64>,
    /// `ok`, `error` or `pending` for tool calls and the prompts that start turns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    /// Subagent the item ran in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Set when `ts` is only when the record was read from a hook log (the record's
    /// `arrival_time`) and no tool call of the views gives it a time: the item sorts by it but
    /// it is not when the event happened.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub arrival_time: bool,
    /// Items of subagents started by this tool call.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Item>,
}

impl Item {
    fn new(stored: &StoredRecord, event: String, summary: String) -> Self {
        Self::at(stored, stored.record.ts, event, summary)
    }

    fn at(stored: &StoredRecord, ts: u64, event: String, summary: String) -> Self {
        Self {
            ts,
            time: format_ts(ts),
            offset: stored.offset.map(|o| o.0),
            source: stored.record.source.as_str(),
            event,
            tool: None,
            summary,
            tool_use_id: None,
            duration_ns: None,
            status: None,
            agent_id: None,
            arrival_time: false,
            children: Vec::new(),
        }
    }

    /// Sets status and duration from the views' tool call or turn (`pending` when they do not
    /// know it).
    fn tool_call(&mut self, facts: Option<&ToolFacts>) {
        self.status = Some(match facts.map(|f| f.status) {
            Some(Status::Ok) => "ok",
            Some(Status::Error) => "error",
            Some(Status::Unfinished) | None => "pending",
        });
        self.duration_ns = facts.and_then(|f| f.end_ns.map(|end| end.saturating_sub(f.start_ns)));
    }
}

/// Whether a record belongs in timelines (everything but PTY data, which replay shows).
pub fn in_timeline(record: &crate::model::Record) -> bool {
    !matches!(record.source, Source::Pty)
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

/// Builds the timeline of one session from its records (any order; sorted by time here) and
/// the views' shape of it.
pub fn build(records: &[StoredRecord], shape: &SessionShape) -> Vec<Item> {
    let mut sorted: Vec<(u64, &StoredRecord)> =
        records.iter().map(|r| (display_ts(r, shape), r)).collect();
    sorted.sort_by_key(|(ts, r)| (*ts, r.offset.map_or(u64::MAX, |o| o.0)));
    let sorted: Vec<&StoredRecord> = sorted.into_iter().map(|(_, r)| r).collect();
    let hook_tool_ids: HashSet<&str> = sorted
        .iter()
        .filter_map(|r| match &r.record.body {
            Body::Hook(h) if h.event.as_deref() == Some("PreToolUse") && h.malformed.is_none() => {
                h.tool_use_id.as_deref()
            }
            _ => None,
        })
        .collect();
    // Tools of `PreToolUse` hooks without ids (old payloads): their Posts are paired by the
    // views and not shown again.
    let tools_without_id: HashSet<&str> = sorted
        .iter()
        .filter_map(|r| match &r.record.body {
            Body::Hook(h)
                if h.event.as_deref() == Some("PreToolUse")
                    && h.tool_use_id.is_none()
                    && h.malformed.is_none() =>
            {
                h.tool_name.as_deref()
            }
            _ => None,
        })
        .collect();
    let mut shown_tools: HashSet<String> = HashSet::new();
    let mut items: Vec<Item> = Vec::new();
    for stored in sorted {
        match &stored.record.body {
            Body::Hook(hook) => {
                let event = hook.event.as_deref().unwrap_or("");
                if matches!(event, "PostToolUse" | "PostToolUseFailure") {
                    let shown = match &hook.tool_use_id {
                        Some(id) => shown_tools.contains(id),
                        None => hook
                            .tool_name
                            .as_deref()
                            .is_some_and(|t| tools_without_id.contains(t)),
                    };
                    if shown {
                        continue;
                    }
                }
                let (event, detail) = summary(&stored.record);
                let ts = display_ts(stored, shape);
                let mut item = Item::at(stored, ts, event.clone(), detail);
                item.arrival_time = hook.arrival_time && ts == stored.record.ts;
                item.agent_id = hook.agent_id.clone();
                // A malformed payload is shown but is no tool call (the views skip it).
                if event == "PreToolUse" && hook.malformed.is_none() {
                    let span_id = match (&hook.tool_use_id, stored.offset) {
                        (Some(id), _) => Some(id.clone()),
                        (None, Some(offset)) => Some(format!("o{}", offset.0)),
                        (None, None) => None,
                    };
                    item.tool = hook.tool_name.clone();
                    item.tool_use_id = hook.tool_use_id.clone();
                    item.tool_call(span_id.as_ref().and_then(|id| shape.tools.get(id)));
                    if let Some(id) = span_id {
                        shown_tools.insert(id);
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
                    if !line.is_sidechain.unwrap_or(false) {
                        return None;
                    }
                    let uuid = line.uuid.as_deref()?;
                    shape.sidechain_agent.get(uuid).cloned()
                });
                transcript_items(stored, &map, agent, shape, &hook_tool_ids, &mut items)
                    .into_iter()
                    .for_each(|id| {
                        shown_tools.insert(id);
                    });
            }
            _ => {
                let (event, detail) = summary(&stored.record);
                items.push(Item::new(stored, event, detail));
            }
        }
    }
    // The prompt (hook or transcript line) that starts a turn carries the turn's duration and
    // status, so a timeline draws the turn as a bar like a tool call.
    for item in &mut items {
        if item.tool.is_none()
            && let Some(turn) = item.offset.and_then(|o| shape.turns.get(&o))
        {
            item.tool_call(Some(turn));
        }
    }
    nest(items, shape)
}

/// The time a record is shown at: its own, except for a hook record timed only by its arrival
/// (`arrival_time`) whose tool call the views know from the transcript: then the call's start
/// (`PreToolUse`) or end (`PostToolUse*`).
fn display_ts(stored: &StoredRecord, shape: &SessionShape) -> u64 {
    let Body::Hook(hook) = &stored.record.body else {
        return stored.record.ts;
    };
    if !hook.arrival_time {
        return stored.record.ts;
    }
    let call = hook.tool_use_id.as_ref().and_then(|id| shape.tools.get(id));
    match (hook.event.as_deref(), call) {
        (Some("PreToolUse"), Some(call)) => call.start_ns,
        (Some("PostToolUse" | "PostToolUseFailure"), Some(call)) => {
            call.end_ns.unwrap_or(call.start_ns)
        }
        _ => stored.record.ts,
    }
}

/// Adds the items of one transcript line; returns the ids of the tool calls it showed.
fn transcript_items(
    stored: &StoredRecord,
    map: &serde_json::Map<String, Value>,
    agent: Option<String>,
    shape: &SessionShape,
    hook_tool_ids: &HashSet<&str>,
    items: &mut Vec<Item>,
) -> Vec<String> {
    let Body::Transcript(line) = &stored.record.body else {
        return Vec::new();
    };
    let mut shown = Vec::new();
    match line.line_type.as_deref() {
        Some("progress") => {}
        Some("assistant") => {
            for block in content_blocks(map) {
                match block.get("type").and_then(Value::as_str) {
                    Some("tool_use") => {
                        let id = block.get("id").and_then(Value::as_str);
                        if id.is_some_and(|id| hook_tool_ids.contains(id)) {
                            continue;
                        }
                        let name = block.get("name").and_then(Value::as_str).unwrap_or("?");
                        let input = block.get("input").and_then(Value::as_object);
                        let mut item = Item::new(
                            stored,
                            "tool_use".into(),
                            format!("{name} {}", tool_input_summary(name, input)),
                        );
                        item.tool = Some(name.to_owned());
                        item.tool_use_id = id.map(str::to_owned);
                        item.tool_call(id.and_then(|id| shape.tools.get(id)));
                        item.agent_id = agent.clone();
                        shown.extend(id.map(str::to_owned));
                        items.push(item);
                    }
                    Some("text") => {
                        let text = block.get("text").and_then(Value::as_str).unwrap_or("");
                        let mut item = Item::new(stored, "assistant".into(), one_line(text, 100));
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
            if prompt.is_none() {
                prompt = content_blocks(map)
                    .into_iter()
                    .find(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                    .and_then(|b| b.get("text").and_then(Value::as_str))
                    .map(str::to_owned);
            }
            let meta = map.get("isMeta").and_then(Value::as_bool) == Some(true);
            // The main agent's prompts are shown when they start a turn of the tree (a turn
            // seen through a hook is shown by its `UserPromptSubmit`).
            let turn = stored
                .offset
                .is_some_and(|o| shape.turns.contains_key(&o.0));
            if let Some(prompt) = prompt
                && !meta
                && (agent.is_some() || turn)
            {
                let mut item = Item::new(stored, "prompt".into(), one_line(&prompt, 100));
                item.agent_id = agent;
                items.push(item);
            }
        }
        Some("system") | Some("summary") | None => {
            let (event, detail) = summary(&stored.record);
            let mut item = Item::new(stored, event, detail);
            item.agent_id = agent;
            items.push(item);
        }
        _ => {}
    }
    shown
}

/// Moves subagent items under the tool call the views put their subagent under.
fn nest(items: Vec<Item>, shape: &SessionShape) -> Vec<Item> {
    let mut top: Vec<Item> = Vec::new();
    let mut by_agent: BTreeMap<String, Vec<Item>> = BTreeMap::new();
    for item in items {
        match &item.agent_id {
            Some(agent) => by_agent.entry(agent.clone()).or_default().push(item),
            None => top.push(item),
        }
    }
    let mut orphans = Vec::new();
    for (agent, children) in by_agent {
        let parent = shape.agent_parent.get(&agent).and_then(|id| {
            top.iter()
                .position(|it| it.tool_use_id.as_deref() == Some(id.as_str()))
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
