//! The JSON endpoints under `/api`: rows as the command line's `--json` outputs build them
//! (`views::listing`, `views::cost_rows`, `views::tree`, `views::tasks`,
//! `export::record_json`), read on the blocking pool from a views database opened per request.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState};
use crate::log::Store;
use crate::views::ViewsDb;
use crate::views::cost::{CostQuery, CostSource, GroupBy};
use crate::views::listing::SessionSummary;
use crate::views::pricing::PriceTable;

/// Most rows a page of `/api/sessions` or `/api/sessions/{id}/records` holds.
const MAX_LIMIT: usize = 10_000;

/// The OpenAPI 3.1 description of this API.
const OPENAPI: &str = include_str!("openapi.json");

/// Runs `work` on the blocking pool with the store.
pub(super) async fn blocking<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&Store) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || work(&store)).await?
}

/// The views database, opened for this request; `None` before the first pass built it.
pub(super) fn views(store: &Store) -> Result<Option<ViewsDb>, ApiError> {
    Ok(ViewsDb::open_existing(store.paths())?)
}

/// The views database, or an empty one in memory before the first pass built it.
pub(super) fn views_or_memory(store: &Store) -> Result<ViewsDb, ApiError> {
    match views(store)? {
        Some(db) => Ok(db),
        None => Ok(ViewsDb::in_memory()?),
    }
}

/// A time parameter: ns since the epoch, an RFC 3339 timestamp, or a UTC date `YYYY-MM-DD`.
pub(super) fn parse_time(
    param: &'static str,
    value: Option<&str>,
) -> Result<Option<u64>, ApiError> {
    let Some(text) = value.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let bad = || ApiError::BadParam {
        param,
        value: text.to_owned(),
        expected: "is not a time (ns since the epoch, RFC 3339, or YYYY-MM-DD)",
    };
    if let Ok(ns) = text.parse::<u64>() {
        return Ok(Some(ns));
    }
    let full = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_owned()
    };
    let time = humantime::parse_rfc3339_weak(&full).map_err(|_| bad())?;
    let since_epoch = time
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| bad())?;
    u64::try_from(since_epoch.as_nanos())
        .map(Some)
        .map_err(|_| bad())
}

/// A count parameter between 1 and [`MAX_LIMIT`], `default` when absent.
pub(super) fn parse_limit(value: Option<&str>, default: usize) -> Result<usize, ApiError> {
    match value {
        None => Ok(default),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::BadParam {
                param: "limit",
                value: text.to_owned(),
                expected: "is not a number from 1 to 10000",
            }),
    }
}

/// The one session `wanted` names (an exact id or a unique prefix), among the views'
/// sessions and the unsealed records.
pub(super) fn resolve(
    db: Option<&ViewsDb>,
    store: &Store,
    wanted: &str,
) -> Result<String, ApiError> {
    let mut ids: BTreeSet<String> = match db {
        Some(db) => crate::views::tree::resolve_session(db, wanted)?
            .into_iter()
            .collect(),
        None => BTreeSet::new(),
    };
    if !ids.contains(wanted) {
        let snapshot = store.snapshot()?;
        let unsealed = snapshot.scan(
            crate::segments::Offset(u64::MAX),
            crate::log::read::TimeRange::default(),
            true,
        );
        for stored in unsealed.filter_map(Result::ok) {
            if let Some(id) = stored.record.session
                && id.starts_with(wanted)
            {
                ids.insert(id);
            }
        }
    }
    if ids.contains(wanted) {
        return Ok(wanted.to_owned());
    }
    let mut ids = ids.into_iter();
    match (ids.next(), ids.next()) {
        (Some(one), None) => Ok(one),
        (None, _) => Err(ApiError::UnknownSession {
            wanted: wanted.to_owned(),
        }),
        (Some(first), Some(second)) => Err(ApiError::AmbiguousSession {
            wanted: wanted.to_owned(),
            matches: [first, second].into_iter().chain(ids.take(3)).collect(),
        }),
    }
}

/// Every session row (as `ctrace sessions --json`), most recent first.
fn all_sessions(store: &Store) -> Result<Vec<SessionSummary>, ApiError> {
    // The snapshot first: the views then hold at least every record it has sealed.
    let snapshot = store.snapshot()?;
    let db = views_or_memory(store)?;
    Ok(crate::views::listing::summaries(
        &db,
        &snapshot,
        crate::now_ns(),
    )?)
}

