//! The portal's query layer: what the pages and the JSON API show, built from the store's
//! rows by the domain's rules (`protocol`). Pages, API and exports call these same
//! functions, so the screen, the JSON and the files always agree.
//!
//! Every function takes the caller's [`Scope`]; the store answers `NotFound` for what lies
//! outside it, exactly as for what does not exist.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use protocol::receipt::format_local;
use protocol::{
    CumulativeLine, DocumentKind, DocumentView, EventCode, Figures, Money, Payload, ReceiptHeader, RegNumber, Standing,
    Summary, Uid, check_cumulative,
};
use serde::Serialize;

use crate::export::{Cell, Report, Table};
use crate::store::{DocumentRow, Equipment, EventRow, ObjectDetails, ObjectId, Period, Scope, Store, StoreError};

/// Why a query has no answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Not found, or outside the caller's scope (the two are not told apart).
    #[error("{0} не найден")]
    NotFound(String),
    /// A parameter is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for QueryError {
    fn from(e: StoreError) -> QueryError {
        match e {
            StoreError::NotFound(what) => QueryError::NotFound(what),
            other => QueryError::Store(other),
        }
    }
}

/// The longest period one request may ask for: a year's documents of one register is a
/// few hundred thousand rows; more than that is an archive job, not a page.
pub const MAX_PERIOD_DAYS: i64 = 366;

/// Which end of a period a time is: a date alone means the day's start or its end.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    From,
    To,
}

/// The period asked for: `from`/`to` as RFC 3339, `YYYY-MM-DDTHH:MM` (the form's field) or
/// `YYYY-MM-DD` (`to` then means the day's end), read in the register's time zone. `to`
/// defaults to the end of today there, `from` to the start of `to`'s day.
pub fn period(zone: Tz, from: Option<&str>, to: Option<&str>, now: DateTime<Utc>) -> Result<Period, QueryError> {
    let day_end = NaiveTime::from_hms_opt(23, 59, 59).expect("a valid time");
    let to = match to.filter(|s| !s.is_empty()) {
        Some(text) => instant(zone, text, End::To)?,
        None => local(zone, now.with_timezone(&zone).date_naive().and_time(day_end), End::To),
    };
    let from = match from.filter(|s| !s.is_empty()) {
        Some(text) => instant(zone, text, End::From)?,
        None => local(zone, to.with_timezone(&zone).date_naive().and_time(NaiveTime::MIN), End::From),
    };
    if to < from {
        return Err(QueryError::BadRequest("начало периода позже его конца".into()));
    }
    if to - from > chrono::TimeDelta::days(MAX_PERIOD_DAYS) {
        return Err(QueryError::BadRequest(format!("период длиннее {MAX_PERIOD_DAYS} дней: запросите его частями")));
    }
    Ok(Period { from, to })
}

fn instant(zone: Tz, text: &str, end: End) -> Result<DateTime<Utc>, QueryError> {
    let name = if end == End::From { "from" } else { "to" };
    // An unencoded `+` of an offset arrives as a space.
    let text = text.trim().replace(' ', "+");
    if let Ok(t) = DateTime::parse_from_rfc3339(&text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M") {
        // The form's minutes: the end of a period includes its whole last minute.
        let t = if end == End::To { t + chrono::TimeDelta::seconds(59) } else { t };
        return Ok(local(zone, t, end));
    }
    if let Ok(day) = NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
        let time =
            if end == End::To { NaiveTime::from_hms_opt(23, 59, 59).expect("a valid time") } else { NaiveTime::MIN };
        return Ok(local(zone, day.and_time(time), end));
    }
    Err(QueryError::BadRequest(format!(
        "{name}: ожидается дата (2024-10-11), дата и время (2024-10-11T15:04) или RFC 3339, получено {text:?}"
    )))
}

