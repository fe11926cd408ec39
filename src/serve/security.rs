//! Who may talk to `ctrace serve`: the access token, the `Host` allow-list against DNS
//! rebinding, the `Origin` check on writes and the hook's content type (`docs/api.md`,
//! "Security"). One axum middleware, `guard`, layered over every route.
//!
//! Invariants:
//! - a request whose `Host` is not one of the allowed hosts (or, on an unspecified
//!   bind address, an IP literal with the bound port) is answered 403 before anything else;
//! - a request with a method other than GET/HEAD/OPTIONS and an `Origin` header that does not
//!   name an allowed host is answered 403 (no `Origin`, as curl and Claude Code's HTTP hooks
//!   send, is fine); no response carries `Access-Control-Allow-Origin`;
//! - when a token is required, every path but `/`, `/assets/*` and `/login` needs
//!   `Authorization: Bearer <token>` or the `ctrace_token` cookie, compared in constant time;
//! - the token file `<store>/serve.token` is created 0600 with `O_EXCL` and `O_NOFOLLOW`, and
//!   an existing one is used only if it is a regular file of this user that group and others
//!   cannot read.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::log::private::{FILE_MODE, NOFOLLOW, euid};

/// Name of the token file in the store directory.
pub const TOKEN_FILE: &str = "serve.token";
/// Name of the cookie the login link sets.
pub const COOKIE: &str = "ctrace_token";
/// Random bytes in a token (written as 64 hex digits).
const TOKEN_BYTES: usize = 32;

/// Errors of the token file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token file could not be created, opened or read.
    #[error("token file {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The token file is a symbolic link.
    #[error("refusing token file {}: it is a symbolic link", path.display())]
    Symlink {
        /// The file.
        path: PathBuf,
    },
    /// The token file is not a regular file.
    #[error("refusing token file {}: it is not a regular file", path.display())]
    NotRegularFile {
        /// The file.
        path: PathBuf,
    },
    /// The token file belongs to another user.
    #[error("refusing token file {}: it belongs to uid {owner}, not to uid {expected}", path.display())]
    Owner {
        /// The file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// This process's effective uid.
        expected: u32,
    },
    /// Group or others may read or write the token file.
    #[error(
        "refusing token file {}: group or others may access it (mode {mode:04o}; run chmod 600)",
        path.display()
    )]
    NotPrivate {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The token file does not hold a token (64 hex digits).
    #[error("token file {} does not hold a token (64 hex digits); delete it to make a new one", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
    },
    /// The system's random source failed.
    #[error("reading random bytes for a token")]
    Random(#[source] getrandom::Error),
}

/// The token of the store at `root`: read from `<root>/serve.token`, or made (32 random bytes
/// as 64 hex digits) and written there with mode 0600 when the file does not exist. The same
/// token is used across restarts; deleting the file makes a new one at the next start.
///
/// # Errors
/// [`TokenError`] when the file is a symlink, not a regular file, another user's, readable
/// by group or others, malformed, or cannot be read or created.
pub fn load_or_create_token(root: &Path) -> Result<String, TokenError> {
    let path = root.join(TOKEN_FILE);
    match read_token(&path) {
        Err(TokenError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
        other => return other,
    }
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(TokenError::Random)?;
    let token = hex::encode(bytes);
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(NOFOLLOW)
        .open(&path);
    let mut file = match created {
        Ok(file) => file,
        // Another `serve` made it meanwhile (or it is a dangling symlink): read and check it.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            return read_token(&path);
        }
        Err(source) => return Err(TokenError::Io { path, source }),
    };
    let written = file
        .write_all(format!("{token}\n").as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(source) = written {
        let _ = std::fs::remove_file(&path);
        return Err(TokenError::Io { path, source });
    }
    tracing::info!(path = %path.display(), "created the serve token");
    Ok(token)
}

/// Reads and checks an existing token file.
fn read_token(path: &Path) -> Result<String, TokenError> {
    let io = |source| TokenError::Io {
        path: path.to_path_buf(),
        source,
    };
    let link = std::fs::symlink_metadata(path).map_err(io)?;
    if link.file_type().is_symlink() {
        return Err(TokenError::Symlink {
            path: path.to_path_buf(),
        });
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(NOFOLLOW)
        .open(path)
        .map_err(|source| {
            if source.raw_os_error() == Some(libc::ELOOP) {
                TokenError::Symlink {
                    path: path.to_path_buf(),
                }
            } else {
                io(source)
            }
        })?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(TokenError::NotRegularFile {
            path: path.to_path_buf(),
        });
    }
    if meta.uid() != euid() {
        return Err(TokenError::Owner {
            path: path.to_path_buf(),
            owner: meta.uid(),
            expected: euid(),
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(TokenError::NotPrivate {
            path: path.to_path_buf(),
            mode,
        });
    }
    let mut text = String::new();
    // A token is 65 bytes; read a little more to tell a longer file.
    (&mut file)
        .take(256)
        .read_to_string(&mut text)
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::InvalidData {
                return TokenError::Malformed {
                    path: path.to_path_buf(),
                };
            }
            io(source)
        })?;
    let token = text.trim();
    if token.len() != TOKEN_BYTES * 2 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(TokenError::Malformed {
            path: path.to_path_buf(),
        });
    }
    Ok(token.to_owned())
}

