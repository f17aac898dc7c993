//! The portal's pages, in Russian, following the manual. Handlers turn the query layer's
//! answers into display strings; the templates (`templates/`) only lay them out.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use protocol::receipt::format_local;
use protocol::{DocumentKind, Money, Unp};
use serde::Deserialize;
use tower_sessions::Session;

use super::AppState;
use super::auth::{self, Viewer};
use crate::accounts;
use crate::portal::{self, QueryError, SummaryTable};
use crate::store::{ObjectDetails, ObjectId, Period};

/// The pages' routes (and their static files).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/equipment") }))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/equipment", get(equipment))
        .route("/equipment/{reg}", get(register))
        .route("/equipment/{reg}/documents", get(documents))
        .route("/equipment/{reg}/events", get(events))
        .route("/equipment/{reg}/cumulative", get(cumulative))
        .route("/documents/{uid}", get(document))
        .route("/documents/{uid}/print", get(print))
        .route("/objects", get(objects))
        .route("/objects/{id}", post(save_object))
        .route("/account", get(account))
        .route("/account/password", post(change_password))
        .route("/account/tokens", post(create_token))
        .route("/account/tokens/{id}/revoke", post(revoke_token))
        .route("/unp", get(unp_page).post(select_unp))
        .route("/static/portal.css", get(|| async { asset("text/css", include_str!("../../static/portal.css")) }))
        .route("/static/portal.js", get(|| async { asset("text/javascript", include_str!("../../static/portal.js")) }))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "max-age=3600")], body).into_response()
}

/// The menu and who is signed in, on every page after login.
pub struct Nav {
    login: String,
    unp: Option<Unp>,
    several_unps: bool,
    active: &'static str,
    csrf: String,
}

impl Nav {
    async fn of(viewer: &Viewer, active: &'static str) -> Option<Nav> {
        Some(Nav {
            login: viewer.user.login.clone(),
            unp: viewer.selected_unp().await,
            several_unps: viewer.user.taxpayers.len() > 1,
            active,
            csrf: viewer.csrf().await,
        })
    }
}

/// A form's fields; a body that is not the form (a field missing, say) is a `400` page,
/// not axum's plain-text refusal.
pub struct PageForm<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for PageForm<T> {
    type Rejection = PageError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<PageForm<T>, PageError> {
        match Form::<T>::from_request(request, state).await {
            Ok(Form(fields)) => Ok(PageForm(fields)),
            Err(e) => Err(PageError {
                status: StatusCode::BAD_REQUEST,
                nav: None,
                message: format!(
                    "Форма отправлена не полностью или с ошибкой ({}). Обновите страницу и повторите.",
                    e.body_text()
                ),
            }),
        }
    }
}

/// A page's failure: an error page with the right status.
pub struct PageError {
    status: StatusCode,
    nav: Option<Nav>,
    message: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage {
    nav: Option<Nav>,
    heading: &'static str,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let heading = match self.status {
            StatusCode::NOT_FOUND => "Не найдено",
            StatusCode::FORBIDDEN => "Запрос отклонён",
            s if s.is_server_error() => "Сервис временно недоступен",
            _ => "Ошибка в запросе",
        };
        (self.status, ErrorPage { nav: self.nav, heading, message: self.message }).into_response()
    }
}

/// The page for an address that does not exist.
pub fn not_found_page() -> Response {
    PageError { status: StatusCode::NOT_FOUND, nav: None, message: "Такой страницы нет.".into() }.into_response()
}

impl PageError {
    async fn of(viewer: &Viewer, e: QueryError) -> PageError {
        let (status, _) = e.status();
        let message = if status.is_server_error() {
            tracing::error!("{e}");
            "Хранилище недоступно, попробуйте позже.".to_owned()
        } else {
            e.to_string()
        };
        PageError { status, nav: Nav::of(viewer, "").await, message }
    }

    async fn forbidden(viewer: &Viewer) -> PageError {
        PageError {
            status: StatusCode::FORBIDDEN,
            nav: Nav::of(viewer, "").await,
            message: "Форма устарела или отправлена не со страницы кабинета. Обновите страницу и повторите.".into(),
        }
    }
}

