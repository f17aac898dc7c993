//! The POS API's speed and memory against a bare SQLite commit on the same disk, in one run.
//!
//! `cargo bench -p e2e --bench pos_api` (figures go to BENCHMARKS.md). The journal lives
//! under `target/bench-agent` (same disk as the build), or `BENCH_DIR`. `BENCH_ENTRIES`
//! sets the size of the big journal (default 1,000,000).
//!
//! Measured: the bare `INSERT` + `COMMIT` (WAL, `synchronous=FULL`) of a row the size of a
//! journal entry; one client's payment latency over the real agent binary; documents/s with
//! 1, 4 and 16 clients; the agent's peak RSS; the same latency with a big journal.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use protocol::{DocumentNumber, Payload, ShiftNumber, Tenders};
use rusqlite::params;

const REG: &str = "119026501";

fn payment_body() -> String {
    serde_json::json!({"kind": "payment", "cashier": "Иванов",
        "items": [{"name": "Шоколад молочный \"Ritter sport\" ром изюм орех 100г", "gtin": "3702760306879",
                   "section": 3, "price": "4.79", "quantity": "1.000"}],
        "tenders": {"cash": "4.79", "card": "0.00", "other": "0.00"}})
    .to_string()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// The size of a journal entry row for the payment above: payload + two hashes + time.
fn entry_row_size() -> usize {
    let payload = Payload::Document(protocol::Document {
        number: DocumentNumber(1),
        shift: ShiftNumber(1),
        created_at: chrono::DateTime::parse_from_rfc3339("2024-10-11T15:04:50+03:00").unwrap(),
        cashier: "Иванов".into(),
        body: protocol::DocumentBody::Payment {
            items: vec![e2e::chocolate()],
            tenders: Tenders::cash(e2e::chocolate().price),
        },
    });
    payload.to_cbor().len() + 64 + 25
}

/// Latencies of `n` bare single-row commits.
fn bare_commits(path: &Path, n: usize, row: usize) -> Vec<Duration> {
    let _ = std::fs::remove_file(path);
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(())).unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch("CREATE TABLE t (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL)").unwrap();
    let payload = vec![0x5Au8; row];
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        conn.execute_batch("BEGIN").unwrap();
        conn.execute("INSERT INTO t (seq, payload) VALUES (?1, ?2)", params![i as i64, payload]).unwrap();
        conn.execute_batch("COMMIT").unwrap();
        latencies.push(start.elapsed());
    }
    latencies.sort();
    latencies
}

/// Latencies of `n` bare commits writing what the journal writes for one document: the
/// entry (with its pending index), the document index row and the register row.
fn bare_journal_commits(path: &Path, n: usize, row: usize) -> Vec<Duration> {
    let _ = std::fs::remove_file(path);
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(())).unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch(
        "CREATE TABLE entries (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL, delivery INTEGER NOT NULL DEFAULT 0);
         CREATE INDEX entries_pending ON entries (seq) WHERE delivery = 0;
         CREATE TABLE documents (number INTEGER PRIMARY KEY, kind TEXT, shift INTEGER, seq INTEGER UNIQUE);
         CREATE TABLE register (id INTEGER PRIMARY KEY, next_number INTEGER, summary TEXT, head BLOB);
         INSERT INTO register VALUES (1, 0, '', x'00');",
    )
    .unwrap();
    let payload = vec![0x5Au8; row];
    let summary = "[{\"count\":1,\"tenders\":{},\"total\":\"0.00\"}]".repeat(7);
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n as i64 {
        let start = Instant::now();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        conn.prepare_cached("INSERT INTO entries (seq, payload) VALUES (?1, ?2)")
            .unwrap()
            .execute(params![i, payload])
            .unwrap();
        conn.prepare_cached("INSERT INTO documents VALUES (?1, 'payment', 1, ?1)").unwrap().execute([i]).unwrap();
        conn.prepare_cached("UPDATE register SET next_number = ?1, summary = ?2, head = ?3")
            .unwrap()
            .execute(params![i, summary, [7u8; 32]])
            .unwrap();
        conn.execute_batch("COMMIT").unwrap();
        latencies.push(start.elapsed());
    }
    latencies.sort();
    latencies
}

