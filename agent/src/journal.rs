//! The journal: the only module that touches SQLite.
//!
//! One file in WAL mode with `synchronous=FULL`. Every document is written by one
//! transaction that holds the entry, the document index, the register's counters and chain
//! head, and the idempotency record together: there is no second file to disagree with.
//! Reads use their own connections and never block the writer.

use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset};
use protocol::{
    ChainHash, ChainHead, Document, DocumentBody, DocumentKind, DocumentNumber, Entry, Money, Payload, RegNumber, Seq,
    ShiftNumber, SignedMoney, Summary, Uid,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};

use crate::config::StartFigures;
use crate::rules::{Block, OpenShift, Referenced, RegisterState};

/// The journal's file name inside the data directory.
pub const FILE_NAME: &str = "journal.sqlite";

/// Why the journal could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The disk is full: nothing was written.
    #[error("диск заполнен: запись невозможна")]
    DiskFull,
    /// Another SQLite failure.
    #[error("ошибка журнала: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The journal belongs to another register.
    #[error("журнал {path} принадлежит кассе {found}, а не {expected}")]
    OtherRegister {
        /// The file.
        path: PathBuf,
        /// The register in the file.
        found: String,
        /// The configured register.
        expected: RegNumber,
    },
    /// The journal file is damaged; it was copied aside and left in place.
    #[error("журнал поврежден ({cause}); файлы сохранены в {copy}; агент не запущен, обратитесь в поддержку")]
    Damaged {
        /// What SQLite reported.
        cause: String,
        /// Where the copy is.
        copy: PathBuf,
    },
    /// The data directory cannot be created.
    #[error("не удается создать каталог данных {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// There is no journal to read.
    #[error("журнал {0} не найден: агент еще не запускался?")]
    Missing(PathBuf),
    /// The journal was written by a newer agent.
    #[error("журнал создан более новой версией агента (схема {0})")]
    NewerSchema(i64),
    /// A stored value does not parse: the file was altered or is damaged.
    #[error("журнал поврежден: {0}")]
    Corrupt(String),
}

impl JournalError {
    /// Whether SQLite found the file damaged.
    fn is_damage(&self) -> bool {
        use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
        match self {
            JournalError::Sqlite(e) => matches!(e.sqlite_error_code(), Some(DatabaseCorrupt | NotADatabase)),
            JournalError::Corrupt(_) => true,
            _ => false,
        }
    }
}

/// Maps SQLite's "full" (and its I/O failures on a full disk) to [`JournalError::DiskFull`].
fn classify(e: rusqlite::Error) -> JournalError {
    use rusqlite::ErrorCode::{DiskFull, SystemIoFailure};
    match e.sqlite_error_code() {
        Some(DiskFull) => JournalError::DiskFull,
        Some(SystemIoFailure) if matches!(&e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_IOERR_WRITE || f.extended_code == rusqlite::ffi::SQLITE_IOERR_FSYNC) => {
            JournalError::DiskFull
        }
        _ => JournalError::Sqlite(e),
    }
}

type Result<T, E = JournalError> = std::result::Result<T, E>;

