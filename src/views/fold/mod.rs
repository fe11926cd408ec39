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
use serde_json::Value;

use super::facts::SessionFacts;
use super::{SqlContext, ViewsError};
use crate::model::{BodyRef, RecordRef};
use crate::segments::Offset;
use agg::{
    AgentAgg, PerSession, SessionAgg, SpanAgg, SpanUpdate, UsageRow, keep, keep_str, merge_max,
    merge_min, widen,
};

mod agg;
mod extract;
mod hook;
mod sql;
mod tasks;
mod transcript;

pub(super) use extract::{Extracted, extract};

/// Longest text kept in `prompt`, `detail` and `error_text` columns, in characters.
const TEXT_CHARS: usize = 300;

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
    telemetry: Statement<'t>,
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
            upsert_span: prep(sql::UPSERT_SPAN)?,
            upsert_usage: prep(sql::UPSERT_USAGE)?,
            usage_tool: prep(sql::USAGE_TOOL)?,
            upsert_turn: prep(sql::UPSERT_TURN)?,
            end_turn: prep(sql::END_TURN)?,
            problem: prep(sql::PROBLEM)?,
            chain_get: prep(sql::CHAIN_GET)?,
            chain_put: prep(sql::CHAIN_PUT)?,
            task_event: prep(sql::TASK_EVENT)?,
            upsert_task: prep(sql::UPSERT_TASK)?,
            span_detail: prep(sql::SPAN_DETAIL)?,
            telemetry: prep(sql::TELEMETRY)?,
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
        record: &RecordRef<'_>,
        extracted: &Extracted,
    ) -> Result<(), ViewsError> {
        let Some(session) = record.session else {
            self.facts.observe_sessionless(offset.0, record);
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
        if matches!(&record.body, BodyRef::Hook(hook) if hook.arrival_time) {
            widen(&mut agg.arrival, record.ts);
        } else {
            agg.first_ns = agg.first_ns.min(record.ts);
            agg.last_ns = agg.last_ns.max(record.ts);
        }
        agg.records += 1;
        match &record.body {
            BodyRef::Hook(hook) => {
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
            BodyRef::Transcript(line) => {
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
            BodyRef::Pty(pty) => {
                if agg.project.is_none() {
                    agg.project = pty.cwd.map(str::to_owned);
                }
            }
            BodyRef::Otlp(_) => {
                if let Some(event) = &extracted.telemetry {
                    self.telemetry(offset.0, record.ts, session, event)?;
                }
            }
            BodyRef::Internal(_) => {}
        }
        Ok(())
    }

    /// One `telemetry` row: a Claude Code telemetry event.
    fn telemetry(
        &mut self,
        offset: u64,
        ts: u64,
        session: &str,
        event: &crate::otlp::telemetry::Event,
    ) -> Result<(), ViewsError> {
        self.telemetry
            .execute(params![
                to_i64(offset),
                session,
                to_i64(ts),
                event.name,
                opt_i64(event.sequence),
                event.prompt_id,
                event.request_id,
                event.tool_use_id,
                event.tool_name,
                event.model,
                event.cost_usd,
                opt_i64(event.duration_ms),
                opt_i64(event.input_tokens),
                opt_i64(event.output_tokens),
                opt_i64(event.cache_read_tokens),
                opt_i64(event.cache_creation_tokens),
                event.success,
                opt_i64(event.status_code),
                opt_i64(event.attempt),
                event.error.as_deref().map(clip),
            ])
            .sql(self.path, "recording a telemetry event")
            .map(|_| ())
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
        merge_min(&mut agg.arrival_start, u.arrival_start);
        merge_max(&mut agg.arrival_end, u.arrival_end);
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
                opt_i64(a.arrival_start),
                opt_i64(a.arrival_end),
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

    /// Writes what the batch aggregated in memory: sessions, usage, subagent and tool spans,
    /// and the session facts.
    pub(super) fn finish(&mut self) -> Result<(), ViewsError> {
        self.flush_sessions()?;
        self.flush_usage()?;
        self.flush_spans()?;
        self.facts.write(self.tx, self.path)
    }

    /// Writes the batch's session aggregates, merged with the rows of earlier batches.
    fn flush_sessions(&mut self) -> Result<(), ViewsError> {
        let mut stmt = self
            .tx
            .prepare_cached(
                // Times with a capture time win over arrival times (`timed`), whatever the
                // batches: the merge is the same in any order.
                "INSERT INTO sessions (session, project, transcript_dir, first_ns, last_ns,
                    records, hook_records, transcript_records, malformed, ended_ns, timed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (session) DO UPDATE SET
                    project = coalesce(sessions.project, excluded.project),
                    transcript_dir = coalesce(sessions.transcript_dir, excluded.transcript_dir),
                    first_ns = CASE
                        WHEN excluded.timed = sessions.timed
                            THEN min(sessions.first_ns, excluded.first_ns)
                        WHEN excluded.timed > sessions.timed THEN excluded.first_ns
                        ELSE sessions.first_ns END,
                    last_ns = CASE
                        WHEN excluded.timed = sessions.timed
                            THEN max(sessions.last_ns, excluded.last_ns)
                        WHEN excluded.timed > sessions.timed THEN excluded.last_ns
                        ELSE sessions.last_ns END,
                    timed = max(sessions.timed, excluded.timed),
                    records = sessions.records + excluded.records,
                    hook_records = sessions.hook_records + excluded.hook_records,
                    transcript_records = sessions.transcript_records
                        + excluded.transcript_records,
                    malformed = sessions.malformed + excluded.malformed,
                    ended_ns = coalesce(excluded.ended_ns, sessions.ended_ns)",
            )
            .sql(self.path, "preparing a statement")?;
        for (session, a) in self.sessions.drain() {
            let timed = a.first_ns <= a.last_ns;
            let (first_ns, last_ns) = match a.arrival {
                Some(arrival) if !timed => arrival,
                _ => (a.first_ns, a.last_ns),
            };
            stmt.execute(params![
                session,
                a.project,
                a.transcript_dir,
                to_i64(first_ns),
                to_i64(last_ns),
                to_i64(a.records),
                to_i64(a.hook_records),
                to_i64(a.transcript_records),
                to_i64(a.malformed),
                opt_i64(a.ended_ns),
                i64::from(timed),
            ])
            .sql(self.path, "writing a session")?;
        }
        Ok(())
    }

    /// Writes the batch's deduplicated usage rows in key order.
    fn flush_usage(&mut self) -> Result<(), ViewsError> {
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
        Ok(())
    }

    /// Writes the batch's subagent spans, then its tool-call spans.
    fn flush_spans(&mut self) -> Result<(), ViewsError> {
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
        Ok(())
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
    fn project_dir_of_transcript() {
        assert_eq!(
            transcript_dir("/h/.claude/projects/-work-x/abc.jsonl").as_deref(),
            Some("-work-x")
        );
        assert_eq!(transcript_dir("/tmp/x.jsonl"), None);
    }
}
