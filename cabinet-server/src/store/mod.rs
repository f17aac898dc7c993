//! The store: everything the server keeps, behind one trait. SQLite is the default
//! backend (`store::sqlite`); PostgreSQL follows as a second implementation of the same
//! trait with its own SQL and migrations. SQL lives only in the backends.
//!
//! The trait is synchronous: backends are called through `web::store_call` (in place on a
//! worker, or on the blocking pool), which suits SQLite and keeps the trait object-safe.

pub mod sqlite;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use protocol::{
    ChainHash, CumulativeLine, DeviceInfo, Directive, DocumentKind, Entry, EntryStatus, EventCode, Money, RegNumber,
    Seq, Serial, Tenders, Unp,
};

use crate::ingest::ChainRefusal;

/// A trade object's id: unique across all taxpayers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ObjectId(pub i64);

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("{0} не найден")]
    NotFound(String),
    /// The thing to add exists already.
    #[error("{0} уже существует")]
    Duplicate(String),
    /// The database failed.
    #[error("ошибка базы данных: {0}")]
    Database(String),
    /// A stored value does not parse.
    #[error("данные в базе повреждены: {0}")]
    Corrupt(String),
}

/// A cash register to register.
#[derive(Clone, Debug)]
pub struct NewDevice {
    /// Its taxpayer.
    pub unp: Unp,
    /// Its trade object (of the same taxpayer).
    pub object: ObjectId,
    /// РН СККО.
    pub reg_number: RegNumber,
    /// Номер СКО.
    pub serial: Serial,
    /// Дата снаряжения.
    pub commissioned_on: NaiveDate,
    /// The register's time zone: the portal's days are its days.
    pub time_zone: chrono_tz::Tz,
    /// SHA-256 of its device token (the token itself is never stored).
    pub token_hash: [u8; 32],
}

/// What authenticates a batch: the register a device token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceAuth {
    /// The register.
    pub reg_number: RegNumber,
}

/// What the store did with a batch.
#[derive(Clone, Debug, PartialEq)]
pub enum IngestOutcome {
    /// Stored (or recognised as duplicates), in one transaction.
    Stored {
        /// The highest seq held now.
        accepted_through: Seq,
        /// Per entry, in order.
        results: Vec<(Seq, EntryStatus, Option<String>)>,
        /// Orders for the register.
        directives: Vec<Directive>,
    },
    /// Refused whole; nothing of it stored, and the register flagged for the operator.
    Refused(ChainRefusal),
}

/// One stored entry, for tests and tools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEntry {
    /// Its seq.
    pub seq: Seq,
    /// Its hash.
    pub hash: ChainHash,
    /// Accepted or rejected.
    pub status: EntryStatus,
    /// Why rejected.
    pub reason: Option<String>,
    /// When the server received it.
    pub received_at: DateTime<Utc>,
}

/// What the operator sees of a register's delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceStatus {
    /// The highest seq held.
    pub head_seq: Seq,
    /// Why the register is flagged for the operator, if it is.
    pub flagged: Option<String>,
    /// The last batch's time.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// The device info it last sent.
    pub info: Option<DeviceInfo>,
}

/// A user's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct UserId(pub i64);

/// What a user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A merchant: the portal of the УНП they hold.
    Merchant,
    /// The operator: the back office.
    Operator,
}

impl Role {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Merchant => "merchant",
            Role::Operator => "operator",
        }
    }

    fn parse(text: &str) -> Result<Role, StoreError> {
        match text {
            "merchant" => Ok(Role::Merchant),
            "operator" => Ok(Role::Operator),
            other => Err(StoreError::Corrupt(format!("role {other:?}"))),
        }
    }
}

/// A user as the store keeps them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The id.
    pub id: UserId,
    /// The login.
    pub login: String,
    /// The e-mail.
    pub email: String,
    /// Merchant or operator.
    pub role: Role,
    /// The argon2id PHC string of the password.
    pub password_hash: String,
    /// The taxpayers the user holds, in УНП order.
    pub taxpayers: Vec<Taxpayer>,
}

/// A user to add.
#[derive(Clone, Debug)]
pub struct NewUser<'a> {
    /// The login (already checked).
    pub login: &'a str,
    /// The e-mail.
    pub email: &'a str,
    /// Merchant or operator.
    pub role: Role,
    /// The argon2id PHC string of the password.
    pub password_hash: &'a str,
    /// The taxpayers the user holds.
    pub unps: &'a [Unp],
}

/// A taxpayer: УНП and the legal entity's name.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Taxpayer {
    /// УНП.
    pub unp: Unp,
    /// Субъект хозяйствования.
    pub name: String,
}

/// The set of УНП one request may see, made only from an authenticated user
/// ([`Scope::of`]). Every portal query of the store takes it: this is the tenant wall.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    unps: Vec<Unp>,
}

