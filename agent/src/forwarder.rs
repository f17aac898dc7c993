//! The forwarder's shell: reads the journal, posts CBOR batches to the server, and hands
//! what the server said to the writer. Every decision (what to send, when to retry) is
//! `delivery::Forwarder`'s; this module only does the I/O.

use std::sync::Arc;

use chrono::Utc;
use protocol::wire::{MAX_BATCH_BYTES, PROTOCOL_VERSION};
use protocol::{Answer, Batch, DeviceInfo, Entry, Refusal};
use reqwest::StatusCode;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::{Config, ServerConfig};
use crate::delivery::{Forwarder, Outcome, Step};
use crate::journal::{JournalError, Reader};
use crate::writer::{DeliveryReport, WriterHandle};

/// Room left in a batch for everything but the entries' payloads.
const BATCH_OVERHEAD: usize = 16 << 10;

/// Runs until `stop` turns true.
pub async fn run(
    config: Arc<Config>,
    server: ServerConfig,
    client: reqwest::Client,
    writer: WriterHandle,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
) {
    let url = format!("{}/ingest/v1/batch", server.url);
    let mut forwarder = Forwarder::new(
        chrono::TimeDelta::from_std(server.heartbeat).unwrap_or(chrono::TimeDelta::MAX),
        chrono::TimeDelta::from_std(server.retry_max).unwrap_or(chrono::TimeDelta::MAX),
    );
    let mut reader: Option<Reader> = None;
    while !*stop.borrow() {
        let cursor = match with_reader(&config, &mut reader, |r| r.cursor()).await {
            Ok(cursor) => cursor,
            Err(e) => {
                unreadable(e, &mut stop).await;
                continue;
            }
        };
        let now = clock.now();
        let entries = match forwarder.next(now, cursor) {
            Step::Wait { until } => {
                let wait = (until - now).to_std().unwrap_or_default();
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = writer.committed() => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            Step::Heartbeat => Vec::new(),
            Step::Send { from } => {
                let max = forwarder.max_entries();
                match with_reader(&config, &mut reader, move |r| r.batch(from, max, MAX_BATCH_BYTES - BATCH_OVERHEAD))
                    .await
                {
                    Ok(entries) => entries,
                    Err(e) => {
                        unreadable(e, &mut stop).await;
                        continue;
                    }
                }
            }
        };
        let device = match with_reader(&config, &mut reader, |r| r.delivery()).await {
            Ok(figures) => DeviceInfo {
                info: config.register.info.clone(),
                pos_version: config.register.pos_version.clone(),
                agent_version: env!("CARGO_PKG_VERSION").into(),
                tsok_expires_at: config.register.tsok_expires_at,
                pending: figures.pending,
                oldest_pending_at: figures.oldest_pending_at,
                sent_at: clock.now_in(config.register.time_zone),
            },
            Err(e) => {
                unreadable(e, &mut stop).await;
                continue;
            }
        };
        let batch = Batch { protocol: PROTOCOL_VERSION, reg_number: config.register.reg_number, device, entries };
        // A stop interrupts a send: if the server committed it, the resend is a duplicate.
        let (mut outcome, report) = tokio::select! {
            sent = send(&client, &url, &server.token, &batch) => sent,
            _ = stop.changed() => return,
        };
        if let Some(report) = report {
            match writer.report(report).await {
                Ok(Ok(())) => {}
                // The server's answer could not be recorded (a full disk, say): the next
                // attempt resends the batch, which the server answers as duplicates — after
                // the usual wait, not at once.
                Ok(Err(e)) => {
                    tracing::error!("cannot record the delivery: {e}");
                    outcome = Outcome::Failed;
                }
                Err(e) => {
                    tracing::warn!("forwarder stopping: {e}");
                    return;
                }
            }
        }
        forwarder.outcome(clock.now(), cursor, outcome, fastrand::f64());
    }
}

/// Logs a journal read failure and waits a second (or until stopped) before trying again.
async fn unreadable(e: JournalError, stop: &mut watch::Receiver<bool>) {
    tracing::error!("forwarder cannot read the journal: {e}");
    tokio::select! {
        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        _ = stop.changed() => {}
    }
}

/// Runs `f` on the forwarder's read connection (opened on first use) off the async threads.
async fn with_reader<T: Send + 'static>(
    config: &Arc<Config>,
    reader: &mut Option<Reader>,
    f: impl FnOnce(&Reader) -> Result<T, JournalError> + Send + 'static,
) -> Result<T, JournalError> {
    let config = config.clone();
    let taken = reader.take();
    let (back, result) = tokio::task::spawn_blocking(move || {
        let reader = match taken {
            Some(reader) => reader,
            None => match Reader::open(&config.data_dir, config.register.reg_number) {
                Ok(reader) => reader,
                Err(e) => return (None, Err(e)),
            },
        };
        let result = f(&reader);
        (Some(reader), result)
    })
    .await
    .map_err(|e| JournalError::Corrupt(format!("reader task: {e}")))?;
    *reader = back;
    result
}

/// Posts one batch; returns how it ended and what to record of it.
async fn send(client: &reqwest::Client, url: &str, token: &str, batch: &Batch) -> (Outcome, Option<DeliveryReport>) {
    let first = batch.entries.first().map(|e: &Entry| e.seq);
    let failed = |message: String| {
        tracing::warn!(?first, "delivery failed: {message}");
        (Outcome::Failed, Some(DeliveryReport::Failed(message)))
    };
    let response = client
        .post(url)
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/cbor")
        .body(batch.encode())
        .send()
        .await;
    let response = match response {
        Ok(response) => response,
        Err(e) => return failed(format!("сервер недоступен: {e}")),
    };
    let status = response.status();
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(e) => return failed(format!("ответ сервера прерван: {e}")),
    };
    match status {
        StatusCode::OK => match Answer::decode(&body) {
            Ok(answer) if !answers(&answer, batch) => failed(format!(
                "ответ сервера не соответствует пакету: {} результатов на {} записей, принято по {}",
                answer.results.len(),
                batch.entries.len(),
                answer.accepted_through
            )),
            Ok(answer) => {
                let accepted_through = answer.accepted_through;
                tracing::debug!(?first, entries = batch.entries.len(), %accepted_through, at = %Utc::now(), "delivered");
                (Outcome::Delivered { accepted_through }, Some(DeliveryReport::Answered(answer)))
            }
            Err(e) => failed(format!("непонятный ответ сервера: {e}")),
        },
        StatusCode::PAYLOAD_TOO_LARGE => (
            Outcome::TooLarge,
            Some(DeliveryReport::Failed(format!(
                "сервер отказал: пакет из {} записей слишком велик",
                batch.entries.len()
            ))),
        ),
        _ => {
            let refusal = Refusal::decode(&body).ok();
            if let Some(Refusal { accepted_through: Some(accepted_through), .. }) = refusal
                && status == StatusCode::CONFLICT
            {
                tracing::info!(%accepted_through, "the server holds less: resending from there");
                return (Outcome::Gap { accepted_through }, None);
            }
            let message = refusal.map_or_else(|| String::from_utf8_lossy(&body).into_owned(), |r| r.message);
            failed(format!("сервер отказал ({status}): {message}"))
        }
    }
}

/// Whether `answer` speaks of exactly `batch`'s entries, in order, and holds them all:
/// anything else is not applied.
fn answers(answer: &Answer, batch: &Batch) -> bool {
    answer.results.len() == batch.entries.len()
        && answer.results.iter().zip(&batch.entries).all(|(result, entry)| result.seq == entry.seq)
        && batch.entries.last().is_none_or(|last| answer.accepted_through >= last.seq)
}
