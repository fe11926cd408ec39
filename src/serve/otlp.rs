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
//! - 408 for a body not received within [`BODY_TIMEOUT`];
//! - 413 for a body, as sent or decompressed, above [`super::ServeOptions::max_otlp_body_bytes`]
//!   (or `max_body_bytes`, when lower), or one whose decoding and split would take more than
//!   [`MEMORY_BUDGET_BYTES`] of memory (see below);
//! - 429 with `Retry-After` while the unsealed inbox holds more than
//!   [`super::ServeOptions::max_inbox_bytes`] (the compactor is behind: the exporter retries
//!   later and nothing is lost); 503 with `Retry-After` when no place could store the items.
//!
//! Memory. Invariants: at most [`DECODING`] requests are read, decoded and split at once (the
//! turn is taken before the body is read, so waiting requests hold no body); each holds at
//! most its body twice (as sent and decompressed) plus [`MEMORY_BUDGET_BYTES`]. Decoded
//! messages are much larger than their encoding (an empty protobuf `LogRecord` is 2 bytes on
//! the wire and 184 in memory; `{}` in OTLP/JSON is 2 bytes), so the budget is checked before
//! anything is decoded: [`protobuf_estimate`] walks the wire format with the schema of the
//! OTLP messages and adds up what prost will allocate (every element of a repeated field,
//! every string, the growth of each `Vec`), [`json_estimate`] does the same from the JSON's
//! tokens and the element types named by the arrays' keys. After decoding, [`split_estimate`]
//! adds what the records will take (each copies its resource and scope) before the split
//! makes them.

mod estimate;

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio_stream::StreamExt;

use self::estimate::{WireError, json_estimate, protobuf_estimate, split_estimate};
use super::AppState;
use crate::ingest::redact::Redactor;
use crate::otlp::{
    Encoding, OtlpError, Request, Signal, Status, decompress, receive, response_body,
};

/// Seconds a client is told to wait (`Retry-After`) when the service is over its limits.
const RETRY_AFTER_SECS: u64 = 2;

/// Most memory one request may make the service allocate to decode and split it, bytes
/// (256 MiB): what [`protobuf_estimate`] or [`json_estimate`] plus [`split_estimate`] say.
/// A realistic 16 MB protobuf request (42,000 log records of 11 attributes) estimates at about
/// 14 times its size with its split (220 MB; 130 MB measured), so the largest body
/// [`super::ServeOptions::max_otlp_body_bytes`] lets through by default fits.
pub(crate) const MEMORY_BUDGET_BYTES: u64 = 256 << 20;

/// How long a client may take to send its body while it holds a turn ([`DECODING`]).
pub(crate) const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Requests read, decoded and split at once; more wait for a turn (before their body is read).
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

/// gRPC status codes used in [`Status::code`].
mod code {
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const UNAVAILABLE: i32 = 14;
    pub const INTERNAL: i32 = 13;
}

/// Why a request body was refused once read.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    /// Decompressing or decoding failed, or the body is above the decompressed limit.
    #[error(transparent)]
    Otlp(#[from] OtlpError),
    /// The protobuf walk met bytes that are not a message (prost would refuse them too), or a
    /// JSON request nests deeper than its records could be decoded again.
    #[error("the body is not a well-formed OTLP {signal} request: {source}")]
    Wire {
        /// The signal of the path.
        signal: &'static str,
        /// What is wrong.
        #[source]
        source: WireError,
    },
    /// Decoding and splitting would take more memory than one request may.
    #[error(
        "decoding and splitting the request would take about {estimate_bytes} bytes of memory, \
         above the limit of {limit_bytes} bytes; send fewer items per request"
    )]
    Memory {
        /// The estimate, bytes.
        estimate_bytes: u64,
        /// [`MEMORY_BUDGET_BYTES`].
        limit_bytes: u64,
    },
}

