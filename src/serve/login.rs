//! Logging the dashboard in when the service requires its token (`docs/api.md`, "Security"):
//! single-use login codes (the link printed at start), sessions kept in memory, and `/login`.
//!
//! - `GET /login?code=C` with a code [`Logins::new_code`] made (at most 10 minutes ago, never
//!   used) starts a session: 303 to `/` with the session cookie. A used, expired or unknown
//!   code is 401 with the login form.
//! - `GET /login` is the form (`web/login.html`); `POST /login` with the form's `token` (the
//!   content of `<store>/serve.token`) starts a session when it is the token (compared in
//!   constant time), else 401 with the form.
//!
//! Invariants:
//! - the cookie holds a random session id, never the token; codes and session ids are 32
//!   random bytes from the OS (64 hex digits) and only their SHA-256 is kept, so lookups take
//!   no time that depends on a secret;
//! - a code works once; a session lasts until 30 days pass without a request, or the service
//!   stops (nothing is written to disk);
//! - at most [`MAX_CODES`] codes and [`MAX_SESSIONS`] sessions are kept: a new one replaces the
//!   oldest (the least recently used session).
//! - the form is a static page with no script; the only text put into it is one of this
//!   module's fixed messages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::security::Security;

/// How long a login code stays valid.
pub(crate) const CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// How long a session lasts without a request (also the cookie's `Max-Age`).
pub(crate) const SESSION_IDLE: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Login codes kept at most.
pub(crate) const MAX_CODES: usize = 64;
/// Sessions kept at most.
pub(crate) const MAX_SESSIONS: usize = 1024;
/// Random bytes in a code or a session id.
const SECRET_BYTES: usize = 32;

/// The SHA-256 of a code or session id: what the maps hold.
type Key = [u8; 32];

/// The login codes and sessions of one running service.
#[derive(Debug, Default)]
pub(crate) struct Logins {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Code → when it expires.
    codes: HashMap<Key, Instant>,
    /// Session → when it was last used.
    sessions: HashMap<Key, Instant>,
}

impl Logins {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The maps stay consistent whatever a panicking holder did: use them.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new single-use login code, valid for [`CODE_LIFETIME`].
    ///
    /// # Errors
    /// When the system's random source fails.
    pub(crate) fn new_code(&self) -> Result<String, getrandom::Error> {
        let (code, key) = secret()?;
        let now = Instant::now();
        let mut inner = self.lock();
        inner.codes.retain(|_, expires| *expires > now);
        evict_oldest(&mut inner.codes, MAX_CODES);
        inner.codes.insert(key, now + CODE_LIFETIME);
        Ok(code)
    }

    /// Whether `code` is a live code; it is used up either way.
    pub(crate) fn redeem(&self, code: &str) -> bool {
        let now = Instant::now();
        self.lock()
            .codes
            .remove(&key(code))
            .is_some_and(|expires| expires > now)
    }

    /// A new session id, valid while used at least every [`SESSION_IDLE`].
    ///
    /// # Errors
    /// When the system's random source fails.
    pub(crate) fn new_session(&self) -> Result<String, getrandom::Error> {
        let (id, key) = secret()?;
        let now = Instant::now();
        let mut inner = self.lock();
        inner
            .sessions
            .retain(|_, used| now.duration_since(*used) < SESSION_IDLE);
        evict_oldest(&mut inner.sessions, MAX_SESSIONS);
        inner.sessions.insert(key, now);
        Ok(id)
    }

    /// Whether `id` names a live session; a live one counts as used now.
    pub(crate) fn session(&self, id: &str) -> bool {
        let now = Instant::now();
        let mut inner = self.lock();
        let key = key(id);
        match inner.sessions.get_mut(&key) {
            Some(used) if now.duration_since(*used) < SESSION_IDLE => {
                *used = now;
                true
            }
            Some(_) => {
                inner.sessions.remove(&key);
                false
            }
            None => false,
        }
    }
}

/// Removes the entries with the smallest instants until fewer than `max` remain.
fn evict_oldest(map: &mut HashMap<Key, Instant>, max: usize) {
    while map.len() >= max {
        let Some(oldest) = map.iter().min_by_key(|(_, at)| **at).map(|(k, _)| *k) else {
            return;
        };
        map.remove(&oldest);
    }
}

/// A new secret (hex) and its key.
fn secret() -> Result<(String, Key), getrandom::Error> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes)?;
    let text = hex::encode(bytes);
    let key = key(&text);
    Ok((text, key))
}

fn key(secret: &str) -> Key {
    Sha256::digest(secret.as_bytes()).into()
}

/// The query of `GET /login` (other parameters, such as the old `token=`, are ignored).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct LoginQuery {
    code: Option<String>,
}

