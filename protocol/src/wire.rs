//! The agent → server wire format (CONTRACTS §2): CBOR batches and answers.
//!
//! Encoded with `ciborium`. Decoding refuses oversized input before parsing it and limits
//! nesting, so a hostile body costs at most its (bounded) size.

use chrono::{DateTime, FixedOffset};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::chain::Entry;
use crate::ids::{RegNumber, Seq};

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// The largest batch body accepted, in bytes (1 MiB).
pub const MAX_BATCH_BYTES: usize = 1 << 20;
/// The most entries in one batch.
pub const MAX_BATCH_ENTRIES: usize = 500;
/// The largest single payload, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 256 << 10;
/// The largest answer accepted by the agent, in bytes.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;
/// The deepest nesting a decoder follows; our types nest a handful of levels.
const MAX_NESTING: usize = 32;

/// Why bytes are not a valid message.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The body is larger than the limit.
    #[error("сообщение больше {limit} байт ({size})")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not CBOR of the expected shape.
    #[error("неверный формат CBOR: {0}")]
    Malformed(String),
    /// A batch of a protocol version this server does not speak.
    #[error("версия протокола {0} не поддерживается (ожидается {PROTOCOL_VERSION})")]
    UnsupportedVersion(u32),
    /// More entries than a batch may hold.
    #[error("в пакете {0} записей, допускается не более {MAX_BATCH_ENTRIES}")]
    TooManyEntries(usize),
}

/// Encodes a value as CBOR.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).expect("writing CBOR to a Vec cannot fail for our types");
    bytes
}

/// Decodes CBOR of at most `limit` bytes.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, WireError> {
    if bytes.len() > limit {
        return Err(WireError::TooLarge { size: bytes.len(), limit });
    }
    let value = ciborium::de::from_reader_with_recursion_limit(bytes, MAX_NESTING)
        .map_err(|e| WireError::Malformed(e.to_string()))?;
    Ok(value)
}

/// What a register says about itself with every batch (and every heartbeat).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// The register's model and info line (`9.1.18.1 - TitanPos Mobile`).
    pub info: String,
    /// The POS software's version.
    pub pos_version: String,
    /// The agent's version.
    pub agent_version: String,
    /// When the ТСОК expires.
    pub tsok_expires_at: Option<DateTime<FixedOffset>>,
    /// How many entries are not yet delivered (this batch's included).
    pub pending: u64,
    /// When the oldest undelivered entry was recorded.
    pub oldest_pending_at: Option<DateTime<FixedOffset>>,
    /// When this batch was sent, by the register's clock.
    pub sent_at: DateTime<FixedOffset>,
}

/// A batch of journal entries, in `seq` order; with no entries it is a heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// The protocol version ([`PROTOCOL_VERSION`]).
    pub protocol: u32,
    /// The register sending.
    pub reg_number: RegNumber,
    /// The register's own figures.
    pub device: DeviceInfo,
    /// Consecutive entries of its journal.
    pub entries: Vec<Entry>,
}

impl Batch {
    /// Reads a batch, refusing bodies over [`MAX_BATCH_BYTES`], other protocol versions and
    /// more than [`MAX_BATCH_ENTRIES`] entries.
    pub fn decode(bytes: &[u8]) -> Result<Batch, WireError> {
        let batch: Batch = decode(bytes, MAX_BATCH_BYTES)?;
        if batch.protocol != PROTOCOL_VERSION {
            return Err(WireError::UnsupportedVersion(batch.protocol));
        }
        if batch.entries.len() > MAX_BATCH_ENTRIES {
            return Err(WireError::TooManyEntries(batch.entries.len()));
        }
        Ok(batch)
    }

    /// The batch's CBOR bytes.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }
}

/// What the server did with one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryStatus {
    /// Stored now.
    Accepted,
    /// Already stored before, with the same hash; nothing changed.
    Duplicate,
    /// Stored as refused, with the reason; the chain goes on.
    Rejected,
}

/// The server's verdict on one entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryResult {
    /// The entry.
    pub seq: Seq,
    /// What happened to it.
    pub status: EntryStatus,
    /// Why it was rejected.
    pub reason: Option<String>,
}

/// An order from the server to the register.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Directive {
    /// Stop accepting documents.
    Block {
        /// Why, for the cashier.
        reason: String,
    },
    /// Lift a block the server set.
    Unblock {
        /// Why, for the log.
        reason: String,
    },
}

/// The server's answer to a batch it took.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The highest seq the server now holds for this register (0 when none).
    pub accepted_through: Seq,
    /// One result per entry of the batch, in order.
    pub results: Vec<EntryResult>,
    /// Orders for the register.
    pub directives: Vec<Directive>,
    /// The server's clock.
    pub server_time: DateTime<FixedOffset>,
}

impl Answer {
    /// Reads an answer of at most [`MAX_ANSWER_BYTES`].
    pub fn decode(bytes: &[u8]) -> Result<Answer, WireError> {
        decode(bytes, MAX_ANSWER_BYTES)
    }

    /// The answer's CBOR bytes.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }
}

/// The body of a refused batch (`4xx`): what is wrong, and where to resume for `409`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// A stable snake_case code (`chain_gap`, `chain_conflict`, `bad_token`).
    pub code: String,
    /// A person's explanation.
    pub message: String,
    /// The highest seq the server holds, when it matters (a gap: resend from the next).
    pub accepted_through: Option<Seq>,
}

impl Refusal {
    /// Reads a refusal of at most [`MAX_ANSWER_BYTES`].
    pub fn decode(bytes: &[u8]) -> Result<Refusal, WireError> {
        decode(bytes, MAX_ANSWER_BYTES)
    }

    /// The refusal's CBOR bytes.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }
}