/// A local time of `zone` as UTC. A time skipped by a clock change is read as the next valid
/// one; a repeated one as its earlier occurrence for a period's start and its later one for
/// its end, so the period holds the whole repeated hour.
fn local(zone: Tz, t: NaiveDateTime, end: End) -> DateTime<Utc> {
    (0..180)
        .find_map(|minutes| {
            let candidates = zone.from_local_datetime(&(t + chrono::TimeDelta::minutes(minutes)));
            if end == End::From { candidates.earliest() } else { candidates.latest() }
        })
        .map_or_else(|| t.and_utc(), |t| t.with_timezone(&Utc))
}

/// A comma-separated list of document kinds (`payment,return`); all kinds when absent.
pub fn kinds(text: Option<&str>) -> Result<Vec<DocumentKind>, QueryError> {
    match text.filter(|s| !s.is_empty()) {
        None => Ok(DocumentKind::ALL.to_vec()),
        Some(text) => text
            .split(',')
            .map(|k| k.trim().parse().map_err(|_| QueryError::BadRequest(format!("неизвестный тип документа {k:?}"))))
            .collect(),
    }
}

/// A comma-separated list of event codes (`26,27`); all codes when absent.
pub fn codes(text: Option<&str>) -> Result<Vec<u32>, QueryError> {
    match text.filter(|s| !s.is_empty()) {
        None => Ok(Vec::new()),
        Some(text) => text
            .split(',')
            .map(|c| c.trim().parse().map_err(|_| QueryError::BadRequest(format!("код события {c:?} не число"))))
            .collect(),
    }
}

/// A time as the portal shows it: `11.10.2024 15:04:50`, in the register's zone.
pub fn shown_time(t: DateTime<Utc>, zone: Tz) -> String {
    format_local(&t.with_timezone(&zone).fixed_offset())
}

/// A document's delivery state in the API's words.
fn status_word(error: &Option<String>) -> &'static str {
    if error.is_some() { "error" } else { "delivered" }
}

/// A document's delivery state as the page shows it.
pub fn status_label(error: &Option<String>) -> &'static str {
    if error.is_some() { "Ошибка отправки" } else { "Доставлен" }
}

/// A per-register list the API answers as JSON, or as a file for the export buttons.
pub trait Listing {
    /// The JSON of CONTRACTS §3.
    fn json(&self) -> impl Serialize + '_;
    /// The list as an export.
    fn report(&self) -> Report;
}

// ---- Оборудование ----

/// A register as the equipment list and the JSON API show it.
#[derive(Serialize)]
pub struct EquipmentView {
    reg_number: RegNumber,
    serial: String,
    unp: protocol::Unp,
    org_name: String,
    object: ObjectRef,
    commissioned_on: NaiveDate,
    info: Option<String>,
    pos_version: Option<String>,
    agent_version: Option<String>,
    last_seen_at: Option<DateTime<FixedOffset>>,
    tsok_expires_at: Option<DateTime<FixedOffset>>,
    pending: Option<u64>,
    oldest_pending_at: Option<DateTime<FixedOffset>>,
    blocked: Option<String>,
}

#[derive(Serialize)]
struct ObjectRef {
    id: ObjectId,
    name: String,
}

impl EquipmentView {
    /// The view of one register.
    pub fn new(e: &Equipment) -> EquipmentView {
        let info = e.info.as_ref();
        EquipmentView {
            reg_number: e.reg_number,
            serial: e.serial.to_string(),
            unp: e.taxpayer.unp,
            org_name: e.taxpayer.name.clone(),
            object: ObjectRef { id: e.object_id, name: e.object_name.clone() },
            commissioned_on: e.commissioned_on,
            info: info.map(|i| i.info.clone()),
            pos_version: info.map(|i| i.pos_version.clone()),
            agent_version: info.map(|i| i.agent_version.clone()),
            last_seen_at: e.last_seen_at.map(|t| t.with_timezone(&e.time_zone).fixed_offset()),
            tsok_expires_at: info.and_then(|i| i.tsok_expires_at),
            pending: info.map(|i| i.pending),
            oldest_pending_at: info.and_then(|i| i.oldest_pending_at),
            blocked: e.blocked.clone(),
        }
    }
}

/// The registers of a taxpayer.
pub fn equipment(store: &dyn Store, scope: &Scope, unp: protocol::Unp) -> Result<Vec<Equipment>, QueryError> {
    Ok(store.equipment(scope, unp)?)
}