/// Schema migrations, applied in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE register (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    reg_number TEXT NOT NULL,
    next_number INTEGER NOT NULL,
    next_shift INTEGER NOT NULL,
    open_shift INTEGER,
    opened_at TEXT,
    -- The open shift's running summary (JSON of protocol::Summary::kinds), so that start-up
    -- does not re-read the shift's documents.
    shift_summary TEXT,
    drawer TEXT NOT NULL,
    cumulative_total TEXT NOT NULL,
    head_seq INTEGER NOT NULL,
    head_hash BLOB NOT NULL,
    blocked_reason TEXT,
    blocked_since TEXT,
    server_block TEXT,
    tsok_expiry_recorded INTEGER NOT NULL,
    last_delivery_at TEXT,
    last_error TEXT
);
-- Every entry, in chain order. delivery: 0 pending, 1 delivered, 2 rejected by the server.
CREATE TABLE entries (
    seq INTEGER PRIMARY KEY,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL,
    payload BLOB NOT NULL,
    created_at TEXT NOT NULL,
    delivery INTEGER NOT NULL DEFAULT 0,
    delivery_error TEXT,
    delivered_at TEXT
);
CREATE INDEX entries_pending ON entries (seq) WHERE delivery = 0;
-- Documents by number (shift reports apart: their number is their shift's).
CREATE TABLE documents (
    number INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    shift INTEGER NOT NULL,
    seq INTEGER NOT NULL UNIQUE,
    annulled INTEGER NOT NULL DEFAULT 0,
    returned TEXT NOT NULL DEFAULT '0.00'
);
CREATE TABLE shift_reports (
    shift INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE
);
CREATE TABLE idempotency (
    key TEXT PRIMARY KEY,
    request_hash BLOB NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX idempotency_created ON idempotency (created_at);
"#];

/// Copies the journal's files into `damaged-<unix time>/` beside them and returns the
/// error that says so.
fn set_aside(data_dir: &Path, cause: JournalError) -> JournalError {
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let copy = data_dir.join(format!("damaged-{stamp}"));
    let copied = std::fs::create_dir_all(&copy).and_then(|()| {
        for suffix in ["", "-wal", "-shm"] {
            let file = data_dir.join(format!("{FILE_NAME}{suffix}"));
            if file.exists() {
                std::fs::copy(&file, copy.join(format!("{FILE_NAME}{suffix}")))?;
            }
        }
        Ok(())
    });
    match copied {
        Ok(()) => JournalError::Damaged { cause: cause.to_string(), copy },
        Err(e) => JournalError::Corrupt(format!("{cause}; copying it aside to {} failed: {e}", copy.display())),
    }
}

/// Opens a connection with the journal's settings.
fn connect(path: &Path, flags: OpenFlags) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, flags).map_err(classify)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Every hot query touches a few pages at the right edge of a B-tree: a small page cache
    // serves it as well as SQLite's default 2 MiB, and terminals are short of memory.
    conn.pragma_update(None, "cache_size", -512)?;
    Ok(conn)
}

/// The writer's side of the journal.
pub struct Journal {
    conn: Connection,
}

/// Where a delivered-or-not entry stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Not yet acknowledged by the server.
    Pending,
    /// Stored by the server.
    Delivered,
    /// Stored by the server as refused.
    Rejected,
}

impl Delivery {
    fn from_code(code: i64) -> Delivery {
        match code {
            1 => Delivery::Delivered,
            2 => Delivery::Rejected,
            _ => Delivery::Pending,
        }
    }

    /// The name in the API (`pending`, `delivered`, `rejected`).
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Pending => "pending",
            Delivery::Delivered => "delivered",
            Delivery::Rejected => "rejected",
        }
    }
}

/// A stored idempotency record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remembered {
    /// SHA-256 of the request it answered.
    pub request_hash: [u8; 32],
    /// The HTTP status given.
    pub status: u16,
    /// The body given.
    pub response: String,
}

impl Journal {
    /// Opens (creating it if needed) the journal in `data_dir` for register `reg`. A new
    /// journal starts from `start`.
    ///
    /// A damaged file (SQLite reports corruption) is copied aside — never deleted, never
    /// replaced: it may hold undelivered entries, and a fresh journal would reuse document
    /// numbers — and the error names the copy.
    pub fn open(data_dir: &Path, reg: RegNumber, start: &StartFigures) -> Result<Journal> {
        match Journal::open_unchecked(data_dir, reg, start) {
            Err(e) if e.is_damage() => Err(set_aside(data_dir, e)),
            other => other,
        }
    }