/// What the middleware checks, fixed once the address is bound.
#[derive(Debug)]
pub(crate) struct Security {
    /// The token every request but the page's must carry; `None`: no token (loopback).
    token: Option<String>,
    /// `Host` values accepted, lowercase, with the port (and without it on port 80).
    allowed_hosts: Vec<String>,
    /// The bound port.
    port: u16,
    /// Bound to `0.0.0.0` or `::`: any IP-literal `Host` with the bound port is accepted too
    /// (DNS rebinding needs a name).
    any_ip: bool,
}

impl Security {
    /// The checks for a service bound to `addr`, requiring `token` when given.
    pub(crate) fn new(addr: SocketAddr, token: Option<String>) -> Self {
        let port = addr.port();
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "[::1]".to_owned(),
        ];
        let own = match addr.ip() {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        if !names.contains(&own) && !addr.ip().is_unspecified() {
            names.push(own);
        }
        let mut allowed_hosts: Vec<String> = names.iter().map(|n| format!("{n}:{port}")).collect();
        if port == 80 {
            allowed_hosts.extend(names);
        }
        Self {
            token,
            allowed_hosts,
            port,
            any_ip: addr.ip().is_unspecified(),
        }
    }

    /// The `Host` values accepted (lowercase, `name:port`).
    pub(crate) fn allowed_hosts(&self) -> &[String] {
        &self.allowed_hosts
    }

    /// Whether a token is required.
    pub(crate) fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Whether `host` (a `Host` header value, or the authority of an `Origin`) is allowed.
    fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        if self.allowed_hosts.contains(&host) {
            return true;
        }
        if !self.any_ip {
            return false;
        }
        // `1.2.3.4:PORT` or `[v6]:PORT`: an address, never a name.
        let Ok(addr) = host.parse::<SocketAddr>() else {
            return false;
        };
        addr.port() == self.port
    }

    /// Whether `candidate` is the token, in time independent of where they differ.
    fn token_matches(&self, candidate: &[u8]) -> bool {
        self.token
            .as_deref()
            .is_some_and(|token| bool::from(token.as_bytes().ct_eq(candidate)))
    }

    /// Whether the request carries the token (bearer header or cookie).
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let bearer = headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .filter_map(|value| {
                let (scheme, rest) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .any(|token| self.token_matches(token.as_bytes()));
        bearer || cookie_values(headers).any(|token| self.token_matches(token.as_bytes()))
    }
}

/// The values of the `ctrace_token` cookie in the request's `Cookie` headers.
fn cookie_values(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then_some(value)
        })
}