/// The equipment list as an export.
pub fn equipment_report(list: &[Equipment]) -> Report {
    Report {
        title: "Кассовое оборудование".into(),
        subtitle: None,
        tables: vec![Table {
            columns: ["Субъект хозяйствования", "Торговый объект", "УНП", "РН СККО", "Номер СКО", "Дата снаряжения"]
                .map(String::from)
                .to_vec(),
            rows: list
                .iter()
                .map(|e| {
                    vec![
                        Cell::Text(e.taxpayer.name.clone()),
                        Cell::Text(e.object_name.clone()),
                        Cell::Text(e.taxpayer.unp.to_string()),
                        Cell::Text(e.reg_number.to_string()),
                        Cell::Text(e.serial.to_string()),
                        Cell::Text(e.commissioned_on.to_string()),
                    ]
                })
                .collect(),
        }],
    }
}

// ---- Кассовые документы ----

/// A register's documents in a period, with the summary table under them.
pub struct DocumentList {
    /// The register.
    pub register: Equipment,
    /// The period.
    pub period: Period,
    /// The kinds asked for.
    pub kinds: Vec<DocumentKind>,
    /// The documents, by time.
    pub documents: Vec<DocumentRow>,
    /// Their summary: refused documents are listed but not counted.
    pub summary: Summary,
}

/// The documents of `reg` in the period, of the kinds asked for.
pub fn documents(
    store: &dyn Store,
    scope: &Scope,
    reg: RegNumber,
    from: Option<&str>,
    to: Option<&str>,
    kinds_text: Option<&str>,
    now: DateTime<Utc>,
) -> Result<DocumentList, QueryError> {
    let register = store.register(scope, reg)?;
    let period = period(register.time_zone, from, to, now)?;
    let kinds = kinds(kinds_text)?;
    let documents = store.documents(scope, reg, period, &kinds)?;
    let mut summary = Summary::default();
    for d in &documents {
        let standing = if d.error.is_some() { Standing::Refused } else { Standing::Counted };
        summary.add(d.kind, &Figures { tenders: d.tenders, total: d.total }, standing);
    }
    Ok(DocumentList { register, period, kinds, documents, summary })
}

#[derive(Serialize)]
struct DocumentLine<'a> {
    kind: DocumentKind,
    number: u64,
    uid: &'a str,
    status: &'static str,
    error: Option<&'a str>,
    created_at: DateTime<FixedOffset>,
    cash: Option<Money>,
    card: Option<Money>,
    other: Option<Money>,
    total: Money,
}

#[derive(Serialize)]
struct DocumentListJson<'a> {
    documents: Vec<DocumentLine<'a>>,
    summary: &'a Summary,
}

impl Listing for DocumentList {
    /// Serialized straight from the rows, no value tree between.
    fn json(&self) -> impl Serialize + '_ {
        let documents = self
            .documents
            .iter()
            .map(|d| DocumentLine {
                kind: d.kind,
                number: d.number,
                uid: &d.uid,
                status: status_word(&d.error),
                error: d.error.as_deref(),
                created_at: d.created_at,
                cash: d.tenders.map(|t| t.cash),
                card: d.tenders.map(|t| t.card),
                other: d.tenders.map(|t| t.other),
                total: d.total,
            })
            .collect();
        DocumentListJson { documents, summary: &self.summary }
    }

    fn report(&self) -> Report {
        self.export()
    }
}

impl DocumentList {
    /// The heading: «Кассовые документы по AVQ11169990740».
    pub fn title(&self) -> String {
        format!("Кассовые документы по {}", self.register.serial)
    }