    fn open_unchecked(data_dir: &Path, reg: RegNumber, start: &StartFigures) -> Result<Journal> {
        std::fs::create_dir_all(data_dir)
            .map_err(|source| JournalError::DataDir { path: data_dir.to_owned(), source })?;
        let path = data_dir.join(FILE_NAME);
        let mut conn = connect(&path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)?;
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(JournalError::Corrupt(format!("journal_mode is {mode}, WAL required")));
        }
        migrate(&mut conn)?;
        let found: Option<String> = conn.query_row("SELECT reg_number FROM register", [], |r| r.get(0)).optional()?;
        match found {
            Some(found) if found != reg.to_string() => {
                return Err(JournalError::OtherRegister { path, found, expected: reg });
            }
            Some(_) => {}
            None => {
                conn.execute(
                    "INSERT INTO register (id, reg_number, next_number, next_shift, drawer, cumulative_total,
                         head_seq, head_hash, tsok_expiry_recorded)
                     VALUES (1, ?1, ?2, ?3, ?4, ?5, 0, ?6, 0)",
                    params![
                        reg.to_string(),
                        start.number.0 as i64,
                        start.shift.0,
                        start.cash_in_drawer.to_string(),
                        start.cumulative_total.to_string(),
                        ChainHash::ZERO.0.as_slice(),
                    ],
                )
                .map_err(classify)?;
            }
        }
        // Reading the state once here makes a damaged register row fail the open.
        load_state(&conn)?;
        // Checkpoints keep the WAL small; this bounds the file a checkpoint leaves behind.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        Ok(Journal { conn })
    }

    /// The register's state and chain head as last committed.
    pub fn load(&self) -> Result<(RegisterState, ChainHead)> {
        load_state(&self.conn)
    }

    /// Starts the transaction one group commit writes in.
    pub fn begin(&mut self) -> Result<WriteTx<'_>> {
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(classify)?;
        Ok(WriteTx { tx })
    }
}

fn oldest_pending_at(conn: &Connection) -> Result<Option<DateTime<FixedOffset>>> {
    let at: Option<String> = conn
        .query_row("SELECT created_at FROM entries WHERE delivery = 0 ORDER BY seq LIMIT 1", [], |r| r.get(0))
        .optional()?;
    at.map(|t| parse_time(&t)).transpose()
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > MIGRATIONS.len() as i64 {
        return Err(JournalError::NewerSchema(version));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction().map_err(classify)?;
        tx.execute_batch(sql).map_err(classify)?;
        tx.pragma_update(None, "user_version", i as i64 + 1).map_err(classify)?;
        tx.commit().map_err(classify)?;
    }
    Ok(())
}

/// One open write transaction: what a group commit does between `BEGIN` and `COMMIT`.
pub struct WriteTx<'a> {
    tx: Transaction<'a>,
}

