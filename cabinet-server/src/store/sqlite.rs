//! The SQLite backend: one file, WAL, `synchronous=FULL`; writes serialized on one
//! connection, each batch in one transaction.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, FixedOffset, Utc};
use protocol::{ChainHash, ChainHead, DeviceInfo, Directive, Entry, EntryStatus, Money, RegNumber, Seq, Uid, Unp};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{DeviceAuth, DeviceStatus, IngestOutcome, NewDevice, ObjectId, Store, StoreError, StoredEntry};
use crate::ingest::{self, Content, Verdict};

/// Schema migrations, applied in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE taxpayers (
    unp TEXT PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE objects (
    id INTEGER PRIMARY KEY,
    unp TEXT NOT NULL REFERENCES taxpayers (unp),
    name TEXT NOT NULL,
    address TEXT NOT NULL,
    actual_address TEXT NOT NULL DEFAULT '',
    working_hours TEXT NOT NULL DEFAULT '',
    contacts TEXT NOT NULL DEFAULT '',
    notes TEXT NOT NULL DEFAULT ''
);
CREATE INDEX objects_unp ON objects (unp);
CREATE TABLE devices (
    reg_number TEXT PRIMARY KEY,
    serial TEXT NOT NULL,
    unp TEXT NOT NULL REFERENCES taxpayers (unp),
    object_id INTEGER NOT NULL REFERENCES objects (id),
    commissioned_on TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    head_seq INTEGER NOT NULL DEFAULT 0,
    head_hash BLOB NOT NULL,
    flagged TEXT,
    block_reason TEXT,
    unblock_reason TEXT,
    info TEXT,
    pos_version TEXT,
    agent_version TEXT,
    tsok_expires_at TEXT,
    pending INTEGER,
    oldest_pending_at TEXT,
    sent_at TEXT,
    last_seen_at TEXT
);
CREATE INDEX devices_unp ON devices (unp);
-- Every entry as received. status: 1 accepted, 2 rejected.
CREATE TABLE entries (
    reg_number TEXT NOT NULL,
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL,
    payload BLOB NOT NULL,
    received_at TEXT NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT,
    PRIMARY KEY (reg_number, seq)
) WITHOUT ROWID;
-- Documents for the portal: money in kopecks; tenders NULL for the cash kinds.
CREATE TABLE documents (
    reg_number TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    number INTEGER NOT NULL,
    shift INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    created_utc INTEGER NOT NULL,
    cash INTEGER,
    card INTEGER,
    other INTEGER,
    total INTEGER NOT NULL,
    uid TEXT NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT,
    PRIMARY KEY (reg_number, seq)
);
CREATE INDEX documents_by_time ON documents (reg_number, created_utc);
CREATE INDEX documents_by_uid ON documents (uid);
CREATE TABLE events (
    reg_number TEXT NOT NULL,
    seq INTEGER NOT NULL,
    code INTEGER NOT NULL,
    parameter TEXT,
    created_at TEXT NOT NULL,
    created_utc INTEGER NOT NULL,
    sent_at TEXT NOT NULL,
    PRIMARY KEY (reg_number, seq)
);
CREATE INDEX events_by_time ON events (reg_number, created_utc);
"#];

/// The SQLite store.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        db(e)
    }
}

/// Money in kopecks, as stored.
fn kopecks(m: Money) -> i64 {
    i64::try_from(m.as_decimal().mantissa()).expect("amounts fit in i64 kopecks")
}

impl SqliteStore {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(format!("{}: {e}", dir.display())))?;
        }
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&mut conn)?;
        Ok(SqliteStore { conn: Mutex::new(conn) })
    }

    /// The database file a `sqlite:` URL or plain path names.
    pub fn path_of(url: &str) -> PathBuf {
        PathBuf::from(url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url))
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > MIGRATIONS.len() as i64 {
        return Err(StoreError::Database(format!("the database has schema {version}, newer than this server")));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation)
}

