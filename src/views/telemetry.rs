//! One session's Claude Code telemetry as the dashboard shows it (`GET
//! /api/sessions/{id}/telemetry`): its `api_request`, `api_error` and `tool_result` events
//! (the `telemetry` table), each request next to the USD the price table computes for the
//! transcript's `usage` rows of the same request id, and the session's rows of
//! [`super::reconcile::reconcile`].
//!
//! Units: times are ns since the Unix epoch (`ts_ns`) and RFC 3339 with milliseconds (`ts`);
//! durations are milliseconds as Claude Code reports them; costs are USD; tokens are counts.
//!
//! Invariants:
//! - each list holds at most `limit` rows, the session's newest ones, in time order (oldest
//!   first, newest last; ties in log order); `truncated` says that older rows were left out;
//! - a session without telemetry gives empty lists and no reconciliation row (a
//!   reconciliation is made only for a session with `api_request` events, as `cost
//!   --reconcile` lists only those).

use std::collections::HashMap;

use rusqlite::types::FromSql;
use rusqlite::{Row, params};
use serde::Serialize;

use super::pricing::{PriceTable, TokenCounts};
use super::reconcile::ReconcileRow;
use super::{SqlContext, ViewsDb, ViewsError};
use crate::model::format_ts;

/// An `api_request` event: one answered request to the Anthropic API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiRequest {
    /// Log offset of the `otlp` record.
    pub offset: u64,
    /// When, RFC 3339.
    pub ts: String,
    /// When, ns since the epoch.
    pub ts_ns: u64,
    /// The model.
    pub model: Option<String>,
    /// How long the request took, milliseconds.
    pub duration_ms: Option<u64>,
    /// Input tokens.
    pub input_tokens: Option<u64>,
    /// Output tokens.
    pub output_tokens: Option<u64>,
    /// Cache reads, tokens.
    pub cache_read_tokens: Option<u64>,
    /// Cache writes, tokens.
    pub cache_creation_tokens: Option<u64>,
    /// What Claude Code reported the request cost, USD.
    pub cost_usd: Option<f64>,
    /// What the price table makes of the transcript's usage of the same request id, USD;
    /// `None` when no transcript usage row has the request id, or its model has no price.
    pub computed_usd: Option<f64>,
    /// The Anthropic API request id (the transcript's `requestId`).
    pub request_id: Option<String>,
    /// The prompt the request answered (`prompt.id`).
    pub prompt_id: Option<String>,
}

/// An `api_error` event: a failed request to the Anthropic API (Claude Code retries it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiFailure {
    /// Log offset of the `otlp` record.
    pub offset: u64,
    /// When, RFC 3339.
    pub ts: String,
    /// When, ns since the epoch.
    pub ts_ns: u64,
    /// The model.
    pub model: Option<String>,
    /// The HTTP status of the answer (absent when there was none, e.g. a connection error).
    pub status_code: Option<u64>,
    /// Which try this was: 1 for the first, more for a retry.
    pub attempt: Option<u64>,
    /// The error message.
    pub error: Option<String>,
    /// How long the try took, milliseconds.
    pub duration_ms: Option<u64>,
    /// The Anthropic API request id, when the answer had one.
    pub request_id: Option<String>,
    /// The prompt the request was for (`prompt.id`).
    pub prompt_id: Option<String>,
}

/// A `tool_result` event: a tool call finished.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolResult {
    /// Log offset of the `otlp` record.
    pub offset: u64,
    /// When, RFC 3339.
    pub ts: String,
    /// When, ns since the epoch.
    pub ts_ns: u64,
    /// The tool.
    pub tool_name: Option<String>,
    /// The tool call id (as in hooks and transcripts).
    pub tool_use_id: Option<String>,
    /// Whether the call succeeded.
    pub success: Option<bool>,
    /// How long the call took, milliseconds.
    pub duration_ms: Option<u64>,
    /// The error of a failed call.
    pub error: Option<String>,
}

