//! The cabinet server: receives the registers' batches, stores them, and (with the portal
//! issue) serves the merchants' portal and JSON API.
//!
//! - [`config`]: `cabinet.toml` and `CABINET_*` overrides.
//! - [`ingest`]: pure: what to do with a batch, given the stored chain head.
//! - [`store`]: the `Store` trait and its SQLite backend — the only SQL.
//! - [`web`]: the axum router and handlers.
//! - [`tokens`]: device and API tokens (only their SHA-256 is stored).
//! - [`demo`]: `cabinet-server demo`, the whole system on one machine with simulated registers.
#![deny(missing_docs)]

pub mod accounts;
pub mod config;
pub mod demo;
pub mod export;
pub mod ingest;
pub mod portal;
pub mod store;
pub mod tokens;
pub mod web;

use std::future::Future;
use std::sync::Arc;

use crate::config::Config;
use crate::store::Store;
use crate::store::sqlite::SqliteStore;

/// Opens the store the configuration names.
pub fn open_store(config: &Config) -> Result<Arc<dyn Store>, store::StoreError> {
    if config.database_url.starts_with("postgres://") || config.database_url.starts_with("postgresql://") {
        return Err(store::StoreError::Database("the PostgreSQL backend is not built yet".into()));
    }
    Ok(Arc::new(SqliteStore::open(&SqliteStore::path_of(&config.database_url))?))
}

/// Serves ingest (and the portal) on `listener` until `shutdown` resolves; over HTTPS when
/// the configuration has a certificate and key.
pub async fn serve(
    config: &Config,
    listener: std::net::TcpListener,
    store: Arc<dyn Store>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = web::router(web::AppState::new(store), config.tls.is_some());
    listener.set_nonblocking(true)?;
    match &config.tls {
        None => {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            axum::serve(listener, app).with_graceful_shutdown(shutdown).await
        }
        Some(tls) => {
            let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key).await?;
            let handle = axum_server::Handle::new();
            let stopper = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                stopper.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
            });
            axum_server::from_tcp_rustls(listener, rustls)?.handle(handle).serve(app.into_make_service()).await
        }
    }
}