fn money(m: Option<Money>) -> String {
    m.filter(|m| !m.is_zero()).map(Money::grouped).unwrap_or_default()
}

fn shown(t: Option<DateTime<Utc>>, zone: Tz) -> String {
    t.map_or_else(|| "—".to_owned(), |t| portal::shown_time(t, zone))
}

// ---- Вход и выход ----

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Option<Nav>,
    login: String,
    error: Option<String>,
}

async fn login_page() -> LoginPage {
    LoginPage { nav: None, login: String::new(), error: None }
}

#[derive(Deserialize)]
struct LoginForm {
    login: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    session: Session,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    PageForm(form): PageForm<LoginForm>,
) -> Response {
    let refuse = |status: StatusCode, error: &str, login: String| {
        (status, LoginPage { nav: None, login, error: Some(error.to_owned()) }).into_response()
    };
    if !auth::same_origin(&method, &uri, &headers) {
        return refuse(StatusCode::FORBIDDEN, "Форма отправлена не со страницы кабинета.", form.login);
    }
    if !state.guard.attempt(&form.login, Utc::now()) {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "Слишком много неудачных попыток входа. Попробуйте через 15 минут.",
            form.login,
        );
    }
    let login = form.login.trim().to_owned();
    let password = form.password;
    let found = state
        .blocking(move |s| {
            // A malformed login is looked up nowhere, but still costs a hash check, so that
            // no answer tells a bad login from a wrong password, not even by its time.
            let user = if accounts::check_login(&login).is_ok() { s.user_by_login(&login)? } else { None };
            let hash = user.as_ref().map_or(accounts::dummy_hash(), |u| u.password_hash.as_str());
            let ok = accounts::verify_password(&password, hash);
            Ok::<_, crate::store::StoreError>(user.filter(|_| ok))
        })
        .await;
    match found {
        Ok(Some(user)) => {
            state.guard.succeeded(&form.login);
            if let Err(e) = auth::sign_in(&session, &user).await {
                tracing::error!("session: {e}");
                return refuse(StatusCode::SERVICE_UNAVAILABLE, "Сервис временно недоступен.", form.login);
            }
            Redirect::to("/equipment").into_response()
        }
        Ok(None) => refuse(StatusCode::UNAUTHORIZED, "Неверный логин или пароль.", form.login),
        Err(e) => {
            tracing::error!("login: {e}");
            refuse(StatusCode::SERVICE_UNAVAILABLE, "Сервис временно недоступен.", form.login)
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(viewer: Viewer, PageForm(form): PageForm<CsrfForm>) -> Result<Response, PageError> {
    if !viewer.csrf_ok(Some(&form.csrf)).await {
        return Err(PageError::forbidden(&viewer).await);
    }
    if let Some(session) = viewer.session() {
        session.flush().await.ok();
    }
    Ok(Redirect::to("/login").into_response())
}

// ---- Оборудование ----

struct EquipmentRow {
    org_name: String,
    object_name: String,
    unp: Unp,
    reg_number: String,
    serial: String,
    commissioned_on: String,
    blocked: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "equipment.html")]
struct EquipmentPage {
    nav: Option<Nav>,
    unp: Option<Unp>,
    rows: Vec<EquipmentRow>,
}

async fn equipment(State(state): State<AppState>, viewer: Viewer) -> Result<EquipmentPage, PageError> {
    let unp = viewer.selected_unp().await;
    let list = match unp {
        Some(unp) => {
            let scope = viewer.scope.clone();
            match state.blocking(move |s| portal::equipment(s, &scope, unp)).await {
                Ok(list) => list,
                Err(e) => return Err(PageError::of(&viewer, e).await),
            }
        }
        None => Vec::new(),
    };
    let rows = list
        .into_iter()
        .map(|e| EquipmentRow {
            org_name: e.taxpayer.name,
            object_name: e.object_name,
            unp: e.taxpayer.unp,
            reg_number: e.reg_number.to_string(),
            serial: e.serial.to_string(),
            commissioned_on: e.commissioned_on.to_string(),
            blocked: e.blocked.is_some(),
        })
        .collect();
    Ok(EquipmentPage { nav: Nav::of(&viewer, "equipment").await, unp, rows })
}

#[derive(Template, WebTemplate)]
#[template(path = "register.html")]
struct RegisterPage {
    nav: Option<Nav>,
    reg_number: String,
    serial: String,
    info: String,
    last_seen: String,
    pos_version: String,
    tsok: String,
    agent_version: String,
    pending: String,
    blocked: Option<String>,
}

/// A register number from the path; malformed is as unknown as missing.
fn reg_of(text: &str) -> Result<protocol::RegNumber, QueryError> {
    text.parse().map_err(|_| QueryError::NotFound(format!("касса {text}")))
}

async fn register(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(reg): Path<String>,
) -> Result<RegisterPage, PageError> {
    let scope = viewer.scope.clone();
    let found = state.blocking(move |s| Ok::<_, QueryError>(s.register(&scope, reg_of(&reg)?)?)).await;
    let e = match found {
        Ok(e) => e,
        Err(e) => return Err(PageError::of(&viewer, e).await),
    };
    let zone = e.time_zone;
    let info = e.info.as_ref();
    let dash = || "—".to_owned();
    Ok(RegisterPage {
        nav: Nav::of(&viewer, "equipment").await,
        reg_number: e.reg_number.to_string(),
        serial: e.serial.to_string(),
        info: info.map_or_else(dash, |i| i.info.clone()),
        last_seen: shown(e.last_seen_at, zone),
        pos_version: info.map_or_else(dash, |i| i.pos_version.clone()),
        tsok: info.and_then(|i| i.tsok_expires_at).map_or_else(dash, |t| format_local(&t)),
        agent_version: info.map_or_else(dash, |i| i.agent_version.clone()),
        pending: info.map_or_else(dash, |i| match i.oldest_pending_at {
            Some(oldest) if i.pending > 0 => {
                format!("{} (самая старая запись от {})", i.pending, format_local(&oldest))
            }
            _ => i.pending.to_string(),
        }),
        blocked: e.blocked.clone(),
    })
}

// ---- Кассовые документы и События ----

/// A check-box of the filter form.
struct Choice {
    value: String,
    label: String,
    checked: bool,
}

/// The filter of a list page, read from a query string that may repeat `kind`/`code`.
struct Filter {
    from: Option<String>,
    to: Option<String>,
    picked: Vec<String>,
}

impl Filter {
    fn parse(raw: Option<&str>, key: &str) -> Filter {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or_default()).unwrap_or_default();
        let value = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        Filter {
            from: value("from"),
            to: value("to"),
            picked: pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect(),
        }
    }

    /// The form's value of a period end, in the register's zone.
    fn field(t: DateTime<Utc>, zone: Tz) -> String {
        t.with_timezone(&zone).format("%Y-%m-%dT%H:%M").to_string()
    }

    /// The query string the export links repeat.
    fn export_query(period: &Period, zone: Tz, list_key: &str, list: Option<String>) -> String {
        let mut pairs = vec![
            ("from", period.from.with_timezone(&zone).fixed_offset().to_rfc3339()),
            ("to", period.to.with_timezone(&zone).fixed_offset().to_rfc3339()),
        ];
        if let Some(list) = list {
            pairs.push((list_key, list));
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

/// The query of a list page (documents, events): the register in the path, the period and
/// the check-boxes (`key`, repeated) from the query string.
type ListQuery<L> = fn(
    &dyn crate::store::Store,
    &crate::store::Scope,
    protocol::RegNumber,
    Option<&str>,
    Option<&str>,
    Option<&str>,
    DateTime<Utc>,
) -> Result<L, QueryError>;

async fn filtered_list<L: Send + 'static>(
    state: &AppState,
    viewer: &Viewer,
    reg: String,
    raw: Option<String>,
    key: &str,
    query: ListQuery<L>,
) -> Result<L, PageError> {
    let filter = Filter::parse(raw.as_deref(), key);
    let scope = viewer.scope.clone();
    let (from, to, picked) = (filter.from, filter.to, (!filter.picked.is_empty()).then(|| filter.picked.join(",")));
    let result = state
        .blocking(move |s| {
            query(s, &scope, reg_of(&reg)?, from.as_deref(), to.as_deref(), picked.as_deref(), Utc::now())
        })
        .await;
    match result {
        Ok(list) => Ok(list),
        Err(e) => Err(PageError::of(viewer, e).await),
    }
}

struct DocumentLine {
    kind: &'static str,
    number: u64,
    uid: String,
    status: &'static str,
    error: Option<String>,
    created_at: String,
    cash: String,
    card: String,
    other: String,
    total: String,
}

/// What a list page (documents, events) shows above and below its table: the heading,
/// the filter form (`templates/filter.html`) and the export links' query.
struct ListHeader {
    title: String,
    reg_number: String,
    from: String,
    to: String,
    period: String,
    choices: Vec<Choice>,
    /// The check-boxes' repeated query key (`kind`, `code`).
    choice_name: &'static str,
    export_query: String,
}

impl ListHeader {
    /// The header of a list of `register` over `period`; `picked` is the API's list of the
    /// checked values (`None`: all), under `list_key` in the export links.
    fn new(
        title: String,
        register: &crate::store::Equipment,
        period: &Period,
        (choices, choice_name): (Vec<Choice>, &'static str),
        list_key: &str,
        picked: Option<String>,
    ) -> ListHeader {
        let zone = register.time_zone;
        ListHeader {
            title,
            reg_number: register.reg_number.to_string(),
            from: Filter::field(period.from, zone),
            to: Filter::field(period.to, zone),
            period: portal::period_text(period, zone),
            choices,
            choice_name,
            export_query: Filter::export_query(period, zone, list_key, picked),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "documents.html")]
struct DocumentsPage {
    nav: Option<Nav>,
    list: ListHeader,
    columns: [&'static str; 9],
    rows: Vec<DocumentLine>,
    summary: SummaryTable,
}

async fn documents(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(reg): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let list = filtered_list(&state, &viewer, reg, raw, "kind", portal::documents).await?;
    let choices = DocumentKind::ALL
        .iter()
        .map(|k| Choice { value: k.wire_name().into(), label: k.label().into(), checked: list.kinds.contains(k) })
        .collect();
    let rows = list
        .documents
        .iter()
        .map(|d| DocumentLine {
            kind: d.kind.label(),
            number: d.number,
            uid: d.uid.clone(),
            status: portal::status_label(&d.error),
            error: d.error.clone(),
            created_at: format_local(&d.created_at),
            cash: money(d.tenders.map(|t| t.cash)),
            card: money(d.tenders.map(|t| t.card)),
            other: money(d.tenders.map(|t| t.other)),
            total: d.total.grouped(),
        })
        .collect();
    let kinds_list = (list.kinds.len() < DocumentKind::ALL.len())
        .then(|| list.kinds.iter().map(|k| k.wire_name()).collect::<Vec<_>>().join(","));
    Ok(DocumentsPage {
        nav: Nav::of(&viewer, "equipment").await,
        list: ListHeader::new(list.title(), &list.register, &list.period, (choices, "kind"), "kinds", kinds_list),
        columns: portal::DOCUMENT_COLUMNS,
        rows,
        summary: SummaryTable::new(&list.summary),
    }
    .into_response())
}

struct EventLine {
    code: u32,
    label: String,
    parameter: String,
    created_at: String,
    sent_at: String,
    status: &'static str,
    failed: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "events.html")]
struct EventsPage {
    nav: Option<Nav>,
    list: ListHeader,
    columns: [&'static str; 6],
    rows: Vec<EventLine>,
}

async fn events(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(reg): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<EventsPage, PageError> {
    let list = filtered_list(&state, &viewer, reg, raw, "code", portal::events).await?;
    let zone = list.register.time_zone;
    let choices = portal::event_choices()
        .into_iter()
        .map(|(code, label)| Choice {
            value: code.to_string(),
            label,
            checked: list.codes.is_empty() || list.codes.contains(&code),
        })
        .collect();
    let rows = list
        .events
        .iter()
        .map(|e| EventLine {
            code: e.code.code(),
            label: e.code.label(),
            parameter: e.parameter.clone().unwrap_or_default(),
            created_at: format_local(&e.created_at),
            sent_at: format_local(&e.sent_at.with_timezone(&zone).fixed_offset()),
            status: portal::event_status_label(&e.error),
            failed: e.error.is_some(),
        })
        .collect();
    let codes_list =
        (!list.codes.is_empty()).then(|| list.codes.iter().map(u32::to_string).collect::<Vec<_>>().join(","));
    Ok(EventsPage {
        nav: Nav::of(&viewer, "equipment").await,
        list: ListHeader::new(list.title(), &list.register, &list.period, (choices, "code"), "codes", codes_list),
        columns: portal::EVENT_COLUMNS,
        rows,
    })
}

// ---- Накопительный итог ----

struct CumulativeLine {
    shift: u32,
    total: String,
    consistent: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "cumulative.html")]
struct CumulativePage {
    nav: Option<Nav>,
    title: String,
    reg_number: String,
    lines: Vec<CumulativeLine>,
    inconsistent: usize,
}

async fn cumulative(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(reg): Path<String>,
) -> Result<CumulativePage, PageError> {
    let scope = viewer.scope.clone();
    let list = match state.blocking(move |s| portal::cumulative(s, &scope, reg_of(&reg)?)).await {
        Ok(list) => list,
        Err(e) => return Err(PageError::of(&viewer, e).await),
    };
    Ok(CumulativePage {
        nav: Nav::of(&viewer, "equipment").await,
        title: list.title(),
        reg_number: list.register.reg_number.to_string(),
        inconsistent: list.lines.iter().filter(|l| !l.consistent).count(),
        lines: list
            .lines
            .iter()
            .map(|l| CumulativeLine { shift: l.shift.0, total: l.total.grouped(), consistent: l.consistent })
            .collect(),
    })
}

// ---- Документ ----

#[derive(Template, WebTemplate)]
#[template(path = "document.html")]
struct DocumentPage {
    nav: Option<Nav>,
    uid: String,
    receipt: String,
    error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "print.html")]
struct PrintPage {
    uid: String,
    receipt: String,
}

async fn load_document(state: &AppState, viewer: &Viewer, uid: String) -> Result<portal::DocumentDetail, PageError> {
    let scope = viewer.scope.clone();
    match state.blocking(move |s| portal::document(s, &scope, &uid)).await {
        Ok(detail) => Ok(detail),
        Err(e) => Err(PageError::of(viewer, e).await),
    }
}

async fn document(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(uid): Path<String>,
) -> Result<DocumentPage, PageError> {
    let detail = load_document(&state, &viewer, uid).await?;
    Ok(DocumentPage {
        nav: Nav::of(&viewer, "equipment").await,
        uid: detail.uid.to_string(),
        receipt: detail.receipt(),
        error: detail.error.clone(),
    })
}

async fn print(State(state): State<AppState>, viewer: Viewer, Path(uid): Path<String>) -> Result<PrintPage, PageError> {
    let detail = load_document(&state, &viewer, uid).await?;
    Ok(PrintPage { uid: detail.uid.to_string(), receipt: detail.receipt() })
}

// ---- Торговые объекты ----

struct ObjectCard {
    id: i64,
    org_name: String,
    name: String,
    address: String,
    unp: Unp,
    actual_address: String,
    working_hours: String,
    contacts: String,
    notes: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "objects.html")]
struct ObjectsPage {
    nav: Option<Nav>,
    csrf: String,
    message: Option<String>,
    error: Option<String>,
    objects: Vec<ObjectCard>,
}

async fn objects_page(
    state: &AppState,
    viewer: &Viewer,
    message: Option<String>,
    error: Option<String>,
) -> Result<ObjectsPage, PageError> {
    let scope = viewer.scope.clone();
    let list = match state.blocking(move |s| s.objects(&scope).map_err(QueryError::from)).await {
        Ok(list) => list,
        Err(e) => return Err(PageError::of(viewer, e).await),
    };
    Ok(ObjectsPage {
        nav: Nav::of(viewer, "objects").await,
        csrf: viewer.csrf().await,
        message,
        error,
        objects: list
            .into_iter()
            .map(|o| ObjectCard {
                id: o.id.0,
                org_name: o.org_name,
                name: o.name,
                address: o.address,
                unp: o.unp,
                actual_address: o.details.actual_address,
                working_hours: o.details.working_hours,
                contacts: o.details.contacts,
                notes: o.details.notes,
            })
            .collect(),
    })
}

async fn objects(State(state): State<AppState>, viewer: Viewer) -> Result<ObjectsPage, PageError> {
    objects_page(&state, &viewer, None, None).await
}

#[derive(Deserialize)]
struct ObjectForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    details: ObjectDetails,
}

async fn save_object(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    PageForm(form): PageForm<ObjectForm>,
) -> Result<Response, PageError> {
    if !viewer.csrf_ok(Some(&form.csrf)).await {
        return Err(PageError::forbidden(&viewer).await);
    }
    let scope = viewer.scope.clone();
    let saved = state
        .blocking(move |s| {
            let id = id.parse().map_err(|_| QueryError::NotFound(format!("торговый объект {id}")))?;
            portal::update_object(s, &scope, ObjectId(id), form.details)
        })
        .await;
    match saved {
        Ok(object) => {
            Ok(objects_page(&state, &viewer, Some(format!("Сохранено: {}", object.name)), None).await?.into_response())
        }
        Err(QueryError::BadRequest(message)) => {
            Ok((StatusCode::BAD_REQUEST, objects_page(&state, &viewer, None, Some(message)).await?).into_response())
        }
        Err(e) => Err(PageError::of(&viewer, e).await),
    }
}

// ---- Мой кабинет ----

struct TokenLine {
    id: i64,
    name: String,
    created: String,
    last_used: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "account.html")]
struct AccountPage {
    nav: Option<Nav>,
    csrf: String,
    message: Option<String>,
    error: Option<String>,
    new_token: Option<String>,
    tokens: Vec<TokenLine>,
}

/// The time zone the account page shows token times in (a user has no zone of their own).
const PORTAL_ZONE: Tz = chrono_tz::Europe::Minsk;

async fn account_page(
    state: &AppState,
    viewer: &Viewer,
    message: Option<String>,
    error: Option<String>,
    new_token: Option<String>,
) -> Result<AccountPage, PageError> {
    let user = viewer.user.id;
    let tokens = match state.blocking(move |s| s.api_tokens(user).map_err(QueryError::from)).await {
        Ok(tokens) => tokens,
        Err(e) => return Err(PageError::of(viewer, e).await),
    };
    Ok(AccountPage {
        nav: Nav::of(viewer, "account").await,
        csrf: viewer.csrf().await,
        message,
        error,
        new_token,
        tokens: tokens
            .into_iter()
            .map(|t| TokenLine {
                id: t.id,
                name: t.name,
                created: shown(Some(t.created_at), PORTAL_ZONE),
                last_used: shown(t.last_used_at, PORTAL_ZONE),
            })
            .collect(),
    })
}

async fn account(State(state): State<AppState>, viewer: Viewer) -> Result<AccountPage, PageError> {
    account_page(&state, &viewer, None, None, None).await
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    csrf: String,
    current: String,
    new: String,
    repeat: String,
}

async fn change_password(
    State(state): State<AppState>,
    viewer: Viewer,
    PageForm(form): PageForm<PasswordForm>,
) -> Result<Response, PageError> {
    if !viewer.csrf_ok(Some(&form.csrf)).await {
        return Err(PageError::forbidden(&viewer).await);
    }
    let Some(session) = viewer.session() else { return Err(PageError::forbidden(&viewer).await) };
    let refuse = async |error: &str| {
        Ok((StatusCode::BAD_REQUEST, account_page(&state, &viewer, None, Some(error.to_owned()), None).await?)
            .into_response())
    };
    if form.new != form.repeat {
        return refuse("Пароли не совпадают.").await;
    }
    if let Err(e) = accounts::check_password(&form.new) {
        return refuse(&format!("{}.", e.to_string().trim_end_matches('.'))).await;
    }
    // Guessing the current password counts against the account like guessing at login.
    if !state.guard.attempt(&viewer.user.login, Utc::now()) {
        return refuse("Слишком много неудачных попыток. Попробуйте через 15 минут.").await;
    }
    let (hash, current) = (viewer.user.password_hash.clone(), form.current);
    let checked = tokio::task::spawn_blocking(move || accounts::verify_password(&current, &hash)).await;
    if !checked.unwrap_or(false) {
        return refuse("Текущий пароль указан неверно.").await;
    }
    state.guard.succeeded(&viewer.user.login);
    let user = viewer.user.id;
    let new = form.new;
    // Every session of the user ends, this one included; this one goes on under a new id.
    let changed = state
        .blocking(move |s| Ok::<_, accounts::AccountError>(s.set_password(user, &accounts::hash_password(&new)?)?))
        .await;
    if let Err(e) = changed {
        return Err(PageError::of(&viewer, QueryError::Store(crate::store::StoreError::Database(e.to_string()))).await);
    }
    if session.cycle_id().await.is_err() {
        return Err(PageError::forbidden(&viewer).await);
    }
    Ok(account_page(&state, &viewer, Some("Пароль изменён.".into()), None, None).await?.into_response())
}

#[derive(Deserialize)]
struct TokenForm {
    #[serde(default)]
    csrf: String,
    name: String,
}

async fn create_token(
    State(state): State<AppState>,
    viewer: Viewer,
    PageForm(form): PageForm<TokenForm>,
) -> Result<Response, PageError> {
    if !viewer.csrf_ok(Some(&form.csrf)).await {
        return Err(PageError::forbidden(&viewer).await);
    }
    let user = viewer.user.id;
    let made = state.blocking(move |s| accounts::create_api_token(s, user, &form.name)).await;
    match made {
        Ok((_, token)) => Ok(account_page(&state, &viewer, None, None, Some(token)).await?.into_response()),
        Err(e) => Ok((StatusCode::BAD_REQUEST, account_page(&state, &viewer, None, Some(e.to_string()), None).await?)
            .into_response()),
    }
}

async fn revoke_token(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    PageForm(form): PageForm<CsrfForm>,
) -> Result<Response, PageError> {
    if !viewer.csrf_ok(Some(&form.csrf)).await {
        return Err(PageError::forbidden(&viewer).await);
    }
    let user = viewer.user.id;
    let revoked = state
        .blocking(move |s| {
            let id = id.parse().map_err(|_| QueryError::NotFound(format!("токен {id}")))?;
            Ok::<_, QueryError>(s.revoke_api_token(user, id)?)
        })
        .await;
    match revoked {
        Ok(()) => Ok(account_page(&state, &viewer, Some("Токен отозван.".into()), None, None).await?.into_response()),
        Err(e) => Err(PageError::of(&viewer, e).await),
    }
}

// ---- Смена УНП ----

struct UnpLine {
    unp: Unp,
    name: String,
    selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "unp.html")]