    /// The documents and the summary table as an export.
    fn export(&self) -> Report {
        let money = |m: Option<Money>| m.filter(|m| !m.is_zero()).map_or(Cell::Empty, Cell::Money);
        let documents = Table {
            columns: DOCUMENT_COLUMNS.map(String::from).to_vec(),
            rows: self
                .documents
                .iter()
                .map(|d| {
                    vec![
                        Cell::Text(d.kind.label().into()),
                        Cell::Int(d.number as i64),
                        Cell::Text(d.uid.clone()),
                        Cell::Text(status_label(&d.error).into()),
                        Cell::Text(format_local(&d.created_at)),
                        money(d.tenders.map(|t| t.cash)),
                        money(d.tenders.map(|t| t.card)),
                        money(d.tenders.map(|t| t.other)),
                        Cell::Money(d.total),
                    ]
                })
                .collect(),
        };
        let summary = SummaryTable::new(&self.summary);
        let mut columns = vec![String::new()];
        columns.extend(summary.headers.iter().cloned());
        let rows = summary
            .rows
            .iter()
            .map(|row| {
                let mut cells = vec![Cell::Text(row.label.into())];
                cells.extend(row.cells.iter().map(|c| c.clone().map_or(Cell::Empty, Cell::Text)));
                cells
            })
            .collect();
        Report {
            title: self.title(),
            subtitle: Some(period_text(&self.period, self.register.time_zone)),
            tables: vec![documents, Table { columns, rows }],
        }
    }
}

/// The document list's column headers, as the manual has them.
pub const DOCUMENT_COLUMNS: [&str; 9] = [
    "Тип документа",
    "Номер документа",
    "UID",
    "Статус документа в АИС ККО (Доставлено/Ошибка отправки)",
    "Дата и время формирования документа",
    "Сумма наличными",
    "Сумма безналичными",
    "Сумма иными",
    "Сумма общая",
];

/// A period as shown: `11.10.2024 00:00 - 11.10.2024 23:59`.
pub fn period_text(period: &Period, zone: Tz) -> String {
    let f = |t: DateTime<Utc>| t.with_timezone(&zone).format("%d.%m.%Y %H:%M").to_string();
    format!("{} - {}", f(period.from), f(period.to))
}

/// The summary table under the document list, as text cells: the columns Выручка, then each
/// kind with its count; the rows ИТОГО, Наличными, Картой, Прочее (cash kinds: ИТОГО alone).
pub struct SummaryTable {
    /// The column headers after the row label: «Выручка», «Платежный документ (3)», ….
    pub headers: Vec<String>,
    /// The rows.
    pub rows: Vec<SummaryRow>,
}

/// One row of the summary table.
pub struct SummaryRow {
    /// ИТОГО, Наличными, Картой or Прочее.
    pub label: &'static str,
    /// One cell per header; `None` where the manual leaves it blank.
    pub cells: Vec<Option<String>>,
}

impl SummaryTable {
    /// The table of `summary`.
    pub fn new(summary: &Summary) -> SummaryTable {
        let mut headers = vec!["Выручка".to_owned()];
        headers.extend(DocumentKind::ALL.iter().map(|k| format!("{} ({})", k.label(), summary.kind(*k).count)));
        let revenue = summary.revenue();
        let row = |label, revenue_cell: String, pick: fn(&protocol::KindTotals) -> Money, all: bool| SummaryRow {
            label,
            cells: std::iter::once(Some(revenue_cell))
                .chain(
                    DocumentKind::ALL
                        .iter()
                        .map(|k| (all || k.has_tenders()).then(|| pick(summary.kind(*k)).grouped())),
                )
                .collect(),
        };
        SummaryTable {
            headers,
            rows: vec![
                row("ИТОГО", revenue.total().grouped(), |k| k.total, true),
                row("Наличными", revenue.cash.grouped(), |k| k.tenders.cash, false),
                row("Картой", revenue.card.grouped(), |k| k.tenders.card, false),
                row("Прочее", revenue.other.grouped(), |k| k.tenders.other, false),
            ],
        }
    }
}

/// One document, whole, with its receipt text.
pub struct DocumentDetail {
    /// The document.
    pub document: protocol::Document,
    /// Its UID.
    pub uid: Uid,
    /// Whose receipt it is.
    pub header: ReceiptHeader,
    /// Why the server refused it, if it did.
    pub error: Option<String>,
}

