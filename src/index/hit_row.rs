//! A search hit as the command line (`ctrace search --json`) and the service (`/api/search`)
//! print it: the record's place, what the index extracted from it, and a highlighted snippet.

use serde::Serialize;

use super::{Extracted, Highlighter, Hit, PtyCarry, SearchResults, extract};
use crate::log::{LogError, Snapshot};
use crate::model::{Record, format_ts};

/// Characters of a hit's snippet.
pub const SNIPPET_CHARS: usize = 160;

/// One search hit (a line of `ctrace search --json`).
#[derive(Debug, Clone, Serialize)]
pub struct HitRow {
    /// The record's offset.
    pub offset: u64,
    /// The record's time, ns since the Unix epoch.
    pub ts: u64,
    /// The record's time, RFC 3339 UTC.
    pub time: String,
    /// BM25 score (only when sorted by score).
    pub score: Option<f32>,
    /// The record's source (`hook`, `transcript`, `pty`, ...).
    pub source: &'static str,
    /// The record's session.
    pub session: Option<String>,
    /// Event or line type.
    pub event: Option<String>,
    /// Tool names.
    pub tools: Vec<String>,
    /// Model.
    pub model: Option<String>,
    /// Agent ids and types.
    pub agents: Vec<String>,
    /// Working directory and its last component.
    pub projects: Vec<String>,
    /// The best fragment of the record's text, at most [`SNIPPET_CHARS`] characters.
    pub snippet: String,
    /// Byte ranges `[start, end)` of `snippet` that match the query.
    pub highlights: Vec<[usize; 2]>,
    /// The command that replays the session from this record.
    pub replay: String,
}

impl HitRow {
    /// The row of `hit`, whose record is `record` and whose extracted text is `extracted`, with
    /// a snippet from `highlighter` (the search's).
    pub fn new(
        hit: &Hit,
        record: &Record,
        extracted: Extracted,
        highlighter: &mut Highlighter,
    ) -> Self {
        let snippet = highlighter.snippet(&extracted.text, SNIPPET_CHARS);
        Self {
            offset: hit.offset.0,
            ts: record.ts,
            time: format_ts(record.ts),
            score: hit.score,
            source: record.source.as_str(),
            session: record.session.clone(),
            event: extracted.event,
            tools: extracted.tools,
            model: extracted.model,
            agents: extracted.agents,
            projects: extracted.projects,
            highlights: snippet
                .highlights
                .iter()
                .map(|r| [r.start, r.end])
                .collect(),
            snippet: snippet.fragment,
            replay: replay_command(record.session.as_deref(), hit.offset.0),
        }
    }
}

/// The rows of `results`, reading each hit's record from `snapshot` (hits whose record is no
/// longer in the log, e.g. forgotten since the index was read, are left out).
///
/// # Errors
/// [`LogError`] when a record cannot be read.
pub fn hit_rows(snapshot: &Snapshot, results: &mut SearchResults) -> Result<Vec<HitRow>, LogError> {
    let mut carry = PtyCarry::new();
    let mut rows = Vec::with_capacity(results.hits.len());
    for hit in &results.hits {
        let Some(record) = snapshot.get(hit.offset)? else {
            continue;
        };
        let extracted = extract(&record, &mut carry);
        rows.push(HitRow::new(
            hit,
            &record,
            extracted,
            &mut results.highlighter,
        ));
    }
    Ok(rows)
}

/// The command that replays `session` from the record at `offset`.
pub fn replay_command(session: Option<&str>, offset: u64) -> String {
    match session {
        Some(s) => format!("ctrace replay {s} --at {offset}"),
        None => format!("ctrace cat  # offset {offset} has no session"),
    }
}
