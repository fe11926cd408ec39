//! Who may talk to `ctrace serve`: the peer check of each connection, the access token and
//! login sessions, the `Host` allow-list against DNS rebinding, the `Origin` check on writes,
//! the hook's content type, and the headers of every answer (`docs/api.md`, "Security";
//! `docs/security.md`, "The service"). `Security::admit` runs once per accepted connection;
//! the middleware `guard` and `response_headers` are layered over every route.
//!
//! Invariants:
//! - on a loopback bind without `--token`, a connection whose client socket belongs to another
//!   user is closed before any HTTP is read; one whose owner cannot be told (no `/proc`, no
//!   entry) must show a credential like any connection off loopback;
//! - a request whose `Host` is not one of the allowed hosts (or, on an unspecified
//!   bind address, an IP literal with the bound port) is answered 403 before anything else;
//! - a request with a method other than GET/HEAD/OPTIONS and an `Origin` header that does not
//!   name an allowed host is answered 403 (no `Origin`, as curl and Claude Code's HTTP hooks
//!   send, is fine); no response carries `Access-Control-Allow-Origin`;
//! - a connection that must show a credential gets every path but `/`, `/assets/*` and
//!   `/login` only with `Authorization: Bearer <token>` (compared in constant time) or the
//!   cookie of a live session (`src/serve/login.rs`); the cookie never holds the token (kept
//!   in `<store>/serve.token`, `src/serve/token.rs`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

pub use super::token::{TOKEN_FILE, TokenError, load_or_create_token};

use super::login::Logins;
use crate::log::private::euid;

/// The session cookie's name, before the bound port (`ctrace_session_7317`).
pub const COOKIE_PREFIX: &str = "ctrace_session_";
/// Cookies of the session cookie's name looked at per request, at most.
const MAX_COOKIES: usize = 8;

/// What one connection's peer check found (per accepted connection, before any HTTP is read;
/// [`Security::admit`]). Every request of the connection carries it as an extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// The client's socket belongs to this service's user (loopback, no `--token`): no
    /// credential needed.
    Owner,
    /// The client must show the token or a session (any connection with `--token` or off
    /// loopback, or one whose owner could not be told).
    Credential,
    /// The client's socket belongs to another user: the connection is closed unanswered.
    Refused {
        /// The other user's uid.
        uid: u32,
    },
}

/// What the middleware checks, fixed once the address is bound.
#[derive(Debug)]
pub(crate) struct Security {
    /// The token; `None` only on loopback without `--token` when it could not be made (then
    /// only the service's own user is answered).
    token: Option<String>,
    /// Every connection must show a credential (a non-loopback address, or `--token`); else
    /// a connection from this user (told by [`super::peer`]) needs none.
    every_connection: bool,
    /// `Host` values accepted, lowercase, with the port (and without it on port 80), and
    /// the `--allow-host` values as given.
    allowed_hosts: Vec<String>,
    /// The bound port.
    port: u16,
    /// Bound to `0.0.0.0` or `::`: any IP-literal `Host` with the bound port is accepted too
    /// (DNS rebinding needs a name).
    any_ip: bool,
    /// This process's effective uid.
    euid: u32,
    /// Login codes and sessions.
    logins: Logins,
    /// The session cookie's name (`ctrace_session_<port>`: cookies are not kept apart by
    /// port, services on two ports would overwrite each other's).
    cookie: String,
    /// Whether the warning that a peer's owner could not be told was logged.
    warned_unknown_peer: AtomicBool,
}

impl Security {
    /// The checks for a service bound to `addr` with `token`; `every_connection`: every
    /// connection must show a credential; `extra_hosts`: `--allow-host` values (checked by
    /// [`parse_allowed_host`]).
    pub(crate) fn new(
        addr: SocketAddr,
        token: Option<String>,
        every_connection: bool,
        extra_hosts: &[String],
    ) -> Self {
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
        for host in extra_hosts {
            let host = host.to_ascii_lowercase();
            if !allowed_hosts.contains(&host) {
                allowed_hosts.push(host);
            }
        }
        Self {
            token,
            every_connection: every_connection || !addr.ip().is_loopback(),
            allowed_hosts,
            port,
            any_ip: addr.ip().is_unspecified(),
            euid: euid(),
            logins: Logins::default(),
            cookie: format!("{COOKIE_PREFIX}{port}"),
            warned_unknown_peer: AtomicBool::new(false),
        }
    }

