//! Who is asking: server-side sessions (tower-sessions over our store), API tokens, CSRF,
//! and the login guard.
//!
//! A session cookie is `HttpOnly`, `SameSite=Lax`, `Secure` under TLS; the id changes at
//! login and at a password change; a session ends after 30 idle minutes or 12 hours in all,
//! and logout deletes it on the server. Every form carries the session's CSRF token, and
//! the API answers a cookie-authenticated write only with the token in `X-CSRF-Token`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};
use tower_sessions::cookie::SameSite;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions::{Expiry, Session, SessionManagerLayer};

use super::{AppState, api_error};
use crate::store::{Scope, SessionRecord, Store, User, UserId};

/// The session cookie's name.
pub const COOKIE: &str = "cabinet_session";
/// A session ends after this long without a request.
pub const IDLE: TimeDelta = TimeDelta::minutes(30);
/// A session ends this long after login, however busy.
pub const ABSOLUTE: TimeDelta = TimeDelta::hours(12);

const USER: &str = "user";
const LOGIN_AT: &str = "login_at";
const CSRF: &str = "csrf";
/// The taxpayer chosen in «Смена УНП».
pub const SELECTED_UNP: &str = "unp";

/// The session layer over the store.
pub fn session_layer(store: Arc<dyn Store>, secure: bool) -> SessionManagerLayer<SessionBackend> {
    SessionManagerLayer::new(SessionBackend { store, saved: Arc::default() })
        .with_name(COOKIE)
        // Saved on every request, so the idle timeout counts from the last request; the
        // backend skips writes that would change nothing but a few seconds of expiry.
        .with_always_save(true)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(secure)
        .with_expiry(Expiry::OnInactivity(time::Duration::seconds(IDLE.num_seconds())))
}

/// tower-sessions' store trait over ours: records are kept by the SHA-256 of their id,
/// with their user beside them so a password change can end every other session.
#[derive(Clone)]
pub struct SessionBackend {
    store: Arc<dyn Store>,
    /// What was last written or read per session.
    saved: Arc<Mutex<HashMap<[u8; 32], Saved>>>,
}

/// A session as last written or read: its data's hash and its expiry.
type Saved = (u64, i64);

/// A session's expiry is rewritten only when it moved this much (seconds): a page view
/// must not cost a disk write each time.
const EXPIRY_SLACK: i64 = 60;

fn data_hash(data: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut hasher);
    hasher.finish()
}

impl std::fmt::Debug for SessionBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionBackend")
    }
}

/// What is stored of a session id.
pub fn session_id_hash(id: &Id) -> [u8; 32] {
    Sha256::digest(id.to_string().as_bytes()).into()
}

