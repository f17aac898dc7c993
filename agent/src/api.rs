//! The POS app's local API (CONTRACTS §1): JSON in, domain commands to the writer, JSON out.
//! Bodies become domain types here; a malformed body is `400`, a wrong amount `422`.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, FixedOffset};
use protocol::{DocumentKind, DocumentNumber, Item, Money, Quantity, ShiftNumber, Tenders};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::journal::{DeliveryFigures, JournalError, Reader, StoredDocument};
use crate::rules::{Command, DocumentRequest};
use crate::writer::{Idempotency, Reply, WriterHandle};
use protocol::DocumentView;

/// The largest request body accepted.
const MAX_BODY: usize = 256 << 10;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The writer.
    pub writer: WriterHandle,
    /// The configuration.
    pub config: Arc<Config>,
    /// Idle read connections.
    pub readers: Arc<Mutex<Vec<Reader>>>,
}

/// The router of the POS API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/shift/open", post(open_shift))
        .route("/v1/shift/close", post(close_shift))
        .route("/v1/documents", post(make_document))
        .route("/v1/documents/{number}", get(get_document))
        .route("/v1/shift-reports/{shift}", get(get_shift_report))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "нет такого адреса".into())
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// An error answer: `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: String) -> ApiError {
        ApiError { status, code, message }
    }

    fn bad_request(message: String) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn invalid_amount(message: String) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_amount", message)
    }

    fn unavailable(message: String) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", message)
    }
}

impl From<JournalError> for ApiError {
    fn from(e: JournalError) -> ApiError {
        tracing::error!("journal read failed: {e}");
        ApiError::unavailable(format!("журнал недоступен: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body<'a> {
            error: Inner<'a>,
        }
        #[derive(Serialize)]
        struct Inner<'a> {
            code: &'a str,
            message: &'a str,
        }
        let body = Body { error: Inner { code: self.code, message: &self.message } };
        (self.status, axum::Json(body)).into_response()
    }
}

fn json_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Runs `f` on an idle read connection (opening one if none is idle), off the async threads.
async fn read<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&Reader) -> Result<T, JournalError> + Send + 'static,
) -> Result<T, ApiError> {
    let readers = state.readers.clone();
    let config = state.config.clone();
    tokio::task::spawn_blocking(move || {
        let idle = readers.lock().expect("reader pool").pop();
        let reader = match idle {
            Some(reader) => reader,
            None => Reader::open(&config.data_dir, config.register.reg_number)?,
        };
        let result = f(&reader);
        readers.lock().expect("reader pool").push(reader);
        result
    })
    .await
    .map_err(|e| ApiError::unavailable(format!("внутренняя ошибка: {e}")))?
    .map_err(ApiError::from)
}

#[derive(Serialize)]
struct Status {
    reg_number: String,
    serial: String,
    shift: ShiftStatus,
    next_number: DocumentNumber,
    cash_in_drawer: protocol::SignedMoney,
    blocked: Option<BlockedStatus>,
    pending: u64,
    oldest_pending_at: Option<DateTime<FixedOffset>>,
    last_delivery_at: Option<String>,
    last_error: Option<String>,
    tsok_expires_at: Option<DateTime<FixedOffset>>,
}

#[derive(Serialize)]
struct ShiftStatus {
    number: Option<ShiftNumber>,
    open: bool,
    opened_at: Option<DateTime<FixedOffset>>,
}

#[derive(Serialize)]
struct BlockedStatus {
    reason: String,
    since: DateTime<FixedOffset>,
}

/// The status as CONTRACTS §1 lists it, from the register's state and delivery figures.
pub fn status_json(
    config: &Config,
    state: &crate::rules::RegisterState,
    delivery: DeliveryFigures,
) -> serde_json::Value {
    let r = &config.register;
    let shift = match &state.open_shift {
        Some(open) => ShiftStatus { number: Some(open.number), open: true, opened_at: Some(open.opened_at) },
        None => {
            let last = (state.next_shift.0 > r.start.shift.0).then(|| ShiftNumber(state.next_shift.0 - 1));
            ShiftStatus { number: last, open: false, opened_at: None }
        }
    };
    let status = Status {
        reg_number: r.reg_number.to_string(),
        serial: r.serial.to_string(),
        shift,
        next_number: state.next_number,
        cash_in_drawer: state.drawer,
        blocked: state.blocked.as_ref().map(|b| BlockedStatus { reason: b.reason.clone(), since: b.since }),
        pending: delivery.pending,
        oldest_pending_at: delivery.oldest_pending_at,
        last_delivery_at: delivery.last_delivery_at,
        last_error: delivery.last_error,
        tsok_expires_at: r.tsok_expires_at,
    };
    serde_json::to_value(status).expect("status serializes")
}

