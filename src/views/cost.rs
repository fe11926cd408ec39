//! Cost queries over the `usage` view: tokens grouped by a key and priced at query time.

use std::collections::BTreeMap;

use rusqlite::params_from_iter;
use rusqlite::types::Value as SqlValue;

use super::pricing::{PriceTable, TokenCounts};
use super::{SqlContext, ViewsDb, ViewsError};

/// How rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// Claude Code session id.
    Session,
    /// UTC day (`YYYY-MM-DD`).
    Day,
    /// UTC week, named by its Monday (`YYYY-MM-DD`).
    Week,
    /// UTC month (`YYYY-MM`).
    Month,
    /// Model name as written in the transcript.
    Model,
    /// Project: the session's working directory, else its `projects/<dir>` name.
    Project,
    /// Agent type: `main` for the main thread, else the subagent type.
    Agent,
    /// The first tool the response called (`(no tool)` when none).
    Tool,
    /// The to-do or Beads issue in progress when the response came (`(no task)` when none).
    Task,
    /// 5-hour billing window (like ccusage `blocks`), named by its start.
    Block,
}

impl GroupBy {
    /// The key's name in JSON rows.
    pub fn key_name(self) -> &'static str {
        match self {
            GroupBy::Session => "session",
            GroupBy::Day => "day",
            GroupBy::Week => "week",
            GroupBy::Month => "month",
            GroupBy::Model => "model",
            GroupBy::Project => "project",
            GroupBy::Agent => "agent",
            GroupBy::Tool => "tool",
            GroupBy::Task => "task",
            GroupBy::Block => "block",
        }
    }
}

/// Where the USD of a response comes from (`cost --source`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CostSource {
    /// Computed: the transcript's token counts times the price table (ccusage's method).
    #[default]
    Transcript,
    /// Reported: the `cost_usd` of Claude Code's `api_request` telemetry event for the
    /// response (joined by request id); responses without one are not counted in USD and
    /// are reported as [`CostReport::without_telemetry`].
    Telemetry,
    /// Reported where telemetry has the response, computed elsewhere.
    Best,
}

impl CostSource {
    /// The name on the command line and in the API (`transcript`, `telemetry`, `best`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transcript => "transcript",
            Self::Telemetry => "telemetry",
            Self::Best => "best",
        }
    }
}

impl std::str::FromStr for CostSource {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Transcript, Self::Telemetry, Self::Best]
            .into_iter()
            .find(|source| source.as_str() == s)
            .ok_or_else(|| format!("unknown cost source `{s}` (transcript, telemetry or best)"))
    }
}

/// A cost query.
#[derive(Debug, Clone)]
pub struct CostQuery {
    /// Grouping.
    pub by: GroupBy,
    /// Only responses at or after this time, ns since the epoch.
    pub since: Option<u64>,
    /// Only responses at or before this time, ns since the epoch.
    pub until: Option<u64>,
    /// Only this session (an exact id or a unique prefix).
    pub session: Option<String>,
    /// Where USD comes from.
    pub source: CostSource,
}

/// One row: a group and (with breakdown) one model.
#[derive(Debug, Clone, PartialEq)]
pub struct CostRow {
    /// The group's key.
    pub key: String,
    /// Model (always set; rows are per key and model, merge them for a per-key total).
    pub model: String,
    /// Token counts.
    pub tokens: TokenCounts,
    /// Deduplicated API responses counted.
    pub responses: u64,
    /// USD; `None` when the model is unpriced (or, with [`CostSource::Telemetry`], when no
    /// response of the row has a telemetry event).
    pub cost_usd: Option<f64>,
    /// Responses whose USD is what Claude Code's telemetry reported (0 with
    /// [`CostSource::Transcript`]).
    pub reported_responses: u64,
    /// Earliest response, ns since the epoch.
    pub first_ns: u64,
    /// Latest response, ns since the epoch.
    pub last_ns: u64,
}

/// The result of a cost query.
#[derive(Debug, Clone)]
pub struct CostReport {
    /// Rows in key order, then by cost descending within a key.
    pub rows: Vec<CostRow>,
    /// Models without a price, with their token totals.
    pub unpriced: BTreeMap<String, u64>,
    /// Price table version.
    pub price_table: String,
    /// Input problems recorded while folding (kind → count), over the whole store.
    pub problems: BTreeMap<String, u64>,
    /// Where USD came from.
    pub source: CostSource,
    /// With [`CostSource::Telemetry`]: responses without a telemetry event, not counted in USD.
    pub without_telemetry: u64,
}

const HOUR_NS: u64 = 3_600_000_000_000;
const BLOCK_NS: u64 = 5 * HOUR_NS;

