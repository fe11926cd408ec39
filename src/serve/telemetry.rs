//! `GET /api/sessions/{id}/telemetry`: what Claude Code's own telemetry says about one
//! session ([`crate::views::telemetry::session_telemetry`]): its API requests with the
//! reported and the computed cost, its API errors and retries, its tool results, and its
//! reconciliation rows. The session page of the dashboard shows them in its Telemetry panel.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use super::api::{blocking, parse_limit, resolve, views};
use super::{ApiError, AppState};
use crate::views::pricing::PriceTable;
use crate::views::telemetry::{SessionTelemetry, session_telemetry};

/// Rows of each list when `limit` is absent.
const DEFAULT_LIMIT: usize = 1000;

/// Query of `GET /api/sessions/{id}/telemetry`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TelemetryQuery {
    /// Most rows per list (1–10000, default 1000): the newest ones.
    limit: Option<String>,
}

/// `GET /api/sessions/{id}/telemetry`: 404 for an unknown session, empty lists for a session
/// without telemetry (or before the first compaction pass built the views).
pub(crate) async fn telemetry(
    State(state): State<AppState>,
    Path(wanted): Path<String>,
    Query(query): Query<TelemetryQuery>,
) -> Result<Json<SessionTelemetry>, ApiError> {
    let limit = parse_limit(query.limit.as_deref(), DEFAULT_LIMIT)?;
    blocking(&state, move |store| {
        let db = views(store)?;
        let id = resolve(db.as_ref(), store, &wanted)?;
        let prices = PriceTable::new(&store.config().pricing);
        let db = match db {
            Some(db) => db,
            None => crate::views::ViewsDb::in_memory()?,
        };
        Ok(Json(session_telemetry(&db, &prices, &id, limit)?))
    })
    .await
}