/// `GET /api/health`: the service answers; how far the consumers are.
#[derive(Debug, Serialize)]
pub(crate) struct Health {
    status: &'static str,
    /// The next offset the log assigns (sealed records are below it).
    next_offset: u64,
    /// Records in the inbox not sealed yet.
    unsealed_records: u64,
    /// The views' checkpoint: every record below it is folded.
    views_checkpoint: Option<u64>,
    /// The index's checkpoint.
    index_checkpoint: Option<u64>,
    /// `[forward]`: the endpoint and the checkpoint (every record below `next_offset` was
    /// acknowledged); absent when nothing is forwarded.
    #[serde(skip_serializing_if = "Option::is_none")]
    forward: Option<crate::otlp::forward::Checkpoint>,
}

/// `GET /api/health`.
pub(crate) async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    blocking(&state, |store| {
        let snapshot = store.snapshot()?;
        Ok(Json(Health {
            status: "ok",
            next_offset: snapshot.manifest().next_offset.0,
            unsealed_records: snapshot.unsealed_records(),
            views_checkpoint: crate::views::applied_offset(store.paths())?.map(|o| o.0),
            index_checkpoint: crate::index::applied_offset(store.paths())
                .map_err(ApiError::Index)?
                .map(|o| o.0),
            forward: crate::otlp::forward::status(store),
        }))
    })
    .await
}

/// `GET /api/stats`: counts from the MANIFEST and the views (no record is read).
#[derive(Debug, Serialize)]
pub(crate) struct Stats {
    segments: u64,
    records: u64,
    next_offset: u64,
    unsealed_records: u64,
    unsealed_bytes: u64,
    sessions: u64,
}

/// `GET /api/stats`.
pub(crate) async fn stats(State(state): State<AppState>) -> Result<Json<Stats>, ApiError> {
    blocking(&state, |store| {
        let snapshot = store.snapshot()?;
        let manifest = snapshot.manifest();
        let sessions = match views(store)? {
            Some(db) => crate::views::summary::sessions(&db, None)?.len() as u64,
            None => 0,
        };
        Ok(Json(Stats {
            segments: manifest.segments.len() as u64,
            records: snapshot.sealed_records(),
            next_offset: manifest.next_offset.0,
            unsealed_records: snapshot.unsealed_records(),
            unsealed_bytes: snapshot.unsealed_bytes(),
            sessions,
        }))
    })
    .await
}

/// Query of `GET /api/sessions`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SessionsQuery {
    project: Option<String>,
    since: Option<String>,
    until: Option<String>,
    q: Option<String>,
    status: Option<String>,
    /// Sessions that used this model (exact name, as in the rows' `models`).
    model: Option<String>,
    /// Sessions that called this tool (exact name, as in the rows' `tools`).
    tool: Option<String>,
    /// Sessions whose cost in the `since`/`until` range (USD, as
    /// `/api/cost?by=session&since=&until=`; the whole session without a range) is at least this.
    min_cost: Option<String>,
    /// The order: `last` (default), `first`, `duration`, `session`, `project`, `status`,
    /// `models`, `tool_calls`, `tool_errors`, `records`, `cost` or `tokens` (cost and tokens
    /// in the `since`/`until` range, as `/api/cost?by=session`).
    sort: Option<String>,
    /// `desc` (default) or `asc`.
    order: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// What `GET /api/sessions` sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionSort {
    Last,
    First,
    Duration,
    Session,
    Project,
    Status,
    Models,
    ToolCalls,
    ToolErrors,
    Records,
    Cost,
    Tokens,
}

impl SessionSort {
    fn parse(text: Option<&str>) -> Result<Self, ApiError> {
        Ok(match text.unwrap_or("last") {
            "" | "last" => Self::Last,
            "first" => Self::First,
            "duration" => Self::Duration,
            "session" => Self::Session,
            "project" => Self::Project,
            "status" => Self::Status,
            "models" => Self::Models,
            "tool_calls" => Self::ToolCalls,
            "tool_errors" => Self::ToolErrors,
            "records" => Self::Records,
            "cost" => Self::Cost,
            "tokens" => Self::Tokens,
            other => {
                return Err(ApiError::BadParam {
                    param: "sort",
                    value: other.to_owned(),
                    expected: "is not one of last, first, duration, session, project, status, models, tool_calls, tool_errors, records, cost, tokens",
                });
            }
        })
    }