struct Agent {
    child: Child,
    url: String,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = dir.join("agent.toml");
        std::fs::write(
            &config,
            format!(
                "[register]\nreg_number = \"{REG}\"\nserial = \"AVQ11169990740\"\nunp = \"100231650\"\norg_name = \"ЧУП\"\n\
                 [storage]\ndata_dir = \"{}\"\n[pos_api]\nlisten = \"127.0.0.1:{port}\"\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let child = e2e::agent_command()
            .args(["run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let agent = Agent { child, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(120);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "agent did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        agent
    }

    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    fn stop(mut self) {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().unwrap();
    }
}

/// Latencies of `n` sequential payments from one client.
use e2e::RawClient;

async fn one_client(url: &str, n: usize) -> Vec<Duration> {
    let mut client = RawClient::connect(url).await;
    let body = payment_body();
    let mut latencies = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        assert_eq!(client.post("/v1/documents", &body).await, 201);
        latencies.push(start.elapsed());
    }
    latencies.sort();
    latencies
}

/// Documents/s with `clients` concurrent clients posting for `duration`.
async fn throughput(url: &str, clients: usize, duration: Duration) -> f64 {
    let done = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let start = Instant::now();
    for _ in 0..clients {
        let (done, count, url) = (done.clone(), count.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut client = RawClient::connect(&url).await;
            let body = payment_body();
            while !done.load(Ordering::Relaxed) {
                assert_eq!(client.post("/v1/documents", &body).await, 201);
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(duration).await;
    done.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would run this too: skip then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    e2e::agent_binary(); // built (if needed) before anything is timed
    let base = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-agent"));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let big: u64 = std::env::var("BENCH_ENTRIES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let runtime = tokio::runtime::Runtime::new().unwrap();

    let row = entry_row_size();
    let bare = bare_commits(&base.join("bare.sqlite"), 2000, row);
    let bare_p50 = percentile(&bare, 0.5);
    let bare_rate = 1.0 / bare.iter().sum::<Duration>().as_secs_f64() * bare.len() as f64;
    println!(
        "bare INSERT+COMMIT of a {row}-byte row: p50 {}, p99 {}, {bare_rate:.0} commits/s",
        ms(bare_p50),
        ms(percentile(&bare, 0.99))
    );

    let journal_like = bare_journal_commits(&base.join("bare-journal.sqlite"), 2000, row);
    println!("bare commit of the journal's rows for one document: p50 {}", ms(percentile(&journal_like, 0.5)));

    let empty_dir = base.join("empty");
    std::fs::create_dir_all(&empty_dir).unwrap();
    let agent = Agent::start(&empty_dir);
    let (single, rates, rss) = runtime.block_on(async {
        let mut client = RawClient::connect(&agent.url).await;
        assert_eq!(client.post("/v1/shift/open", r#"{"cashier":"И"}"#).await, 201);
        let single = one_client(&agent.url, 2000).await;
        // The HTTP floor: a request that the router answers with 404, touching nothing.
        let mut floor = Vec::with_capacity(2000);
        for _ in 0..2000 {
            let start = Instant::now();
            assert_eq!(client.post("/v1/nothing", "{}").await, 404);
            floor.push(start.elapsed());
        }
        floor.sort();
        println!("HTTP round trip on loopback (404, no journal): p50 {}", ms(percentile(&floor, 0.5)));
        let mut rates = Vec::new();
        for clients in [1, 4, 16] {
            rates.push((clients, throughput(&agent.url, clients, Duration::from_secs(5)).await));
        }
        (single, rates, agent.peak_rss_kib())
    });
    agent.stop();
    let p50 = percentile(&single, 0.5);
    let p99 = percentile(&single, 0.99);
    println!(
        "one client, payment over the API: p50 {} ({:.2}× bare), p99 {}",
        ms(p50),
        p50.as_secs_f64() / bare_p50.as_secs_f64(),
        ms(p99)
    );
    for (clients, rate) in &rates {
        println!("{clients:>2} clients: {rate:.0} documents/s ({:.1}× bare commit rate)", rate / bare_rate);
    }
    println!("peak RSS of the agent under load: {:.1} MiB", rss as f64 / 1024.0);
    let binary = std::fs::metadata(e2e::agent_binary()).unwrap().len();
    println!("agent binary: {:.1} MiB", binary as f64 / 1024.0 / 1024.0);

    let big_dir = base.join("big");
    std::fs::create_dir_all(&big_dir).unwrap();
    let started = Instant::now();
    e2e::prefill_journal(&big_dir.join("data"), big);
    println!("prefilled {big} payments in {:.1} s", started.elapsed().as_secs_f64());
    // Latency is noisy on a shared VM: alternate the two journals and take the median p99.
    let mut small_p99 = Vec::new();
    let mut big_p99 = Vec::new();
    let mut startup = Duration::MAX;
    for _ in 0..3 {
        for (dir, p99s) in [(&empty_dir, &mut small_p99), (&big_dir, &mut big_p99)] {
            let started = Instant::now();
            let agent = Agent::start(dir);
            if dir == &big_dir {
                startup = startup.min(started.elapsed());
            }
            let latencies = runtime.block_on(one_client(&agent.url, 3000));
            agent.stop();
            p99s.push(percentile(&latencies, 0.99));
        }
    }
    small_p99.sort();
    big_p99.sort();
    println!(
        "p99 (median of 3 rounds): small journal {}, {big} entries {} ({:.2}×); start-up with {big} entries {}",
        ms(small_p99[1]),
        ms(big_p99[1]),
        big_p99[1].as_secs_f64() / small_p99[1].as_secs_f64(),
        ms(startup)
    );
    let _ = std::fs::remove_dir_all(&base);
}