impl Scope {
    /// What `user` may see.
    pub fn of(user: &User) -> Scope {
        Scope { unps: user.taxpayers.iter().map(|t| t.unp).collect() }
    }

    /// Whether `unp` is inside.
    pub fn holds(&self, unp: Unp) -> bool {
        self.unps.contains(&unp)
    }

    /// The УНП inside.
    pub fn unps(&self) -> &[Unp] {
        &self.unps
    }
}

/// An API token as listed (the token itself is shown once, when made).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ApiTokenInfo {
    /// Its id.
    pub id: i64,
    /// What the user called it.
    pub name: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was last used.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A register as the equipment page lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Equipment {
    /// РН СККО.
    pub reg_number: RegNumber,
    /// Номер СКО.
    pub serial: Serial,
    /// Its taxpayer.
    pub taxpayer: Taxpayer,
    /// Its trade object's id.
    pub object_id: ObjectId,
    /// Its trade object's name.
    pub object_name: String,
    /// Дата снаряжения.
    pub commissioned_on: NaiveDate,
    /// The register's time zone.
    pub time_zone: chrono_tz::Tz,
    /// What the register last told about itself, if it ever did.
    pub info: Option<DeviceInfo>,
    /// When the server last heard from it.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Why it is blocked, per its last blocking event (1020 without a later 1022).
    pub blocked: Option<String>,
}

/// A closed period of time, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    /// The first instant.
    pub from: DateTime<Utc>,
    /// The last instant.
    pub to: DateTime<Utc>,
}

/// A document's line in the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentRow {
    /// Its entry's seq.
    pub seq: Seq,
    /// Тип документа.
    pub kind: DocumentKind,
    /// Номер документа (a shift report's is its shift).
    pub number: u64,
    /// UID.
    pub uid: String,
    /// When formed, in the register's offset.
    pub created_at: DateTime<FixedOffset>,
    /// The tenders, for kinds that have them.
    pub tenders: Option<Tenders>,
    /// Сумма общая.
    pub total: Money,
    /// Why the server refused it (`None`: delivered).
    pub error: Option<String>,
}

/// An event's line in the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    /// Its entry's seq.
    pub seq: Seq,
    /// Код события.
    pub code: EventCode,
    /// Параметр события.
    pub parameter: Option<String>,
    /// When formed on the register.
    pub created_at: DateTime<FixedOffset>,
    /// When the register sent it.
    pub sent_at: DateTime<FixedOffset>,
    /// Why the server refused it (`None`: delivered).
    pub error: Option<String>,
}

/// One stored document, whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDocument {
    /// Its register.
    pub reg_number: RegNumber,
    /// The taxpayer.
    pub taxpayer: Taxpayer,
    /// Its entry's hash (the UID's source).
    pub hash: ChainHash,
    /// The CBOR payload as journaled.
    pub payload: Vec<u8>,
    /// Why the server refused it (`None`: delivered).
    pub error: Option<String>,
}

/// A trade object, as the objects page shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TradeObject {
    /// Its id, unique across taxpayers.
    pub id: ObjectId,
    /// Its taxpayer.
    pub unp: Unp,
    /// Субъект хозяйствования.
    #[serde(skip)]
    pub org_name: String,
    /// Торговый объект.
    pub name: String,
    /// Адрес торгового объекта по АИС ККО.
    pub address: String,
    /// The fields the merchant edits.
    #[serde(flatten)]
    pub details: ObjectDetails,
}

/// The fields of a trade object the merchant edits.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectDetails {
    /// Фактический адрес торгового объекта.
    pub actual_address: String,
    /// Время работы.
    pub working_hours: String,
    /// Контактные данные.
    pub contacts: String,
    /// Заметки.
    pub notes: String,
}

/// A server-side session as stored: opaque data, its owner (so a password change can end
/// them all) and its expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the session id (the id itself lives only in the cookie).
    pub id_hash: [u8; 32],
    /// The signed-in user, if any.
    pub user: Option<UserId>,
    /// The session's data, as JSON.
    pub data: String,
    /// When it expires (Unix seconds).
    pub expires_at: i64,
}