    /// Compares two rows by this key (`costs`: USD and tokens per session).
    fn compare(
        self,
        a: &SessionSummary,
        b: &SessionSummary,
        costs: &std::collections::HashMap<String, (f64, u64)>,
    ) -> std::cmp::Ordering {
        let cost = |s: &SessionSummary| costs.get(&s.session).copied().unwrap_or((0.0, 0));
        let records = |s: &SessionSummary| s.records.values().sum::<u64>();
        match self {
            Self::Last => a.last_ns.cmp(&b.last_ns),
            Self::First => a.first_ns.cmp(&b.first_ns),
            Self::Duration => a.duration_ns.cmp(&b.duration_ns),
            Self::Session => std::cmp::Ordering::Equal,
            Self::Project => a.project.cmp(&b.project),
            Self::Status => a.status.cmp(b.status),
            Self::Models => a.models.iter().cmp(b.models.iter()),
            Self::ToolCalls => a.tool_calls.cmp(&b.tool_calls),
            Self::ToolErrors => a.tool_errors.cmp(&b.tool_errors),
            Self::Records => records(a).cmp(&records(b)),
            Self::Cost => cost(a).0.total_cmp(&cost(b).0),
            Self::Tokens => cost(a).1.cmp(&cost(b).1),
        }
    }
}

/// A page of sessions.
#[derive(Debug, Serialize)]
pub(crate) struct SessionsPage {
    sessions: Vec<SessionSummary>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// Where the next page of `GET /api/sessions` starts.
#[derive(Debug)]
enum SessionsCursor {
    /// Most recent first (the default order): after the row `<last_ns>:<session>` (a keyset:
    /// pages do not shift when new sessions arrive).
    After(u64, String),
    /// Any other order: after this many rows of the sorted list (`@<n>`).
    Skip(usize),
}

/// `GET /api/sessions`: rows as `ctrace sessions --json`, filtered, sorted (most recent first
/// by default), a page at a time (cursor `<last_ns>:<session>` of the page's last row in the
/// default order, `@<rows before the page>` in the others).
pub(crate) async fn sessions(
    State(state): State<AppState>,
    Query(query): Query<SessionsQuery>,
) -> Result<Json<SessionsPage>, ApiError> {
    let since = parse_time("since", query.since.as_deref())?;
    let until = parse_time("until", query.until.as_deref())?;
    let limit = parse_limit(query.limit.as_deref(), 100)?;
    let sort = SessionSort::parse(query.sort.as_deref())?;
    let ascending = match query.order.as_deref() {
        None | Some("" | "desc") => false,
        Some("asc") => true,
        Some(other) => {
            return Err(ApiError::BadParam {
                param: "order",
                value: other.to_owned(),
                expected: "is not `asc` or `desc`",
            });
        }
    };
    let keyset = sort == SessionSort::Last && !ascending;
    let cursor = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(text) => {
            let parsed = if keyset {
                text.split_once(':').and_then(|(ns, id)| {
                    Some(SessionsCursor::After(
                        ns.parse::<u64>().ok()?,
                        id.to_owned(),
                    ))
                })
            } else {
                text.strip_prefix('@')
                    .and_then(|n| n.parse::<usize>().ok())
                    .map(SessionsCursor::Skip)
            };
            Some(parsed.ok_or_else(|| ApiError::BadParam {
                param: "cursor",
                value: text.to_owned(),
                expected: "is not a cursor of this API for this order (`<last_ns>:<session>` most recent first, `@<n>` otherwise): pass the `next_cursor` of the previous page",
            })?)
        }
    };
    let min_cost = match query.min_cost.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<f64>()
                .ok()
                .filter(|c| c.is_finite() && *c >= 0.0)
                .ok_or_else(|| ApiError::BadParam {
                    param: "min_cost",
                    value: text.to_owned(),
                    expected: "is not a non-negative number of USD",
                })?,
        ),
    };
    blocking(&state, move |store| {
        let rows = all_sessions(store)?;
        let costs = if min_cost.is_some() || matches!(sort, SessionSort::Cost | SessionSort::Tokens)
        {
            session_costs(store, since, until)?
        } else {
            std::collections::HashMap::new()
        };
        let keep = |s: &SessionSummary| {
            query
                .project
                .as_deref()
                .is_none_or(|p| s.project.as_deref() == Some(p))
                && since.is_none_or(|t| s.last_ns >= t)
                && until.is_none_or(|t| s.first_ns <= t)
                && query.status.as_deref().is_none_or(|st| s.status == st)
                && query.model.as_deref().is_none_or(|m| s.models.contains(m))
                && query
                    .tool
                    .as_deref()
                    .is_none_or(|t| s.tools.contains_key(t))
                && min_cost.is_none_or(|c| costs.get(&s.session).map_or(0.0, |c| c.0) >= c)
                && query.q.as_deref().is_none_or(|q| {
                    s.session.contains(q) || s.project.as_deref().is_some_and(|p| p.contains(q))
                })
        };
        let mut page: Vec<SessionSummary>;
        let next_cursor;
        if keyset {
            // `all_sessions` is most recent first (ties by id).
            let after = |s: &SessionSummary| match &cursor {
                Some(SessionsCursor::After(ns, id)) => {
                    s.last_ns < *ns || (s.last_ns == *ns && s.session.as_str() > id.as_str())
                }
                _ => true,
            };
            page = rows
                .into_iter()
                .filter(|s| keep(s) && after(s))
                .take(limit + 1)
                .collect();
            next_cursor = (page.len() > limit).then(|| {
                page.truncate(limit);
                page.last()
                    .map(|s| format!("{}:{}", s.last_ns, s.session))
                    .unwrap_or_default()
            });
        } else {
            let mut all: Vec<SessionSummary> = rows.into_iter().filter(|s| keep(s)).collect();
            all.sort_by(|a, b| {
                let order = sort.compare(a, b, &costs);
                let order = if ascending { order } else { order.reverse() };
                order.then_with(|| a.session.cmp(&b.session))
            });
            let skip = match cursor {
                Some(SessionsCursor::Skip(n)) => n,
                _ => 0,
            };
            let more = all.len() > skip.saturating_add(limit);
            page = all.into_iter().skip(skip).take(limit).collect();
            next_cursor = more.then(|| format!("@{}", skip + limit));
        }
        Ok(Json(SessionsPage {
            sessions: page,
            next_cursor,
        }))
    })
    .await
}

