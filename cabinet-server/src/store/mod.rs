//! The store: everything the server keeps, behind one trait. SQLite is the default
//! backend (`store::sqlite`); PostgreSQL follows as a second implementation of the same
//! trait with its own SQL and migrations. SQL lives only in the backends.
//!
//! The trait is synchronous: backends are called from `spawn_blocking`, which suits
//! SQLite and keeps the trait object-safe.

pub mod sqlite;

use chrono::{DateTime, NaiveDate, Utc};
use protocol::{ChainHash, DeviceInfo, Directive, Entry, EntryStatus, RegNumber, Seq, Serial, Unp};

use crate::ingest::ChainRefusal;

/// A trade object's id: unique across all taxpayers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
}