    /// The `Host` values accepted (lowercase, `name:port`, and the `--allow-host` values).
    pub(crate) fn allowed_hosts(&self) -> &[String] {
        &self.allowed_hosts
    }

    /// Whether every connection needs a credential.
    pub(crate) fn every_connection(&self) -> bool {
        self.every_connection
    }

    /// Whether there is a token (and so a way to log in).
    pub(crate) fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// The login codes and sessions.
    pub(crate) fn logins(&self) -> &Logins {
        &self.logins
    }

    /// The session cookie's name.
    pub(crate) fn cookie_name(&self) -> &str {
        &self.cookie
    }

    /// The peer check of a connection from `peer` to `local` (this end): [`Admission::Owner`]
    /// when the client's socket is this user's, [`Admission::Refused`] when it is another
    /// user's, [`Admission::Credential`] when every connection needs one or the owner cannot be
    /// told (logged once). Blocking: reads `/proc/net/tcp*` ([`super::peer`]).
    pub(crate) fn admit(&self, peer: SocketAddr, local: SocketAddr) -> Admission {
        if self.every_connection || !peer.ip().to_canonical().is_loopback() {
            return Admission::Credential;
        }
        match super::peer::socket_owner(peer, local) {
            Ok(uid) if uid == self.euid => Admission::Owner,
            Ok(uid) => {
                tracing::warn!(
                    uid,
                    %peer,
                    "refused a connection from another user (ctrace serve on loopback answers \
                     only its own user; a proxy running as another user needs --token)"
                );
                Admission::Refused { uid }
            }
            Err(error) => {
                if !self.warned_unknown_peer.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        error = %error,
                        "cannot tell which user a local connection comes from; such \
                         connections must show the token or log in (logged once)"
                    );
                }
                Admission::Credential
            }
        }
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
    pub(crate) fn token_matches(&self, candidate: &[u8]) -> bool {
        self.token
            .as_deref()
            .is_some_and(|token| bool::from(token.as_bytes().ct_eq(candidate)))
    }

    /// Whether the request carries the token (bearer header) or a live session (cookie).
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
        bearer
            || cookie_values(headers, &self.cookie)
                .take(MAX_COOKIES)
                .any(|id| self.logins.session(id))
    }
}

/// The values of the cookie `name` in the request's `Cookie` headers.
fn cookie_values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(move |pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then_some(value)
        })
}

/// Why `--allow-host` refused a value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AllowHostError {
    /// The value is empty.
    #[error("an allowed host is a name, with a port if the browser sends one (NAME[:PORT])")]
    Empty,
    /// The value has a scheme, a path, a query, user info or spaces: it is a URL, not a `Host`.
    #[error("{value:?} is not a Host value: give NAME[:PORT], without scheme, path or user")]
    NotAHost {
        /// The value.
        value: String,
    },
    /// The port is not a number from 1 to 65535.
    #[error("{value:?}: the port must be a number from 1 to 65535")]
    Port {
        /// The value.
        value: String,
    },
}

