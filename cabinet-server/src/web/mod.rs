//! The HTTP side: the router and what every handler shares.
//!
//! - [`ingest`]: the registers' batches (CBOR, device tokens).
//! - [`auth`]: sessions, API tokens, CSRF, the login guard.
//! - [`api`]: the merchant JSON API and its exports (CONTRACTS §3).
//! - [`pages`]: the portal's pages (askama templates in `templates/`).

pub mod api;
pub mod auth;
pub mod ingest;
pub mod pages;

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::portal::QueryError;
use crate::store::{Store, StoreError};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Failed logins per account.
    pub guard: auth::SharedGuard,
}

impl AppState {
    /// The state over `store`.
    pub fn new(store: Arc<dyn Store>) -> AppState {
        AppState { store, guard: Arc::default() }
    }

    /// Runs store work off the async threads (SQLite calls block).
    pub async fn blocking<T: Send + 'static, E: From<StoreError> + Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E> {
        let store = self.store.clone();
        store_call(move || f(store.as_ref()))
            .await
            .unwrap_or_else(|e| Err(StoreError::Database(format!("a store task failed: {e}")).into()))
    }
}

/// Runs a short blocking store call (an indexed read, a small write). On a multi-threaded
/// runtime it runs in place (`block_in_place` moves this worker's other tasks elsewhere):
/// a page makes three such calls, and handing each to the blocking pool and back cost more
/// than the reads themselves. Elsewhere it goes to the blocking pool.
pub async fn store_call<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    if tokio::runtime::Handle::current().runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
        Ok(tokio::task::block_in_place(f))
    } else {
        tokio::task::spawn_blocking(f).await
    }
}

/// The whole router: ingest (device tokens, no session), and the portal and API behind the
/// session layer. `secure` marks the session cookie `Secure` (set when serving HTTPS).
pub fn router(state: AppState, secure: bool) -> Router {
    let sessions = auth::session_layer(state.store.clone(), secure);
    let portal = Router::new()
        .merge(api::routes())
        .merge(pages::routes())
        .fallback(not_found)
        .layer(sessions)
        .layer(axum::middleware::map_response(protect));
    Router::new().merge(ingest::routes()).merge(portal).with_state(state)
}

/// An unknown address: JSON under `/api/`, a page elsewhere.
async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        api_error(StatusCode::NOT_FOUND, "not_found", "нет такого адреса API")
    } else {
        pages::not_found_page()
    }
}

/// Headers on every portal and API answer: never framed (no clickjacking of the one-click
/// forms), never cached (pages and JSON hold merchants' data, a new token is shown once),
/// content types taken as sent.
async fn protect(mut response: Response) -> Response {
    use axum::http::HeaderValue;
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("frame-ancestors 'none'"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The JSON error of CONTRACTS: `{"error": {"code", "message"}}`.
pub fn api_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

impl QueryError {
    /// The HTTP status and error code for this error.
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            QueryError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            QueryError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            QueryError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
        }
    }
}

impl IntoResponse for QueryError {
    fn into_response(self) -> Response {
        let (status, code) = self.status();
        if status.is_server_error() {
            tracing::error!("{self}");
            return api_error(status, code, "хранилище недоступно, попробуйте позже");
        }
        api_error(status, code, &self.to_string())
    }
}