impl Refusal {
    fn status(&self) -> (StatusCode, i32) {
        match self {
            Self::Otlp(OtlpError::TooLarge { .. }) | Self::Memory { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, code::INVALID_ARGUMENT)
            }
            Self::Otlp(_) | Self::Wire { .. } => (StatusCode::BAD_REQUEST, code::INVALID_ARGUMENT),
        }
    }
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
async fn read_body(
    body: Body,
    limit: usize,
    size_hint: usize,
) -> Result<Result<Vec<u8>, ()>, axum::Error> {
    let mut out = Vec::with_capacity(size_hint.min(limit));
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
    // The turn first: a request waiting for it holds no body (it stays in the socket).
    let Ok(_permit) = DECODING.acquire().await else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            encoding,
            code::UNAVAILABLE,
            "the service is stopping".to_owned(),
        );
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
    // gzip does not make a protobuf or JSON body larger: the decompressed limit bounds the
    // body as sent too.
    let limit = state
        .options
        .max_body_bytes
        .min(state.options.max_otlp_body_bytes);
    let body = match receive_body(&headers, body, limit, encoding).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let received = Received {
        signal,
        encoding,
        content_encoding: header_str(&headers, header::CONTENT_ENCODING).map(str::to_owned),
        body,
        limit,
        arrival,
    };
    let (config, root) = (
        state.store.config().clone(),
        state.store.paths().root.clone(),
    );
    let stored = tokio::task::spawn_blocking(move || store_request(&root, config, received)).await;
    let (count, rejected, stored) = match stored {
        Ok(Ok(done)) => done,
        Ok(Err(refusal)) => {
            let (status, code) = refusal.status();
            return refuse(status, encoding, code, refusal.to_string());
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

/// The body as sent, at most `limit` bytes, within [`BODY_TIMEOUT`]; else the refusal.
async fn receive_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    encoding: Encoding,
) -> Result<Vec<u8>, Response> {
    let size_hint = header_str(headers, header::CONTENT_LENGTH)
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    match tokio::time::timeout(BODY_TIMEOUT, read_body(body, limit, size_hint)).await {
        Ok(Ok(Ok(bytes))) => Ok(bytes),
        Ok(Ok(Err(()))) => Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            encoding,
            code::INVALID_ARGUMENT,
            format!("request body above the limit of {limit} bytes"),
        )),
        Ok(Err(error)) => Err(refuse(
            StatusCode::BAD_REQUEST,
            encoding,
            code::INVALID_ARGUMENT,
            format!("reading the request body: {error}"),
        )),
        Err(_) => Err(refuse(
            StatusCode::REQUEST_TIMEOUT,
            encoding,
            code::DEADLINE_EXCEEDED,
            format!(
                "the request body did not arrive within {} s",
                BODY_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// A request body as received, and what it needs to be stored.
struct Received {
    signal: Signal,
    encoding: Encoding,
    content_encoding: Option<String>,
    /// As sent (compressed or not).
    body: Vec<u8>,
    /// The decompressed limit, bytes.
    limit: usize,
    /// ns since the epoch, for items without a time.
    arrival: u64,
}

/// Decompresses, checks the memory estimates, decodes, splits and stores `received` in the
/// store at `root`: the records stored, those that could not be encoded, and where they went
/// (`None` for a request without items).
fn store_request(
    root: &std::path::Path,
    config: crate::config::Config,
    received: Received,
) -> Result<(usize, usize, Option<crate::ingest::hook::Stored>), Refusal> {
    let Received {
        signal, encoding, ..
    } = received;
    let body = decompress(
        received.content_encoding.as_deref(),
        received.body,
        received.limit,
    )?;
    let wire = |source| Refusal::Wire {
        signal: signal.as_str(),
        source,
    };
    let over = |estimate_bytes| Refusal::Memory {
        estimate_bytes,
        limit_bytes: MEMORY_BUDGET_BYTES,
    };
    let walked = match encoding {
        Encoding::Protobuf => {
            Some(protobuf_estimate(signal, &body, MEMORY_BUDGET_BYTES).map_err(wire)?)
        }
        Encoding::Json => None,
    };
    let decoded = match walked {
        Some(walked) => walked.bytes,
        None => json_estimate(&body, MEMORY_BUDGET_BYTES),
    };
    if decoded > MEMORY_BUDGET_BYTES {
        return Err(over(decoded));
    }
    let request = Request::decode(signal, encoding, &body)?;
    drop(body);
    // The largest item of a JSON request, from its protobuf encoding (smaller than the JSON,
    // and gone before the split); a request nested deeper than prost decodes is refused here,
    // as its records could not be read back.
    let walked = match walked {
        Some(walked) => walked,
        None => protobuf_estimate(signal, &request.encode_protobuf(), u64::MAX).map_err(wire)?,
    };
    // A large resource shared by many small items is copied into every record, and each item
    // is copied once more while its record is made: bound the split before it is made.
    let total = decoded
        .saturating_add(walked.largest_item_bytes)
        .saturating_add(split_estimate(&request));
    tracing::debug!(decoded, total, "OTLP request estimated");
    if total > MEMORY_BUDGET_BYTES {
        return Err(over(total));
    }
    let redactor = Redactor::new(&config.redaction);
    let records = receive::records(request, received.arrival, &redactor);
    let max = config.max_record_bytes();
    let count = records.len();
    let mut encoded = Vec::with_capacity(count);
    // Each record is dropped once encoded: its item is not held twice.
    for mut record in records {
        // An item above `storage.max_record_bytes` keeps its first bytes, flagged.
        record.truncate_to(max);
        match record.encode() {
            Ok(bytes) => encoded.push(bytes),
            Err(error) => tracing::error!(%error, "cannot encode an OTLP record"),
        }
    }
    let rejected = count - encoded.len();
    let stored = if encoded.is_empty() {
        None
    } else {
        Some(crate::ingest::hook::store_encoded(root, config, &encoded))
    };
    Ok((encoded.len(), rejected, stored))
}

/// Bytes in the inbox not yet sealed (`inbox/active.wal`; 0 when absent).
pub(super) fn inbox_backlog(state: &AppState) -> u64 {
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