impl WriteTx<'_> {
    /// What the journal knows of document `number` (not shift reports).
    pub fn referenced(&self, number: DocumentNumber) -> Result<Option<Referenced>> {
        let row = self
            .tx
            .query_row(
                "SELECT d.kind, d.shift, d.annulled, d.returned, e.payload
                 FROM documents d JOIN entries e ON e.seq = d.seq WHERE d.number = ?1",
                [number.0 as i64],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, u32>(1)?,
                        r.get::<_, bool>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Vec<u8>>(4)?,
                    ))
                },
            )
            .optional()?;
        let Some((kind, shift, annulled, returned, payload)) = row else { return Ok(None) };
        let document = decode_document(&payload)?;
        Ok(Some(Referenced {
            kind: parse_value::<DocumentKind>(&kind)?,
            shift: ShiftNumber(shift),
            tenders: document.figures().tenders.unwrap_or_default(),
            annulled,
            returned: parse_value(&returned)?,
        }))
    }

    /// Appends `payload` after `head` and moves `head` onto it; indexes documents and
    /// marks what an annulment or a return references.
    pub fn append(&self, head: &mut ChainHead, payload: &Payload) -> Result<Entry> {
        let entry = Entry::after(head, payload.to_cbor());
        self.tx
            .prepare_cached(
                "INSERT INTO entries (seq, prev_hash, hash, payload, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                entry.seq.0 as i64,
                entry.prev_hash.0.as_slice(),
                entry.hash.0.as_slice(),
                entry.payload,
                payload.created_at().to_rfc3339(),
            ])
            .map_err(classify)?;
        if let Payload::Document(document) = payload {
            self.index(document, entry.seq)?;
        }
        *head = ChainHead { seq: entry.seq, hash: entry.hash };
        Ok(entry)
    }

    fn index(&self, document: &Document, seq: Seq) -> Result<()> {
        let seq = seq.0 as i64;
        match &document.body {
            DocumentBody::ShiftReport(_) => {
                self.tx
                    .prepare_cached("INSERT INTO shift_reports (shift, seq) VALUES (?1, ?2)")?
                    .execute(params![document.shift.0, seq])
                    .map_err(classify)?;
                return Ok(());
            }
            DocumentBody::Annulment { ref_number, .. } => {
                self.tx
                    .prepare_cached("UPDATE documents SET annulled = 1 WHERE number = ?1")?
                    .execute([ref_number.0 as i64])
                    .map_err(classify)?;
            }
            DocumentBody::Return { ref_number: Some(number), tenders, .. } => {
                let returned: String =
                    self.tx.query_row("SELECT returned FROM documents WHERE number = ?1", [number.0 as i64], |r| {
                        r.get(0)
                    })?;
                let returned = parse_value::<Money>(&returned)? + tenders.total();
                self.tx
                    .prepare_cached("UPDATE documents SET returned = ?2 WHERE number = ?1")?
                    .execute(params![number.0 as i64, returned.to_string()])
                    .map_err(classify)?;
            }
            _ => {}
        }
        self.tx
            .prepare_cached("INSERT INTO documents (number, kind, shift, seq) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![document.number.0 as i64, document.kind().wire_name(), document.shift.0, seq])
            .map_err(classify)?;
        Ok(())
    }

    /// Writes the register's state and chain head.
    pub fn save_state(&self, state: &RegisterState, head: &ChainHead) -> Result<()> {
        let (open, opened_at, summary) = match &state.open_shift {
            Some(open) => (
                Some(open.number.0),
                Some(open.opened_at.to_rfc3339()),
                Some(serde_json::to_string(open.summary.kinds()).expect("a summary serializes")),
            ),
            None => (None, None, None),
        };
        self.tx
            .prepare_cached(
                "UPDATE register SET next_number = ?1, next_shift = ?2, open_shift = ?3, opened_at = ?4, drawer = ?5,
                    cumulative_total = ?6, head_seq = ?7, head_hash = ?8, blocked_reason = ?9, blocked_since = ?10,
                    server_block = ?11, tsok_expiry_recorded = ?12, shift_summary = ?13",
            )?
            .execute(params![
                state.next_number.0 as i64,
                state.next_shift.0,
                open,
                opened_at,
                state.drawer.to_string(),
                state.cumulative_total.to_string(),
                head.seq.0 as i64,
                head.hash.0.as_slice(),
                state.blocked.as_ref().map(|b| b.reason.clone()),
                state.blocked.as_ref().map(|b| b.since.to_rfc3339()),
                state.server_block,
                state.tsok_expiry_recorded,
                summary,
            ])
            .map_err(classify)?;
        Ok(())
    }

    /// The answer remembered under an idempotency key.
    pub fn remembered(&self, key: &str) -> Result<Option<Remembered>> {
        let row = self
            .tx
            .prepare_cached("SELECT request_hash, status, response FROM idempotency WHERE key = ?1")?
            .query_row([key], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, u16>(1)?, r.get::<_, String>(2)?)))
            .optional()?;
        row.map(|(hash, status, response)| {
            let request_hash = hash.try_into().map_err(|_| JournalError::Corrupt("idempotency hash".into()))?;
            Ok(Remembered { request_hash, status, response })
        })
        .transpose()
    }

    /// Remembers the answer to a request under its idempotency key.
    pub fn remember(&self, key: &str, answer: &Remembered, now_unix: i64) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO idempotency (key, request_hash, status, response, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![key, answer.request_hash.as_slice(), answer.status, answer.response, now_unix])
            .map_err(classify)?;
        Ok(())
    }

    /// Forgets idempotency records made before `before_unix`.
    pub fn forget_before(&self, before_unix: i64) -> Result<usize> {
        self.tx.execute("DELETE FROM idempotency WHERE created_at < ?1", [before_unix]).map_err(classify)
    }

    /// When the oldest undelivered entry was recorded.
    pub fn oldest_pending_at(&self) -> Result<Option<DateTime<FixedOffset>>> {
        oldest_pending_at(&self.tx)
    }

    /// Records the server's verdicts on delivered entries.
    pub fn apply_results(&self, results: &[protocol::EntryResult], at: &DateTime<FixedOffset>) -> Result<()> {
        let at = at.to_rfc3339();
        let mut stmt = self.tx.prepare_cached(
            "UPDATE entries SET delivery = ?2, delivery_error = ?3, delivered_at = ?4 WHERE seq = ?1",
        )?;
        for result in results {
            // A duplicate of an entry the server rejected before carries that reason.
            let code = match (result.status, &result.reason) {
                (protocol::EntryStatus::Rejected, _) | (protocol::EntryStatus::Duplicate, Some(_)) => 2,
                (protocol::EntryStatus::Accepted, _) | (protocol::EntryStatus::Duplicate, None) => 1,
            };
            stmt.execute(params![result.seq.0 as i64, code, result.reason, at]).map_err(classify)?;
        }
        Ok(())
    }

    /// Records the last contact with the server (`Some(at)`) and the last delivery error.
    pub fn record_delivery(&self, delivered_at: Option<&DateTime<FixedOffset>>, error: Option<&str>) -> Result<()> {
        self.tx
            .prepare_cached("UPDATE register SET last_delivery_at = COALESCE(?1, last_delivery_at), last_error = ?2")?
            .execute(params![delivered_at.map(|t| t.to_rfc3339()), error])
            .map_err(classify)?;
        Ok(())
    }

    /// Makes everything durable.
    pub fn commit(self) -> Result<()> {
        self.tx.commit().map_err(classify)
    }
}