/// Why the middleware refused a request.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("Host header {host:?} is not allowed (use one of: {})", allowed.join(", "))]
    Host { host: String, allowed: Vec<String> },
    #[error("Origin {origin:?} is not allowed for {method} requests")]
    Origin { origin: String, method: Method },
    #[error("POST /ingest/hook needs Content-Type: application/json, not {found:?}")]
    ContentType { found: String },
    #[error(
        "this service requires its token: Authorization: Bearer <token> (in <store>/serve.token) or the login link it printed"
    )]
    Unauthorized,
    #[error("wrong or missing token in the login link")]
    BadLogin,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = match self {
            Self::Host { .. } | Self::Origin { .. } => StatusCode::FORBIDDEN,
            Self::ContentType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unauthorized | Self::BadLogin => StatusCode::UNAUTHORIZED,
        };
        tracing::warn!(error = %self, %status, "request refused");
        let mut response = (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// The middleware: `Host`, then `Origin`, then the hook's content type, then the token; the
/// login link (`GET /login?token=...`) is answered here when a token is required.
pub(crate) async fn guard(
    State(security): State<Arc<Security>>,
    request: Request,
    next: Next,
) -> Response {
    match check(&security, &request) {
        Err(refusal) => refusal.into_response(),
        Ok(Some(response)) => response,
        Ok(None) => next.run(request).await,
    }
}

/// The checks of [`guard`]; `Ok(Some(_))` is the login link's answer.
fn check(security: &Security, request: &Request) -> Result<Option<Response>, Refusal> {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    if !security.host_allowed(host) {
        return Err(Refusal::Host {
            host: host.to_owned(),
            allowed: security.allowed_hosts().to_vec(),
        });
    }
    let method = request.method();
    if !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        for origin in headers.get_all(header::ORIGIN) {
            let text = origin.to_str().unwrap_or("");
            let authority = text
                .strip_prefix("http://")
                .or_else(|| text.strip_prefix("https://"));
            if !authority.is_some_and(|authority| security.host_allowed(authority)) {
                return Err(Refusal::Origin {
                    origin: text.to_owned(),
                    method: method.clone(),
                });
            }
        }
    }
    let path = request.uri().path();
    if *method == Method::POST && path == "/ingest/hook" {
        let found = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        let media = found.split(';').next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case("application/json") {
            return Err(Refusal::ContentType {
                found: found.to_owned(),
            });
        }
    }
    if security.token().is_none() || path == "/" || path.starts_with("/assets/") {
        return Ok(None);
    }
    if path == "/login" {
        return login(security, request).map(Some);
    }
    if security.authorized(headers) {
        Ok(None)
    } else {
        Err(Refusal::Unauthorized)
    }
}

/// `GET /login?token=T`: with the right token, sets the cookie (HttpOnly, SameSite=Strict)
/// and redirects to `/`.
fn login(security: &Security, request: &Request) -> Result<Response, Refusal> {
    let token = request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .unwrap_or("");
    if *request.method() != Method::GET || !security.token_matches(token.as_bytes()) {
        return Err(Refusal::BadLogin);
    }
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    if let Ok(value) = header::HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// The login link of a service at `addr` with `token` (`localhost` for an unspecified
/// address).
pub fn login_url(addr: SocketAddr, token: &str) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    format!("http://{host}:{}/login?token={token}", addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn security(addr: &str, token: Option<&str>) -> Security {
        Security::new(addr.parse().unwrap(), token.map(str::to_owned))
    }

    #[test]
    fn hosts_on_loopback_and_unspecified_binds() {
        let s = security("127.0.0.1:7317", None);
        assert!(s.host_allowed("localhost:7317"));
        assert!(s.host_allowed("LOCALHOST:7317"));
        assert!(s.host_allowed("[::1]:7317"));
        assert!(!s.host_allowed("localhost:7318"));
        assert!(!s.host_allowed("evil.example:7317"));
        assert!(!s.host_allowed("localhost"));
        assert!(!s.host_allowed("10.0.0.5:7317"));
        let s = security("0.0.0.0:7317", Some("t"));
        assert!(s.host_allowed("10.0.0.5:7317"));
        assert!(!s.host_allowed("10.0.0.5:80"));
        assert!(!s.host_allowed("rebind.example:7317"));
        let s = security("192.168.1.2:80", Some("t"));
        assert!(s.host_allowed("192.168.1.2"));
        assert!(s.host_allowed("192.168.1.2:80"));
    }

    #[test]
    fn tokens_compare_whole() {
        let s = security("127.0.0.1:1", Some("abcd"));
        assert!(s.token_matches(b"abcd"));
        assert!(!s.token_matches(b"abc"));
        assert!(!s.token_matches(b"abcde"));
        assert!(!security("127.0.0.1:1", None).token_matches(b""));
    }

    #[test]
    fn token_file_is_made_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_token(dir.path()).unwrap();
        assert_eq!(first.len(), 64);
        let path = dir.path().join(TOKEN_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create_token(dir.path()).unwrap(), first);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            load_or_create_token(dir.path()),
            Err(TokenError::NotPrivate { mode: 0o640, .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "short\n").unwrap();
        assert!(matches!(
            load_or_create_token(dir.path()),
            Err(TokenError::Malformed { .. })
        ));
    }
}