impl DocumentDetail {
    /// The JSON: the document as the agent answers it, with its delivery state.
    pub fn to_json(&self) -> serde_json::Value {
        let view = DocumentView::new(&self.header, &self.document, &self.uid)
            .with_delivery(status_word(&self.error), self.error.as_deref());
        serde_json::to_value(view).expect("serializable")
    }

    /// The printed form.
    pub fn receipt(&self) -> String {
        protocol::receipt_text(&self.header, &self.document, &self.uid)
    }
}

/// One document by its UID.
pub fn document(store: &dyn Store, scope: &Scope, uid: &str) -> Result<DocumentDetail, QueryError> {
    let stored = store.document(scope, &uid.to_ascii_uppercase())?;
    let document = match Payload::from_cbor(&stored.payload) {
        Ok(Payload::Document(document)) => document,
        _ => return Err(QueryError::Store(StoreError::Corrupt(format!("документ {uid} не читается")))),
    };
    Ok(DocumentDetail {
        uid: Uid::new(&stored.hash, stored.reg_number),
        header: ReceiptHeader {
            org_name: stored.taxpayer.name,
            unp: stored.taxpayer.unp,
            reg_number: stored.reg_number,
        },
        document,
        error: stored.error,
    })
}

// ---- События ----

/// A register's events in a period.
pub struct EventList {
    /// The register.
    pub register: Equipment,
    /// The period.
    pub period: Period,
    /// The codes asked for (empty: all).
    pub codes: Vec<u32>,
    /// The events, by time.
    pub events: Vec<EventRow>,
}

/// The events of `reg` in the period, of the codes asked for.
pub fn events(
    store: &dyn Store,
    scope: &Scope,
    reg: RegNumber,
    from: Option<&str>,
    to: Option<&str>,
    codes_text: Option<&str>,
    now: DateTime<Utc>,
) -> Result<EventList, QueryError> {
    let register = store.register(scope, reg)?;
    let period = period(register.time_zone, from, to, now)?;
    let codes = codes(codes_text)?;
    let events = store.events(scope, reg, period, &codes)?;
    Ok(EventList { register, period, codes, events })
}

/// An event's delivery state as the page shows it.
pub fn event_status_label(error: &Option<String>) -> &'static str {
    if error.is_some() { "Ошибка" } else { "Доставлено" }
}

#[derive(Serialize)]
struct EventLine<'a> {
    code: u32,
    label: String,
    parameter: Option<&'a str>,
    created_at: DateTime<FixedOffset>,
    sent_at: DateTime<FixedOffset>,
    status: &'static str,
}

/// The event list's column headers, as the manual has them.
pub const EVENT_COLUMNS: [&str; 6] = [
    "Код события",
    "Тип события",
    "Параметр события",
    "Дата и время формирования события",
    "Дата и время отправки события",
    "Состояние передачи в АИС ККО",
];

impl Listing for EventList {
    fn json(&self) -> impl Serialize + '_ {
        let lines: Vec<_> = self
            .events
            .iter()
            .map(|e| EventLine {
                code: e.code.code(),
                label: e.code.label(),
                parameter: e.parameter.as_deref(),
                created_at: e.created_at,
                sent_at: e.sent_at,
                status: status_word(&e.error),
            })
            .collect::<Vec<_>>();
        lines
    }

    fn report(&self) -> Report {
        Report {
            title: self.title(),
            subtitle: Some(period_text(&self.period, self.register.time_zone)),
            tables: vec![Table {
                columns: EVENT_COLUMNS.map(String::from).to_vec(),
                rows: self
                    .events
                    .iter()
                    .map(|e| {
                        vec![
                            Cell::Int(i64::from(e.code.code())),
                            Cell::Text(e.code.label()),
                            e.parameter.clone().map_or(Cell::Empty, Cell::Text),
                            Cell::Text(format_local(&e.created_at)),
                            Cell::Text(format_local(&e.sent_at.with_timezone(&self.register.time_zone).fixed_offset())),
                            Cell::Text(event_status_label(&e.error).into()),
                        ]
                    })
                    .collect(),
            }],
        }
    }
}

impl EventList {
    /// The heading.
    pub fn title(&self) -> String {
        format!("События по {}", self.register.serial)
    }
}