/// A stored document, as the POS API shows it.
#[derive(Clone, Debug)]
pub struct StoredDocument {
    /// The document.
    pub document: Document,
    /// Its UID.
    pub uid: Uid,
    /// Where it stands with the server.
    pub delivery: Delivery,
    /// The server's reason, when rejected.
    pub delivery_error: Option<String>,
}

/// One journal line for `agent journal`.
#[derive(Clone, Debug)]
pub struct JournalLine {
    /// The entry's seq.
    pub seq: Seq,
    /// Its hash.
    pub hash: ChainHash,
    /// What it holds.
    pub payload: Payload,
    /// Where it stands with the server.
    pub delivery: Delivery,
    /// The server's reason, when rejected.
    pub delivery_error: Option<String>,
}

/// Delivery figures for the status.
#[derive(Clone, Debug, Default)]
pub struct DeliveryFigures {
    /// Undelivered entries.
    pub pending: u64,
    /// When the oldest undelivered entry was recorded.
    pub oldest_pending_at: Option<DateTime<FixedOffset>>,
    /// When the server last acknowledged a batch.
    pub last_delivery_at: Option<String>,
    /// The last delivery failure.
    pub last_error: Option<String>,
}

/// A read-only view of the journal (WAL: it never blocks the writer).
pub struct Reader {
    conn: Connection,
    reg: RegNumber,
}

