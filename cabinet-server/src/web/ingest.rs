//! `POST /ingest/v1/batch` (CONTRACTS §2): CBOR in, CBOR out.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use protocol::wire::MAX_BATCH_BYTES;
use protocol::{Answer, Batch, EntryResult, Refusal, Seq};
use sha2::{Digest, Sha256};

use super::AppState;
use crate::ingest::ChainRefusal;
use crate::store::{IngestOutcome, StoreError};

/// The ingest route, with its body limit (a larger body is `413`).
pub fn routes() -> Router<AppState> {
    Router::new().route("/ingest/v1/batch", post(batch)).layer(DefaultBodyLimit::max(MAX_BATCH_BYTES))
}

fn cbor(status: StatusCode, bytes: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/cbor")], bytes).into_response()
}

fn refuse(status: StatusCode, code: &str, message: String, accepted_through: Option<Seq>) -> Response {
    if status.is_server_error() {
        tracing::error!(code, "{message}");
    } else {
        tracing::warn!(code, "{message}");
    }
    cbor(status, Refusal { code: code.into(), message, accepted_through }.encode())
}

fn store_failure(e: StoreError) -> Response {
    refuse(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", e.to_string(), None)
}

/// The SHA-256 of the bearer token, if the request has one.
fn token_hash(headers: &HeaderMap) -> Option<[u8; 32]> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    (!token.is_empty()).then(|| Sha256::digest(token.as_bytes()).into())
}

async fn batch(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(token_hash) = token_hash(&headers) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "no_token",
            "нужен заголовок Authorization: Bearer <токен кассы>".into(),
            None,
        );
    };
    let store = state.store.clone();
    let device = match tokio::task::spawn_blocking(move || store.device_for_token(&token_hash)).await {
        Ok(Ok(Some(device))) => device,
        Ok(Ok(None)) => return refuse(StatusCode::UNAUTHORIZED, "bad_token", "токен кассы не найден".into(), None),
        Ok(Err(e)) => return store_failure(e),
        Err(e) => return store_failure(StoreError::Database(e.to_string())),
    };
    let batch = match Batch::decode(&body) {
        Ok(batch) => batch,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, "malformed", e.to_string(), None),
    };
    if batch.reg_number != device.reg_number {
        return refuse(
            StatusCode::FORBIDDEN,
            "wrong_register",
            format!("токен принадлежит кассе {}, а пакет — кассы {}", device.reg_number, batch.reg_number),
            None,
        );
    }
    let store = state.store.clone();
    let received_at = chrono::Utc::now();
    let outcome =
        tokio::task::spawn_blocking(move || store.ingest(batch.reg_number, &batch.device, &batch.entries, received_at))
            .await;
    match outcome {
        Ok(Ok(IngestOutcome::Stored { accepted_through, results, directives })) => {
            let answer = Answer {
                accepted_through,
                results: results.into_iter().map(|(seq, status, reason)| EntryResult { seq, status, reason }).collect(),
                directives,
                server_time: received_at.fixed_offset(),
            };
            cbor(StatusCode::OK, answer.encode())
        }
        Ok(Ok(IngestOutcome::Refused(refusal))) => {
            let accepted_through = match &refusal {
                ChainRefusal::Gap { accepted_through, .. } => Some(*accepted_through),
                _ => None,
            };
            refuse(StatusCode::CONFLICT, refusal.code(), refusal.to_string(), accepted_through)
        }
        Ok(Err(e)) => store_failure(e),
        Err(e) => store_failure(StoreError::Database(e.to_string())),
    }
}