/// The event codes the page offers as check-boxes, with their labels.
pub fn event_choices() -> Vec<(u32, String)> {
    EventCode::KNOWN.iter().map(|c| (c.code(), c.label())).collect()
}

// ---- Накопительный итог ----

/// One line of the cumulative-total page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CumulativeView {
    /// № Смены.
    pub shift: protocol::ShiftNumber,
    /// Накопительный итог.
    pub total: Money,
    /// Whether it equals the previous line plus the shift's payments.
    pub consistent: bool,
}

/// A register's cumulative totals, each checked against the one before.
pub struct CumulativeList {
    /// The register.
    pub register: Equipment,
    /// Per shift report, in shift order.
    pub lines: Vec<CumulativeView>,
}

/// The cumulative totals of `reg`.
pub fn cumulative(store: &dyn Store, scope: &Scope, reg: RegNumber) -> Result<CumulativeList, QueryError> {
    let register = store.register(scope, reg)?;
    let lines: Vec<CumulativeLine> = store.cumulative_lines(scope, reg)?;
    // A register's first shift starts from zero; one that moved over from another system
    // starts from a total the server never saw, so its first line is taken as given.
    let baseline = lines.first().filter(|l| l.shift.0 == 1).map(|_| Money::ZERO);
    let consistent = check_cumulative(&lines, baseline);
    let lines = lines
        .iter()
        .zip(consistent)
        .map(|(line, consistent)| CumulativeView { shift: line.shift, total: line.reported, consistent })
        .collect();
    Ok(CumulativeList { register, lines })
}

impl CumulativeList {
    /// The heading.
    pub fn title(&self) -> String {
        format!("Накопительный итог по {}", self.register.serial)
    }
}

impl Listing for CumulativeList {
    fn json(&self) -> impl Serialize + '_ {
        &self.lines
    }

    fn report(&self) -> Report {
        Report {
            title: self.title(),
            subtitle: None,
            tables: vec![Table {
                columns: ["№ Смены", "Накопительный итог", "Сходится"].map(String::from).to_vec(),
                rows: self
                    .lines
                    .iter()
                    .map(|l| {
                        vec![
                            Cell::Int(i64::from(l.shift.0)),
                            Cell::Money(l.total),
                            Cell::Text(if l.consistent { "да" } else { "нет" }.into()),
                        ]
                    })
                    .collect(),
            }],
        }
    }
}

// ---- Торговые объекты ----

/// The longest text of an editable object field.
pub const MAX_OBJECT_FIELD: usize = 500;

/// Checks the editable fields of a trade object and saves them.
pub fn update_object(
    store: &dyn Store,
    scope: &Scope,
    id: ObjectId,
    details: ObjectDetails,
) -> Result<crate::store::TradeObject, QueryError> {
    let fields = [
        ("Фактический адрес", &details.actual_address),
        ("Время работы", &details.working_hours),
        ("Контактные данные", &details.contacts),
        ("Заметки", &details.notes),
    ];
    for (name, value) in fields {
        if value.chars().count() > MAX_OBJECT_FIELD {
            return Err(QueryError::BadRequest(format!("{name}: не длиннее {MAX_OBJECT_FIELD} символов")));
        }
        if value.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
            return Err(QueryError::BadRequest(format!("{name}: недопустимые символы")));
        }
    }
    let details = ObjectDetails {
        actual_address: details.actual_address.trim().to_owned(),
        working_hours: details.working_hours.trim().to_owned(),
        contacts: details.contacts.trim().to_owned(),
        notes: details.notes.trim().to_owned(),
    };
    Ok(store.update_object(scope, id, &details)?)
}

