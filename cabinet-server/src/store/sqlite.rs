//! The SQLite backend: one file, WAL, `synchronous=FULL`; writes serialized on one
//! connection, each batch in one transaction.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use protocol::{
    ChainHash, ChainHead, CumulativeLine, DeviceInfo, Directive, Document, DocumentBody, DocumentKind, Entry,
    EntryStatus, EventCode, Money, Payload, RegNumber, Seq, ShiftNumber, Tenders, Uid, Unp,
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{
    ApiTokenInfo, DeviceAuth, DeviceStatus, DocumentRow, Equipment, EventRow, IngestOutcome, NewDevice, NewUser,
    ObjectDetails, ObjectId, Period, Role, Scope, SessionRecord, Store, StoreError, StoredDocument, StoredEntry,
    Taxpayer, TradeObject, User, UserId,
};
use crate::ingest::{self, Content, Verdict};

/// Schema migrations, applied in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    r#"
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
"#,
    r#"
ALTER TABLE devices ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'Europe/Minsk';
-- The reason of the register's last blocking event (1020), cleared by 1022.
ALTER TABLE devices ADD COLUMN blocked TEXT;
-- A shift report's cumulative total, in kopecks.
ALTER TABLE documents ADD COLUMN cumulative INTEGER;
-- Covers the cumulative-total check: the payments of a range of shifts, from the index alone.
CREATE INDEX documents_by_shift ON documents (reg_number, kind, shift, status, total);
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    login TEXT NOT NULL UNIQUE COLLATE NOCASE,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE user_taxpayers (
    user_id INTEGER NOT NULL REFERENCES users (id),
    unp TEXT NOT NULL REFERENCES taxpayers (unp),
    PRIMARY KEY (user_id, unp)
) WITHOUT ROWID;
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);
-- Sessions by the SHA-256 of their id; the id itself is only in the browser's cookie.
CREATE TABLE sessions (
    id_hash BLOB PRIMARY KEY,
    user_id INTEGER REFERENCES users (id),
    data TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);
"#,
];

/// The SQLite store: one connection writes; the portal's reads take read-only connections
/// from a small pool, so pages never wait behind ingest (WAL lets them read meanwhile).
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

/// How many idle read connections are kept.
const IDLE_READERS: usize = 8;

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
        Ok(SqliteStore { path: path.to_owned(), conn: Mutex::new(conn), readers: Mutex::new(Vec::new()) })
    }

    /// The database file a `sqlite:` URL or plain path names.
    pub fn path_of(url: &str) -> PathBuf {
        PathBuf::from(url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url))
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on a read-only connection from the pool.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let idle = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(std::time::Duration::from_secs(10))?;
                conn
            }
        };
        let result = f(&conn);
        let mut idle = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        result
    }
}