async fn status(State(state): State<AppState>) -> Result<Response, ApiError> {
    let snapshot = state.writer.snapshot();
    let delivery = read(&state, |reader| reader.delivery()).await?;
    Ok(axum::Json(status_json(&state.config, &snapshot.state, delivery)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CashierBody {
    cashier: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDocument {
    kind: String,
    cashier: String,
    items: Option<Vec<RawItem>>,
    tenders: Option<RawTenders>,
    amount: Option<String>,
    ref_number: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    name: String,
    gtin: Option<String>,
    section: u32,
    price: String,
    quantity: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenders {
    cash: Option<String>,
    card: Option<String>,
    other: Option<String>,
}

/// Parses a JSON body; any failure is a `400` naming what is wrong.
fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<(T, serde_json::Value), ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("тело запроса не является JSON: {e}")))?;
    let parsed = T::deserialize(&value).map_err(|e| ApiError::bad_request(format!("неверный запрос: {e}")))?;
    Ok((parsed, value))
}

fn money(field: &str, text: &str) -> Result<Money, ApiError> {
    text.parse().map_err(|e: protocol::AmountError| ApiError::invalid_amount(format!("{field}: {e}")))
}

impl RawDocument {
    fn into_command(self) -> Result<Command, ApiError> {
        let kind: DocumentKind =
            self.kind.parse().map_err(|e: protocol::kind::UnknownKind| ApiError::bad_request(e.to_string()))?;
        let missing =
            |field: &str| ApiError::bad_request(format!("для документа «{}» нужно поле {field}", kind.label()));
        let unexpected = |present: bool, field: &str| {
            if present {
                Err(ApiError::bad_request(format!("поле {field} не относится к документу «{}»", kind.label())))
            } else {
                Ok(())
            }
        };
        let items = |raw: Option<Vec<RawItem>>| -> Result<Vec<Item>, ApiError> {
            raw.ok_or_else(|| missing("items"))?
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    let line = i + 1;
                    Ok(Item {
                        name: item.name,
                        gtin: item.gtin,
                        section: item.section,
                        price: money(&format!("позиция {line}, цена"), &item.price)?,
                        quantity: item
                            .quantity
                            .parse::<Quantity>()
                            .map_err(|e| ApiError::invalid_amount(format!("позиция {line}, количество: {e}")))?,
                    })
                })
                .collect()
        };
        let tenders = |raw: Option<RawTenders>| -> Result<Tenders, ApiError> {
            let raw = raw.ok_or_else(|| missing("tenders"))?;
            let tender = |name: &str, text: Option<String>| text.map_or(Ok(Money::ZERO), |t| money(name, &t));
            Ok(Tenders {
                cash: tender("tenders.cash", raw.cash)?,
                card: tender("tenders.card", raw.card)?,
                other: tender("tenders.other", raw.other)?,
            })
        };
        let amount = |raw: Option<String>| money("amount", &raw.ok_or_else(|| missing("amount"))?);
        let request = match kind {
            DocumentKind::Payment => {
                unexpected(self.amount.is_some(), "amount")?;
                unexpected(self.ref_number.is_some(), "ref_number")?;
                DocumentRequest::Payment { items: items(self.items)?, tenders: tenders(self.tenders)? }
            }
            DocumentKind::Return => {
                unexpected(self.amount.is_some(), "amount")?;
                DocumentRequest::Return {
                    ref_number: self.ref_number.map(DocumentNumber),
                    items: items(self.items)?,
                    tenders: tenders(self.tenders)?,
                }
            }
            DocumentKind::Annulment => {
                unexpected(self.items.is_some(), "items")?;
                unexpected(self.tenders.is_some(), "tenders")?;
                unexpected(self.amount.is_some(), "amount")?;
                DocumentRequest::Annulment {
                    ref_number: DocumentNumber(self.ref_number.ok_or_else(|| missing("ref_number"))?),
                }
            }
            DocumentKind::CashIn | DocumentKind::CashOut | DocumentKind::Payout => {
                unexpected(self.items.is_some(), "items")?;
                unexpected(self.tenders.is_some(), "tenders")?;
                unexpected(self.ref_number.is_some(), "ref_number")?;
                let amount = amount(self.amount)?;
                match kind {
                    DocumentKind::CashIn => DocumentRequest::CashIn { amount },
                    DocumentKind::CashOut => DocumentRequest::CashOut { amount },
                    _ => DocumentRequest::Payout { amount },
                }
            }
            DocumentKind::ShiftReport => {
                return Err(ApiError::bad_request(
                    "сменный отчет формируется при закрытии смены: POST /v1/shift/close".into(),
                ));
            }
        };
        Ok(Command::Document { cashier: self.cashier, request })
    }
}

