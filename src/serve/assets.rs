//! The dashboard: the files under `web/` (the page, its script and style, the login form and
//! the vendored libraries under `web/vendor/`), embedded in the binary by `rust-embed` in every
//! profile, so the page works with no network and no files next to the binary.
//! `docs/dashboard.md` describes the page.
//!
//! Invariants:
//! - every HTML answer (`GET /`, which is `web/index.html`, any `.html` under `/assets/`, and
//!   the login form of [`html_page`]) has a `Content-Security-Policy` that allows only this
//!   origin (styles inline too: Mermaid writes `style` attributes; WebAssembly for the terminal
//!   player), forms posting only here, and no framing (`frame-ancestors 'none'`,
//!   `X-Frame-Options: DENY`);
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

/// The policy of every HTML answer: everything from this origin only; inline styles for
/// Mermaid's SVG, `wasm-unsafe-eval` for asciinema-player's terminal emulator.
pub(crate) const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
                   style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

/// `GET /`: the page.
pub(crate) async fn index(headers: HeaderMap) -> Response {
    file("index.html", &headers)
}

/// The embedded HTML file `name` (under `web/`) with each `(marker, text)` of `replace`
/// substituted, answered 200 with the page's headers and `Cache-Control: no-store`; the JSON
/// 404 when there is no such file. `text` goes in as it is: only fixed text of this crate.
pub(crate) fn html_page(name: &str, replace: &[(&str, &str)]) -> Response {
    let Some(file) = Web::get(name) else {
        return ApiError::NoRoute {
            path: format!("/assets/{name}"),
        }
        .into_response();
    };
    let mut text = String::from_utf8_lossy(&file.data).into_owned();
    for (marker, value) in replace {
        text = text.replace(marker, value);
    }
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    page_headers(&mut headers);
    (headers, text).into_response()
}

/// The headers of every HTML answer: the policy, no framing, no sniffing.
fn page_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
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
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // A document a browser may render on its own (HTML, SVG, XML) gets the page's policy.
    if mime.starts_with("text/html") || mime.contains("xml") {
        page_headers(&mut headers);
    }
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    if let Ok(value) = HeaderValue::from_str(mime) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    (headers, file.data.into_owned()).into_response()
}
