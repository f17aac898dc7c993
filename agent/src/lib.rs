//! The register's agent: journals every document and event durably, serves the POS app's
//! local API, and (with the delivery issue) forwards the journal to the cabinet server.
//!
//! - [`config`]: `agent.toml`, parsed into domain types.
//! - [`rules`]: the register's rules as pure functions of (state, command, now).
//! - [`journal`]: the only SQLite code: schema, migrations, the write transaction, reads.
//! - [`writer`]: the one writer thread, committing groups of commands.
//! - [`api`]: the POS API (axum); [`views`]: its JSON answers.
//! - [`delivery`]: the forwarder's decisions, pure; [`forwarder`]: its I/O shell;
//!   [`net`]: the HTTP client (trust roots and DNS that work on Android too).
//! - [`clock`]: injected time.
#![deny(missing_docs)]

pub mod api;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod forwarder;
pub mod journal;
pub mod net;
pub mod rules;
pub mod views;
pub mod writer;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;
use crate::config::Config;
use crate::journal::JournalError;

/// How often the writer reviews the blocking rules when nothing else happens.
const TICK: Duration = Duration::from_secs(5);

/// Why the agent stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The journal could not be opened or written.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The POS API's socket failed.
    #[error("POS API: {0}")]
    Io(#[from] std::io::Error),
    /// The HTTP client for the server could not be built.
    #[error(transparent)]
    Net(#[from] net::NetError),
    /// The writer thread died.
    #[error("the journal writer stopped unexpectedly")]
    WriterLost,
}

/// Runs the agent until `shutdown` resolves: opens the journal (journaling 1010), serves
/// the POS API on `listener`, and on shutdown stops serving, journals 1011 and returns.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let config = Arc::new(config);
    // Built first: a bad `ca_file` stops the agent before it journals anything.
    let client = config.server.as_ref().map(net::client).transpose()?;
    let opening = config.clone();
    let writer_clock = clock.clone();
    let (writer, thread) = tokio::task::spawn_blocking(move || writer::start(opening, writer_clock))
        .await
        .map_err(|_| AgentError::WriterLost)??;
    tracing::info!(listen = %config.listen, "agent started");

    let ticker = {
        let writer = writer.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(TICK);
            loop {
                interval.tick().await;
                if writer.tick().await.is_err() {
                    break;
                }
            }
        })
    };
    let (stop_forwarder, stopping) = tokio::sync::watch::channel(false);
    let forwarder = match (&config.server, client) {
        (Some(server), Some(client)) => {
            let task = forwarder::run(config.clone(), server.clone(), client, writer.clone(), clock.clone(), stopping);
            Some(tokio::spawn(task))
        }
        _ => {
            tracing::warn!("no [server] configured: entries stay in the journal undelivered");
            None
        }
    };
    let state =
        api::AppState { writer: writer.clone(), config: config.clone(), readers: Arc::new(Mutex::new(Vec::new())) };
    let served = axum::serve(listener, api::router(state)).with_graceful_shutdown(shutdown).await;
    ticker.abort();
    stop_forwarder.send_replace(true);
    if let Some(forwarder) = forwarder {
        forwarder.await.ok();
    }
    let stopped = writer.stop().await;
    tokio::task::spawn_blocking(move || thread.join()).await.ok();
    served?;
    stopped.map_err(|_| AgentError::WriterLost)?;
    tracing::info!("agent stopped");
    Ok(())
}