/// Gives user `id` the taxpayer `unp`; linking twice is harmless.
fn link(tx: &Transaction<'_>, id: i64, unp: Unp) -> Result<(), StoreError> {
    tx.execute("INSERT OR IGNORE INTO user_taxpayers (user_id, unp) VALUES (?1, ?2)", params![id, unp.to_string()])
        .map_err(|e| if is_constraint(&e) { StoreError::NotFound(format!("УНП {unp}")) } else { db(e) })?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > MIGRATIONS.len() as i64 {
        return Err(StoreError::Database(format!("the database has schema {version}, newer than this server")));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        if i == 1 {
            fill_portal_columns(&tx)?;
        }
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Migration 2's data step: the columns it adds, filled from the entries stored before it
/// (each shift report's cumulative total, each register's blocking state), by decoding the
/// payloads as received.
fn fill_portal_columns(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let mut reports = tx.prepare(
        "SELECT d.reg_number, d.seq, e.payload FROM documents d
         JOIN entries e ON e.reg_number = d.reg_number AND e.seq = d.seq WHERE d.kind = 'shift_report'",
    )?;
    let mut update = tx.prepare("UPDATE documents SET cumulative = ?3 WHERE reg_number = ?1 AND seq = ?2")?;
    let mut rows = reports.query([])?;
    while let Some(r) = rows.next()? {
        if let Ok(Payload::Document(Document { body: DocumentBody::ShiftReport(report), .. })) =
            Payload::from_cbor(&r.get::<_, Vec<u8>>(2)?)
        {
            update.execute(params![r.get::<_, String>(0)?, r.get::<_, i64>(1)?, kopecks(report.cumulative_total)])?;
        }
    }
    // The last accepted blocking or unblocking event of each register decides its state.
    tx.execute_batch(
        "UPDATE devices SET blocked = (
            SELECT CASE v.code WHEN 1020 THEN COALESCE(v.parameter, 'заблокирована') END
            FROM events v JOIN entries e ON e.reg_number = v.reg_number AND e.seq = v.seq
            WHERE v.reg_number = devices.reg_number AND v.code IN (1020, 1022) AND e.status = 1
            ORDER BY v.seq DESC LIMIT 1)",
    )?;
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
            "INSERT INTO devices (reg_number, serial, unp, object_id, commissioned_on, token_hash, head_hash, time_zone)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                device.reg_number.to_string(),
                device.serial.to_string(),
                device.unp.to_string(),
                device.object.0,
                device.commissioned_on.to_string(),
                device.token_hash.as_slice(),
                ChainHash::ZERO.0.as_slice(),
                device.time_zone.name(),
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
    fn add_user(&self, user: &NewUser<'_>) -> Result<UserId, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO users (login, email, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![user.login, user.email, user.role.as_str(), user.password_hash, Utc::now().to_rfc3339()],
        )
        .map_err(|e| if is_constraint(&e) { StoreError::Duplicate(format!("логин {}", user.login)) } else { db(e) })?;
        let id = tx.last_insert_rowid();
        for unp in user.unps {
            link(&tx, id, *unp)?;
        }
        tx.commit()?;
        Ok(UserId(id))
    }

    fn link_user(&self, login: &str, unp: Unp) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let id: i64 = tx
            .query_row("SELECT id FROM users WHERE login = ?1", [login], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("пользователь {login}")))?;
        link(&tx, id, unp)?;
        tx.commit()?;
        Ok(())
    }

    fn user_by_login(&self, login: &str) -> Result<Option<User>, StoreError> {
        self.read(|conn| find_user(conn, "login", &login))
    }

    fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.read(|conn| find_user(conn, "id", &id.0))
    }

    fn set_password(&self, user: UserId, password_hash: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let changed =
            tx.execute("UPDATE users SET password_hash = ?2 WHERE id = ?1", params![user.0, password_hash])?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("пользователь {}", user.0)));
        }
        tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user.0])?;
        tx.commit()?;
        Ok(())
    }

    fn add_api_token(&self, user: UserId, name: &str, token_hash: &[u8; 32]) -> Result<i64, StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![user.0, name, token_hash.as_slice(), Utc::now().to_rfc3339()],
        )
        .map_err(|e| {
            if is_constraint(&e) { StoreError::NotFound(format!("пользователь {}", user.0)) } else { db(e) }
        })?;
        Ok(conn.last_insert_rowid())
    }

    fn api_tokens(&self, user: UserId) -> Result<Vec<ApiTokenInfo>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, name, created_at, last_used_at FROM api_tokens
                 WHERE user_id = ?1 AND revoked_at IS NULL ORDER BY id",
            )?;
            let rows = stmt.query_map([user.0], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })?;
            rows.map(|row| {
                let (id, name, created, used) = row?;
                Ok(ApiTokenInfo {
                    id,
                    name,
                    created_at: utc_from(&created)?,
                    last_used_at: used.as_deref().map(utc_from).transpose()?,
                })
            })
            .collect()
        })
    }

    fn revoke_api_token(&self, user: UserId, id: i64) -> Result<(), StoreError> {
        let changed = self.conn().execute(
            "UPDATE api_tokens SET revoked_at = ?3 WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
            params![id, user.0, Utc::now().to_rfc3339()],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("токен {id}")));
        }
        Ok(())
    }

    fn revoke_all_api_tokens(&self, user: UserId) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE api_tokens SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
            params![user.0, Utc::now().to_rfc3339()],
        )?;
        Ok(())
    }

    fn user_for_api_token(&self, token_hash: &[u8; 32], now: DateTime<Utc>) -> Result<Option<UserId>, StoreError> {
        let found: Option<(i64, i64, Option<String>)> = self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT id, user_id, last_used_at FROM api_tokens WHERE token_hash = ?1 AND revoked_at IS NULL",
                )?
                .query_row([token_hash.as_slice()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?)
        })?;
        let Some((id, user, last_used)) = found else { return Ok(None) };
        // Noted at most once a minute: a busy integration must not turn every read into a write.
        let stale = last_used.as_deref().and_then(|t| utc_from(t).ok()).is_none_or(|t| now - t > TimeDelta::minutes(1));
        if stale {
            self.conn()
                .execute("UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1", params![id, now.to_rfc3339()])?;
        }
        Ok(Some(UserId(user)))
    }

    fn create_session(&self, session: &SessionRecord) -> Result<bool, StoreError> {
        let inserted = self.conn().execute(
            "INSERT OR IGNORE INTO sessions (id_hash, user_id, data, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![session.id_hash.as_slice(), session.user.map(|u| u.0), session.data, session.expires_at],
        )?;
        Ok(inserted == 1)
    }

    fn save_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        // An update only: a session ended meanwhile (logout, a password change elsewhere)
        // must stay ended, not come back with a late save.
        self.conn().execute(
            "UPDATE sessions SET user_id = ?2, data = ?3, expires_at = ?4 WHERE id_hash = ?1",
            params![session.id_hash.as_slice(), session.user.map(|u| u.0), session.data, session.expires_at],
        )?;
        Ok(())
    }

    fn load_session(&self, id_hash: &[u8; 32], now: i64) -> Result<Option<SessionRecord>, StoreError> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT id_hash, user_id, data, expires_at FROM sessions WHERE id_hash = ?1 AND expires_at > ?2",
                )?
                .query_row(params![id_hash.as_slice(), now], session_from)
                .optional()?)
        })
    }

    fn delete_session(&self, id_hash: &[u8; 32]) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash.as_slice()])?;
        // Expired sessions go with any logout: no timer needed, and the table stays small.
        conn.execute("DELETE FROM sessions WHERE expires_at < ?1", [Utc::now().timestamp()])?;
        Ok(())
    }

    fn taxpayers(&self, scope: &Scope) -> Result<Vec<Taxpayer>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT name FROM taxpayers WHERE unp = ?1")?;
            let mut out = Vec::new();
            for unp in scope.unps() {
                if let Some(name) = stmt.query_row([unp.to_string()], |r| r.get(0)).optional()? {
                    out.push(Taxpayer { unp: *unp, name });
                }
            }
            out.sort_by_key(|t| t.unp);
            Ok(out)
        })
    }

    fn equipment(&self, scope: &Scope, unp: Unp) -> Result<Vec<Equipment>, StoreError> {
        if !scope.holds(unp) {
            return Err(StoreError::NotFound(format!("УНП {unp}")));
        }
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached(&format!("SELECT {EQUIPMENT_COLUMNS} WHERE d.unp = ?1 ORDER BY d.reg_number"))?;
            let mut rows = stmt.query([unp.to_string()])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(equipment_from(r)?);
            }
            Ok(out)
        })
    }

    fn register(&self, scope: &Scope, reg: RegNumber) -> Result<Equipment, StoreError> {
        self.read(|conn| scoped_register(conn, scope, reg))
    }

    fn documents(
        &self,
        scope: &Scope,
        reg: RegNumber,
        period: Period,
        kinds: &[DocumentKind],
    ) -> Result<Vec<DocumentRow>, StoreError> {
        self.read(|conn| {
            scoped_register(conn, scope, reg)?;
            let mut stmt = conn.prepare_cached(
                "SELECT seq, kind, number, created_at, cash, card, other, total, uid, reason FROM documents
                 WHERE reg_number = ?1 AND created_utc BETWEEN ?2 AND ?3 ORDER BY created_utc, seq",
            )?;
            let mut rows = stmt.query(params![reg.to_string(), period.from.timestamp(), period.to.timestamp()])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let kind: DocumentKind = parse_id(&r.get::<_, String>(1)?)?;
                if !kinds.contains(&kind) {
                    continue;
                }
                let tender = |i| r.get::<_, Option<i64>>(i)?.map(money_from).transpose();
                let tenders = match (tender(4)?, tender(5)?, tender(6)?) {
                    (Some(cash), Some(card), Some(other)) => Some(Tenders { cash, card, other }),
                    _ => None,
                };
                out.push(DocumentRow {
                    seq: Seq(r.get::<_, i64>(0)? as u64),
                    kind,
                    number: r.get::<_, i64>(2)? as u64,
                    created_at: time_from(&r.get::<_, String>(3)?)?,
                    tenders,
                    total: money_from(r.get(7)?)?,
                    uid: r.get(8)?,
                    error: r.get(9)?,
                });
            }
            Ok(out)
        })
    }

    fn document(&self, scope: &Scope, uid: &str) -> Result<StoredDocument, StoreError> {
        let not_found = || StoreError::NotFound(format!("документ {uid}"));
        self.read(|conn| {
            // One query whether the document is missing or another taxpayer's, so neither
            // answer nor its time tells the two apart.
            type Found = (String, String, String, Vec<u8>, Vec<u8>, Option<String>);
            let found: Option<Found> = conn
                .prepare_cached(
                    "SELECT d.reg_number, v.unp, t.name, e.hash, e.payload, e.reason FROM documents d
                     JOIN entries e ON e.reg_number = d.reg_number AND e.seq = d.seq
                     JOIN devices v ON v.reg_number = d.reg_number JOIN taxpayers t ON t.unp = v.unp
                     WHERE d.uid = ?1",
                )?
                .query_row([uid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
                .optional()?;
            let (reg, unp, name, hash, payload, error) = found.ok_or_else(not_found)?;
            let unp: Unp = parse_id(&unp)?;
            if !scope.holds(unp) {
                return Err(not_found());
            }
            Ok(StoredDocument {
                reg_number: parse_id(&reg)?,
                taxpayer: Taxpayer { unp, name },
                hash: hash_from(&hash)?,
                payload,
                error,
            })
        })
    }

    fn events(
        &self,
        scope: &Scope,
        reg: RegNumber,
        period: Period,
        codes: &[u32],
    ) -> Result<Vec<EventRow>, StoreError> {
        self.read(|conn| {
            scoped_register(conn, scope, reg)?;
            let mut stmt = conn.prepare_cached(
                "SELECT v.seq, v.code, v.parameter, v.created_at, v.sent_at, e.reason FROM events v
                 JOIN entries e ON e.reg_number = v.reg_number AND e.seq = v.seq
                 WHERE v.reg_number = ?1 AND v.created_utc BETWEEN ?2 AND ?3 ORDER BY v.created_utc, v.seq",
            )?;
            let mut rows = stmt.query(params![reg.to_string(), period.from.timestamp(), period.to.timestamp()])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let code = u32::try_from(r.get::<_, i64>(1)?).map_err(|_| StoreError::Corrupt("event code".into()))?;
                if !codes.is_empty() && !codes.contains(&code) {
                    continue;
                }
                out.push(EventRow {
                    seq: Seq(r.get::<_, i64>(0)? as u64),
                    code: EventCode::from_code(code),
                    parameter: r.get(2)?,
                    created_at: time_from(&r.get::<_, String>(3)?)?,
                    sent_at: time_from(&r.get::<_, String>(4)?)?,
                    error: r.get(5)?,
                });
            }
            Ok(out)
        })
    }

    fn cumulative_lines(&self, scope: &Scope, reg: RegNumber) -> Result<Vec<CumulativeLine>, StoreError> {
        self.read(|conn| {
            scoped_register(conn, scope, reg)?;
            // Each report against the payments of every shift since the report before it, so
            // a shift whose report is missing or refused does not break the check.
            let mut stmt = conn.prepare_cached(
                "WITH r AS (
                    SELECT shift, cumulative, LAG(shift) OVER (ORDER BY shift) AS previous FROM documents
                    WHERE reg_number = ?1 AND kind = 'shift_report' AND status = 1)
                 SELECT r.shift, r.cumulative,
                    (SELECT COALESCE(SUM(p.total), 0) FROM documents p
                     WHERE p.reg_number = ?1 AND p.kind = 'payment' AND p.status = 1
                       AND p.shift > COALESCE(r.previous, 0) AND p.shift <= r.shift)
                 FROM r ORDER BY r.shift",
            )?;
            let mut rows = stmt.query([reg.to_string()])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(CumulativeLine {
                    shift: ShiftNumber(r.get(0)?),
                    reported: money_from(r.get::<_, Option<i64>>(1)?.unwrap_or(0))?,
                    payments: money_from(r.get(2)?)?,
                });
            }
            Ok(out)
        })
    }

    fn objects(&self, scope: &Scope) -> Result<Vec<TradeObject>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!("SELECT {OBJECT_COLUMNS} WHERE o.unp = ?1 ORDER BY o.id"))?;
            let mut out = Vec::new();
            for unp in scope.unps() {
                let mut rows = stmt.query([unp.to_string()])?;
                while let Some(r) = rows.next()? {
                    out.push(object_from(r)?);
                }
            }
            out.sort_by_key(|o| o.id);
            Ok(out)
        })
    }

    fn update_object(&self, scope: &Scope, id: ObjectId, details: &ObjectDetails) -> Result<TradeObject, StoreError> {
        let not_found = || StoreError::NotFound(format!("торговый объект {}", id.0));
        let conn = self.conn();
        let object = conn
            .prepare_cached(&format!("SELECT {OBJECT_COLUMNS} WHERE o.id = ?1"))?
            .query_row([id.0], |r| Ok(object_from(r)))
            .optional()?
            .transpose()?
            .filter(|o| scope.holds(o.unp))
            .ok_or_else(not_found)?;
        conn.execute(
            "UPDATE objects SET actual_address = ?2, working_hours = ?3, contacts = ?4, notes = ?5 WHERE id = ?1",
            params![id.0, details.actual_address, details.working_hours, details.contacts, details.notes],
        )?;
        Ok(TradeObject { details: details.clone(), ..object })
    }
}