fn sql_key(by: GroupBy) -> &'static str {
    match by {
        GroupBy::Session => "coalesce(u.session, '(none)')",
        GroupBy::Day => "date(u.day * 86400, 'unixepoch')",
        GroupBy::Week => "date(u.ts_ns / 1000000000, 'unixepoch', 'weekday 0', '-6 days')",
        GroupBy::Month => "strftime('%Y-%m', u.ts_ns / 1000000000, 'unixepoch')",
        GroupBy::Model => "u.model",
        GroupBy::Project => "coalesce(s.project, s.transcript_dir, '(unknown)')",
        GroupBy::Agent => {
            "CASE WHEN u.agent_id IS NULL THEN 'main' ELSE coalesce(a.agent_type, t.agent_type,
                CASE WHEN u.agent_id LIKE 'acompact%' THEN 'compact' ELSE 'subagent' END) END"
        }
        GroupBy::Tool => "coalesce(u.tool_name, '(no tool)')",
        // Computed in Rust from the time of each response.
        GroupBy::Task | GroupBy::Block => "u.session",
    }
}

/// Runs a cost query.
///
/// # Errors
/// [`ViewsError::Sqlite`].
pub fn query(db: &ViewsDb, prices: &PriceTable, q: &CostQuery) -> Result<CostReport, ViewsError> {
    let (filter, args) = filters(q);
    let sql = group_sql(q.by, &filter, q.source != CostSource::Transcript);
    let groups = read_groups(db, &sql, args)?;
    let groups = match q.by {
        GroupBy::Block => key_by_block(groups),
        GroupBy::Task => key_by_task(db, groups)?,
        _ => groups,
    };
    let without_telemetry = match q.source {
        CostSource::Telemetry => groups
            .iter()
            .map(|g| g.responses.saturating_sub(g.reported.responses))
            .sum(),
        _ => 0,
    };
    let (rows, unpriced) = merge_groups(groups, prices, q.source);
    Ok(CostReport {
        rows,
        unpriced,
        price_table: prices.version(),
        problems: read_problems(db)?,
        source: q.source,
        without_telemetry,
    })
}

/// What telemetry reported for the responses of a group that have an `api_request` event.
#[derive(Debug, Default, Clone, Copy)]
struct Reported {
    /// Sum of their `cost_usd`.
    usd: f64,
    /// How many.
    responses: u64,
    /// Their transcript tokens (what is not computed when the reported USD is used).
    tokens: TokenCounts,
}

/// Usage summed for one key and model (or one response, for per-response groupings).
#[derive(Debug)]
struct UsageGroup {
    key: String,
    model: String,
    tokens: TokenCounts,
    responses: u64,
    /// First and last response time, ns since the Unix epoch.
    first_ns: u64,
    last_ns: u64,
    /// Zero unless the query joins telemetry.
    reported: Reported,
}

/// The query's `WHERE` clause (empty without filters) and its arguments.
fn filters(q: &CostQuery) -> (String, Vec<SqlValue>) {
    let mut filters = Vec::new();
    let mut args: Vec<SqlValue> = Vec::new();
    if let Some(since) = q.since {
        filters.push("u.ts_ns >= ?");
        args.push(SqlValue::Integer(i64::try_from(since).unwrap_or(i64::MAX)));
    }
    if let Some(until) = q.until {
        filters.push("u.ts_ns <= ?");
        args.push(SqlValue::Integer(i64::try_from(until).unwrap_or(i64::MAX)));
    }
    if let Some(session) = &q.session {
        filters.push("(u.session = ? OR u.session LIKE ? || '%')");
        args.push(SqlValue::Text(session.clone()));
        args.push(SqlValue::Text(session.replace(['%', '_'], "")));
    }
    let filter = if filters.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", filters.join(" AND "))
    };
    (filter, args)
}

/// The join of each usage row to the USD its request's `api_request` telemetry reported.
const TELEMETRY_JOIN: &str = "LEFT JOIN (SELECT request_id, sum(cost_usd) AS usd FROM telemetry
        WHERE event = 'api_request' AND request_id IS NOT NULL AND cost_usd IS NOT NULL
        GROUP BY request_id) r ON r.request_id = u.request_id";

/// The columns of [`Reported`], over the usage rows of a group joined by [`TELEMETRY_JOIN`].
const REPORTED_COLUMNS: &str = ", coalesce(sum(r.usd), 0.0), count(r.usd),
        sum(CASE WHEN r.usd IS NULL THEN 0 ELSE u.input_tokens END),
        sum(CASE WHEN r.usd IS NULL THEN 0 ELSE u.output_tokens END),
        sum(CASE WHEN r.usd IS NULL THEN 0 ELSE u.cache_creation_tokens END),
        sum(CASE WHEN r.usd IS NULL THEN 0 ELSE u.cache_creation_1h_tokens END),
        sum(CASE WHEN r.usd IS NULL THEN 0 ELSE u.cache_read_tokens END)";