/// The idempotency key of a request, if it has one, bound to the request's path and body.
fn idempotency(
    headers: &HeaderMap,
    path: &str,
    canonical_body: &serde_json::Value,
) -> Result<Option<Idempotency>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| ApiError::bad_request("Idempotency-Key: от 1 до 255 печатных символов".into()))?;
    let mut hasher = Sha256::new();
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    // serde_json's map keeps keys sorted: the same JSON in another layout hashes the same.
    hasher.update(serde_json::to_vec(canonical_body).expect("JSON values serialize"));
    Ok(Some(Idempotency { key: key.to_owned(), request_hash: hasher.finalize().into() }))
}

async fn submit(state: &AppState, command: Command, idempotency: Option<Idempotency>) -> Result<Response, ApiError> {
    let reply = state.writer.submit(command, idempotency).await.map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(match reply {
        Reply::Done { status, body } => json_response(status, body),
        Reply::Refused(refusal) => {
            let status = StatusCode::from_u16(refusal.status()).expect("refusal statuses are valid");
            ApiError::new(status, refusal.code(), refusal.to_string()).into_response()
        }
        Reply::KeyReused => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "этот Idempotency-Key уже использован с другим запросом".into(),
        )
        .into_response(),
        Reply::Unavailable(message) => ApiError::unavailable(format!("документ не записан: {message}")).into_response(),
    })
}

async fn open_shift(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let (body, value) = parse_json::<CashierBody>(&body)?;
    let idem = idempotency(&headers, "/v1/shift/open", &value)?;
    submit(&state, Command::OpenShift { cashier: body.cashier }, idem).await
}

async fn close_shift(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let (body, value) = parse_json::<CashierBody>(&body)?;
    let idem = idempotency(&headers, "/v1/shift/close", &value)?;
    submit(&state, Command::CloseShift { cashier: body.cashier }, idem).await
}

async fn make_document(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let (raw, value) = parse_json::<RawDocument>(&body)?;
    let idem = idempotency(&headers, "/v1/documents", &value)?;
    let command = raw.into_command()?;
    submit(&state, command, idem).await
}

fn number_in_path(text: &str) -> Result<u64, ApiError> {
    text.parse().map_err(|_| ApiError::bad_request(format!("«{text}» — не номер")))
}

fn stored_response(state: &AppState, stored: Option<StoredDocument>, what: String) -> Result<Response, ApiError> {
    let stored =
        stored.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("{what} не найден")))?;
    let header = protocol::ReceiptHeader {
        org_name: state.config.register.org_name.clone(),
        unp: state.config.register.unp,
        reg_number: state.config.register.reg_number,
    };
    let view = DocumentView::new(&header, &stored.document, &stored.uid)
        .with_delivery(stored.delivery.as_str(), stored.delivery_error.as_deref());
    Ok(axum::Json(view).into_response())
}

async fn get_document(State(state): State<AppState>, Path(number): Path<String>) -> Result<Response, ApiError> {
    let number = DocumentNumber(number_in_path(&number)?);
    let stored = read(&state, move |reader| reader.document(number)).await?;
    stored_response(&state, stored, format!("документ N {number}"))
}

async fn get_shift_report(State(state): State<AppState>, Path(shift): Path<String>) -> Result<Response, ApiError> {
    let shift = ShiftNumber(
        u32::try_from(number_in_path(&shift)?)
            .map_err(|_| ApiError::bad_request(format!("«{shift}» — не номер смены")))?,
    );
    let stored = read(&state, move |reader| reader.shift_report(shift)).await?;
    stored_response(&state, stored, format!("сменный отчет смены {shift}"))
}