struct UnpPage {
    nav: Option<Nav>,
    csrf: String,
    taxpayers: Vec<UnpLine>,
}

async fn unp_page(viewer: Viewer) -> UnpPage {
    let selected = viewer.selected_unp().await;
    UnpPage {
        nav: Nav::of(&viewer, "unp").await,
        csrf: viewer.csrf().await,
        taxpayers: viewer
            .user
            .taxpayers
            .iter()
            .map(|t| UnpLine { unp: t.unp, name: t.name.clone(), selected: Some(t.unp) == selected })
            .collect(),
    }
}

#[derive(Deserialize)]
struct UnpForm {
    #[serde(default)]
    csrf: String,
    unp: String,
}

async fn select_unp(viewer: Viewer, PageForm(form): PageForm<UnpForm>) -> Result<Response, PageError> {
    if !viewer.csrf_ok(Some(&form.csrf)).await {
        return Err(PageError::forbidden(&viewer).await);
    }
    let unp = form.unp.parse::<Unp>().ok().filter(|u| viewer.scope.holds(*u));
    let (Some(unp), Some(session)) = (unp, viewer.session()) else {
        return Err(PageError::of(&viewer, QueryError::NotFound(format!("УНП {}", form.unp))).await);
    };
    if session.insert(auth::SELECTED_UNP, unp.to_string()).await.is_err() {
        return Err(PageError::forbidden(&viewer).await);
    }
    Ok(Redirect::to("/equipment").into_response())
}