// ---- users, tokens, sessions ----

fn user_from(conn: &Connection, row: (i64, String, String, String, String)) -> Result<User, StoreError> {
    let (id, login, email, role, password_hash) = row;
    let mut stmt = conn.prepare_cached(
        "SELECT t.unp, t.name FROM user_taxpayers u JOIN taxpayers t ON t.unp = u.unp WHERE u.user_id = ?1
         ORDER BY t.unp",
    )?;
    let taxpayers = stmt
        .query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .map(|row| {
            let (unp, name) = row?;
            Ok(Taxpayer { unp: parse_id(&unp)?, name })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(User { id: UserId(id), login, email, role: Role::parse(&role)?, password_hash, taxpayers })
}

fn find_user(conn: &Connection, column: &str, key: &dyn rusqlite::ToSql) -> Result<Option<User>, StoreError> {
    let sql = format!("SELECT id, login, email, role, password_hash FROM users WHERE {column} = ?1");
    let row = conn
        .prepare_cached(&sql)?
        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .optional()?;
    row.map(|row| user_from(conn, row)).transpose()
}

fn parse_id<T: std::str::FromStr>(text: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e: T::Err| StoreError::Corrupt(format!("{text:?}: {e}")))
}

fn utc_from(text: &str) -> Result<DateTime<Utc>, StoreError> {
    Ok(time_from(text)?.with_timezone(&Utc))
}

fn money_from(kopecks: i64) -> Result<Money, StoreError> {
    u64::try_from(kopecks).map(Money::from_kopecks).map_err(|_| StoreError::Corrupt(format!("amount {kopecks}")))
}

/// The equipment columns, in the order [`equipment_from`] reads them.
const EQUIPMENT_COLUMNS: &str = "d.reg_number, d.serial, d.unp, t.name, d.object_id, o.name, d.commissioned_on,
    d.time_zone, d.info, d.pos_version, d.agent_version, d.tsok_expires_at, d.pending, d.oldest_pending_at,
    d.sent_at, d.last_seen_at, d.blocked
    FROM devices d JOIN taxpayers t ON t.unp = d.unp JOIN objects o ON o.id = d.object_id";

fn equipment_from(r: &rusqlite::Row<'_>) -> Result<Equipment, StoreError> {
    let text = |i: usize| r.get::<_, Option<String>>(i);
    let info = match (text(8)?, text(14)?) {
        (Some(info), Some(sent)) => Some(DeviceInfo {
            info,
            pos_version: text(9)?.unwrap_or_default(),
            agent_version: text(10)?.unwrap_or_default(),
            tsok_expires_at: text(11)?.as_deref().map(time_from).transpose()?,
            pending: r.get::<_, Option<i64>>(12)?.unwrap_or(0) as u64,
            oldest_pending_at: text(13)?.as_deref().map(time_from).transpose()?,
            sent_at: time_from(&sent)?,
        }),
        _ => None,
    };
    Ok(Equipment {
        reg_number: parse_id(&r.get::<_, String>(0)?)?,
        serial: parse_id(&r.get::<_, String>(1)?)?,
        taxpayer: Taxpayer { unp: parse_id(&r.get::<_, String>(2)?)?, name: r.get(3)? },
        object_id: ObjectId(r.get(4)?),
        object_name: r.get(5)?,
        commissioned_on: parse_id(&r.get::<_, String>(6)?)?,
        time_zone: parse_id(&r.get::<_, String>(7)?)?,
        info,
        last_seen_at: text(15)?.as_deref().map(utc_from).transpose()?,
        blocked: text(16)?,
    })
}

/// The register `reg` if the scope holds its taxpayer; `NotFound` otherwise, exactly as
/// when it does not exist. Every per-register query starts here.
fn scoped_register(conn: &Connection, scope: &Scope, reg: RegNumber) -> Result<Equipment, StoreError> {
    let not_found = || StoreError::NotFound(format!("касса {reg}"));
    let equipment = conn
        .prepare_cached(&format!("SELECT {EQUIPMENT_COLUMNS} WHERE d.reg_number = ?1"))?
        .query_row([reg.to_string()], |r| Ok(equipment_from(r)))
        .optional()?
        .transpose()?
        .ok_or_else(not_found)?;
    if scope.holds(equipment.taxpayer.unp) { Ok(equipment) } else { Err(not_found()) }
}

const OBJECT_COLUMNS: &str = "o.id, o.unp, t.name, o.name, o.address, o.actual_address, o.working_hours, o.contacts,
    o.notes FROM objects o JOIN taxpayers t ON t.unp = o.unp";

fn object_from(r: &rusqlite::Row<'_>) -> Result<TradeObject, StoreError> {
    Ok(TradeObject {
        id: ObjectId(r.get(0)?),
        unp: parse_id(&r.get::<_, String>(1)?)?,
        org_name: r.get(2)?,
        name: r.get(3)?,
        address: r.get(4)?,
        details: ObjectDetails {
            actual_address: r.get(5)?,
            working_hours: r.get(6)?,
            contacts: r.get(7)?,
            notes: r.get(8)?,
        },
    })
}

fn session_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRecord> {
    let id: Vec<u8> = r.get(0)?;
    Ok(SessionRecord {
        id_hash: id.try_into().unwrap_or([0; 32]),
        user: r.get::<_, Option<i64>>(1)?.map(UserId),
        data: r.get(2)?,
        expires_at: r.get(3)?,
    })
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
                     other, total, uid, status, reason, cumulative)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
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
                match &document.body {
                    DocumentBody::ShiftReport(report) => Some(kopecks(report.cumulative_total)),
                    _ => None,
                },
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
            if status == EntryStatus::Accepted {
                let blocked = match event.code {
                    EventCode::Blocked => Some(Some(event.parameter.as_deref().unwrap_or("заблокирована"))),
                    EventCode::Unblocked => Some(None),
                    _ => None,
                };
                if let Some(blocked) = blocked {
                    tx.prepare_cached("UPDATE devices SET blocked = ?2 WHERE reg_number = ?1")?
                        .execute(params![reg_text, blocked])?;
                }
            }
        }
        Content::Unreadable => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, FixedOffset};
    use protocol::{Item, Quantity, Summary};

    use super::*;
    use crate::store::NewDevice;

    fn at(minute: u32) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(&format!("2024-10-11T10:{minute:02}:00+03:00")).unwrap()
    }

    fn payment(kopecks: u64) -> DocumentBody {
        let price = Money::from_kopecks(kopecks);
        let items = vec![Item { name: "Товар".into(), gtin: None, section: 1, price, quantity: Quantity::ONE }];
        DocumentBody::Payment { items, tenders: Tenders::cash(price) }
    }

    /// A store with one register of the tenant 100231650 and what `payloads` journal.
    fn store_with(payloads: Vec<Payload>) -> (tempfile::TempDir, SqliteStore, RegNumber, Scope) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("c.sqlite")).unwrap();
        let unp: Unp = "100231650".parse().unwrap();
        let reg: RegNumber = "119026501".parse().unwrap();
        store.add_taxpayer(unp, "ЧУП").unwrap();
        let object = store.add_object(unp, "Офис", "Минск", None).unwrap();
        let device = NewDevice {
            unp,
            object,
            reg_number: reg,
            serial: "AVQ11169990740".parse().unwrap(),
            commissioned_on: "2022-09-19".parse().unwrap(),
            time_zone: chrono_tz::Europe::Minsk,
            token_hash: [7; 32],
        };
        store.add_device(&device).unwrap();
        let mut head = ChainHead::EMPTY;
        let entries: Vec<Entry> = payloads
            .iter()
            .map(|p| {
                let entry = Entry::after(&head, p.to_cbor());
                head.advance(&entry).unwrap();
                entry
            })
            .collect();
        let info = DeviceInfo {
            info: String::new(),
            pos_version: String::new(),
            agent_version: String::new(),
            tsok_expires_at: None,
            pending: 0,
            oldest_pending_at: None,
            sent_at: at(59),
        };
        store.ingest(reg, &info, &entries, Utc::now()).unwrap();
        let scope = Scope { unps: vec![unp] };
        (dir, store, reg, scope)
    }

    fn document(number: u64, shift: u32, minute: u32, body: DocumentBody) -> Payload {
        Payload::Document(Document {
            number: protocol::DocumentNumber(number),
            shift: ShiftNumber(shift),
            created_at: at(minute),
            cashier: "И".into(),
            body,
        })
    }

    fn report(shift: u32, minute: u32, payments: &[u64], previous: u64) -> Payload {
        let mut summary = Summary::default();
        for p in payments {
            summary.add_body(&payment(*p));
        }
        let report = protocol::ShiftReport::new(at(0), &summary, Money::from_kopecks(previous));
        document(u64::from(shift), shift, minute, DocumentBody::ShiftReport(report))
    }

    #[test]
    fn a_shift_without_its_report_is_counted_into_the_next_reports_check() {
        // Shift 2's report never arrived; shift 3's total includes shift 2's payments.
        let (_dir, store, reg, scope) = store_with(vec![
            document(1, 1, 1, payment(100)),
            report(1, 2, &[100], 0),
            document(2, 2, 3, payment(200)),
            document(3, 3, 4, payment(300)),
            report(3, 5, &[200, 300], 100),
        ]);
        let lines = store.cumulative_lines(&scope, reg).unwrap();
        let shown: Vec<_> = lines.iter().map(|l| (l.shift.0, l.reported.to_string(), l.payments.to_string())).collect();
        assert_eq!(shown, [(1, "1.00".into(), "1.00".into()), (3, "6.00".into(), "5.00".into())]);
        assert_eq!(protocol::check_cumulative(&lines, Some(Money::ZERO)), [true, true]);
    }

    #[test]
    fn migration_two_fills_its_columns_from_entries_stored_before_it() {
        let blocked = protocol::Event {
            code: EventCode::Blocked,
            created_at: at(6),
            parameter: Some("истек срок действия ТСОК".into()),
        };
        let (_dir, store, reg, scope) =
            store_with(vec![document(1, 1, 1, payment(100)), report(1, 2, &[100], 0), Payload::Event(blocked)]);
        {
            // As a database migrated from schema 1 would have them: the new columns empty.
            let mut conn = store.conn();
            conn.execute_batch("UPDATE documents SET cumulative = NULL; UPDATE devices SET blocked = NULL;").unwrap();
            let tx = conn.transaction().unwrap();
            fill_portal_columns(&tx).unwrap();
            tx.commit().unwrap();
        }
        let lines = store.cumulative_lines(&scope, reg).unwrap();
        assert_eq!(lines[0].reported.to_string(), "1.00");
        assert_eq!(store.register(&scope, reg).unwrap().blocked.as_deref(), Some("истек срок действия ТСОК"));
    }

    #[test]
    fn outside_the_scope_is_not_found_like_missing() {
        let (_dir, store, reg, _) = store_with(vec![document(1, 1, 1, payment(100))]);
        let other = Scope { unps: vec!["291000009".parse().unwrap()] };
        let missing: RegNumber = "119000001".parse().unwrap();
        for result in [store.register(&other, reg), store.register(&other, missing)] {
            assert!(matches!(result, Err(StoreError::NotFound(_))));
        }
        assert!(matches!(store.cumulative_lines(&other, reg), Err(StoreError::NotFound(_))));
        assert!(matches!(store.equipment(&other, "100231650".parse().unwrap()), Err(StoreError::NotFound(_))));
    }
}
