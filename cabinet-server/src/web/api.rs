//! The merchant JSON API (CONTRACTS §3): the same query layer as the pages; every list also
//! answers `?format=xlsx|pdf|csv` with the file the portal's export buttons download.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use chrono::Utc;
use protocol::{RegNumber, Unp};
use serde::Deserialize;

use super::auth::Viewer;
use super::{AppState, api_error};
use crate::export::{self, Format, Report};
use crate::portal::{self, EquipmentView, Listing, QueryError};
use crate::store::{ObjectDetails, ObjectId, Scope, Store};

/// The API's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/unps", get(unps))
        .route("/api/v1/unps/{unp}/equipment", get(equipment))
        .route("/api/v1/equipment/{reg}/documents", get(documents))
        .route("/api/v1/equipment/{reg}/events", get(events))
        .route("/api/v1/equipment/{reg}/cumulative-totals", get(cumulative))
        .route("/api/v1/documents/{uid}", get(document))
        .route("/api/v1/objects", get(objects))
        .route("/api/v1/objects/{id}", put(update_object))
        .route("/api/v1/tokens", get(tokens).post(create_token))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
}

/// The list query, whose malformed form (a repeated key, say) is a JSON `400` like every
/// other API error.
pub struct ApiQuery(pub ListQuery);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<ApiQuery, Response> {
        match Query::<ListQuery>::from_request_parts(parts, state).await {
            Ok(Query(query)) => Ok(ApiQuery(query)),
            Err(e) => {
                Err(api_error(StatusCode::BAD_REQUEST, "bad_request", &format!("параметры запроса: {}", e.body_text())))
            }
        }
    }
}

/// The query string of the lists.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    /// Start of the period.
    pub from: Option<String>,
    /// End of the period.
    pub to: Option<String>,
    /// Document kinds, comma-separated.
    pub kinds: Option<String>,
    /// Event codes, comma-separated.
    pub codes: Option<String>,
    /// `xlsx`, `pdf` or `csv` for a file; JSON when absent.
    pub format: Option<String>,
}

/// The export format asked for, if any; an unknown one is a clear `400`.
fn format_of(query: &ListQuery) -> Result<Option<Format>, QueryError> {
    query
        .format
        .as_deref()
        .filter(|f| !f.is_empty() && *f != "json")
        .map(|f| Format::parse(f).ok_or_else(|| QueryError::BadRequest(format!("format: xlsx, pdf или csv, не {f:?}"))))
        .transpose()
}

/// A parsed id from the path; a malformed one is as unknown as a missing one.
fn path_id<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, QueryError> {
    text.parse().map_err(|_| QueryError::NotFound(format!("{what} {text}")))
}

/// The file of `report`, named `<stem>.<ext>`; rendered off the async threads, since a
/// long PDF takes a while.
pub async fn file(report: Report, format: Format, stem: &str) -> Response {
    let rendered = tokio::task::spawn_blocking(move || export::render(&report, format)).await;
    match rendered {
        Ok(Ok(bytes)) => (
            [
                (header::CONTENT_TYPE, format.content_type().to_owned()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{stem}.{}\"", format.extension())),
            ],
            bytes,
        )
            .into_response(),
        Ok(Err(e @ export::ExportError::TooLargeForExcel)) => {
            api_error(StatusCode::UNPROCESSABLE_ENTITY, "too_large", &format!("{e}: сократите период"))
        }
        Ok(Err(e)) => {
            tracing::error!("export failed: {e}");
            api_error(StatusCode::INTERNAL_SERVER_ERROR, "export_failed", &e.to_string())
        }
        Err(e) => {
            tracing::error!("export task failed: {e}");
            api_error(StatusCode::INTERNAL_SERVER_ERROR, "export_failed", "не удалось сформировать файл")
        }
    }
}

/// JSON, or the file when a format is asked for.
async fn answer(json: impl serde::Serialize, export: Option<(Format, Report, String)>) -> Response {
    match export {
        Some((format, report, stem)) => file(report, format, &stem).await,
        None => Json(json).into_response(),
    }
}

async fn unps(State(state): State<AppState>, viewer: Viewer) -> Result<Response, QueryError> {
    let list = state.blocking(move |s| s.taxpayers(&viewer.scope).map_err(QueryError::from)).await?;
    Ok(Json(list).into_response())
}

async fn equipment(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(unp): Path<String>,
    ApiQuery(query): ApiQuery,
) -> Result<Response, QueryError> {
    let format = format_of(&query)?;
    let unp: Unp = path_id(&unp, "УНП")?;
    let list = state.blocking(move |s| portal::equipment(s, &viewer.scope, unp)).await?;
    let json: Vec<_> = list.iter().map(EquipmentView::new).collect();
    Ok(answer(json, format.map(|f| (f, portal::equipment_report(&list), format!("equipment-{unp}")))).await)
}

/// A list of one register (documents, events, cumulative totals): JSON or its file.
async fn register_list<L: Listing + Send + 'static>(
    state: AppState,
    viewer: Viewer,
    reg: String,
    query: ListQuery,
    stem: &str,
    fetch: impl FnOnce(&dyn Store, &Scope, RegNumber, &ListQuery) -> Result<L, QueryError> + Send + 'static,
) -> Result<Response, QueryError> {
    let format = format_of(&query)?;
    let reg: RegNumber = path_id(&reg, "касса")?;
    let list = state.blocking(move |s| fetch(s, &viewer.scope, reg, &query)).await?;
    Ok(answer(list.json(), format.map(|f| (f, list.report(), format!("{stem}-{reg}")))).await)
}