impl Reader {
    /// Opens the journal in `data_dir` for reading; fails if there is none.
    pub fn open(data_dir: &Path, reg: RegNumber) -> Result<Reader> {
        let path = data_dir.join(FILE_NAME);
        if !path.exists() {
            return Err(JournalError::Missing(path));
        }
        let conn = connect(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        Ok(Reader { conn, reg })
    }

    /// The register's state as last committed.
    pub fn state(&self) -> Result<(RegisterState, ChainHead)> {
        load_state(&self.conn)
    }

    /// Document `number` (not a shift report).
    pub fn document(&self, number: DocumentNumber) -> Result<Option<StoredDocument>> {
        self.stored(
            "SELECT e.payload, e.hash, e.delivery, e.delivery_error FROM documents d JOIN entries e ON e.seq = d.seq
             WHERE d.number = ?1",
            number.0 as i64,
        )
    }

    /// The shift report of `shift`.
    pub fn shift_report(&self, shift: ShiftNumber) -> Result<Option<StoredDocument>> {
        self.stored(
            "SELECT e.payload, e.hash, e.delivery, e.delivery_error FROM shift_reports s JOIN entries e ON e.seq = s.seq
             WHERE s.shift = ?1",
            i64::from(shift.0),
        )
    }

    fn stored(&self, sql: &str, key: i64) -> Result<Option<StoredDocument>> {
        let row = self
            .conn
            .prepare_cached(sql)?
            .query_row([key], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .optional()?;
        let Some((payload, hash, delivery, delivery_error)) = row else { return Ok(None) };
        Ok(Some(StoredDocument {
            document: decode_document(&payload)?,
            uid: Uid::new(&hash_from(&hash)?, self.reg),
            delivery: Delivery::from_code(delivery),
            delivery_error,
        }))
    }

    /// Delivery figures for the status.
    ///
    /// The server acknowledges entries in order, so the undelivered ones are exactly the
    /// journal's tail from the first of them: counting them costs two index lookups, not a
    /// scan (the forwarder asks before every batch).
    pub fn delivery(&self) -> Result<DeliveryFigures> {
        let pending = self.cursor()?.pending();
        let (last_delivery_at, last_error) =
            self.conn
                .query_row("SELECT last_delivery_at, last_error FROM register", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(DeliveryFigures { pending, oldest_pending_at: oldest_pending_at(&self.conn)?, last_delivery_at, last_error })
    }

    /// Up to `limit` entries from `from`, only undelivered ones if `pending_only`.
    pub fn entries(&self, from: Seq, pending_only: bool, limit: usize) -> Result<Vec<JournalLine>> {
        let sql = if pending_only {
            "SELECT seq, hash, payload, delivery, delivery_error FROM entries WHERE seq >= ?1 AND delivery = 0
             ORDER BY seq LIMIT ?2"
        } else {
            "SELECT seq, hash, payload, delivery, delivery_error FROM entries WHERE seq >= ?1 ORDER BY seq LIMIT ?2"
        };
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(params![from.0 as i64, limit as i64])?;
        let mut lines = Vec::new();
        while let Some(r) = rows.next()? {
            lines.push(JournalLine {
                seq: Seq(r.get::<_, i64>(0)? as u64),
                hash: hash_from(&r.get::<_, Vec<u8>>(1)?)?,
                payload: Payload::from_cbor(&r.get::<_, Vec<u8>>(2)?)
                    .map_err(|e| JournalError::Corrupt(e.to_string()))?,
                delivery: Delivery::from_code(r.get(3)?),
                delivery_error: r.get(4)?,
            });
        }
        Ok(lines)
    }

    /// Every entry from `from` on, as it travels (for verifying the chain and for tests).
    pub fn raw_entries(&self, from: Seq, limit: usize) -> Result<Vec<Entry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, prev_hash, hash, payload FROM entries WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
        )?;
        let mut rows = stmt.query(params![from.0 as i64, limit as i64])?;
        let mut entries = Vec::new();
        while let Some(r) = rows.next()? {
            entries.push(Entry {
                seq: Seq(r.get::<_, i64>(0)? as u64),
                prev_hash: hash_from(&r.get::<_, Vec<u8>>(1)?)?,
                hash: hash_from(&r.get::<_, Vec<u8>>(2)?)?,
                payload: r.get(3)?,
            });
        }
        Ok(entries)
    }

    /// Where delivery stands: the first unacknowledged entry and the last entry.
    pub fn cursor(&self) -> Result<crate::delivery::Cursor> {
        let first_pending: Option<i64> = self
            .conn
            .prepare_cached("SELECT seq FROM entries WHERE delivery = 0 ORDER BY seq LIMIT 1")?
            .query_row([], |r| r.get(0))
            .optional()?;
        let last: i64 = self.conn.prepare_cached("SELECT head_seq FROM register")?.query_row([], |r| r.get(0))?;
        Ok(crate::delivery::Cursor { first_pending: first_pending.map(|s| Seq(s as u64)), last_seq: Seq(last as u64) })
    }

    /// Consecutive entries from `from`: at most `max_entries`, and (but for the first) no
    /// more payload bytes than `max_bytes`.
    pub fn batch(&self, from: Seq, max_entries: usize, max_bytes: usize) -> Result<Vec<Entry>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, prev_hash, hash, payload FROM entries WHERE seq >= ?1 ORDER BY seq LIMIT ?2",
        )?;
        let mut rows = stmt.query(params![from.0 as i64, max_entries as i64])?;
        let mut entries = Vec::new();
        let mut bytes = 0;
        while let Some(r) = rows.next()? {
            let payload: Vec<u8> = r.get(3)?;
            // Each entry costs its payload plus its seq, two hashes and CBOR framing.
            bytes += payload.len() + 96;
            if !entries.is_empty() && bytes > max_bytes {
                break;
            }
            entries.push(Entry {
                seq: Seq(r.get::<_, i64>(0)? as u64),
                prev_hash: hash_from(&r.get::<_, Vec<u8>>(1)?)?,
                hash: hash_from(&r.get::<_, Vec<u8>>(2)?)?,
                payload,
            });
        }
        Ok(entries)
    }

    /// `PRAGMA integrity_check`'s verdict (`ok` when sound).
    pub fn integrity_check(&self) -> Result<String> {
        Ok(self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }
}

