//! OTLP/HTTP on the service's listener: `POST /v1/logs`, `/v1/metrics`, `/v1/traces`
//! (OTLP 1.x specification, "OTLP/HTTP": <https://opentelemetry.io/docs/specs/otlp/#otlphttp>).
//!
//! A request body (protobuf or JSON, gzip or not) is decoded, split into one `otlp` record
//! per log record, data point and span ([`crate::otlp::receive`]), redacted, and appended to
//! the inbox in one write ([`crate::ingest::hook::store_encoded`]); the answer is 200 with the
//! signal's empty `Export*ServiceResponse` in the request's encoding once every item is in
//! the inbox (or a spool). Refusals, each with a `google.rpc.Status` body in the request's
//! encoding:
//! - 415 for another `Content-Type`, 400 for an unknown `Content-Encoding`, a damaged gzip
//!   stream or a body that is not a request of the path's signal (nothing is stored);
//! - 413 for a body, compressed or not, above [`super::ServeOptions::max_body_bytes`], or
//!   one whose records would take more than 4 times that (a large resource shared by many
//!   small items is copied into each record);
//! - 429 with `Retry-After` while the unsealed inbox holds more than
//!   [`super::ServeOptions::max_inbox_bytes`] (the compactor is behind: the exporter retries
//!   later and nothing is lost); 503 with `Retry-After` when no place could store the items.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio_stream::StreamExt;

use super::AppState;
use crate::ingest::redact::Redactor;
use crate::otlp::{Encoding, OtlpError, Request, Signal, decompress, receive, response_body};

/// Seconds a client is told to wait (`Retry-After`) when the service is over its limits.
const RETRY_AFTER_SECS: u64 = 2;

/// The records of one request may take at most this many times the body limit (their
/// resources and scopes are copied per item).
const SPLIT_FACTOR: u64 = 4;

/// Requests decoded and split at once; more wait for a turn (each may hold several times its
/// body in memory while it is split).
static DECODING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// `POST /v1/logs`.
pub(crate) async fn logs(state: State<AppState>, headers: HeaderMap, body: Body) -> Response {
    export(state, Signal::Logs, headers, body).await
}

/// `POST /v1/metrics`.
pub(crate) async fn metrics(state: State<AppState>, headers: HeaderMap, body: Body) -> Response {
    export(state, Signal::Metrics, headers, body).await
}

/// `POST /v1/traces`.
pub(crate) async fn traces(state: State<AppState>, headers: HeaderMap, body: Body) -> Response {
    export(state, Signal::Traces, headers, body).await
}

