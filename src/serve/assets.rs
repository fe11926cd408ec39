//! The dashboard: the files under `web/` (the page, its script and style, and the vendored
//! libraries under `web/vendor/`), embedded in the binary by `rust-embed` in every profile, so
//! the page works with no network and no files next to the binary. `docs/dashboard.md`
//! describes the page.
//!
//! Invariants:
//! - `GET /` is `web/index.html` with a `Content-Security-Policy` that allows only this origin
//!   (styles inline too: Mermaid writes `style` attributes; WebAssembly for the terminal player);
//! - `GET /assets/{path}` is `web/{path}` with its media type, a strong `ETag` (the file's
//!   SHA-256) and `Cache-Control: no-cache` (the browser revalidates, and gets 304 while the
//!   binary is the same); an unknown path is the API's JSON 404.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// The files of the dashboard, from `web/` at build time.
#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct Web;

/// The policy of the page: everything from this origin only; inline styles for Mermaid's SVG,
/// `wasm-unsafe-eval` for asciinema-player's terminal emulator.
const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
                   style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; \
                   frame-ancestors 'none'";

/// `GET /`: the page.
pub(crate) async fn index(headers: HeaderMap) -> Response {
    let mut response = file("index.html", &headers);
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

/// `GET /assets/{*path}`: one embedded file.
pub(crate) async fn asset(
    axum::extract::Path(path): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    file(&path, &headers)
}

/// The embedded file at `path`, 304 when `If-None-Match` names its ETag, the JSON 404 when
/// there is no such file.
fn file(path: &str, request: &HeaderMap) -> Response {
    let Some(file) = Web::get(path) else {
        return ApiError::NoRoute {
            path: format!("/assets/{path}"),
        }
        .into_response();
    };
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let mime = match std::path::Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
    {
        // `mime_guess` says `application/javascript`; the HTML standard's name is `text/…`.
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("md" | "txt") | None => "text/plain; charset=utf-8",
        _ => file.metadata.mimetype(),
    };
    if let Ok(value) = HeaderValue::from_str(mime) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    (headers, file.data.into_owned()).into_response()
}