/// Each session's cost (USD; responses of unknown price count 0) and tokens in the range, as
/// `/api/cost?by=session&since=&until=` sums them.
fn session_costs(
    store: &Store,
    since: Option<u64>,
    until: Option<u64>,
) -> Result<std::collections::HashMap<String, (f64, u64)>, ApiError> {
    let mut costs = std::collections::HashMap::new();
    let Some(db) = views(store)? else {
        return Ok(costs);
    };
    let prices = PriceTable::new(&store.config().pricing);
    let report = crate::views::cost::query(
        &db,
        &prices,
        &CostQuery {
            by: GroupBy::Session,
            since,
            until,
            session: None,
            source: CostSource::default(),
        },
    )?;
    for row in report.rows {
        let entry = costs.entry(row.key).or_insert((0.0, 0));
        entry.0 += row.cost_usd.unwrap_or(0.0);
        entry.1 += row.tokens.total();
    }
    Ok(costs)
}

/// `GET /api/sessions/{id}`: the session's row, as in `/api/sessions`.
pub(crate) async fn session(
    State(state): State<AppState>,
    Path(wanted): Path<String>,
) -> Result<Json<SessionSummary>, ApiError> {
    blocking(&state, move |store| {
        let snapshot = store.snapshot()?;
        let db = views_or_memory(store)?;
        let id = resolve(Some(&db), store, &wanted)?;
        crate::views::listing::summary(&db, &snapshot, &id, crate::now_ns())?
            .map(Json)
            .ok_or(ApiError::UnknownSession { wanted })
    })
    .await
}

/// `GET /api/sessions/{id}/timeline`: the items as `ctrace show --json`.
pub(crate) async fn timeline(
    State(state): State<AppState>,
    Path(wanted): Path<String>,
) -> Result<Json<Vec<crate::views::items::Item>>, ApiError> {
    blocking(&state, move |store| {
        let snapshot = store.snapshot()?;
        let db = views_or_memory(store)?;
        let id = resolve(Some(&db), store, &wanted)?;
        let records: Vec<_> = crate::views::listing::session_records(&db, &snapshot, &id)?
            .into_iter()
            .filter(|r| crate::views::items::in_timeline(&r.record))
            .collect();
        let prices = PriceTable::new(&store.config().pricing);
        let shape = crate::views::shape::session_shape(&db, &prices, &id)?.unwrap_or_default();
        Ok(Json(crate::views::items::build(&records, &shape)))
    })
    .await
}

/// Query of `GET /api/sessions/{id}/tree`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TreeQuery {
    format: Option<String>,
}

