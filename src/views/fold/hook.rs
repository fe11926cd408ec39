//! Folding hook events: turns from prompts and stops, tool-call spans, task changes.

use rusqlite::params;
use serde_json::Value;

use super::agg::{SpanUpdate, widen};
use super::extract::{hook_needs_payload, input_detail};
use super::tasks::{TaskChange, beads_changes, beads_created, task_created_id, todo_changes};
use super::{Folder, first_line, prompt_key, to_i64};
use crate::model::HookRef;
use crate::views::{SqlContext, ViewsError};

impl Folder<'_> {
    pub(super) fn task_changes(
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
    pub(super) fn tool_started_tasks(
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
    pub(super) fn tool_finished_tasks(
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

    pub(super) fn hook(
        &mut self,
        offset: u64,
        ts: u64,
        session: &str,
        hook: &HookRef<'_>,
        payload: Option<&Value>,
    ) -> Result<(), ViewsError> {
        let event = hook.event.unwrap_or("");
        if let Some(agent_id) = hook.agent_id {
            let agg = self.agent(session, agent_id, offset);
            if !hook.arrival_time {
                widen(&mut agg.hook, ts);
            }
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
            // A hook timed only by its arrival says nothing of when a turn or the session
            // started or ended: the transcript's lines give those.
            "UserPromptSubmit" | "Stop" | "SessionEnd" if hook.arrival_time => {}
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
                self.hook_tool(offset, ts, session, hook, event, payload)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The tool-call events: the span of the call (hook times, input detail, error), the
    /// subagent a Task/Agent call started, and the task changes the call makes.
    fn hook_tool(
        &mut self,
        offset: u64,
        ts: u64,
        session: &str,
        hook: &HookRef<'_>,
        event: &str,
        payload: &Value,
    ) -> Result<(), ViewsError> {
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
        // Without a capture time the call's times come from the transcript, the arrival time
        // only when it has none.
        let (start, end) = if hook.arrival_time {
            (&mut update.arrival_start, &mut update.arrival_end)
        } else {
            (&mut update.hook_start, &mut update.hook_end)
        };
        match event {
            "PreToolUse" => {
                *start = Some(ts);
                update.detail = name.and_then(|n| input_detail(n, input));
                update.agent_type = subagent_type;
                update.prompt_key = prompt_key(input);
            }
            "PostToolUse" => *end = Some(ts),
            _ => {
                *end = Some(ts);
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
        Ok(())
    }

    /// For old hook payloads without `tool_use_id`: a Pre gets a synthetic id; a Post closes
    /// the oldest open call of the same tool in the session (earliest hook start, then lowest
    /// offset), whether that call is already in the database or only in this batch.
    ///
    /// # Errors
    ///
    /// [`ViewsError::Sqlite`] when the open calls cannot be read.
    pub(super) fn open_call_without_id(
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
                "SELECT span_id, coalesce(hook_start_ns, arrival_start_ns), offset FROM spans
                 WHERE session = ?1 AND kind = 'tool' AND name IS ?2 AND span_id LIKE 'o%'
                    AND hook_end_ns IS NULL AND arrival_end_ns IS NULL",
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
                Some(agg) if agg.hook_ended() => {}
                Some(agg) => {
                    let start = match (start, agg.hook_started()) {
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
                && !agg.hook_ended()
                && !in_db.contains(span_id)
            {
                open.push((agg.hook_started(), agg.offset, span_id.clone()));
            }
        }
        Ok(open.into_iter().min().map(|(_, _, span_id)| span_id))
    }
}
