//! Delivery's speed against a bare bulk insert of the same rows into the server's tables,
//! in one run (issue 4). `cargo bench -p e2e --bench delivery`; `BENCH_ENTRIES` sets the
//! number of entries (default 100,000). Release binaries, SQLite, loopback.
//!
//! - bare: the server's `entries` and `documents` rows for the same entries, inserted with
//!   prepared statements, 500 per transaction, into a fresh database with the server's schema;
//! - ingest: pre-built CBOR batches of 500 posted one after another to the real server;
//! - catch-up: the real agent with all entries undelivered, drained to the real server.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cabinet_server::store::Store;
use e2e::{AgentProcess, REG_NUMBER, ServerProcess};
use protocol::wire::{MAX_BATCH_ENTRIES, PROTOCOL_VERSION};
use protocol::{Batch, DeviceInfo, Entry, Payload, RegNumber, Seq, Uid};
use rusqlite::params;

fn rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

/// Inserts the rows the server writes for `entries`, bare; returns the time taken.
fn bare_bulk_insert(path: &std::path::Path, entries: &[Entry]) -> Duration {
    drop(cabinet_server::store::sqlite::SqliteStore::open(path).unwrap()); // the server's schema
    let reg: RegNumber = REG_NUMBER.parse().unwrap();
    let documents: Vec<_> = entries
        .iter()
        .map(|e| match Payload::from_cbor(&e.payload).unwrap() {
            Payload::Document(d) => Some((d.clone(), d.figures(), Uid::new(&e.hash, reg).to_string())),
            Payload::Event(_) => None,
        })
        .collect();
    let kopecks = |m: protocol::Money| m.as_decimal().mantissa() as i64;
    let received = chrono::Utc::now().to_rfc3339();
    let mut conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    let start = Instant::now();
    for (chunk, docs) in entries.chunks(MAX_BATCH_ENTRIES).zip(documents.chunks(MAX_BATCH_ENTRIES)) {
        let tx = conn.transaction().unwrap();
        {
            let mut entry_insert = tx
                .prepare_cached(
                    "INSERT INTO entries (reg_number, seq, hash, payload, received_at, status) VALUES (?1, ?2, ?3, ?4, ?5, 1)",
                )
                .unwrap();
            let mut document_insert = tx
                .prepare_cached(
                    "INSERT INTO documents (reg_number, seq, kind, number, shift, created_at, created_utc, cash, card,
                         other, total, uid, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 1)",
                )
                .unwrap();
            for (entry, document) in chunk.iter().zip(docs) {
                entry_insert
                    .execute(params![REG_NUMBER, entry.seq.0 as i64, entry.hash.0.as_slice(), entry.payload, received])
                    .unwrap();
                if let Some((d, figures, uid)) = document {
                    let tenders = figures.tenders.unwrap_or_default();
                    document_insert
                        .execute(params![
                            REG_NUMBER,
                            entry.seq.0 as i64,
                            d.kind().wire_name(),
                            d.number.0 as i64,
                            d.shift.0,
                            d.created_at.to_rfc3339(),
                            d.created_at.timestamp(),
                            kopecks(tenders.cash),
                            kopecks(tenders.card),
                            kopecks(tenders.other),
                            kopecks(figures.total),
                            uid,
                        ])
                        .unwrap();
                }
            }
        }
        tx.commit().unwrap();
    }
    start.elapsed()
}

/// Flushes what earlier phases left in the page cache, so that each phase pays only for
/// its own writes.
fn settle() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

fn device() -> DeviceInfo {
    DeviceInfo {
        info: "bench".into(),
        pos_version: "bench".into(),
        agent_version: "bench".into(),
        tsok_expires_at: None,
        pending: 0,
        oldest_pending_at: None,
        sent_at: chrono::Utc::now().fixed_offset(),
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n: u64 = std::env::var("BENCH_ENTRIES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-delivery");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Build (if needed) before anything is timed.
    e2e::agent_binary();
    e2e::server_binary();

    // The entries: a real journal, made by the agent's own rules.
    let journal_dir = base.join("journal");
    e2e::prefill_journal(&journal_dir, n - 1);
    let reg: RegNumber = REG_NUMBER.parse().unwrap();
    let entries =
        agent::journal::Reader::open(&journal_dir, reg).unwrap().raw_entries(Seq(1), usize::MAX >> 1).unwrap();
    let count = entries.len();
    println!("{count} entries (an open-shift event and {} payments)", count - 1);

    settle();
    let bare = bare_bulk_insert(&base.join("bare.sqlite"), &entries);
    let bare_rate = rate(count, bare);
    println!("bare bulk insert of the same rows (500 per transaction): {bare_rate:.0} entries/s");

    // Ingest alone: pre-built batches, posted one after another on one keep-alive connection.
    let ingest_dir = base.join("ingest");
    std::fs::create_dir_all(&ingest_dir).unwrap();
    let mut server = ServerProcess::configure(&ingest_dir);
    let token = server.register_device(REG_NUMBER, "AVQ11169990740");
    server.start();
    let bodies: Vec<Vec<u8>> = entries
        .chunks(MAX_BATCH_ENTRIES)
        .map(|chunk| {
            Batch { protocol: PROTOCOL_VERSION, reg_number: reg, device: device(), entries: chunk.to_vec() }.encode()
        })
        .collect();
    let url = format!("{}/ingest/v1/batch", server.url);
    settle();
    let ingest = runtime.block_on(async {
        let client = reqwest::Client::new();
        let start = Instant::now();
        for body in bodies {
            let response = client
                .post(&url)
                .bearer_auth(&token)
                .header("content-type", "application/cbor")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.bytes().await.unwrap();
        }
        start.elapsed()
    });
    assert_eq!(server.store().device_status(reg).unwrap().head_seq, Seq(count as u64));
    let ingest_rate = rate(count, ingest);
    println!("ingest alone: {ingest_rate:.0} entries/s ({:.2}× bare)", ingest_rate / bare_rate);
    drop(server);

    // Catch-up: the agent with everything undelivered, pointed at a fresh server.
    let catch_dir = base.join("catch-up");
    std::fs::create_dir_all(catch_dir.join("server")).unwrap();
    let mut server = ServerProcess::configure(&catch_dir.join("server"));
    let token = server.register_device(REG_NUMBER, "AVQ11169990740");
    server.start();
    e2e::prefill_journal(&catch_dir.join("agent"), n - 1);
    // Production timeouts: on a busy disk one batch may take longer than the tests' 2 s.
    let section = format!("[server]\nurl = \"{}\"\ntoken = \"{token}\"\n", server.url);
    let mut agent = AgentProcess::configure_with(&catch_dir, &catch_dir.join("agent"), "", &section);
    settle();
    let start = Instant::now();
    agent.start();
    let store = server.store();
    // Done when the server holds every prefilled entry (the agent adds its 1010 event too).
    e2e::wait_until(Duration::from_secs(3600), "the catch-up", || {
        store.device_status(reg).unwrap().head_seq.0 >= count as u64
    });
    let catch_up = start.elapsed();
    agent.stop();
    let catch_rate = rate(count, catch_up);
    println!(
        "catch-up, agent → server: {catch_rate:.0} entries/s ({:.2}× bare), {:.1} s",
        catch_rate / bare_rate,
        catch_up.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&base);
}
