//! The agent binary under crashes, restarts, a full disk and a person's CLI.

use std::collections::{BTreeMap, HashSet};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e::AgentProcess;
use protocol::{ChainHead, DocumentKind, EventCode, Payload, Seq, verify_chain};
use serde_json::{Value, json};

/// A client that opens a connection per request: pooled connections die with a killed agent.
fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(10)).pool_max_idle_per_host(0).build().unwrap()
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    path: &str,
    body: &Value,
    key: Option<&str>,
) -> reqwest::Result<(u16, Value)> {
    let mut request = client.post(format!("{url}{path}")).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

fn payment(kopecks: u64) -> Value {
    let price = format!("{}.{:02}", kopecks / 100, kopecks % 100);
    json!({"kind": "payment", "cashier": "Иванов",
           "items": [{"name": "Товар", "section": 1, "price": price, "quantity": "1.000"}],
           "tenders": {"card": price}})
}

/// Every payment in the journal as (number, uid), in journal order.
fn journaled_payments(agent: &AgentProcess) -> Vec<(u64, String)> {
    let reader = agent.reader();
    let entries = reader.raw_entries(Seq(1), usize::MAX >> 1).unwrap();
    entries
        .iter()
        .filter_map(|e| match Payload::from_cbor(&e.payload).unwrap() {
            Payload::Document(d) if d.kind() == DocumentKind::Payment => {
                Some((d.number.0, protocol::Uid::new(&e.hash, e2e::REG_NUMBER.parse().unwrap()).to_string()))
            }
            _ => None,
        })
        .collect()
}

/// The journal is sound: SQLite's own check and the chain.
fn assert_sound(agent: &AgentProcess) {
    let reader = agent.reader();
    assert_eq!(reader.integrity_check().unwrap(), "ok");
    let entries = reader.raw_entries(Seq(1), usize::MAX >> 1).unwrap();
    verify_chain(ChainHead::EMPTY, &entries).expect("the chain verifies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_at_random_moments_loses_and_doubles_nothing() {
    const KILLS: usize = 60;
    const CLIENTS: usize = 8;
    const AT_LEAST: usize = 2000;
    let dir = tempfile::tempdir().unwrap();
    let mut agent = AgentProcess::configure(dir.path(), &dir.path().join("data"), "");
    agent.start();
    let url = agent.url.clone();
    let (status, _) =
        post(&client(), &url, "/v1/shift/open", &json!({"cashier": "Иванов"}), Some("open")).await.unwrap();
    assert_eq!(status, 201);

    let acknowledged = Arc::new(Mutex::new(BTreeMap::<String, (u64, String)>::new()));
    let kopecks_acknowledged = Arc::new(AtomicUsize::new(0));
    let total = Arc::new(AtomicUsize::new(0));
    let interrupted = Arc::new(AtomicUsize::new(0));
    let killing_done = Arc::new(AtomicBool::new(false));
    let killer = {
        let killing_done = killing_done.clone();
        std::thread::spawn(move || {
            for _ in 0..KILLS {
                std::thread::sleep(Duration::from_millis(fastrand::u64(10..150)));
                agent.kill9();
                agent.start();
            }
            killing_done.store(true, Ordering::SeqCst);
            agent
        })
    };
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (url, acknowledged, total, killing_done) =
            (url.clone(), acknowledged.clone(), total.clone(), killing_done.clone());
        let interrupted = interrupted.clone();
        let kopecks_acknowledged = kopecks_acknowledged.clone();
        clients.push(tokio::spawn(async move {
            let http = client();
            let mut i = 0;
            while !(killing_done.load(Ordering::SeqCst) && total.load(Ordering::SeqCst) >= AT_LEAST) {
                let key = format!("client{c}-doc{i}");
                let kopecks = 100 + fastrand::u64(0..100_000);
                let body = payment(kopecks);
                // Retry with the same key until the agent answers: exactly-once, whatever happened.
                loop {
                    match post(&http, &url, "/v1/documents", &body, Some(&key)).await {
                        Ok((201, answer)) => {
                            let number = answer["number"].as_u64().unwrap();
                            let uid = answer["uid"].as_str().unwrap().to_owned();
                            acknowledged.lock().unwrap().insert(key.clone(), (number, uid));
                            total.fetch_add(1, Ordering::SeqCst);
                            kopecks_acknowledged.fetch_add(kopecks as usize, Ordering::SeqCst);
                            break;
                        }
                        Ok((status, answer)) => panic!("unexpected answer {status}: {answer}"),
                        Err(_) => {
                            interrupted.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                }
                i += 1;
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    let mut agent = tokio::task::spawn_blocking(move || killer.join().unwrap()).await.unwrap();
    // The shift's running figures survived every kill: its report counts what was acknowledged.
    let (status, report) = post(&client(), &url, "/v1/shift/close", &json!({"cashier": "Иванов"}), None).await.unwrap();
    assert_eq!(status, 201, "{report}");
    assert_eq!(report["counts"]["payment"], acknowledged.lock().unwrap().len());
    let total = kopecks_acknowledged.load(Ordering::SeqCst);
    assert_eq!(report["total"], format!("{}.{:02}", total / 100, total % 100));
    agent.stop();

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= AT_LEAST, "{} documents", acknowledged.len());
    // The kills landed while requests were in flight, not between them.
    assert!(
        interrupted.load(Ordering::SeqCst) >= KILLS,
        "only {} requests were cut",
        interrupted.load(Ordering::SeqCst)
    );
    assert_sound(&agent);
    let journaled = journaled_payments(&agent);
    let numbers: Vec<u64> = journaled.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers, (1..=journaled.len() as u64).collect::<Vec<_>>(), "numbers without gaps, in order");
    assert_eq!(journaled.len(), acknowledged.len(), "every acknowledged document once, nothing else");
    let journaled: HashSet<(u64, String)> = journaled.into_iter().collect();
    for (key, doc) in &acknowledged {
        assert!(journaled.contains(doc), "{key}: acknowledged {doc:?} is not in the journal");
    }
}

#[tokio::test]
async fn the_same_key_after_a_crash_returns_the_first_answer_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent = AgentProcess::configure(dir.path(), &dir.path().join("data"), "");
    agent.start();
    let http = client();
    assert_eq!(post(&http, &agent.url, "/v1/shift/open", &json!({"cashier": "И"}), None).await.unwrap().0, 201);
    let body = payment(479);
    let (status, first) = post(&http, &agent.url, "/v1/documents", &body, Some("k-1")).await.unwrap();
    assert_eq!(status, 201);
    agent.kill9();
    agent.start();
    let before = journaled_payments(&agent);
    let (status, again) = post(&http, &agent.url, "/v1/documents", &body, Some("k-1")).await.unwrap();
    assert_eq!((status, &again), (201, &first));
    let (status, other) = post(&http, &agent.url, "/v1/documents", &payment(480), Some("k-1")).await.unwrap();
    assert_eq!((status, other["error"]["code"].as_str()), (422, Some("idempotency_key_reused")));
    assert_eq!(journaled_payments(&agent), before);
    agent.stop();
}

#[tokio::test]
async fn sigterm_records_power_off_and_the_cli_reads_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let mut agent =
        AgentProcess::configure(dir.path(), &dir.path().join("data"), "start_number = 4319\nstart_shift = 71");
    agent.start();
    let http = client();
    assert_eq!(post(&http, &agent.url, "/v1/shift/open", &json!({"cashier": "И"}), None).await.unwrap().0, 201);
    let cash_in = json!({"kind": "cash_in", "cashier": "И", "amount": "50.00"});
    assert_eq!(post(&http, &agent.url, "/v1/documents", &cash_in, None).await.unwrap().0, 201);

    // While it runs.
    let status = agent.cli(&["status"]);
    assert!(status.contains("Смена: 71 открыта"), "{status}");
    assert!(status.contains("Следующий номер документа: 4320"), "{status}");
    assert!(status.contains("Наличных в кассе: 50.00"), "{status}");
    assert!(status.contains("Не передано на сервер: 3"), "{status}");
    let json: Value = serde_json::from_str(&agent.cli(&["status", "--json"])).unwrap();
    assert_eq!(json["shift"]["number"], 71);
    assert_eq!(json["cash_in_drawer"], "50.00");
    let journal = agent.cli(&["journal", "--pending"]);
    assert_eq!(journal.lines().count(), 3, "{journal}");
    assert!(journal.contains("Внесение N 4319"), "{journal}");
    assert!(journal.lines().all(|l| l.contains("pending")), "{journal}");

    agent.stop();
    let last = agent.reader().entries(Seq(1), false, 100).unwrap().pop().unwrap();
    assert!(matches!(last.payload, Payload::Event(e) if e.code == EventCode::PowerOff));
    let from_two = agent.cli(&["journal", "--from", "2"]);
    assert_eq!(from_two.lines().count(), 3, "{from_two}");
}

#[test]
fn a_missing_or_broken_config_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let output = e2e::agent_command().args(["status", "--config"]).arg(&missing).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nope.toml"), "{stderr}");

    let broken = dir.path().join("agent.toml");
    std::fs::write(&broken, "[register]\nreg_number = \"12\"\n").unwrap();
    let output = e2e::agent_command().args(["run", "--config"]).arg(&broken).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("agent.toml"), "{stderr}");
}

/// A small tmpfs, mounted for one test and unmounted after.
struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    fn mount(path: &std::path::Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(path).unwrap();
        let status =
            Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(path).status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "mounting a tmpfs failed: the full-disk test needs root (CI runs as root)"
        );
        SmallDisk { path: path.to_owned() }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

#[tokio::test]
async fn a_full_disk_gives_503_writes_nothing_and_recovers_when_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("disk"), "4m");
    let data = disk.path.join("data");
    let mut agent = AgentProcess::configure(dir.path(), &data, "");
    agent.start();
    let http = client();
    assert_eq!(post(&http, &agent.url, "/v1/shift/open", &json!({"cashier": "И"}), None).await.unwrap().0, 201);

    // Fill the disk with a file, leaving a little room.
    let filler = disk.path.join("filler");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 << 10];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.sync_all();
    }
    let mut acknowledged = 0u64;
    let mut refused = 0;
    for i in 0..5000 {
        let (status, body) = post(&http, &agent.url, "/v1/documents", &payment(100 + i), None).await.unwrap();
        match status {
            201 => acknowledged += 1,
            503 => {
                assert_eq!(body["error"]["code"], "storage_unavailable", "{body}");
                refused += 1;
                if refused >= 5 {
                    break;
                }
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(refused >= 5, "the disk never filled");
    let (status, _) = post(&http, &agent.url, "/v1/documents", &payment(999), None).await.unwrap();
    assert_eq!(status, 503);

    // Nothing half-written: exactly the acknowledged documents, a sound journal.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(journaled_payments(&agent).len() as u64, acknowledged);
    assert_sound(&agent);

    // Space is back: the agent works again, numbers continue without a gap.
    let (status, body) = post(&http, &agent.url, "/v1/documents", &payment(1234), None).await.unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["number"], acknowledged + 1);
    agent.stop();
    assert_sound(&agent);
    drop(disk);
}

#[test]
fn a_damaged_journal_is_copied_aside_and_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let garbage: Vec<u8> = (0..64 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(data.join("journal.sqlite"), &garbage).unwrap();
    let agent = AgentProcess::configure(dir.path(), &data, "");
    let output = e2e::agent_command().args(["run", "--config"]).arg(&agent.config_path).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("журнал поврежден"), "{stderr}");
    let copies: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("damaged-"))
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert!(stderr.contains(&copies[0].display().to_string()), "{stderr}");
    assert_eq!(std::fs::read(copies[0].join("journal.sqlite")).unwrap(), garbage);
    assert_eq!(std::fs::read(data.join("journal.sqlite")).unwrap(), garbage, "the original is left as it was");
}