fn hash_from(bytes: &[u8]) -> Result<ChainHash, StoreError> {
    ChainHash::try_from(bytes).map_err(|_| StoreError::Corrupt("a hash is not 32 bytes".into()))
}

fn time_from(text: &str) -> Result<DateTime<FixedOffset>, StoreError> {
    DateTime::parse_from_rfc3339(text).map_err(|e| StoreError::Corrupt(format!("{text:?}: {e}")))
}

fn status_code(status: EntryStatus) -> i64 {
    match status {
        EntryStatus::Rejected => 2,
        _ => 1,
    }
}

impl Store for SqliteStore {
    fn add_taxpayer(&self, unp: Unp, name: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("INSERT INTO taxpayers (unp, name) VALUES (?1, ?2)", params![unp.to_string(), name])
            .map_err(|e| if is_constraint(&e) { StoreError::Duplicate(format!("УНП {unp}")) } else { db(e) })?;
        Ok(())
    }

    fn add_object(
        &self,
        unp: Unp,
        name: &str,
        address: &str,
        actual_address: Option<&str>,
    ) -> Result<ObjectId, StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO objects (unp, name, address, actual_address) VALUES (?1, ?2, ?3, ?4)",
            params![unp.to_string(), name, address, actual_address.unwrap_or("")],
        )
        .map_err(|e| if is_constraint(&e) { StoreError::NotFound(format!("УНП {unp}")) } else { db(e) })?;
        Ok(ObjectId(conn.last_insert_rowid()))
    }

    fn add_device(&self, device: &NewDevice) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let object_unp: Option<String> =
            tx.query_row("SELECT unp FROM objects WHERE id = ?1", [device.object.0], |r| r.get(0)).optional()?;
        match object_unp {
            Some(unp) if unp == device.unp.to_string() => {}
            _ => return Err(StoreError::NotFound(format!("торговый объект {} УНП {}", device.object.0, device.unp))),
        }
        tx.execute(
            "INSERT INTO devices (reg_number, serial, unp, object_id, commissioned_on, token_hash, head_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                device.reg_number.to_string(),
                device.serial.to_string(),
                device.unp.to_string(),
                device.object.0,
                device.commissioned_on.to_string(),
                device.token_hash.as_slice(),
                ChainHash::ZERO.0.as_slice(),
            ],
        )
        .map_err(|e| {
            if is_constraint(&e) { StoreError::Duplicate(format!("касса {}", device.reg_number)) } else { db(e) }
        })?;
        tx.commit()?;
        Ok(())
    }

    fn device_for_token(&self, token_hash: &[u8; 32]) -> Result<Option<DeviceAuth>, StoreError> {
        let reg: Option<String> = self
            .conn()
            .query_row("SELECT reg_number FROM devices WHERE token_hash = ?1", [token_hash.as_slice()], |r| r.get(0))
            .optional()?;
        reg.map(|r| {
            r.parse()
                .map(|reg_number| DeviceAuth { reg_number })
                .map_err(|e: protocol::IdError| StoreError::Corrupt(e.to_string()))
        })
        .transpose()
    }

    fn ingest(
        &self,
        reg: RegNumber,
        device: &DeviceInfo,
        entries: &[Entry],
        received_at: DateTime<Utc>,
    ) -> Result<IngestOutcome, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let reg_text = reg.to_string();
        let (head_seq, head_hash, block_reason, unblock_reason): (i64, Vec<u8>, Option<String>, Option<String>) = tx
            .query_row(
                "SELECT head_seq, head_hash, block_reason, unblock_reason FROM devices WHERE reg_number = ?1",
                [&reg_text],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("касса {reg}")))?;
        let head = ChainHead { seq: Seq(head_seq as u64), hash: hash_from(&head_hash)? };

        // What is held for the batch's old seqs (a resend after a lost answer).
        let mut held = std::collections::BTreeMap::new();
        let upto = entries.iter().map(|e| e.seq).filter(|s| *s <= head.seq).max();
        if let (Some(from), Some(upto)) = (entries.iter().map(|e| e.seq).min(), upto) {
            let mut stmt = tx.prepare_cached(
                "SELECT seq, hash, status, reason FROM entries WHERE reg_number = ?1 AND seq BETWEEN ?2 AND ?3",
            )?;
            let mut rows = stmt.query(params![reg_text, from.0 as i64, upto.0 as i64])?;
            while let Some(r) = rows.next()? {
                let rejected = (r.get::<_, i64>(2)? == 2).then(|| r.get::<_, Option<String>>(3)).transpose()?;
                let hash = hash_from(&r.get::<_, Vec<u8>>(1)?)?;
                held.insert(
                    Seq(r.get::<_, i64>(0)? as u64),
                    ingest::Held { hash, rejected: rejected.map(Option::unwrap_or_default) },
                );
            }
        }
        let plan = match ingest::plan(head, entries, |seq| held.get(&seq).cloned()) {
            Ok(plan) => plan,
            Err(refusal) => {
                tx.execute(
                    "UPDATE devices SET flagged = ?2 WHERE reg_number = ?1",
                    params![reg_text, format!("{} ({})", refusal, received_at.to_rfc3339())],
                )?;
                tx.commit()?;
                return Ok(IngestOutcome::Refused(refusal));
            }
        };

        let received = received_at.to_rfc3339();
        for new in &plan.new {
            store_entry(&tx, reg, &reg_text, new, &received, device)?;
        }
        tx.prepare_cached(
            "UPDATE devices SET head_seq = ?2, head_hash = ?3, info = ?4, pos_version = ?5, agent_version = ?6,
                tsok_expires_at = ?7, pending = ?8, oldest_pending_at = ?9, sent_at = ?10, last_seen_at = ?11
             WHERE reg_number = ?1",
        )?
        .execute(params![
            reg_text,
            plan.head.seq.0 as i64,
            plan.head.hash.0.as_slice(),
            device.info,
            device.pos_version,
            device.agent_version,
            device.tsok_expires_at.map(|t| t.to_rfc3339()),
            device.pending as i64,
            device.oldest_pending_at.map(|t| t.to_rfc3339()),
            device.sent_at.to_rfc3339(),
            received,
        ])?;
        tx.commit()?;
        let directives = match (block_reason, unblock_reason) {
            (Some(reason), _) => vec![Directive::Block { reason }],
            (None, Some(reason)) => vec![Directive::Unblock { reason }],
            (None, None) => vec![],
        };
        Ok(IngestOutcome::Stored { accepted_through: plan.head.seq, results: plan.results, directives })
    }

    fn set_block_directive(&self, reg: RegNumber, reason: Option<&str>) -> Result<(), StoreError> {
        let changed = match reason {
            Some(reason) => self.conn().execute(
                "UPDATE devices SET block_reason = ?2, unblock_reason = NULL WHERE reg_number = ?1",
                params![reg.to_string(), reason],
            )?,
            None => self.conn().execute(
                "UPDATE devices SET block_reason = NULL, unblock_reason = 'блокировка снята оператором'
                 WHERE reg_number = ?1",
                [reg.to_string()],
            )?,
        };
        if changed == 0 {
            return Err(StoreError::NotFound(format!("касса {reg}")));
        }
        Ok(())
    }

    fn device_status(&self, reg: RegNumber) -> Result<DeviceStatus, StoreError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT head_seq, flagged, last_seen_at, info, pos_version, agent_version, tsok_expires_at, pending,
                        oldest_pending_at, sent_at
                 FROM devices WHERE reg_number = ?1",
                [reg.to_string()],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, Option<String>>(6)?,
                        r.get::<_, Option<i64>>(7)?,
                        r.get::<_, Option<String>>(8)?,
                        r.get::<_, Option<String>>(9)?,
                    ))
                },
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("касса {reg}")))?;
        let (head_seq, flagged, last_seen, info, pos, agent, tsok, pending, oldest, sent) = row;
        let info = match (info, sent) {
            (Some(info), Some(sent)) => Some(DeviceInfo {
                info,
                pos_version: pos.unwrap_or_default(),
                agent_version: agent.unwrap_or_default(),
                tsok_expires_at: tsok.as_deref().map(time_from).transpose()?,
                pending: pending.unwrap_or(0) as u64,
                oldest_pending_at: oldest.as_deref().map(time_from).transpose()?,
                sent_at: time_from(&sent)?,
            }),
            _ => None,
        };
        Ok(DeviceStatus {
            head_seq: Seq(head_seq as u64),
            flagged,
            last_seen_at: last_seen.as_deref().map(time_from).transpose()?.map(|t| t.with_timezone(&Utc)),
            info,
        })
    }

    fn entries(&self, reg: RegNumber, from: Seq, limit: usize) -> Result<Vec<StoredEntry>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, hash, status, reason, received_at FROM entries WHERE reg_number = ?1 AND seq >= ?2
             ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![reg.to_string(), from.0 as i64, limit as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get::<_, i64>(2)?, r.get(3)?, r.get::<_, String>(4)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, hash, status, reason, received) = row?;
            out.push(StoredEntry {
                seq: Seq(seq as u64),
                hash: hash_from(&hash)?,
                status: if status == 2 { EntryStatus::Rejected } else { EntryStatus::Accepted },
                reason,
                received_at: time_from(&received)?.with_timezone(&Utc),
            });
        }
        Ok(out)
    }
}