fn to_row(record: &Record) -> session_store::Result<SessionRecord> {
    Ok(SessionRecord {
        id_hash: session_id_hash(&record.id),
        user: record.data.get(USER).and_then(serde_json::Value::as_i64).map(UserId),
        // Keys sorted, so equal data always gives equal text (a `HashMap` iterates in any order).
        data: serde_json::to_string(&record.data.iter().collect::<std::collections::BTreeMap<_, _>>())
            .map_err(|e| session_store::Error::Encode(e.to_string()))?,
        expires_at: record.expiry_date.unix_timestamp(),
    })
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

impl SessionBackend {
    fn remember(&self, row: &SessionRecord) {
        let mut saved = self.saved.lock().unwrap_or_else(|p| p.into_inner());
        if saved.len() > 100_000 {
            saved.clear();
        }
        saved.insert(row.id_hash, (data_hash(&row.data), row.expires_at));
    }

    fn unchanged(&self, row: &SessionRecord) -> bool {
        let saved = self.saved.lock().unwrap_or_else(|p| p.into_inner());
        saved.get(&row.id_hash).is_some_and(|(hash, expires)| {
            *hash == data_hash(&row.data) && (row.expires_at - expires).abs() < EXPIRY_SLACK
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, crate::store::StoreError> + Send + 'static,
    ) -> session_store::Result<T> {
        let store = self.store.clone();
        super::store_call(move || f(store.as_ref())).await.map_err(backend)?.map_err(backend)
    }
}

#[async_trait::async_trait]
impl SessionStore for SessionBackend {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        loop {
            let row = to_row(record)?;
            let written = row.clone();
            if self.blocking(move |s| s.create_session(&written)).await? {
                self.remember(&row);
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let row = to_row(record)?;
        if self.unchanged(&row) {
            return Ok(());
        }
        let written = row.clone();
        self.blocking(move |s| s.save_session(&written)).await?;
        self.remember(&row);
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let hash = session_id_hash(id);
        let now = Utc::now().timestamp();
        let Some(row) = self.blocking(move |s| s.load_session(&hash, now)).await? else { return Ok(None) };
        let record = Record {
            id: *id,
            data: serde_json::from_str(&row.data).map_err(|e| session_store::Error::Decode(e.to_string()))?,
            expiry_date: time::OffsetDateTime::from_unix_timestamp(row.expires_at).map_err(backend)?,
        };
        self.remember(&to_row(&record)?);
        Ok(Some(record))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let hash = session_id_hash(id);
        self.saved.lock().unwrap_or_else(|p| p.into_inner()).remove(&hash);
        self.blocking(move |s| s.delete_session(&hash)).await
    }
}

/// How the viewer proved who they are.
#[derive(Clone)]
pub enum Credential {
    /// The portal's session cookie.
    Session(Session),
    /// An API token.
    Token,
}

/// The signed-in user of a request and what they may see.
#[derive(Clone)]
pub struct Viewer {
    /// The user.
    pub user: User,
    /// Their УНП: the tenant wall every query takes.
    pub scope: Scope,
    /// Session or token.
    pub credential: Credential,
}

/// Why a request has no viewer: the API answers `401`, a page sends the browser to login.
pub enum NoViewer {
    /// For `/api/…`.
    Api(Response),
    /// For pages.
    Page,
    /// The store failed; nobody was refused.
    Unavailable(Response),
}

impl IntoResponse for NoViewer {
    fn into_response(self) -> Response {
        match self {
            NoViewer::Api(response) | NoViewer::Unavailable(response) => response,
            NoViewer::Page => Redirect::to("/login").into_response(),
        }
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = NoViewer;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Viewer, NoViewer> {
        let api = parts.uri.path().starts_with("/api/");
        let refuse = |message: &str| {
            if api {
                NoViewer::Api(api_error(StatusCode::UNAUTHORIZED, "unauthorized", message))
            } else {
                NoViewer::Page
            }
        };
        let store = state.store.clone();
        // API tokens are for the API; the pages (and their forms) need a signed-in session.
        if let Some(token) = bearer(&parts.headers).filter(|_| api) {
            let hash = crate::tokens::token_hash(token);
            let found = super::store_call(move || {
                let id = store.user_for_api_token(&hash, Utc::now())?;
                id.map(|id| store.user(id)).transpose().map(Option::flatten)
            })
            .await;
            return match found {
                Ok(Ok(Some(user))) => Ok(Viewer { scope: Scope::of(&user), user, credential: Credential::Token }),
                Ok(Ok(None)) => Err(refuse("API-токен не найден или отозван")),
                _ => Err(unavailable(api)),
            };
        }
        let session = Session::from_request_parts(parts, state).await.map_err(|_| refuse("нужен вход"))?;
        let user_id: Option<i64> = session.get(USER).await.ok().flatten();
        let login_at: Option<i64> = session.get(LOGIN_AT).await.ok().flatten();
        let (Some(user_id), Some(login_at)) = (user_id, login_at) else {
            return Err(refuse("нужен вход: войдите в личный кабинет или передайте API-токен"));
        };
        if DateTime::from_timestamp(login_at, 0).is_none_or(|t| Utc::now() - t > ABSOLUTE) {
            session.flush().await.ok();
            return Err(refuse("сеанс истёк, войдите снова"));
        }
        let user = super::store_call(move || store.user(UserId(user_id))).await;
        match user {
            Ok(Ok(Some(user))) => {
                Ok(Viewer { scope: Scope::of(&user), user, credential: Credential::Session(session) })
            }
            Ok(Ok(None)) => {
                session.flush().await.ok();
                Err(refuse("нужен вход"))
            }
            // The store failed: the session stays, the request is answered 503.
            _ => Err(unavailable(api)),
        }
    }
}

/// The answer when the store cannot say who is asking.
fn unavailable(api: bool) -> NoViewer {
    let response =
        api_error(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", "хранилище недоступно, попробуйте позже");
    if api { NoViewer::Api(response) } else { NoViewer::Unavailable(response) }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::trim).filter(|t| !t.is_empty())
}

impl Viewer {
    /// The session, when the viewer came with the cookie.
    pub fn session(&self) -> Option<&Session> {
        match &self.credential {
            Credential::Session(session) => Some(session),
            Credential::Token => None,
        }
    }

    /// The session's CSRF token (empty for token callers, who have no forms).
    pub async fn csrf(&self) -> String {
        match self.session() {
            Some(session) => session.get(CSRF).await.ok().flatten().unwrap_or_default(),
            None => String::new(),
        }
    }

    /// Whether a write may go ahead: token callers always (a token cannot be sent by
    /// another site), session callers only with the session's CSRF token.
    pub async fn csrf_ok(&self, presented: Option<&str>) -> bool {
        match self.session() {
            None => true,
            Some(_) => {
                let expected = self.csrf().await;
                !expected.is_empty() && presented.is_some_and(|p| constant_time_eq(p.as_bytes(), expected.as_bytes()))
            }
        }
    }

    /// The taxpayer the pages show: the one chosen in «Смена УНП», else the first.
    pub async fn selected_unp(&self) -> Option<protocol::Unp> {
        let chosen: Option<String> = match self.session() {
            Some(session) => session.get(SELECTED_UNP).await.ok().flatten(),
            None => None,
        };
        chosen
            .and_then(|u| u.parse().ok())
            .filter(|u| self.scope.holds(*u))
            .or_else(|| self.user.taxpayers.first().map(|t| t.unp))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Starts a signed-in session for `user` on `session`: a new id (so an id planted before
/// login is worthless), the login time for the absolute timeout, and a fresh CSRF token.
pub async fn sign_in(session: &Session, user: &User) -> Result<(), tower_sessions::session::Error> {
    session.cycle_id().await?;
    session.clear().await;
    session.insert(USER, user.id.0).await?;
    session.insert(LOGIN_AT, Utc::now().timestamp()).await?;
    session.insert(CSRF, crate::tokens::new_token()).await?;
    if let Some(first) = user.taxpayers.first() {
        session.insert(SELECTED_UNP, first.unp.to_string()).await?;
    }
    Ok(())
}

/// Whether a form POST comes from our own pages, judged by its `Origin` header when the
/// browser sends one (the login form has no session to carry a CSRF token yet). Our own
/// address is the `Host` header, or the URI's authority under HTTP/2, which has no `Host`.
pub fn same_origin(method: &Method, uri: &Uri, headers: &HeaderMap) -> bool {
    if method == Method::GET || method == Method::HEAD {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else { return true };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or_default();
    let Some((scheme, origin_host)) = origin.split_once("://") else { return false };
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    !host.is_empty() && (origin_host == host || format!("{origin_host}{default_port}") == host)
}

/// Password attempts per account: after [`LoginGuard::MAX_FAILURES`] within the window,
/// that account is refused until the window passes, whatever the password (per account,
/// so one attacker on many addresses is stopped too). An attempt counts *before* the
/// password is checked, so parallel guesses cannot slip past the limit; a success clears it.
#[derive(Default)]
pub struct LoginGuard {
    attempts: Mutex<HashMap<String, (u32, DateTime<Utc>)>>,
}

impl LoginGuard {
    /// Failures allowed within [`LoginGuard::WINDOW`].
    pub const MAX_FAILURES: u32 = 5;
    /// How long failures are remembered.
    pub const WINDOW: TimeDelta = TimeDelta::minutes(15);

    /// The key an account is counted under: its login as the store matches it (trimmed,
    /// case-insensitive), so spellings of one login share one count.
    pub fn key(login: &str) -> String {
        login.trim().to_lowercase()
    }

    /// Counts an attempt for `login`; `false` when the account is locked for now.
    pub fn attempt(&self, login: &str, now: DateTime<Utc>) -> bool {
        let mut attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: a flood of made-up logins must not grow the map without end.
        if attempts.len() > 100_000 {
            attempts.retain(|_, (_, since)| now - *since <= Self::WINDOW);
        }
        let entry = attempts.entry(Self::key(login)).or_insert((0, now));
        if now - entry.1 > Self::WINDOW {
            *entry = (0, now);
        }
        if entry.0 >= Self::MAX_FAILURES {
            return false;
        }
        entry.0 += 1;
        true
    }

    /// Forgets the attempts after a success.
    pub fn succeeded(&self, login: &str) {
        self.attempts.lock().unwrap_or_else(|p| p.into_inner()).remove(&Self::key(login));
    }
}

/// Shared by the pages and the API: the guard as part of the state.
pub type SharedGuard = Arc<LoginGuard>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_stops_an_account_after_five_attempts_whatever_its_spelling() {
        let guard = LoginGuard::default();
        let t0 = Utc::now();
        for spelling in ["demo", " Demo", "DEMO ", "demo\t", "\u{2003}demo"] {
            assert!(guard.attempt(spelling, t0), "{spelling:?}");
        }
        assert!(!guard.attempt("demo", t0 + TimeDelta::minutes(1)));
        assert!(guard.attempt("other", t0));
        assert!(guard.attempt("demo", t0 + TimeDelta::minutes(16)));
        guard.succeeded(" DEMO");
        assert!(guard.attempt("demo", t0));
    }

    #[test]
    fn origin_must_be_our_host_when_sent() {
        let uri: Uri = "/login".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&Method::POST, &uri, &headers));
        headers.insert(header::ORIGIN, "http://127.0.0.1:8080".parse().unwrap());
        assert!(same_origin(&Method::POST, &uri, &headers));
        headers.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(!same_origin(&Method::POST, &uri, &headers));
        assert!(same_origin(&Method::GET, &uri, &headers));
        // HTTP/2: no Host header, the authority is in the URI; a default port may be spelled out.
        let h2: Uri = "https://kassa.example.by/login".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, "https://kassa.example.by".parse().unwrap());
        assert!(same_origin(&Method::POST, &h2, &headers));
        headers.insert(header::HOST, "kassa.example.by:443".parse().unwrap());
        assert!(same_origin(&Method::POST, &h2, &headers));
        headers.insert(header::HOST, "other.example.by".parse().unwrap());
        assert!(!same_origin(&Method::POST, &h2, &headers));
    }
}