/// The objects as an export.
pub fn objects_report(objects: &[crate::store::TradeObject]) -> Report {
    Report {
        title: "Торговые объекты".into(),
        subtitle: None,
        tables: vec![Table {
            columns: [
                "Субъект хозяйствования",
                "Торговый объект",
                "Адрес торгового объекта по АИС ККО",
                "УНП",
                "Фактический адрес торгового объекта",
                "Время работы",
                "Контактные данные",
                "Заметки",
            ]
            .map(String::from)
            .to_vec(),
            rows: objects
                .iter()
                .map(|o| {
                    [
                        &o.org_name,
                        &o.name,
                        &o.address,
                        &o.unp.to_string(),
                        &o.details.actual_address,
                        &o.details.working_hours,
                        &o.details.contacts,
                        &o.details.notes,
                    ]
                    .map(|s| Cell::Text(s.clone()))
                    .to_vec()
                })
                .collect(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minsk() -> Tz {
        "Europe/Minsk".parse().unwrap()
    }

    #[test]
    fn the_period_defaults_to_today_in_the_registers_zone() {
        // 22:30 UTC on 10 Oct is already 11 Oct in Minsk (UTC+3).
        let now = "2024-10-10T22:30:00Z".parse().unwrap();
        let p = period(minsk(), None, None, now).unwrap();
        assert_eq!(p.from.to_rfc3339(), "2024-10-10T21:00:00+00:00");
        assert_eq!(p.to.to_rfc3339(), "2024-10-11T20:59:59+00:00");
        assert_eq!(period_text(&p, minsk()), "11.10.2024 00:00 - 11.10.2024 23:59");
    }

    #[test]
    fn period_accepts_dates_form_fields_and_rfc3339() {
        let now = Utc::now();
        let p = period(minsk(), Some("2024-10-11"), Some("2024-10-11"), now).unwrap();
        assert_eq!(
            (p.from.to_rfc3339(), p.to.to_rfc3339()),
            ("2024-10-10T21:00:00+00:00".into(), "2024-10-11T20:59:59+00:00".into())
        );
        let p = period(minsk(), Some("2024-10-11T15:00"), Some("2024-10-11T15:30"), now).unwrap();
        assert_eq!(p.to.to_rfc3339(), "2024-10-11T12:30:59+00:00");
        let p = period(minsk(), Some("2024-10-11T15:04:50+03:00"), Some("2024-10-12"), now).unwrap();
        assert_eq!(p.from.to_rfc3339(), "2024-10-11T12:04:50+00:00");
        assert!(matches!(period(minsk(), Some("вчера"), None, now), Err(QueryError::BadRequest(_))));
        // An offset's `+` sent unencoded arrives as a space.
        let p = period(minsk(), Some("2024-10-11T15:04:50 03:00"), Some("2024-10-11"), now).unwrap();
        assert_eq!(p.from.to_rfc3339(), "2024-10-11T12:04:50+00:00");
        // `to` alone: that day.
        let p = period(minsk(), None, Some("2024-10-11"), now).unwrap();
        assert_eq!(p.from.to_rfc3339(), "2024-10-10T21:00:00+00:00");
        assert!(period(minsk(), Some("2020-01-01"), Some("2024-10-11"), now).unwrap_err().to_string().contains("366"));
        assert!(matches!(period(minsk(), Some("2024-10-12"), Some("2024-10-11"), now), Err(QueryError::BadRequest(_))));
    }

    #[test]
    fn a_repeated_hour_belongs_wholly_to_a_period_ending_in_it() {
        // Berlin repeats 02:00–03:00 on 27 October 2024.
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let p = period(berlin, Some("2024-10-27T02:30"), Some("2024-10-27T02:30"), Utc::now()).unwrap();
        assert_eq!(p.from.to_rfc3339(), "2024-10-27T00:30:00+00:00");
        assert_eq!(p.to.to_rfc3339(), "2024-10-27T01:30:59+00:00");
    }

    #[test]
    fn kinds_and_codes_parse_or_say_what_is_wrong() {
        assert_eq!(kinds(None).unwrap().len(), 7);
        assert_eq!(kinds(Some("payment,return")).unwrap(), [DocumentKind::Payment, DocumentKind::Return]);
        assert!(kinds(Some("payment,sale")).unwrap_err().to_string().contains("sale"));
        assert_eq!(codes(Some("26, 27")).unwrap(), [26, 27]);
        assert!(codes(Some("x")).is_err());
    }
}
