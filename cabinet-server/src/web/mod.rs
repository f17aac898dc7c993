//! The HTTP side: the router and what every handler shares.

pub mod ingest;

use std::sync::Arc;

use axum::Router;

use crate::store::Store;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Arc<dyn Store>,
}

/// The whole router: ingest now; the portal and the API join it.
pub fn router(state: AppState) -> Router {
    Router::new().merge(ingest::routes()).with_state(state)
}
