//! `POST /ingest/hook`: a hook payload as Claude Code's `"type": "http"` hooks send it,
//! stored through [`crate::ingest::hook::store_payload`] (the path of `ctrace hook`): any
//! bytes are kept, JSON or not; a payload above `storage.max_record_bytes` keeps its first
//! bytes and is flagged truncated with its full size and SHA-256. A body above
//! [`super::ServeOptions::max_body_bytes`] is refused with 413 and not stored.
//!
//! Backlog (the unsealed inbox above [`super::ServeOptions::max_inbox_bytes`]: the compactor
//! is behind or the store is locked). Claude Code does not retry an HTTP hook, so a refused
//! hook is a lost record; but a client that keeps posting must not fill the disk. So:
//! - over the limit, every hook is still stored, cut to its first [`BACKLOG_HOOK_BYTES`]
//!   (flagged truncated with its full size and SHA-256, as above): the record, its event,
//!   session and tool stay; what can be lost is the tail of a large tool output, which the
//!   session's transcript holds too;
//! - over [`HARD_LIMIT_FACTOR`] times the limit, hooks are refused with 503 and `Retry-After`
//!   and not stored (logged as errors): only a stalled compactor or a runaway client gets
//!   there, and the disk is what is left to protect.
//!
//! Both cases wake the compactor.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio_stream::StreamExt;

use super::{ApiError, AppState};
use crate::ingest::bounded::BoundedHead;
use crate::ingest::hook::{Payload, store_payload};

/// Bytes of a hook payload kept while the inbox is over its limit (64 KiB: the whole of
/// almost every payload; a large tool output keeps its head).
pub(crate) const BACKLOG_HOOK_BYTES: usize = 64 << 10;

/// Hooks are refused once the unsealed inbox holds this many times
/// [`super::ServeOptions::max_inbox_bytes`].
pub(crate) const HARD_LIMIT_FACTOR: u64 = 4;

/// Seconds a client is told to wait (`Retry-After`) when refused for the backlog.
const RETRY_AFTER_SECS: u64 = 2;

/// Stores the body as one hook record; 200 with an empty body once it is in the inbox (or a
/// spool), then wakes the compactor.
pub(crate) async fn ingest(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ts = crate::now_ns();
    let pty_session = pty_session(&headers);
    let config = state.store.config().clone();
    let limit = state.options.max_body_bytes;
    let backlog = super::otlp::inbox_backlog(&state);
    let over = state.options.max_inbox_bytes;
    if backlog > over.saturating_mul(HARD_LIMIT_FACTOR) {
        state.trigger.wake();
        tracing::error!(
            backlog,
            limit = over.saturating_mul(HARD_LIMIT_FACTOR),
            "hook refused: the store's inbox is far behind (compactor stalled or store locked)"
        );
        return Ok(retry_later(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "the store's inbox holds {backlog} unsealed bytes, more than {HARD_LIMIT_FACTOR} \
                 times the limit of {over}; the hook was not stored"
            ),
            RETRY_AFTER_SECS,
        ));
    }
    let keep = if backlog > over {
        config.max_record_bytes().min(BACKLOG_HOOK_BYTES)
    } else {
        config.max_record_bytes()
    };
    let mut head = BoundedHead::new(keep);
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
    if backlog > over && head.total_bytes() > keep as u64 {
        tracing::warn!(
            backlog,
            bytes = head.total_bytes(),
            kept = keep,
            "hook payload cut: the store's inbox is over its limit"
        );
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
                pty_session,
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
    Ok(StatusCode::OK.into_response())
}

/// `status` with `Retry-After: retry_after_secs` and `{"error": message}`: the service is over
/// a limit and the client may try again later.
pub(super) fn retry_later(status: StatusCode, message: &str, retry_after_secs: u64) -> Response {
    let mut response = (status, Json(serde_json::json!({ "error": message }))).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    response
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

/// The recording the hook ran inside, from [`crate::pty::PTY_SESSION_HEADER`] (`install --http`
/// fills it from `CTRACE_PTY_SESSION`; empty outside a recording): 1–128 bytes of letters,
/// digits, `-`, `_`, `.`, `:`. Anything else is ignored (logged): the hook is stored without
/// the link, as `ctrace hook` stores one run outside a recording.
fn pty_session(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers.get(crate::pty::PTY_SESSION_HEADER)?;
    let text = value.to_str().ok().map(str::trim).unwrap_or("");
    if text.is_empty() && !value.is_empty() {
        tracing::warn!(
            "hook: {} is not text; ignored",
            crate::pty::PTY_SESSION_HEADER
        );
        return None;
    }
    let ok = (1..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if !ok && !text.is_empty() {
        tracing::warn!(
            value = %text.chars().take(64).collect::<String>(),
            "hook: {} is not a session id; ignored",
            crate::pty::PTY_SESSION_HEADER
        );
    }
    ok.then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::pty_session;
    use axum::http::{HeaderMap, HeaderValue};

    fn with(value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            crate::pty::PTY_SESSION_HEADER,
            HeaderValue::from_bytes(value).unwrap(),
        );
        headers
    }

    #[test]
    fn the_recording_header_takes_session_ids_only() {
        assert_eq!(pty_session(&HeaderMap::new()), None);
        assert_eq!(
            pty_session(&with(b"0b8a7c2e-1f2a-4c7d-9e0f-123456789abc")).as_deref(),
            Some("0b8a7c2e-1f2a-4c7d-9e0f-123456789abc")
        );
        // Outside a recording Claude Code sends the variable empty.
        assert_eq!(pty_session(&with(b"")), None);
        for bad in [
            &b"two words"[..],
            b"../../x/y",
            b"a;b",
            &[b'a'; 129],
            b"\xff\xfe",
        ] {
            assert_eq!(pty_session(&with(bad)), None, "{bad:?}");
        }
    }
}