/// An `--allow-host` value, `NAME[:PORT]` (a DNS name, an IPv4 address or a bracketed IPv6
/// address, with the port the browser sends, if any: none for 80 over http or 443 over
/// https), lowercased.
///
/// # Errors
/// [`AllowHostError`] for an empty value, one with a scheme, path, query, fragment, user info,
/// spaces or characters a host name cannot have, or a bad port.
pub fn parse_allowed_host(value: &str) -> Result<String, AllowHostError> {
    let host = value.trim().to_ascii_lowercase();
    if host.is_empty() {
        return Err(AllowHostError::Empty);
    }
    let not_a_host = || AllowHostError::NotAHost {
        value: value.to_owned(),
    };
    if host.contains(['/', '?', '#', '@']) || host.contains(char::is_whitespace) {
        return Err(not_a_host());
    }
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (inner, after) = rest.split_once(']').ok_or_else(not_a_host)?;
        inner
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| not_a_host())?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(not_a_host)?),
        };
        (None, port)
    } else {
        match host.split_once(':') {
            Some((name, port)) => (Some(name), Some(port)),
            None => (Some(host.as_str()), None),
        }
    };
    if let Some(name) = name {
        let label_ok = |label: &str| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !name.trim_end_matches('.').split('.').all(label_ok) {
            return Err(not_a_host());
        }
    }
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok_and(|p| p != 0);
        if !valid {
            return Err(AllowHostError::Port {
                value: value.to_owned(),
            });
        }
    }
    Ok(host)
}

/// Why the middleware refused a request.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("Host header {host:?} is not allowed (use one of: {}; more with --allow-host)", allowed.join(", "))]
    Host { host: String, allowed: Vec<String> },
    #[error("Origin {origin:?} is not allowed for {method} requests")]
    Origin { origin: String, method: Method },
    #[error("POST /ingest/hook needs Content-Type: application/json, not {found:?}")]
    ContentType { found: String },
    #[error(
        "this service requires a login: Authorization: Bearer <token> (the token is in \
         <store>/serve.token), or log in at /login"
    )]
    Unauthorized,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = match self {
            Self::Host { .. } | Self::Origin { .. } => StatusCode::FORBIDDEN,
            Self::ContentType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
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

/// The middleware: `Host`, then `Origin`, then the hook's content type, then the credential
/// (none for the page, its assets and `/login`, nor on a connection of the service's own user).
pub(crate) async fn guard(
    State(security): State<Arc<Security>>,
    request: Request,
    next: Next,
) -> Response {
    match check(&security, &request) {
        Err(refusal) => refusal.into_response(),
        Ok(()) => next.run(request).await,
    }
}

/// The checks of [`guard`].
fn check(security: &Security, request: &Request) -> Result<(), Refusal> {
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
    if is_page(path) || path == "/login" {
        return Ok(());
    }
    // No extension: not a connection of the accept loop; treat it as a stranger's.
    if request.extensions().get::<Admission>() == Some(&Admission::Owner)
        || security.authorized(headers)
    {
        Ok(())
    } else {
        Err(Refusal::Unauthorized)
    }
}

/// Whether `path` is the dashboard's page or one of its files (no credential, their own
/// caching).
fn is_page(path: &str) -> bool {
    path == "/" || path.starts_with("/assets/")
}

/// The policy of every answer that is not a page: nothing may load, nothing may frame it.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Middleware: headers of every answer. All: `X-Content-Type-Options: nosniff`,
/// `X-Frame-Options: DENY`. Outside the page and its assets (the API, the hook and OTLP
/// targets, `/login`, refusals): `Cache-Control: no-store`, and
/// `Content-Security-Policy: default-src 'none'; frame-ancestors 'none'` unless the answer
/// brings its own (the login form).
pub(crate) async fn response_headers(request: Request, next: Next) -> Response {
    let page = is_page(request.uri().path());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !page {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(API_CSP),
            );
        }
    }
    response
}