/// `google.rpc.Status`, the body of OTLP/HTTP error responses (fields 1 and 2 of
/// `google/rpc/status.proto`; no details).
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
struct Status {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// gRPC status codes used in [`Status::code`].
mod code {
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const UNAVAILABLE: i32 = 14;
    pub const INTERNAL: i32 = 13;
}

fn refuse(status: StatusCode, encoding: Encoding, code: i32, message: String) -> Response {
    tracing::warn!(%status, error = %message, "OTLP request refused");
    let body = match encoding {
        Encoding::Protobuf => prost::Message::encode_to_vec(&Status { code, message }),
        Encoding::Json => {
            serde_json::to_vec(&Status { code, message }).unwrap_or_else(|_| b"{}".to_vec())
        }
    };
    let mut response = (
        status,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response();
    if matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    response
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Reads the body up to `limit` bytes; `Err(())` past it.
async fn read_body(body: Body, limit: usize) -> Result<Result<Vec<u8>, ()>, axum::Error> {
    let mut out = Vec::new();
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk: Bytes = match chunk {
            Ok(chunk) => chunk,
            Err(error) if super::hook::is_length_limit(&error) => return Ok(Err(())),
            Err(error) => return Err(error),
        };
        if out.len() + chunk.len() > limit {
            return Ok(Err(()));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Ok(out))
}

async fn export(
    State(state): State<AppState>,
    signal: Signal,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let arrival = crate::now_ns();
    let content_type = header_str(&headers, header::CONTENT_TYPE);
    let encoding = match Encoding::from_content_type(content_type) {
        Ok(encoding) => encoding,
        Err(error) => {
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Encoding::Protobuf,
                code::INVALID_ARGUMENT,
                error.to_string(),
            );
        }
    };
    let limit = state.options.max_body_bytes;
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            encoding,
            code::INVALID_ARGUMENT,
            format!("request body above the limit of {limit} bytes"),
        )
    };
    let compressed = match read_body(body, limit).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(())) => return too_large(),
        Err(error) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                encoding,
                code::INVALID_ARGUMENT,
                format!("reading the request body: {error}"),
            );
        }
    };
    if inbox_backlog(&state) > state.options.max_inbox_bytes {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            encoding,
            code::RESOURCE_EXHAUSTED,
            format!(
                "the store's inbox holds more than {} unsealed bytes; retry later",
                state.options.max_inbox_bytes
            ),
        );
    }
    let content_encoding = header_str(&headers, header::CONTENT_ENCODING).map(str::to_owned);
    let Ok(_permit) = DECODING.acquire().await else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            encoding,
            code::UNAVAILABLE,
            "the service is stopping".to_owned(),
        );
    };
    let config = state.store.config().clone();
    let root = state.store.paths().root.clone();
    let stored = tokio::task::spawn_blocking(move || {
        let body = decompress(content_encoding.as_deref(), compressed, limit)?;
        let request = Request::decode(signal, encoding, &body)?;
        drop(body);
        // A large resource shared by many small items is copied into every record: bound the
        // split, not only the body.
        if receive::split_bytes(&request) > SPLIT_FACTOR.saturating_mul(limit as u64) {
            return Err(OtlpError::TooLarge {
                limit_bytes: limit.saturating_mul(SPLIT_FACTOR as usize),
            });
        }
        let redactor = Redactor::new(&config.redaction);
        let mut records = receive::records(request, arrival, &redactor);
        let max = config.max_record_bytes();
        let mut encoded = Vec::with_capacity(records.len());
        for record in &mut records {
            // An item above `storage.max_record_bytes` keeps its first bytes, flagged.
            record.truncate_to(max);
            match record.encode() {
                Ok(bytes) => encoded.push(bytes),
                Err(error) => tracing::error!(%error, "cannot encode an OTLP record"),
            }
        }
        let rejected = records.len() - encoded.len();
        let stored = if encoded.is_empty() {
            None
        } else {
            Some(crate::ingest::hook::store_encoded(&root, config, &encoded))
        };
        Ok::<_, OtlpError>((encoded.len(), rejected, stored))
    })
    .await;
    let (count, rejected, stored) = match stored {
        Ok(Ok(done)) => done,
        Ok(Err(OtlpError::TooLarge { .. })) => return too_large(),
        Ok(Err(error)) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                encoding,
                code::INVALID_ARGUMENT,
                error.to_string(),
            );
        }
        Err(error) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                encoding,
                code::INTERNAL,
                format!("the request task failed: {error}"),
            );
        }
    };
    if let Some(stored) = &stored {
        for problem in &stored.problems {
            tracing::warn!(error = %problem, placement = ?stored.placement, "OTLP records");
        }
        if !stored.placement.is_stored() {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                encoding,
                code::UNAVAILABLE,
                "the records could not be stored (inbox and spools failed)".to_owned(),
            );
        }
        state.trigger.wake();
    }
    tracing::debug!(signal = signal.as_str(), count, "OTLP records stored");
    let message = if rejected > 0 {
        format!("{rejected} items could not be encoded")
    } else {
        String::new()
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, encoding.content_type())],
        response_body(
            signal,
            encoding,
            i64::try_from(rejected).unwrap_or(i64::MAX),
            &message,
        ),
    )
        .into_response()
}

/// Bytes in the inbox not yet sealed (`inbox/active.wal`; 0 when absent).
fn inbox_backlog(state: &AppState) -> u64 {
    std::fs::metadata(
        state
            .store
            .paths()
            .inbox
            .join(crate::log::inbox::ACTIVE_FILE),
    )
    .map(|m| m.len())
    .unwrap_or(0)
}