/// The register's state and chain head as last committed, read on any connection.
fn load_state(conn: &Connection) -> Result<(RegisterState, ChainHead)> {
    struct Row {
        next_number: i64,
        next_shift: u32,
        open_shift: Option<u32>,
        opened_at: Option<String>,
        shift_summary: Option<String>,
        drawer: String,
        cumulative_total: String,
        head_seq: i64,
        head_hash: Vec<u8>,
        blocked_reason: Option<String>,
        blocked_since: Option<String>,
        server_block: Option<String>,
        tsok_expiry_recorded: bool,
    }
    let row = conn.query_row("SELECT * FROM register", [], |r| {
        Ok(Row {
            next_number: r.get("next_number")?,
            next_shift: r.get("next_shift")?,
            open_shift: r.get("open_shift")?,
            opened_at: r.get("opened_at")?,
            shift_summary: r.get("shift_summary")?,
            drawer: r.get("drawer")?,
            cumulative_total: r.get("cumulative_total")?,
            head_seq: r.get("head_seq")?,
            head_hash: r.get("head_hash")?,
            blocked_reason: r.get("blocked_reason")?,
            blocked_since: r.get("blocked_since")?,
            server_block: r.get("server_block")?,
            tsok_expiry_recorded: r.get("tsok_expiry_recorded")?,
        })
    })?;
    let open_shift = match (row.open_shift, row.opened_at, row.shift_summary) {
        (Some(number), Some(at), Some(summary)) => {
            let kinds =
                serde_json::from_str(&summary).map_err(|e| JournalError::Corrupt(format!("shift summary: {e}")))?;
            Some(OpenShift {
                number: ShiftNumber(number),
                opened_at: parse_time(&at)?,
                summary: Summary::from_kinds(kinds),
            })
        }
        _ => None,
    };
    let blocked = match (row.blocked_reason, row.blocked_since) {
        (Some(reason), Some(since)) => Some(Block { reason, since: parse_time(&since)? }),
        _ => None,
    };
    let state = RegisterState {
        next_number: DocumentNumber(row.next_number as u64),
        next_shift: ShiftNumber(row.next_shift),
        open_shift,
        drawer: parse_value::<SignedMoney>(&row.drawer)?,
        cumulative_total: parse_value::<Money>(&row.cumulative_total)?,
        blocked,
        server_block: row.server_block,
        tsok_expiry_recorded: row.tsok_expiry_recorded,
    };
    let head = ChainHead { seq: Seq(row.head_seq as u64), hash: hash_from(&row.head_hash)? };
    Ok((state, head))
}

fn decode_document(payload: &[u8]) -> Result<Document> {
    match Payload::from_cbor(payload) {
        Ok(Payload::Document(document)) => Ok(document),
        Ok(Payload::Event(_)) => Err(JournalError::Corrupt("an event indexed as a document".into())),
        Err(e) => Err(JournalError::Corrupt(e.to_string())),
    }
}

fn hash_from(bytes: &[u8]) -> Result<ChainHash> {
    ChainHash::try_from(bytes).map_err(|_| JournalError::Corrupt("a hash is not 32 bytes".into()))
}

fn parse_time(text: &str) -> Result<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text).map_err(|e| JournalError::Corrupt(format!("time {text:?}: {e}")))
}

fn parse_value<T: std::str::FromStr>(text: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e: T::Err| JournalError::Corrupt(format!("{text:?}: {e}")))
}
