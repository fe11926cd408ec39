//! `GET /api/sessions/{id}/cast`: a session's terminal recording as an asciicast v2 file
//! (<https://docs.asciinema.org/manual/asciicast/v2/>), as `ctrace export --format asciicast`
//! writes it. For a Claude session that ran inside a recording (`CTRACE_PTY_SESSION`), the
//! recording it ran in.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::api::{blocking, resolve, views_or_memory};
use super::{ApiError, AppState};
use crate::model::{Record, Source};
use crate::views::ViewsDb;

/// Query of `GET /api/sessions/{id}/cast`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CastQuery {
    /// asciicast version, 2 (default) or 3.
    version: Option<String>,
}

/// `GET /api/sessions/{id}/cast?version=2|3`.
pub(crate) async fn cast(
    State(state): State<AppState>,
    Path(wanted): Path<String>,
    Query(query): Query<CastQuery>,
) -> Result<Response, ApiError> {
    let version = match query.version.as_deref() {
        None | Some("2") => 2,
        Some("3") => 3,
        Some(other) => {
            return Err(ApiError::BadParam {
                param: "version",
                value: other.to_owned(),
                expected: "is not an asciicast version (2, 3)",
            });
        }
    };
    blocking(&state, move |store| {
        let snapshot = store.snapshot()?;
        let db = views_or_memory(store)?;
        let id = resolve(Some(&db), store, &wanted)?;
        let mut records = pty_records(&db, &snapshot, &id)?;
        if records.is_empty() {
            // A Claude session: the recording its hooks ran in (the first, by id).
            let linked = crate::views::summary::sessions(&db, Some(&id))?
                .into_iter()
                .flat_map(|row| row.recordings)
                .next();
            if let Some(recording) = linked {
                records = pty_records(&db, &snapshot, &recording)?;
            }
        }
        if records.is_empty() {
            return Err(ApiError::NoRecording { session: id });
        }
        let mut body = Vec::new();
        crate::export::asciicast::write(&mut body, &records, version)
            .map_err(|source| ApiError::Render { source })?;
        Ok((
            [
                (header::CONTENT_TYPE, "application/x-asciicast"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response())
    })
    .await
}

/// The PTY records of `session`, in order (sealed ones through the views' ranges, then the
/// unsealed ones).
fn pty_records(
    db: &ViewsDb,
    snapshot: &crate::log::Snapshot,
    session: &str,
) -> Result<Vec<Record>, ApiError> {
    Ok(
        crate::views::listing::session_records(db, snapshot, session)?
            .into_iter()
            .map(|stored| stored.record)
            .filter(|record| record.source == Source::Pty)
            .collect(),
    )
}
