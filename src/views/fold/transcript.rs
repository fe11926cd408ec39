//! Folding transcript lines: prompts, assistant tool calls and usage, tool results,
//! sidechains.

use rusqlite::params;
use serde_json::Value;

use super::agg::{SpanUpdate, UsageRow, widen};
use super::extract::{Extracted, ToolUse, UserContent, UserLine, input_detail};
use super::{Folder, first_line, prompt_key, text_key, to_i64};
use crate::model::TranscriptRef;
use crate::views::{SqlContext, ViewsError};

impl Folder<'_> {
    pub(super) fn transcript(
        &mut self,
        offset: u64,
        ts: u64,
        session: &str,
        line: &TranscriptRef<'_>,
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

    pub(super) fn sidechain_root(
        &mut self,
        session: &str,
        line: &TranscriptRef<'_>,
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

    pub(super) fn assistant(
        &mut self,
        offset: u64,
        ts: u64,
        session: &str,
        line: &TranscriptRef<'_>,
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

    pub(super) fn user(
        &mut self,
        offset: u64,
        ts: u64,
        session: &str,
        line: &TranscriptRef<'_>,
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

    pub(super) fn prompt(
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
}
