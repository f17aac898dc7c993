//! The portal at scale: `cargo bench -p e2e --bench portal`.
//!
//! Two SQLite stores under `target/bench-portal/`, filled through the store's own ingest
//! (CBOR payloads, the chain, the document index): a small one (`BENCH_REGISTERS` registers,
//! default 1,000, one day of 100 documents each: 100,000) and a big one (the same registers,
//! `BENCH_DOCS` documents in all, default 10,000,000: 100 days). Each is reused on the next
//! run when its marker file says it is complete.
//!
//! Measured, alternating between the stores: the documents page of one register-day (with
//! its summary, over HTTP with a session), the same through the JSON API, the bare indexed
//! `SELECT` of the same rows on a read-only connection, and the equipment page of a УНП with
//! half the registers (500 by default).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cabinet_server::portal::Listing;
use cabinet_server::store::Store;
use cabinet_server::store::sqlite::SqliteStore;
use chrono::{DateTime, FixedOffset, TimeDelta};
use e2e::portal::{Browser, Journal, PortalServer, item, tenders};
use protocol::{DocumentBody, Money, ShiftReport, Summary};

const PER_DAY: u64 = 100;
const UNP_A: &str = "100231650";
const UNP_B: &str = "291000009";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

fn first_day() -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339("2024-07-01T08:00:00+03:00").unwrap()
}

/// The register numbers: 9 digits, distinct.
fn registers(n: u64) -> Vec<String> {
    (0..n).map(|i| format!("{}", 119_000_001 + i)).collect()
}

/// Fills (or reuses) the store at `dir` with `days` days of `PER_DAY` documents per register.
fn seed(dir: &Path, regs: &[String], days: u64) -> Arc<dyn Store> {
    let marker = dir.join(format!("complete-{}x{days}", regs.len()));
    let path = dir.join("cabinet.sqlite");
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    if marker.exists() {
        return store;
    }
    let started = Instant::now();
    for (unp, name) in [(UNP_A, "ЧУП «Первый»"), (UNP_B, "ООО «Второй»")] {
        store.add_taxpayer(unp.parse().unwrap(), name).unwrap();
    }
    let objects: Vec<_> = [UNP_A, UNP_B]
        .iter()
        .map(|unp| store.add_object(unp.parse().unwrap(), "Магазин", "г. Минск, пр. Независимости, 58", None).unwrap())
        .collect();
    let mut rng = fastrand::Rng::with_seed(7);
    for (i, reg) in regs.iter().enumerate() {
        let half = usize::from(i >= regs.len() / 2);
        let unp = [UNP_A, UNP_B][half];
        store
            .add_device(&cabinet_server::store::NewDevice {
                unp: unp.parse().unwrap(),
                object: objects[half],
                reg_number: reg.parse().unwrap(),
                serial: format!("AVQ{reg:0>11}").parse().unwrap(),
                commissioned_on: "2022-09-19".parse().unwrap(),
                time_zone: chrono_tz::Europe::Minsk,
                token_hash: cabinet_server::tokens::token_hash(&format!("bench-{reg}")),
            })
            .unwrap();
        let mut journal = Journal::new(reg.parse().unwrap());
        let mut cumulative = Money::ZERO;
        for day in 0..days {
            let opened = first_day() + TimeDelta::days(day as i64);
            let mut shift = Summary::default();
            for n in 0..PER_DAY - 1 {
                let kopecks = rng.u64(50..50_000);
                let body = DocumentBody::Payment {
                    items: vec![item("Товар", kopecks)],
                    tenders: if rng.bool() { tenders(kopecks, 0, 0) } else { tenders(0, kopecks, 0) },
                };
                shift.add_body(&body);
                journal.document(opened + TimeDelta::seconds(300 * n as i64), body);
            }
            let report = ShiftReport::new(opened, &shift, cumulative);
            cumulative = report.cumulative_total;
            journal.document(opened + TimeDelta::hours(12), DocumentBody::ShiftReport(report));
            if journal.unsent.len() >= 5_000 {
                journal.deliver(store.as_ref(), opened + TimeDelta::hours(13), 5_000);
            }
        }
        journal.deliver(store.as_ref(), first_day() + TimeDelta::days(days as i64), 5_000);
        if i % 50 == 49 {
            eprintln!("  {} registers of {} in {:.0?}", i + 1, regs.len(), started.elapsed());
        }
    }
    std::fs::write(&marker, "").unwrap();
    eprintln!("seeded {} documents in {:.1?}", regs.len() as u64 * days * PER_DAY, started.elapsed());
    store
}

