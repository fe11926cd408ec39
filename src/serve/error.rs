//! Errors of the service's requests, answered as `{"error": "<message>"}` with a status: 400
//! for a bad query parameter or an ambiguous session prefix, 404 for an unknown session or
//! route, 413 for a body above the limit, 500 for a store, views or index failure.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::index::IndexError;
use crate::log::LogError;
use crate::views::ViewsError;

/// A request that could not be answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// A query parameter has a value the endpoint does not accept.
    #[error("query parameter `{param}`: `{value}` {expected}")]
    BadParam {
        /// The parameter.
        param: &'static str,
        /// Its value.
        value: String,
        /// What was expected instead.
        expected: &'static str,
    },
    /// No session has this id or prefix.
    #[error("no session `{wanted}` in the store")]
    UnknownSession {
        /// The id or prefix asked for.
        wanted: String,
    },
    /// Several sessions start with this prefix.
    #[error("`{wanted}` matches {} sessions: {}", matches.len(), matches.join(", "))]
    AmbiguousSession {
        /// The prefix asked for.
        wanted: String,
        /// The sessions it matches (at most 5 are named).
        matches: Vec<String>,
    },
    /// The session has no terminal recording.
    #[error("session `{session}` has no terminal recording (record one with `ctrace record`)")]
    NoRecording {
        /// The session.
        session: String,
    },
    /// No task has this id.
    #[error("no task `{wanted}` in the store")]
    UnknownTask {
        /// The id asked for.
        wanted: String,
    },
    /// Several tasks have this id (in different sessions or projects).
    #[error("task `{wanted}` is in several places: {}; add `?session=`", places.join(", "))]
    AmbiguousTask {
        /// The id asked for.
        wanted: String,
        /// Where: `session <id>` or `project <dir>` (at most 5 are named).
        places: Vec<String>,
    },
    /// No such endpoint.
    #[error("no endpoint {path}")]
    NoRoute {
        /// The path asked for.
        path: String,
    },
    /// The request body is above the limit.
    #[error("request body above the limit of {limit_bytes} bytes")]
    TooLarge {
        /// The limit, bytes.
        limit_bytes: usize,
    },
    /// The request body could not be read (the client went away).
    #[error("reading the request body")]
    Body(#[source] axum::Error),
    /// The full-text query is not valid.
    #[error("bad search query")]
    BadQuery(#[source] IndexError),
    /// Reading the views failed.
    #[error("reading the views")]
    Views(#[from] ViewsError),
    /// Reading the log failed.
    #[error("reading the log")]
    Log(#[from] LogError),
    /// Reading the index failed.
    #[error("reading the index")]
    Index(#[source] IndexError),
    /// A response could not be rendered.
    #[error("rendering the response")]
    Render {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The hook payload could not be stored anywhere.
    #[error("the payload could not be stored (inbox and spools failed)")]
    NotStored,
    /// A blocking task panicked or was cancelled.
    #[error("a request task failed")]
    Task(#[from] tokio::task::JoinError),
}

impl From<IndexError> for ApiError {
    fn from(error: IndexError) -> Self {
        if error.is_bad_query() {
            Self::BadQuery(error)
        } else {
            Self::Index(error)
        }
    }
}

impl ApiError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadParam { .. }
            | Self::AmbiguousSession { .. }
            | Self::AmbiguousTask { .. }
            | Self::BadQuery(_) => StatusCode::BAD_REQUEST,
            Self::UnknownSession { .. }
            | Self::UnknownTask { .. }
            | Self::NoRecording { .. }
            | Self::NoRoute { .. } => StatusCode::NOT_FOUND,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Body(_) => StatusCode::BAD_REQUEST,
            Self::Views(_)
            | Self::Log(_)
            | Self::Index(_)
            | Self::Render { .. }
            | Self::NotStored
            | Self::Task(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// `error` and its sources, joined by `: `.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = chain(&self);
        if status.is_server_error() {
            tracing::error!(error = %message, "request failed");
        }
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}

/// Largest error body of a route's own (axum's extractor rejections are one line) that
/// [`json_errors`] reads to wrap it, bytes.
const PLAIN_ERROR_MAX_BYTES: usize = 64 * 1024;

/// Middleware: an error answer that is not JSON already (axum's extractor rejections, such as a
/// query string that does not parse or a repeated parameter, are `text/plain`; a method the
/// route does not take is 405 without a body) is answered as `{"error": "<message>"}` with the
/// same status and headers (`Allow`, `Retry-After`, ...). Answers with a body type of their own
/// (JSON, the OTLP receiver's protobuf `Status`) pass unchanged.
pub(crate) async fn json_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use axum::http::header;
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|value| value.as_bytes().starts_with(b"text/plain"));
    if !plain {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, PLAIN_ERROR_MAX_BYTES)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message = match (text.is_empty(), status) {
        (false, _) => text,
        (true, StatusCode::METHOD_NOT_ALLOWED) => format!("{method} is not allowed on {path}"),
        (true, _) => status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_owned(),
    };
    let mut answer = (status, Json(serde_json::json!({ "error": message }))).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().append(name, value.clone());
        }
    }
    answer
}