/// Everything the server keeps.
pub trait Store: Send + Sync + 'static {
    /// Adds a taxpayer.
    fn add_taxpayer(&self, unp: Unp, name: &str) -> Result<(), StoreError>;
    /// Adds a trade object of a taxpayer; returns its id.
    fn add_object(
        &self,
        unp: Unp,
        name: &str,
        address: &str,
        actual_address: Option<&str>,
    ) -> Result<ObjectId, StoreError>;
    /// Registers a cash register.
    fn add_device(&self, device: &NewDevice) -> Result<(), StoreError>;
    /// The register a device token (by its hash) belongs to.
    fn device_for_token(&self, token_hash: &[u8; 32]) -> Result<Option<DeviceAuth>, StoreError>;
    /// Verifies and stores a batch of `reg` in one transaction.
    fn ingest(
        &self,
        reg: RegNumber,
        device: &DeviceInfo,
        entries: &[Entry],
        received_at: DateTime<Utc>,
    ) -> Result<IngestOutcome, StoreError>;
    /// Orders a register blocked (`Some(reason)`) or unblocked (`None`) at its next contact.
    fn set_block_directive(&self, reg: RegNumber, reason: Option<&str>) -> Result<(), StoreError>;
    /// A register's delivery status.
    fn device_status(&self, reg: RegNumber) -> Result<DeviceStatus, StoreError>;
    /// Stored entries of `reg` from `from`, at most `limit`.
    fn entries(&self, reg: RegNumber, from: Seq, limit: usize) -> Result<Vec<StoredEntry>, StoreError>;

    // Users, tokens and sessions.

    /// Adds a user; returns the id.
    fn add_user(&self, user: &NewUser<'_>) -> Result<UserId, StoreError>;
    /// Gives a user another taxpayer.
    fn link_user(&self, login: &str, unp: Unp) -> Result<(), StoreError>;
    /// The user with `login` (case-insensitive).
    fn user_by_login(&self, login: &str) -> Result<Option<User>, StoreError>;
    /// The user with `id`.
    fn user(&self, id: UserId) -> Result<Option<User>, StoreError>;
    /// Replaces a user's password hash and ends all their sessions.
    fn set_password(&self, user: UserId, password_hash: &str) -> Result<(), StoreError>;
    /// Adds an API token (by its hash) for a user; returns its id.
    fn add_api_token(&self, user: UserId, name: &str, token_hash: &[u8; 32]) -> Result<i64, StoreError>;
    /// A user's live API tokens.
    fn api_tokens(&self, user: UserId) -> Result<Vec<ApiTokenInfo>, StoreError>;
    /// Revokes one of the user's API tokens; `NotFound` if the user has no such token.
    fn revoke_api_token(&self, user: UserId, id: i64) -> Result<(), StoreError>;
    /// Revokes all of a user's API tokens (after the operator reset a password).
    fn revoke_all_api_tokens(&self, user: UserId) -> Result<(), StoreError>;
    /// The user an API token (by its hash) belongs to, noting its use.
    fn user_for_api_token(&self, token_hash: &[u8; 32], now: DateTime<Utc>) -> Result<Option<UserId>, StoreError>;
    /// Stores a new session; `false` if the id is taken.
    fn create_session(&self, session: &SessionRecord) -> Result<bool, StoreError>;
    /// Rewrites a stored session; one that has ended stays ended.
    fn save_session(&self, session: &SessionRecord) -> Result<(), StoreError>;
    /// A live session (not expired at `now`, Unix seconds).
    fn load_session(&self, id_hash: &[u8; 32], now: i64) -> Result<Option<SessionRecord>, StoreError>;
    /// Ends a session.
    fn delete_session(&self, id_hash: &[u8; 32]) -> Result<(), StoreError>;

    // The portal's queries: each takes the caller's scope, and what lies outside it is
    // `NotFound`, exactly like what does not exist.

    /// The taxpayers inside the scope.
    fn taxpayers(&self, scope: &Scope) -> Result<Vec<Taxpayer>, StoreError>;
    /// The registers of one taxpayer, by РН СККО.
    fn equipment(&self, scope: &Scope, unp: Unp) -> Result<Vec<Equipment>, StoreError>;
    /// One register.
    fn register(&self, scope: &Scope, reg: RegNumber) -> Result<Equipment, StoreError>;
    /// A register's documents formed in `period`, of `kinds`, by time then seq.
    fn documents(
        &self,
        scope: &Scope,
        reg: RegNumber,
        period: Period,
        kinds: &[DocumentKind],
    ) -> Result<Vec<DocumentRow>, StoreError>;
    /// One document by its UID.
    fn document(&self, scope: &Scope, uid: &str) -> Result<StoredDocument, StoreError>;
    /// A register's events formed in `period`, of `codes` (all when empty), by time then seq.
    fn events(&self, scope: &Scope, reg: RegNumber, period: Period, codes: &[u32])
    -> Result<Vec<EventRow>, StoreError>;
    /// Per accepted shift report of the register, in shift order: the cumulative total it
    /// states and the sum of the accepted payment documents of the shifts since the report
    /// before it (its own shift alone, when none is missing).
    fn cumulative_lines(&self, scope: &Scope, reg: RegNumber) -> Result<Vec<CumulativeLine>, StoreError>;
    /// The trade objects inside the scope, by id.
    fn objects(&self, scope: &Scope) -> Result<Vec<TradeObject>, StoreError>;
    /// Saves the editable fields of a trade object; returns it.
    fn update_object(&self, scope: &Scope, id: ObjectId, details: &ObjectDetails) -> Result<TradeObject, StoreError>;
}