/// Times `rounds` calls of `f`; returns (p50, p95).
async fn time<F: AsyncFnMut(usize)>(rounds: usize, mut f: F) -> (Duration, Duration) {
    for i in 0..20 {
        f(i).await;
    }
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let start = Instant::now();
        f(i).await;
        samples.push(start.elapsed());
    }
    samples.sort();
    (samples[rounds / 2], samples[rounds * 95 / 100])
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// A user holding both УНП, signed in.
async fn signed_in(server: &PortalServer) -> Browser {
    let store = server.store.as_ref();
    let password = match cabinet_server::accounts::create_user(
        store,
        "bench",
        "bench@example.by",
        cabinet_server::store::Role::Merchant,
        &[UNP_A.parse().unwrap(), UNP_B.parse().unwrap()],
    ) {
        Ok((_, password)) => password,
        Err(_) => cabinet_server::accounts::reset_password(store, "bench").unwrap(),
    };
    let mut browser = Browser::new(&server.url);
    browser.login("bench", &password).await;
    browser
}

/// The bare indexed `SELECT` of one register-day's rows, stepped to the end.
fn bare_select(conn: &rusqlite::Connection, reg: &str, from: i64, to: i64) -> usize {
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, kind, number, created_at, cash, card, other, total, uid, reason FROM documents
             WHERE reg_number = ?1 AND created_utc BETWEEN ?2 AND ?3 ORDER BY created_utc, seq",
        )
        .unwrap();
    let mut rows = stmt.query(rusqlite::params![reg, from, to]).unwrap();
    let mut n = 0;
    while let Some(row) = rows.next().unwrap() {
        let _: (i64, String, String) = (row.get(0).unwrap(), row.get(1).unwrap(), row.get(8).unwrap());
        n += 1;
    }
    n
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let registers_n = env("BENCH_REGISTERS", 1_000);
    let docs = env("BENCH_DOCS", 10_000_000);
    let big_days = (docs / registers_n / PER_DAY).max(1);
    let regs = registers(registers_n);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-portal");
    eprintln!("small store: {registers_n} registers x 1 day; big store: {registers_n} registers x {big_days} days");
    let small = seed(&root.join("small"), &regs, 1);
    let big = seed(&root.join("big"), &regs, big_days);

    let rounds = env("BENCH_ROUNDS", 300) as usize;
    let mut results = Vec::new();
    for (name, store, dir, days) in [("small", small, root.join("small"), 1), ("big", big, root.join("big"), big_days)]
    {
        let server = PortalServer::start_on(tempfile::tempdir_in(&root).unwrap(), store).await;
        let mut browser = signed_in(&server).await;
        let conn = rusqlite::Connection::open_with_flags(
            dir.join("cabinet.sqlite"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        // The last day of the store, for register i.
        let day = first_day() + TimeDelta::days(days as i64 - 1);
        let date = day.format("%Y-%m-%d").to_string();
        let (from, to) = (day.timestamp() - 8 * 3600, day.timestamp() - 8 * 3600 + 86_399);
        let pick = |i: usize| regs[(i * 7919) % regs.len()].clone();
        let page = browser.get(&format!("/equipment/{}/documents?from={date}T00:00&to={date}T23:59", pick(0))).await;
        assert_eq!(page.status, 200);
        assert_eq!(page.text.matches("class=\"receipt-link\"").count() as u64, PER_DAY, "a register-day's rows");
        assert_eq!(bare_select(&conn, &pick(0), from, to) as u64, PER_DAY);

        let cookie = format!("Cookie: {}\r\n", browser.cookie.clone().unwrap());
        let mut raw = e2e::RawClient::connect(&server.url).await;
        let html = time(rounds, async |i| {
            let path = format!("/equipment/{}/documents?from={date}T00:00&to={date}T23:59", pick(i));
            assert_eq!(raw.send("GET", &path, &cookie, "").await.0, 200);
        })
        .await;
        let json = time(rounds, async |i| {
            let path = format!("/api/v1/equipment/{}/documents?from={date}&to={date}", pick(i));
            assert_eq!(raw.send("GET", &path, &cookie, "").await.0, 200);
        })
        .await;
        let bare = time(rounds, async |i| {
            assert_eq!(bare_select(&conn, &pick(i), from, to) as u64, PER_DAY);
        })
        .await;
        let static_file = time(rounds, async |_| {
            assert_eq!(raw.send("GET", "/static/portal.js", "", "").await.0, 200);
        })
        .await;
        let signed_in_only = time(rounds, async |_| {
            assert_eq!(raw.send("GET", "/api/v1/unps", &cookie, "").await.0, 200);
        })
        .await;
        let scope = cabinet_server::store::Scope::of(&server.store.user_by_login("bench").unwrap().unwrap());
        let query = time(rounds, async |i| {
            let reg = pick(i).parse().unwrap();
            let list = cabinet_server::portal::documents(
                server.store.as_ref(),
                &scope,
                reg,
                Some(&date),
                Some(&date),
                None,
                chrono::Utc::now(),
            )
            .unwrap();
            assert_eq!(list.documents.len() as u64, PER_DAY);
        })
        .await;
        let list = cabinet_server::portal::documents(
            server.store.as_ref(),
            &scope,
            pick(0).parse().unwrap(),
            Some(&date),
            Some(&date),
            None,
            chrono::Utc::now(),
        )
        .unwrap();
        let to_json = time(rounds, async |_| {
            assert!(serde_json::to_string(&list.json()).unwrap().len() > 1000);
        })
        .await;
        eprintln!(
            "  {name}: a static file over HTTP p50 {}; a signed-in API call with a tiny answer p50 {}; the query layer \
             alone p50 {}; its JSON text p50 {}",
            ms(static_file.0),
            ms(signed_in_only.0),
            ms(query.0),
            ms(to_json.0)
        );
        let equipment = time(rounds.min(100), async |_| {
            let (status, page) = raw.send("GET", "/equipment", &cookie, "").await;
            assert_eq!(status, 200);
            assert_eq!(String::from_utf8_lossy(&page).matches("/cumulative\"").count(), regs.len() / 2);
        })
        .await;
        let documents = registers_n * days * PER_DAY;
        println!(
            "{name} ({documents} documents): documents page p50 {} p95 {}; JSON p50 {} p95 {}; bare SELECT p50 {} p95 {}; \
             equipment page ({} registers) p50 {} p95 {}",
            ms(html.0),
            ms(html.1),
            ms(json.0),
            ms(json.1),
            ms(bare.0),
            ms(bare.1),
            regs.len() / 2,
            ms(equipment.0),
            ms(equipment.1)
        );
        results.push((html, json, bare));
    }
    let (small, big) = (&results[0], &results[1]);
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!("documents page, big vs small store: p50 {:.2}x (goal <= 1.2x)", ratio(big.0.0, small.0.0));
    println!("documents page vs bare SELECT, big store: p50 {:.2}x (goal <= 3x)", ratio(big.0.0, big.2.0));
    println!("JSON documents vs bare SELECT, big store: p50 {:.2}x", ratio(big.1.0, big.2.0));
}