/// The SQL of a grouping: columns key, model, five token sums, responses, first and last time,
/// and with `reported` the seven columns of [`REPORTED_COLUMNS`].
fn group_sql(by: GroupBy, filter: &str, reported: bool) -> String {
    let (reported_join, reported_columns) = if reported {
        (TELEMETRY_JOIN, REPORTED_COLUMNS)
    } else {
        ("", "")
    };
    // Join only what the key needs.
    let joins = match by {
        GroupBy::Project => "LEFT JOIN sessions s ON s.session = u.session",
        GroupBy::Agent => {
            "LEFT JOIN spans a ON a.session = u.session AND a.span_id = u.agent_id
                AND a.kind = 'subagent'
             LEFT JOIN spans t ON t.session = u.session AND t.span_id = a.parent_tool_use_id"
        }
        _ => "",
    };
    let per_response = matches!(by, GroupBy::Task | GroupBy::Block);
    // Groupings made of whole UTC days read the per-day sums (`usage_days`, a few rows per
    // day) instead of every usage row.
    let day_key = match by {
        GroupBy::Day => Some("date(d.day * 86400, 'unixepoch')"),
        GroupBy::Week => Some("date(d.day * 86400, 'unixepoch', 'weekday 0', '-6 days')"),
        GroupBy::Month => Some("strftime('%Y-%m', d.day * 86400, 'unixepoch')"),
        GroupBy::Model => Some("d.model"),
        _ => None,
    };
    if let Some(key) = day_key.filter(|_| filter.is_empty() && !reported) {
        format!(
            "SELECT {key} AS k, d.model, sum(d.input_tokens), sum(d.output_tokens),
                sum(d.cache_creation_tokens), sum(d.cache_creation_1h_tokens),
                sum(d.cache_read_tokens), sum(d.responses), min(d.first_ns), max(d.last_ns)
             FROM usage_days d GROUP BY k, d.model"
        )
    } else if per_response {
        // One group per row: the sums are of one row.
        format!(
            "SELECT u.session, u.model, u.input_tokens, u.output_tokens,
                u.cache_creation_tokens, u.cache_creation_1h_tokens, u.cache_read_tokens, 1,
                u.ts_ns, u.ts_ns {reported_columns}
             FROM usage u {reported_join} {filter}
             {group} ORDER BY u.ts_ns",
            group = if reported {
                "GROUP BY u.message_id, u.request_id"
            } else {
                ""
            }
        )
    } else {
        format!(
            "SELECT {key} AS k, u.model, sum(u.input_tokens), sum(u.output_tokens),
                sum(u.cache_creation_tokens), sum(u.cache_creation_1h_tokens),
                sum(u.cache_read_tokens), count(*), min(u.ts_ns), max(u.ts_ns)
                {reported_columns}
             FROM usage u {joins} {reported_join} {filter} GROUP BY {group}, u.model",
            key = sql_key(by),
            group = match by {
                GroupBy::Day => "u.day",
                GroupBy::Session => "u.session",
                _ => "k",
            }
        )
    }
}

fn read_groups(
    db: &ViewsDb,
    sql: &str,
    args: Vec<SqlValue>,
) -> Result<Vec<UsageGroup>, ViewsError> {
    let path = db.path();
    let mut stmt = db
        .conn()
        .prepare(sql)
        .sql(path, "preparing the cost query")?;
    stmt.query_map(params_from_iter(args), |row| {
        let n = |i: usize| row.get::<_, i64>(i).map(|v| u64::try_from(v).unwrap_or(0));
        Ok(UsageGroup {
            key: row
                .get::<_, Option<String>>(0)?
                .unwrap_or_else(|| "(none)".to_owned()),
            model: row.get::<_, String>(1)?,
            tokens: TokenCounts {
                input: n(2)?,
                output: n(3)?,
                cache_creation: n(4)?,
                cache_creation_1h: n(5)?,
                cache_read: n(6)?,
            },
            responses: n(7)?,
            first_ns: n(8)?,
            last_ns: n(9)?,
            reported: if row.as_ref().column_count() > 10 {
                Reported {
                    usd: row.get::<_, f64>(10)?,
                    responses: n(11)?,
                    tokens: TokenCounts {
                        input: n(12)?,
                        output: n(13)?,
                        cache_creation: n(14)?,
                        cache_creation_1h: n(15)?,
                        cache_read: n(16)?,
                    },
                }
            } else {
                Reported::default()
            },
        })
    })
    .sql(path, "running the cost query")?
    .collect::<Result<_, _>>()
    .sql(path, "reading the cost query")
}