/// How many events of each kind the session has (the lists may hold fewer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// `api_request` events.
    pub requests: u64,
    /// `api_error` events.
    pub errors: u64,
    /// `tool_result` events.
    pub tool_results: u64,
}

/// One session's telemetry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionTelemetry {
    /// The newest `api_request` events, oldest first.
    pub requests: Vec<ApiRequest>,
    /// The newest `api_error` events, oldest first.
    pub errors: Vec<ApiFailure>,
    /// The newest `tool_result` events, oldest first.
    pub tool_results: Vec<ToolResult>,
    /// How many of each the session has.
    pub counts: Counts,
    /// Whether a list left out older events (it holds `limit` of more).
    pub truncated: bool,
    /// The session's reconciliation rows, one per model (empty without `api_request`
    /// events).
    pub reconcile: Vec<ReconcileRow>,
    /// The price table `computed_usd` and the reconciliation used.
    pub price_table: String,
}

/// The telemetry of `session` (an exact id): at most `limit` of the newest events of each
/// kind, requests priced by `prices` from the transcript's usage rows.
///
/// # Errors
/// [`ViewsError::Sqlite`].
pub fn session_telemetry(
    db: &ViewsDb,
    prices: &PriceTable,
    session: &str,
    limit: usize,
) -> Result<SessionTelemetry, ViewsError> {
    let counts = counts(db, session)?;
    let (mut requests, cut_requests) = newest(
        db,
        session,
        "api_request",
        limit,
        REQUEST_COLUMNS,
        read_request,
    )?;
    if !requests.is_empty() {
        let usage = usage_by_request(db, session)?;
        for request in &mut requests {
            request.computed_usd = request
                .request_id
                .as_deref()
                .and_then(|id| usage.get(id))
                .and_then(|(model, tokens)| prices.cost(model, tokens));
        }
    }
    let (errors, cut_errors) = newest(
        db,
        session,
        "api_error",
        limit,
        FAILURE_COLUMNS,
        read_failure,
    )?;
    let (tool_results, cut_tools) =
        newest(db, session, "tool_result", limit, TOOL_COLUMNS, read_tool)?;
    let reconcile = if counts.requests > 0 {
        super::reconcile::reconcile(db, prices, Some(session))?.rows
    } else {
        Vec::new()
    };
    Ok(SessionTelemetry {
        requests,
        errors,
        tool_results,
        counts,
        truncated: cut_requests || cut_errors || cut_tools,
        reconcile,
        price_table: prices.version(),
    })
}

/// The columns every list reads first: offset, ts_ns.
const COMMON: &str = "offset, ts_ns";