/// The login link of a service at `addr` with the single-use `code` (`127.0.0.1` for an
/// unspecified address).
pub fn login_url(addr: SocketAddr, code: &str) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        IpAddr::V4(ip) => ip.to_string(),
        IpAddr::V6(ip) => format!("[{ip}]"),
    };
    format!("http://{host}:{}/login?code={code}", addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn security(addr: &str, token: Option<&str>) -> Security {
        Security::new(addr.parse().unwrap(), token.map(str::to_owned), false, &[])
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
    fn allowed_hosts_from_the_command_line() {
        let extra = [
            parse_allowed_host("LocalHost:8000").unwrap(),
            parse_allowed_host("ctrace.example").unwrap(),
        ];
        let s = Security::new("127.0.0.1:7317".parse().unwrap(), None, false, &extra);
        assert!(s.host_allowed("localhost:8000"));
        assert!(s.host_allowed("ctrace.example"));
        assert!(s.host_allowed("CTRACE.example"));
        assert!(!s.host_allowed("ctrace.example:7317"));
        assert!(!s.host_allowed("localhost:8001"));
        assert!(s.host_allowed("localhost:7317"));
    }

    #[test]
    fn allowed_host_values_are_checked() {
        assert_eq!(
            parse_allowed_host("Proxy.Example:8443").unwrap(),
            "proxy.example:8443"
        );
        assert_eq!(parse_allowed_host("[::1]:8000").unwrap(), "[::1]:8000");
        assert_eq!(parse_allowed_host("10.0.0.2").unwrap(), "10.0.0.2");
        assert_eq!(parse_allowed_host(""), Err(AllowHostError::Empty));
        for url in [
            "http://proxy.example",
            "proxy.example/",
            "proxy.example/dash",
            "user@proxy.example",
            "proxy.example?x",
            "proxy.example#x",
            "proxy example",
            "[::1",
            "[nope]:80",
            "a..b",
        ] {
            assert!(
                matches!(
                    parse_allowed_host(url),
                    Err(AllowHostError::NotAHost { .. })
                ),
                "{url}"
            );
        }
        for port in [
            "proxy.example:",
            "proxy.example:0",
            "proxy.example:65536",
            "x:8a",
        ] {
            assert!(
                matches!(parse_allowed_host(port), Err(AllowHostError::Port { .. })),
                "{port}"
            );
        }
    }

    #[test]
    fn every_connection_needs_a_credential_off_loopback_or_with_the_flag() {
        let local: SocketAddr = "127.0.0.1:7317".parse().unwrap();
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let s = Security::new(local, Some("t".into()), true, &[]);
        assert_eq!(s.admit(peer, local), Admission::Credential);
        let s = Security::new(
            "0.0.0.0:7317".parse().unwrap(),
            Some("t".into()),
            false,
            &[],
        );
        assert!(s.every_connection());
        assert_eq!(s.admit(peer, local), Admission::Credential);
        // A peer that is not loopback is never taken for the owner.
        let s = security("127.0.0.1:7317", Some("t"));
        let remote: SocketAddr = "10.0.0.9:40000".parse().unwrap();
        assert_eq!(s.admit(remote, local), Admission::Credential);
        // No entry in the socket tables (nothing is connected from that port): fail closed.
        assert_eq!(
            s.admit("127.0.0.1:1".parse().unwrap(), local),
            Admission::Credential
        );
        assert!(s.warned_unknown_peer.load(Ordering::Relaxed));
    }

    #[test]
    fn sessions_and_bearer_authorize_but_the_token_cookie_does_not() {
        let s = security("127.0.0.1:7317", Some("abcd"));
        let mut headers = HeaderMap::new();
        assert!(!s.authorized(&headers));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abcd"),
        );
        assert!(s.authorized(&headers));
        let id = s.logins().new_session().unwrap();
        let mut headers = HeaderMap::new();
        let cookie = format!("ctrace_token=abcd; ctrace_session_7317=abcd; ctrace_session_1={id}");
        headers.insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
        assert!(!s.authorized(&headers));
        let cookie = format!("theme=dark; ctrace_session_7317={id}");
        headers.insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
        assert!(s.authorized(&headers));
    }

    #[test]
    fn tokens_compare_whole() {
        let s = security("127.0.0.1:1", Some("abcd"));
        assert!(s.token_matches(b"abcd"));
        assert!(!s.token_matches(b"abc"));
        assert!(!s.token_matches(b"abcde"));
        assert!(!security("127.0.0.1:1", None).token_matches(b""));
    }
}