/// `GET /api/sessions/{id}/tree`: the tree as `ctrace tree --json`, or with
/// `?format=mermaid` the flowchart of `ctrace tree --mermaid` as text.
pub(crate) async fn tree(
    State(state): State<AppState>,
    Path(wanted): Path<String>,
    Query(query): Query<TreeQuery>,
) -> Result<Response, ApiError> {
    let mermaid = match query.format.as_deref() {
        None | Some("json") => false,
        Some("mermaid") => true,
        Some(other) => {
            return Err(ApiError::BadParam {
                param: "format",
                value: other.to_owned(),
                expected: "is not a tree format (json, mermaid)",
            });
        }
    };
    blocking(&state, move |store| {
        let db = views(store)?;
        let id = resolve(db.as_ref(), store, &wanted)?;
        let prices = PriceTable::new(&store.config().pricing);
        let tree = match &db {
            Some(db) => crate::views::tree::build(db, &prices, &id)?,
            None => None,
        };
        let tree = tree.ok_or(ApiError::UnknownSession { wanted })?;
        if !mermaid {
            return Ok(Json(tree).into_response());
        }
        let mut text = Vec::new();
        crate::views::tree_mermaid::write_mermaid(&mut text, &tree)
            .map_err(|source| ApiError::Render { source })?;
        Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
    })
    .await
}

// `GET /api/sessions/{id}/records`: pages bounded in records and bytes.
mod records;
pub(crate) use self::records::records;

/// Query of `GET /api/tasks`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TasksQuery {
    session: Option<String>,
}

/// `GET /api/tasks`: the forest as `ctrace tasks --json`.
pub(crate) async fn tasks(
    State(state): State<AppState>,
    Query(query): Query<TasksQuery>,
) -> Result<Response, ApiError> {
    blocking(&state, move |store| {
        let Some(db) = views(store)? else {
            return Ok(Json(serde_json::json!({ "roots": [], "problems": [] })).into_response());
        };
        let session = match &query.session {
            Some(wanted) => Some(resolve(Some(&db), store, wanted)?),
            None => None,
        };
        let prices = PriceTable::new(&store.config().pricing);
        let forest = crate::views::tasks::task_forest(&db, &prices, session.as_deref())?;
        Ok(Json(forest).into_response())
    })
    .await
}

/// Query of `GET /api/cost`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CostParams {
    by: Option<String>,
    since: Option<String>,
    until: Option<String>,
    session: Option<String>,
    breakdown: Option<bool>,
    source: Option<String>,
}

/// The grouping named `by`.
fn group_by(by: Option<&str>) -> Result<GroupBy, ApiError> {
    Ok(match by.unwrap_or("session") {
        "session" => GroupBy::Session,
        "day" => GroupBy::Day,
        "week" => GroupBy::Week,
        "month" => GroupBy::Month,
        "model" => GroupBy::Model,
        "project" => GroupBy::Project,
        "agent" => GroupBy::Agent,
        "tool" => GroupBy::Tool,
        "task" => GroupBy::Task,
        "block" => GroupBy::Block,
        other => {
            return Err(ApiError::BadParam {
                param: "by",
                value: other.to_owned(),
                expected: "is not one of session, day, week, month, model, project, agent, tool, task, block",
            });
        }
    })
}

/// `GET /api/cost`: rows as `ctrace cost --json`.
pub(crate) async fn cost(
    State(state): State<AppState>,
    Query(params): Query<CostParams>,
) -> Result<Response, ApiError> {
    let by = group_by(params.by.as_deref())?;
    let source = match params.source.as_deref() {
        None => CostSource::default(),
        Some(name) => name.parse().map_err(|_| ApiError::BadParam {
            param: "source",
            value: name.to_owned(),
            expected: "is not one of transcript, telemetry, best",
        })?,
    };
    let since = parse_time("since", params.since.as_deref())?;
    let until = parse_time("until", params.until.as_deref())?;
    blocking(&state, move |store| {
        let Some(db) = views(store)? else {
            return Ok(Json(serde_json::json!([])).into_response());
        };
        let session = match &params.session {
            Some(wanted) => Some(resolve(Some(&db), store, wanted)?),
            None => None,
        };
        let prices = PriceTable::new(&store.config().pricing);
        let report = crate::views::cost::query(
            &db,
            &prices,
            &CostQuery {
                by,
                since,
                until,
                session,
                source,
            },
        )?;
        let rows =
            crate::views::cost_rows::json_rows(by, &report, params.breakdown.unwrap_or(false));
        Ok(Json(rows).into_response())
    })
    .await
}

/// `GET /api/openapi.json`: the OpenAPI 3.1 description of this API.
pub(crate) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Any other path: 404 as JSON.
pub(crate) async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NoRoute {
        path: uri.path().to_owned(),
    }
}
