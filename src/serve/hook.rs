//! `POST /ingest/hook`: a hook payload as Claude Code's `"type": "http"` hooks send it,
//! stored through [`crate::ingest::hook::store_payload`] (the path of `ctrace hook`): any
//! bytes are kept, JSON or not; a payload above `storage.max_record_bytes` keeps its first
//! bytes and is flagged truncated with its full size and SHA-256. A body above
//! [`super::ServeOptions::max_body_bytes`] is refused with 413 and not stored.

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use tokio_stream::StreamExt;

use super::{ApiError, AppState};
use crate::ingest::bounded::BoundedHead;
use crate::ingest::hook::{Payload, store_payload};

/// Stores the body as one hook record; 200 with an empty body once it is in the inbox (or a
/// spool), then wakes the compactor.
pub(crate) async fn ingest(
    State(state): State<AppState>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let ts = crate::now_ns();
    let config = state.store.config().clone();
    let limit = state.options.max_body_bytes;
    let mut head = BoundedHead::new(config.max_record_bytes());
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|error| {
            // The length limit of the router shows up here as a body error.
            if is_length_limit(&error) {
                ApiError::TooLarge { limit_bytes: limit }
            } else {
                ApiError::Body(error)
            }
        })?;
        head.push(&chunk);
        if head.total_bytes() > limit as u64 {
            return Err(ApiError::TooLarge { limit_bytes: limit });
        }
    }
    let (raw, truncated) = head.finish();
    let root = state.store.paths().root.clone();
    let stored = tokio::task::spawn_blocking(move || {
        store_payload(
            &root,
            config,
            Payload {
                raw,
                truncated,
                ts,
                pty_session: None,
            },
        )
    })
    .await?;
    for problem in &stored.problems {
        tracing::warn!(error = %problem, placement = ?stored.placement, "hook payload");
    }
    if !stored.placement.is_stored() {
        return Err(ApiError::NotStored);
    }
    state.trigger.wake();
    Ok(StatusCode::OK)
}

/// Whether a body error is the router's length limit.
pub(crate) fn is_length_limit(error: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(inner) = cause {
        if inner.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = inner.source();
    }
    false
}