async fn documents(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(reg): Path<String>,
    ApiQuery(query): ApiQuery,
) -> Result<Response, QueryError> {
    register_list(state, viewer, reg, query, "documents", |s, scope, reg, q| {
        portal::documents(s, scope, reg, q.from.as_deref(), q.to.as_deref(), q.kinds.as_deref(), Utc::now())
    })
    .await
}

async fn events(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(reg): Path<String>,
    ApiQuery(query): ApiQuery,
) -> Result<Response, QueryError> {
    register_list(state, viewer, reg, query, "events", |s, scope, reg, q| {
        portal::events(s, scope, reg, q.from.as_deref(), q.to.as_deref(), q.codes.as_deref(), Utc::now())
    })
    .await
}

async fn cumulative(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(reg): Path<String>,
    ApiQuery(query): ApiQuery,
) -> Result<Response, QueryError> {
    register_list(state, viewer, reg, query, "cumulative", |s, scope, reg, _| portal::cumulative(s, scope, reg)).await
}

async fn document(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(uid): Path<String>,
) -> Result<Response, QueryError> {
    let detail = state.blocking(move |s| portal::document(s, &viewer.scope, &uid)).await?;
    Ok(Json(detail.to_json()).into_response())
}

async fn objects(
    State(state): State<AppState>,
    viewer: Viewer,
    ApiQuery(query): ApiQuery,
) -> Result<Response, QueryError> {
    let format = format_of(&query)?;
    let list = state.blocking(move |s| s.objects(&viewer.scope).map_err(QueryError::from)).await?;
    Ok(answer(&list, format.map(|f| (f, portal::objects_report(&list), "objects".to_owned()))).await)
}

/// The CSRF header a cookie-authenticated write must carry.
const CSRF_HEADER: &str = "x-csrf-token";

/// Tokens are made and revoked only by a person signed in to the portal: a leaked token
/// must not be able to mint new ones that outlive it.
fn without_session(viewer: &Viewer) -> Option<Response> {
    viewer.session().is_none().then(|| {
        api_error(
            StatusCode::FORBIDDEN,
            "session_required",
            "API-токены выпускаются и отзываются только в личном кабинете (раздел «Мой кабинет»)",
        )
    })
}

async fn csrf_guard(viewer: &Viewer, headers: &HeaderMap) -> Result<(), Response> {
    let presented = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    if viewer.csrf_ok(presented).await {
        Ok(())
    } else {
        Err(api_error(StatusCode::FORBIDDEN, "csrf", "запрос без CSRF-токена сеанса (заголовок X-CSRF-Token)"))
    }
}

async fn update_object(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<ObjectDetails>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Response> {
    csrf_guard(&viewer, &headers).await?;
    let id: ObjectId = ObjectId(path_id(&id, "торговый объект").map_err(IntoResponse::into_response)?);
    let Json(details) = body.map_err(|e| {
        api_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &format!("ожидается JSON с полями actual_address, working_hours, contacts, notes: {}", e.body_text()),
        )
    })?;
    let object = state
        .blocking(move |s| portal::update_object(s, &viewer.scope, id, details))
        .await
        .map_err(IntoResponse::into_response)?;
    Ok(Json(object).into_response())
}

async fn tokens(State(state): State<AppState>, viewer: Viewer) -> Result<Response, QueryError> {
    let id = viewer.user.id;
    let list = state.blocking(move |s| s.api_tokens(id).map_err(QueryError::from)).await?;
    Ok(Json(list).into_response())
}

/// The body of `POST /api/v1/tokens`.
#[derive(Deserialize)]
struct NewToken {
    name: String,
}

async fn create_token(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    body: Result<Json<NewToken>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, Response> {
    if let Some(refusal) = without_session(&viewer) {
        return Err(refusal);
    }
    csrf_guard(&viewer, &headers).await?;
    let Json(NewToken { name }) = body.map_err(|e| {
        api_error(StatusCode::BAD_REQUEST, "bad_request", &format!("ожидается {{\"name\"}}: {}", e.body_text()))
    })?;
    let user = viewer.user.id;
    let name = name.trim().to_owned();
    let named = name.clone();
    let (id, token) = state
        .blocking(move |s| crate::accounts::create_api_token(s, user, &named))
        .await
        .map_err(|e| api_error(StatusCode::BAD_REQUEST, "bad_request", &e.to_string()))?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({"id": id, "name": name, "token": token}))).into_response())
}

async fn revoke_token(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    if let Some(refusal) = without_session(&viewer) {
        return Err(refusal);
    }
    csrf_guard(&viewer, &headers).await?;
    let id: i64 = path_id(&id, "токен").map_err(IntoResponse::into_response)?;
    let user = viewer.user.id;
    state
        .blocking(move |s| s.revoke_api_token(user, id).map_err(QueryError::from))
        .await
        .map_err(IntoResponse::into_response)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