/// The events named `event` of `session` (`columns` after [`COMMON`], each row read by
/// `read`): the newest `limit` by time, oldest first, and whether older ones were left out.
fn newest<T>(
    db: &ViewsDb,
    session: &str,
    event: &str,
    limit: usize,
    columns: &str,
    read: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<(Vec<T>, bool), ViewsError> {
    let path = db.path();
    let what = "reading a session's telemetry";
    let mut stmt = db
        .conn()
        .prepare_cached(&format!(
            "SELECT {COMMON}, {columns} FROM telemetry
             WHERE session = ?1 AND event = ?2
             ORDER BY ts_ns DESC, offset DESC LIMIT ?3"
        ))
        .sql(path, what)?;
    // One more than the limit: whether any was left out.
    let wanted = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
    let mut rows = stmt
        .query_map(params![session, event, wanted], read)
        .sql(path, what)?
        .collect::<Result<Vec<T>, _>>()
        .sql(path, what)?;
    let truncated = rows.len() > limit;
    rows.truncate(limit);
    rows.reverse();
    Ok((rows, truncated))
}

/// A non-negative integer column (a negative stored value reads as absent).
fn count(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<u64>> {
    Ok(row
        .get::<_, Option<i64>>(index)?
        .and_then(|v| u64::try_from(v).ok()))
}

/// The offset and time every list starts with.
fn place(row: &Row<'_>) -> rusqlite::Result<(u64, u64)> {
    let offset = count(row, 0)?.unwrap_or(0);
    let ts_ns = count(row, 1)?.unwrap_or(0);
    Ok((offset, ts_ns))
}

fn get<T: FromSql>(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<T>> {
    row.get(index)
}

const REQUEST_COLUMNS: &str = "model, duration_ms, input_tokens, output_tokens, \
                               cache_read_tokens, cache_creation_tokens, cost_usd, request_id, \
                               prompt_id";

fn read_request(row: &Row<'_>) -> rusqlite::Result<ApiRequest> {
    let (offset, ts_ns) = place(row)?;
    Ok(ApiRequest {
        offset,
        ts: format_ts(ts_ns),
        ts_ns,
        model: get(row, 2)?,
        duration_ms: count(row, 3)?,
        input_tokens: count(row, 4)?,
        output_tokens: count(row, 5)?,
        cache_read_tokens: count(row, 6)?,
        cache_creation_tokens: count(row, 7)?,
        cost_usd: get(row, 8)?,
        computed_usd: None,
        request_id: get(row, 9)?,
        prompt_id: get(row, 10)?,
    })
}

const FAILURE_COLUMNS: &str =
    "model, status_code, attempt, error, duration_ms, request_id, prompt_id";

fn read_failure(row: &Row<'_>) -> rusqlite::Result<ApiFailure> {
    let (offset, ts_ns) = place(row)?;
    Ok(ApiFailure {
        offset,
        ts: format_ts(ts_ns),
        ts_ns,
        model: get(row, 2)?,
        status_code: count(row, 3)?,
        attempt: count(row, 4)?,
        error: get(row, 5)?,
        duration_ms: count(row, 6)?,
        request_id: get(row, 7)?,
        prompt_id: get(row, 8)?,
    })
}

const TOOL_COLUMNS: &str = "tool_name, tool_use_id, success, duration_ms, error";

fn read_tool(row: &Row<'_>) -> rusqlite::Result<ToolResult> {
    let (offset, ts_ns) = place(row)?;
    Ok(ToolResult {
        offset,
        ts: format_ts(ts_ns),
        ts_ns,
        tool_name: get(row, 2)?,
        tool_use_id: get(row, 3)?,
        success: get(row, 4)?,
        duration_ms: count(row, 5)?,
        error: get(row, 6)?,
    })
}

/// How many `api_request`, `api_error` and `tool_result` events `session` has.
fn counts(db: &ViewsDb, session: &str) -> Result<Counts, ViewsError> {
    let path = db.path();
    let what = "counting a session's telemetry";
    let mut stmt = db
        .conn()
        .prepare_cached(
            "SELECT event, count(*) FROM telemetry
             WHERE session = ?1 AND event IN ('api_request', 'api_error', 'tool_result')
             GROUP BY event",
        )
        .sql(path, what)?;
    let rows = stmt
        .query_map(params![session], |row| {
            Ok((row.get::<_, String>(0)?, count(row, 1)?.unwrap_or(0)))
        })
        .sql(path, what)?;
    let mut counts = Counts::default();
    for row in rows {
        let (event, n) = row.sql(path, what)?;
        match event.as_str() {
            "api_request" => counts.requests = n,
            "api_error" => counts.errors = n,
            _ => counts.tool_results = n,
        }
    }
    Ok(counts)
}

/// The transcript's usage of `session` per request id: the model and the tokens summed over
/// the request's rows (as [`super::reconcile`] sums them).
fn usage_by_request(
    db: &ViewsDb,
    session: &str,
) -> Result<HashMap<String, (String, TokenCounts)>, ViewsError> {
    let path = db.path();
    let what = "reading a session's usage for its telemetry";
    let mut stmt = db
        .conn()
        .prepare_cached(
            "SELECT request_id, model, input_tokens, output_tokens, cache_creation_tokens,
                cache_creation_1h_tokens, cache_read_tokens
             FROM usage WHERE session = ?1 ORDER BY ts_ns",
        )
        .sql(path, what)?;
    let rows = stmt
        .query_map(params![session], |row| {
            let n = |i| count(row, i).map(|v| v.unwrap_or(0));
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                TokenCounts {
                    input: n(2)?,
                    output: n(3)?,
                    cache_creation: n(4)?,
                    cache_creation_1h: n(5)?,
                    cache_read: n(6)?,
                },
            ))
        })
        .sql(path, what)?;
    let mut usage: HashMap<String, (String, TokenCounts)> = HashMap::new();
    for row in rows {
        let (request_id, model, tokens) = row.sql(path, what)?;
        usage
            .entry(request_id)
            .or_insert_with(|| (model, TokenCounts::default()))
            .1
            .add(&tokens);
    }
    Ok(usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(db: &ViewsDb, offset: i64, ts: i64, event: &str, request_id: Option<&str>) {
        db.conn()
            .execute(
                "INSERT INTO telemetry (offset, session, ts_ns, event, request_id, model,
                    cost_usd, duration_ms, input_tokens)
                 VALUES (?1, 's', ?2, ?3, ?4, 'claude-opus-4-6', 0.5, 1200, -1)",
                params![offset, ts, event, request_id],
            )
            .unwrap();
    }

    #[test]
    fn lists_keep_the_newest_oldest_first_and_price_from_usage() {
        let db = ViewsDb::in_memory().unwrap();
        // Out of offset order, and two events at the same time (log order breaks the tie).
        insert(&db, 5, 300, "api_request", Some("r3"));
        insert(&db, 2, 100, "api_request", Some("r1"));
        insert(&db, 3, 200, "api_request", Some("r2a"));
        insert(&db, 4, 200, "api_request", None);
        insert(&db, 6, 250, "api_error", None);
        insert(&db, 7, 260, "user_prompt", None);
        db.conn()
            .execute(
                "INSERT INTO usage (message_id, request_id, session, ts_ns, day, model,
                    input_tokens, output_tokens, cache_creation_tokens, cache_creation_1h_tokens,
                    cache_read_tokens, total_tokens, sidechain, offset)
                 VALUES ('m', 'r3', 's', 290, 0, 'claude-opus-4-6', 1000000, 0, 0, 0, 0,
                    1000000, 0, 1)",
                [],
            )
            .unwrap();
        let prices = PriceTable::new(&Default::default());

        let all = session_telemetry(&db, &prices, "s", 10).unwrap();
        let offsets: Vec<u64> = all.requests.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [2, 3, 4, 5]);
        assert_eq!(
            all.counts,
            Counts {
                requests: 4,
                errors: 1,
                tool_results: 0
            }
        );
        assert!(!all.truncated);
        let last = &all.requests[3];
        assert_eq!(last.duration_ms, Some(1200));
        assert_eq!(last.input_tokens, None, "a negative count reads as absent");
        assert_eq!(last.computed_usd, Some(5.0), "1M input tokens of Opus 4.6");
        assert_eq!(all.requests[0].computed_usd, None, "no usage row");
        assert_eq!(all.requests[0].ts, "1970-01-01T00:00:00.000Z");
        assert_eq!(all.reconcile.len(), 1);

        let two = session_telemetry(&db, &prices, "s", 2).unwrap();
        let offsets: Vec<u64> = two.requests.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [4, 5], "the newest two, newest last");
        assert!(two.truncated);
        assert_eq!(two.errors.len(), 1);

        let none = session_telemetry(&db, &prices, "other", 10).unwrap();
        assert!(none.requests.is_empty() && none.reconcile.is_empty() && !none.truncated);
    }
}
