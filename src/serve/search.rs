//! `GET /api/search` (hits as `ctrace search --json`) and `GET /api/sources` (what each source
//! has brought in, and when last).
//!
//! The service's compactor keeps the index current, so a search here reads the index as it is
//! and says how far it reaches (`indexed_through`) rather than indexing in the request.

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use super::api::{blocking, parse_limit, parse_time, resolve, views};
use super::{ApiError, AppState};
use crate::index::{HitRow, IndexError, SearchRequest, SortOrder};
use crate::log::read::TimeRange;
use crate::model::Source;
use crate::views::summary::SourceRow;

/// Query of `GET /api/search`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SearchParams {
    q: Option<String>,
    session: Option<String>,
    source: Option<String>,
    event: Option<String>,
    tool: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    sort: Option<String>,
}

/// The answer of `GET /api/search`.
#[derive(Debug, Serialize)]
pub(crate) struct SearchPage {
    /// The hits, newest first (or best first with `sort=score`).
    hits: Vec<HitRow>,
    /// Records matching in all (may exceed `hits.len()`).
    total: u64,
    /// Every record below this offset is indexed (`null`: no index yet).
    indexed_through: Option<u64>,
    /// Records appended but not yet indexed (sealed or not); they are not searched.
    unindexed_records: u64,
}

/// A source parameter.
pub(crate) fn parse_source(value: Option<&str>) -> Result<Option<Source>, ApiError> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => text
            .parse::<Source>()
            .map(Some)
            .map_err(|_| ApiError::BadParam {
                param: "source",
                value: text.to_owned(),
                expected: "is not a source (hook, transcript, pty, otlp, import, internal)",
            }),
    }
}

/// `GET /api/search?q=&session=&source=&event=&tool=&since=&until=&limit=&sort=time|score`.
pub(crate) async fn search(
    State(state): State<AppState>,
    Query(params): Query<SearchParams>,
) -> Result<Json<SearchPage>, ApiError> {
    let query = params.q.clone().unwrap_or_default();
    if query.trim().is_empty() {
        return Err(ApiError::BadParam {
            param: "q",
            value: query,
            expected: "is empty (give a query, e.g. `q=error`)",
        });
    }
    let source = parse_source(params.source.as_deref())?;
    let since = parse_time("since", params.since.as_deref())?;
    let until = parse_time("until", params.until.as_deref())?;
    let limit = parse_limit(params.limit.as_deref(), 50)?;
    let sort = match params.sort.as_deref() {
        None | Some("time") => SortOrder::Time,
        Some("score") => SortOrder::Score,
        Some(other) => {
            return Err(ApiError::BadParam {
                param: "sort",
                value: other.to_owned(),
                expected: "is not an order (time, score)",
            });
        }
    };
    blocking(&state, move |store| {
        let snapshot = store.snapshot()?;
        let session = match params.session.as_deref().filter(|s| !s.is_empty()) {
            Some(wanted) => Some(resolve(views(store)?.as_ref(), store, wanted)?),
            None => None,
        };
        let request = SearchRequest {
            query,
            session,
            source,
            event: params.event.filter(|e| !e.is_empty()),
            tool: params.tool.filter(|t| !t.is_empty()),
            time: TimeRange { since, until },
            limit,
            sort,
        };
        let indexed_through = crate::index::applied_offset(store.paths())?.map(|o| o.0);
        let next = snapshot.manifest().next_offset.0;
        let unindexed_records =
            next.saturating_sub(indexed_through.unwrap_or(0)) + snapshot.unsealed_records();
        let mut results = match crate::index::search(store.paths(), &request) {
            Ok(results) => results,
            Err(IndexError::NotBuilt) => {
                return Ok(Json(SearchPage {
                    hits: Vec::new(),
                    total: 0,
                    indexed_through,
                    unindexed_records,
                }));
            }
            Err(error) => return Err(error.into()),
        };
        Ok(Json(SearchPage {
            hits: crate::index::hit_rows(&snapshot, &mut results)?,
            total: results.total,
            indexed_through,
            unindexed_records,
        }))
    })
    .await
}

/// The answer of `GET /api/sources`.
#[derive(Debug, Serialize)]
pub(crate) struct Sources {
    /// Every source by name: records (with and without a session), sessions, latest time and
    /// offset.
    sources: Vec<SourceRow>,
    /// Records in the inbox not sealed yet (of any source).
    unsealed_records: u64,
}

/// `GET /api/sources`: every source (hooks, transcripts, pty, otlp, ...), how many records the
/// views hold and when the latest arrived.
pub(crate) async fn sources(State(state): State<AppState>) -> Result<Json<Sources>, ApiError> {
    blocking(&state, |store| {
        let snapshot = store.snapshot()?;
        let sources = match views(store)? {
            Some(db) => crate::views::summary::sources(&db)?,
            None => Vec::new(),
        };
        Ok(Json(Sources {
            sources,
            unsealed_records: snapshot.unsealed_records(),
        }))
    })
    .await
}