/// Stores one new entry and, when it can be read, its document or event row.
fn store_entry(
    tx: &Transaction<'_>,
    reg: RegNumber,
    reg_text: &str,
    new: &ingest::NewEntry<'_>,
    received: &str,
    device: &DeviceInfo,
) -> Result<(), StoreError> {
    let (status, reason) = match &new.verdict {
        Verdict::Accepted => (EntryStatus::Accepted, None),
        Verdict::Rejected(reason) => (EntryStatus::Rejected, Some(reason.as_str())),
    };
    let seq = new.entry.seq.0 as i64;
    tx.prepare_cached(
        "INSERT INTO entries (reg_number, seq, hash, payload, received_at, status, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        reg_text,
        seq,
        new.entry.hash.0.as_slice(),
        new.entry.payload,
        received,
        status_code(status),
        reason
    ])?;
    match &new.content {
        Content::Document(document) => {
            let figures = document.figures();
            let tender = |pick: fn(&protocol::Tenders) -> Money| figures.tenders.as_ref().map(|t| kopecks(pick(t)));
            tx.prepare_cached(
                "INSERT INTO documents (reg_number, seq, kind, number, shift, created_at, created_utc, cash, card,
                     other, total, uid, status, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?
            .execute(params![
                reg_text,
                seq,
                document.kind().wire_name(),
                document.number.0 as i64,
                document.shift.0,
                document.created_at.to_rfc3339(),
                document.created_at.timestamp(),
                tender(|t| t.cash),
                tender(|t| t.card),
                tender(|t| t.other),
                kopecks(figures.total),
                Uid::new(&new.entry.hash, reg).to_string(),
                status_code(status),
                reason,
            ])?;
        }
        Content::Event(event) => {
            tx.prepare_cached(
                "INSERT INTO events (reg_number, seq, code, parameter, created_at, created_utc, sent_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                reg_text,
                seq,
                event.code.code(),
                event.parameter,
                event.created_at.to_rfc3339(),
                event.created_at.timestamp(),
                device.sent_at.to_rfc3339(),
            ])?;
        }
        Content::Unreadable => {}
    }
    Ok(())
}