/// Keys responses (in time order) by their 5-hour billing block: a block starts at the hour
/// of a response that comes 5 h or more after the block's start, or after 5 h without one.
fn key_by_block(groups: Vec<UsageGroup>) -> Vec<UsageGroup> {
    let mut block_start: Option<u64> = None;
    let mut last = 0u64;
    groups
        .into_iter()
        .map(|mut group| {
            let first = group.first_ns;
            let start = match block_start {
                Some(start) if first < start + BLOCK_NS && first - last < BLOCK_NS => start,
                _ => first - first % HOUR_NS,
            };
            block_start = Some(start);
            last = first;
            group.key = crate::views::tasks::format_ts_minutes(start);
            group
        })
        .collect()
}

/// Keys responses (whose key is their session) by the task in progress when they were made.
fn key_by_task(db: &ViewsDb, groups: Vec<UsageGroup>) -> Result<Vec<UsageGroup>, ViewsError> {
    let intervals = super::tasks::in_progress_intervals(db)?;
    Ok(groups
        .into_iter()
        .map(|mut group| {
            group.key = intervals
                .task_at(&group.key, group.first_ns)
                .unwrap_or_else(|| "(no task)".to_owned());
            group
        })
        .collect())
}

/// One row per (key, model), priced, ordered by key then cost (highest first, unpriced
/// first); and the tokens of each model without a price.
fn merge_groups(
    groups: Vec<UsageGroup>,
    prices: &PriceTable,
    source: CostSource,
) -> (Vec<CostRow>, BTreeMap<String, u64>) {
    let mut merged: BTreeMap<(String, String), CostRow> = BTreeMap::new();
    let mut reported: BTreeMap<(String, String), Reported> = BTreeMap::new();
    for group in groups {
        let sum = reported
            .entry((group.key.clone(), group.model.clone()))
            .or_default();
        sum.usd += group.reported.usd;
        sum.responses += group.reported.responses;
        sum.tokens.add(&group.reported.tokens);
        let row = merged
            .entry((group.key.clone(), group.model.clone()))
            .or_insert_with(|| CostRow {
                key: group.key,
                model: group.model,
                tokens: TokenCounts::default(),
                responses: 0,
                cost_usd: None,
                reported_responses: 0,
                first_ns: u64::MAX,
                last_ns: 0,
            });
        row.tokens.add(&group.tokens);
        row.responses += group.responses;
        row.first_ns = row.first_ns.min(group.first_ns);
        row.last_ns = row.last_ns.max(group.last_ns);
    }
    let mut unpriced = BTreeMap::new();
    let mut rows: Vec<CostRow> = merged
        .into_values()
        .map(|mut row| {
            let r = reported
                .get(&(row.key.clone(), row.model.clone()))
                .copied()
                .unwrap_or_default();
            // Prices are linear in tokens: the computed USD of the responses without a
            // reported figure is the price of the row's tokens minus theirs.
            let rest = row.tokens.minus(&r.tokens);
            row.cost_usd = match source {
                CostSource::Transcript => prices.cost(&row.model, &row.tokens),
                CostSource::Telemetry => (r.responses > 0).then_some(r.usd),
                CostSource::Best if rest.total() == 0 => Some(r.usd),
                CostSource::Best => prices.cost(&row.model, &rest).map(|c| c + r.usd),
            };
            row.reported_responses = match source {
                CostSource::Transcript => 0,
                CostSource::Telemetry | CostSource::Best => r.responses,
            };
            if row.cost_usd.is_none() && source != CostSource::Telemetry {
                *unpriced.entry(row.model.clone()).or_insert(0) += row.tokens.total();
            }
            row
        })
        .collect();
    rows.sort_by(|a, b| {
        a.key.cmp(&b.key).then(
            b.cost_usd
                .unwrap_or(f64::MAX)
                .total_cmp(&a.cost_usd.unwrap_or(f64::MAX)),
        )
    });
    (rows, unpriced)
}

/// Input problems the fold recorded, by kind.
fn read_problems(db: &ViewsDb) -> Result<BTreeMap<String, u64>, ViewsError> {
    let path = db.path();
    let mut problems = BTreeMap::new();
    let mut stmt = db
        .conn()
        .prepare("SELECT kind, count(*) FROM problems GROUP BY kind")
        .sql(path, "reading problems")?;
    for item in stmt
        .query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })
        .sql(path, "reading problems")?
    {
        let (kind, n) = item.sql(path, "reading problems")?;
        problems.insert(kind, u64::try_from(n).unwrap_or(0));
    }
    Ok(problems)
}