/// The form of `POST /login`.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    token: String,
}

/// Why the form is shown again.
#[derive(Debug, Clone, Copy)]
enum Notice {
    /// A login link whose code was used, expired or never made.
    StaleCode,
    /// A token that is not the service's.
    WrongToken,
    /// The service could not make a session (the random source failed).
    NoSession,
}

impl Notice {
    fn text(self) -> &'static str {
        match self {
            Self::StaleCode => {
                "This login link was used already or has expired (links work once, for 10 \
                 minutes). Paste the token instead."
            }
            Self::WrongToken => "That is not this service's token.",
            Self::NoSession => "The service could not start a session; see its log.",
        }
    }
}

/// `GET /login[?code=C]`: the code's session, else the form.
pub(crate) async fn page(
    State(security): State<Arc<Security>>,
    Query(query): Query<LoginQuery>,
) -> Response {
    match query.code {
        Some(code) if security.logins().redeem(&code) => start_session(&security),
        Some(_) => form(StatusCode::UNAUTHORIZED, Some(Notice::StaleCode)),
        None => form(StatusCode::OK, None),
    }
}

/// `POST /login` (`application/x-www-form-urlencoded`, `token=...`): a session when the token
/// is right, else 401 with the form.
pub(crate) async fn submit(
    State(security): State<Arc<Security>>,
    Form(login): Form<LoginForm>,
) -> Response {
    if security.token_matches(login.token.trim().as_bytes()) {
        start_session(&security)
    } else {
        tracing::warn!("login refused: wrong token");
        form(StatusCode::UNAUTHORIZED, Some(Notice::WrongToken))
    }
}

/// A new session: 303 to `/` with its cookie.
fn start_session(security: &Security) -> Response {
    let id = match security.logins().new_session() {
        Ok(id) => id,
        Err(error) => {
            tracing::error!(%error, "cannot make a session id");
            return form(StatusCode::INTERNAL_SERVER_ERROR, Some(Notice::NoSession));
        }
    };
    let cookie = format!(
        "{}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        security.cookie_name(),
        SESSION_IDLE.as_secs()
    );
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    tracing::info!("login: session started");
    response
}

/// The login form with `status`, and `notice` above it.
fn form(status: StatusCode, notice: Option<Notice>) -> Response {
    let message = notice
        .map(|n| format!("<p class=\"error\" role=\"alert\">{}</p>", n.text()))
        .unwrap_or_default();
    let mut response = super::assets::html_page("login.html", &[("<!-- notice -->", &message)]);
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_works_once() {
        let logins = Logins::default();
        let code = logins.new_code().unwrap();
        assert_eq!(code.len(), 64);
        assert!(!logins.redeem("nope"));
        assert!(logins.redeem(&code));
        assert!(!logins.redeem(&code));
    }

    #[test]
    fn an_expired_code_is_refused() {
        let logins = Logins::default();
        let code = logins.new_code().unwrap();
        let past = Instant::now().checked_sub(Duration::from_secs(1));
        let Some(past) = past else { return };
        for expires in logins.lock().codes.values_mut() {
            *expires = past;
        }
        assert!(!logins.redeem(&code));
    }

    #[test]
    fn sessions_expire_when_idle_and_are_bounded() {
        let logins = Logins::default();
        let id = logins.new_session().unwrap();
        assert!(logins.session(&id));
        assert!(!logins.session("0".repeat(64).as_str()));
        let Some(idle) = Instant::now().checked_sub(SESSION_IDLE) else {
            return;
        };
        for used in logins.lock().sessions.values_mut() {
            *used = idle;
        }
        assert!(!logins.session(&id));
        assert!(logins.lock().sessions.is_empty());
        let first = logins.new_session().unwrap();
        let Some(earlier) = Instant::now().checked_sub(Duration::from_secs(1)) else {
            return;
        };
        logins.lock().sessions.insert(key(&first), earlier);
        for _ in 0..MAX_SESSIONS {
            logins.new_session().unwrap();
        }
        assert_eq!(logins.lock().sessions.len(), MAX_SESSIONS);
        assert!(
            !logins.session(&first),
            "the least recently used session made room"
        );
    }

    #[test]
    fn codes_are_bounded() {
        let logins = Logins::default();
        let first = logins.new_code().unwrap();
        // Expiring first (it was made first), though still live.
        let soon = Instant::now() + Duration::from_secs(1);
        logins.lock().codes.insert(key(&first), soon);
        for _ in 0..MAX_CODES {
            logins.new_code().unwrap();
        }
        assert_eq!(logins.lock().codes.len(), MAX_CODES);
        assert!(!logins.redeem(&first));
    }
}
