//! Delivery between the real agent and the real server: outages, a hostile network,
//! crashes on either side, hostile batches.

use std::time::Duration;

use e2e::{AgentProcess, REG_NUMBER, ServerProcess, server_section, wait_until};
use protocol::wire::{MAX_BATCH_BYTES, PROTOCOL_VERSION};
use protocol::{
    Answer, Batch, ChainHash, ChainHead, DeviceInfo, Document, DocumentBody, DocumentNumber, Entry, EntryStatus, Event,
    EventCode, Money, Payload, Refusal, RegNumber, Seq, ShiftNumber,
};
use serde_json::{Value, json};

const MAX: usize = 1 << 30;

fn reg() -> RegNumber {
    REG_NUMBER.parse().unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(20)).pool_max_idle_per_host(0).build().unwrap()
}

async fn post_json(url: &str, path: &str, body: &Value) -> (u16, Value) {
    let response = client().post(format!("{url}{path}")).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn payment(kopecks: u64) -> Value {
    let price = format!("{}.{:02}", kopecks / 100, kopecks % 100);
    json!({"kind": "payment", "cashier": "Иванов",
           "items": [{"name": "Товар", "section": 1, "price": price, "quantity": "1.000"}],
           "tenders": {"cash": price}})
}

/// Posts `n` payments from `clients` concurrent clients; every one must be acknowledged.
async fn make_documents(url: &str, n: u64, clients: u64) {
    let mut tasks = Vec::new();
    for c in 0..clients {
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            for i in 0..n / clients {
                let (status, body) = post_json(&url, "/v1/documents", &payment(100 + c * 1000 + i)).await;
                assert_eq!(status, 201, "{body}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// Everything the agent journaled is on the server, once, with the same hashes, and the
/// agent knows it.
fn assert_delivered_exactly(agent: &AgentProcess, server: &ServerProcess) {
    let journaled = agent.reader().raw_entries(Seq(1), MAX).unwrap();
    let stored = protocol_entries(server);
    assert_eq!(stored.len(), journaled.len(), "entry count on the server");
    for (mine, theirs) in journaled.iter().zip(&stored) {
        assert_eq!((mine.seq, mine.hash), (theirs.0, theirs.1));
    }
    protocol::verify_chain(ChainHead::EMPTY, &journaled).unwrap();
    assert_eq!(agent.reader().delivery().unwrap().pending, 0);
}

fn protocol_entries(server: &ServerProcess) -> Vec<(Seq, ChainHash, EntryStatus)> {
    use cabinet_server::store::Store;
    server.store().entries(reg(), Seq(1), MAX).unwrap().into_iter().map(|e| (e.seq, e.hash, e.status)).collect()
}

/// Waits until the agent has nothing pending and the server holds its last entry.
fn wait_delivered(agent: &AgentProcess, limit: Duration) {
    wait_until(limit, "everything delivered", || {
        let reader = agent.reader();
        reader.delivery().unwrap().pending == 0
    });
}

/// A started server holding the register, in a fresh folder (the agent's goes beside it).
fn running_server() -> (tempfile::TempDir, ServerProcess, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("server")).unwrap();
    let mut server = ServerProcess::configure(&dir.path().join("server"));
    let token = server.register_device(REG_NUMBER, "AVQ11169990740");
    server.start();
    (dir, server, token)
}

struct Setup {
    _dir: tempfile::TempDir,
    server: ServerProcess,
    agent: AgentProcess,
}

/// A server (not started) with the register, and an agent (started) pointed at `url`
/// (the server's own URL when `None`).
fn setup(url: Option<&str>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("server")).unwrap();
    let server = ServerProcess::configure(&dir.path().join("server"));
    let token = server.register_device(REG_NUMBER, "AVQ11169990740");
    let tail = server_section(url.unwrap_or(&server.url), &token);
    let mut agent = AgentProcess::configure_with(dir.path(), &dir.path().join("agent"), "", &tail);
    agent.start();
    Setup { _dir: dir, server, agent }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn documents_made_while_the_server_is_down_arrive_once_in_order() {
    let Setup { _dir, mut server, mut agent } = setup(None);
    let (status, _) = post_json(&agent.url, "/v1/shift/open", &json!({"cashier": "Иванов"})).await;
    assert_eq!(status, 201);
    make_documents(&agent.url, 1000, 4).await;
    let (_, status) =
        (0, client().get(format!("{}/v1/status", agent.url)).send().await.unwrap().json::<Value>().await.unwrap());
    assert!(status["pending"].as_u64().unwrap() >= 1002, "{status}");
    wait_until(Duration::from_secs(10), "a delivery error in the status", || {
        agent.reader().delivery().unwrap().last_error.is_some()
    });

    server.start();
    wait_delivered(&agent, Duration::from_secs(60));
    assert_delivered_exactly(&agent, &server);
    assert!(protocol_entries(&server).iter().all(|e| e.2 == EntryStatus::Accepted));
    let (_, status) =
        (0, client().get(format!("{}/v1/status", agent.url)).send().await.unwrap().json::<Value>().await.unwrap());
    assert_eq!(status["pending"], 0);
    assert!(status["last_delivery_at"].is_string(), "{status}");
    assert!(status["last_error"].is_null(), "{status}");
    agent.stop();
}

/// A batch of `payloads` continuing the chain at `head`.
fn batch_after(head: ChainHead, payloads: &[Vec<u8>]) -> Batch {
    let mut head = head;
    let entries = payloads
        .iter()
        .map(|p| {
            let entry = Entry::after(&head, p.clone());
            head = ChainHead { seq: entry.seq, hash: entry.hash };
            entry
        })
        .collect();
    Batch { protocol: PROTOCOL_VERSION, reg_number: reg(), device: device(), entries }
}

fn device() -> DeviceInfo {
    DeviceInfo {
        info: "9.1.18.1 - TitanPos Mobile".into(),
        pos_version: "2.1.0".into(),
        agent_version: "test".into(),
        tsok_expires_at: None,
        pending: 0,
        oldest_pending_at: None,
        sent_at: chrono::Utc::now().fixed_offset(),
    }
}

fn event(minute: u32) -> Vec<u8> {
    let at = chrono::DateTime::parse_from_rfc3339(&format!("2024-10-11T15:{minute:02}:00+03:00")).unwrap();
    Payload::Event(Event { code: EventCode::PowerOn, created_at: at, parameter: None }).to_cbor()
}

async fn post_batch(url: &str, token: Option<&str>, body: Vec<u8>) -> (u16, Vec<u8>) {
    let mut request =
        client().post(format!("{url}/ingest/v1/batch")).header("content-type", "application/cbor").body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn hostile_batches_are_refused_flagged_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::configure(dir.path());
    let token = server.register_device(REG_NUMBER, "AVQ11169990740");
    let other_token = server.register_device("119017625", "AVQ11071128569");
    server.start();
    let url = server.url.clone();

    let good = batch_after(ChainHead::EMPTY, &[event(1), event(2), event(3)]);
    let (status, body) = post_batch(&url, Some(&token), good.encode()).await;
    assert_eq!(status, 200);
    let answer = Answer::decode(&body).unwrap();
    assert_eq!(answer.accepted_through, Seq(3));
    assert!(answer.results.iter().all(|r| r.status == EntryStatus::Accepted));

    let (status, body) = post_batch(&url, Some(&token), good.encode()).await;
    assert_eq!(status, 200, "a replay is answered");
    assert!(Answer::decode(&body).unwrap().results.iter().all(|r| r.status == EntryStatus::Duplicate));
    let stored_before = protocol_entries(&server);

    let refused = |status: u16, body: &[u8], code: &str| {
        let refusal = Refusal::decode(body).unwrap_or_else(|e| panic!("{status}: not a refusal: {e}"));
        assert_eq!(refusal.code, code, "{refusal:?}");
        assert!(!refusal.message.is_empty());
    };
    // Garbage, an oversized body, no token, an unknown token, another register's token.
    let (status, body) = post_batch(&url, Some(&token), b"\x00garbage".to_vec()).await;
    assert_eq!(status, 400);
    refused(status, &body, "malformed");
    let (status, _) = post_batch(&url, Some(&token), vec![0u8; MAX_BATCH_BYTES + 1]).await;
    assert_eq!(status, 413);
    assert_eq!(post_batch(&url, None, good.encode()).await.0, 401);
    assert_eq!(post_batch(&url, Some("not-a-token"), good.encode()).await.0, 401);
    let (status, body) = post_batch(&url, Some(&other_token), good.encode()).await;
    assert_eq!(status, 403);
    refused(status, &body, "wrong_register");

    let head = ChainHead { seq: good.entries[2].seq, hash: good.entries[2].hash };
    // A gap: refused with where to resume, and flagged (one side lost data).
    let mut gap = batch_after(head, &[event(4), event(5)]);
    gap.entries.remove(0);
    let (status, body) = post_batch(&url, Some(&token), gap.encode()).await;
    assert_eq!(status, 409);
    assert_eq!(Refusal::decode(&body).unwrap().accepted_through, Some(Seq(3)));
    {
        use cabinet_server::store::Store;
        let flagged = server.store().device_status(reg()).unwrap().flagged;
        assert!(flagged.is_some_and(|f| f.contains("пропуск")));
    }

    // A replay with an altered payload, and a forged link.
    let mut altered = good.clone();
    altered.entries[1].payload = event(42);
    let (status, body) = post_batch(&url, Some(&token), altered.encode()).await;
    assert_eq!(status, 409);
    refused(status, &body, "chain_conflict");
    let mut forged = batch_after(head, &[event(4), event(5)]);
    forged.entries[1].prev_hash = ChainHash([9; 32]);
    let (status, body) = post_batch(&url, Some(&token), forged.encode()).await;
    assert_eq!(status, 409);
    refused(status, &body, "chain_broken");

    assert_eq!(protocol_entries(&server), stored_before, "nothing stored");
    use cabinet_server::store::Store;
    let flagged = server.store().device_status(reg()).unwrap().flagged;
    assert!(flagged.is_some_and(|f| f.contains("цепочка")), "the register is flagged for the operator");
    let shown = std::process::Command::new(e2e::server_binary())
        .arg("--config")
        .arg(&server.config_path)
        .args(["admin", "device", "show", "--reg-number", REG_NUMBER])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&shown.stdout).contains("flagged: цепочка"));
}

#[tokio::test]
async fn an_entry_the_server_rejects_does_not_stop_the_ones_after_it() {
    let (dir, server, token) = running_server();

    // A journal holding a document the server cannot accept (a zero cash-in, which this
    // agent's rules would never make), written beside the rules, then ordinary work.
    let data = dir.path().join("agent");
    {
        let start = agent::config::StartFigures {
            number: DocumentNumber(1),
            shift: ShiftNumber(1),
            cumulative_total: Money::ZERO,
            cash_in_drawer: Money::ZERO,
        };
        let mut journal = agent::journal::Journal::open(&data, reg(), &start).unwrap();
        let (mut state, mut head) = journal.load().unwrap();
        let tx = journal.begin().unwrap();
        let at = chrono::Utc::now().fixed_offset();
        let bad = Payload::Document(Document {
            number: DocumentNumber(1),
            shift: ShiftNumber(1),
            created_at: at,
            cashier: "И".into(),
            body: DocumentBody::CashIn { amount: Money::ZERO },
        });
        tx.append(&mut head, &bad).unwrap();
        state.next_number = DocumentNumber(2);
        tx.save_state(&state, &head).unwrap();
        tx.commit().unwrap();
    }
    let mut agent = AgentProcess::configure_with(dir.path(), &data, "", &server_section(&server.url, &token));
    agent.start();
    assert_eq!(post_json(&agent.url, "/v1/shift/open", &json!({"cashier": "И"})).await.0, 201);
    make_documents(&agent.url, 10, 1).await;
    wait_delivered(&agent, Duration::from_secs(30));
    assert_delivered_exactly(&agent, &server);

    let statuses: Vec<EntryStatus> = protocol_entries(&server).into_iter().map(|e| e.2).collect();
    assert_eq!(statuses[0], EntryStatus::Rejected);
    assert!(statuses[1..].iter().all(|s| *s == EntryStatus::Accepted), "{statuses:?}");
    let (status, document) = {
        let response = client().get(format!("{}/v1/documents/1", agent.url)).send().await.unwrap();
        (response.status().as_u16(), response.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 200);
    assert_eq!(document["delivery"], "rejected");
    assert!(document["delivery_error"].as_str().unwrap().contains("больше нуля"), "{document}");
    let (_, later) = {
        let response = client().get(format!("{}/v1/documents/2", agent.url)).send().await.unwrap();
        (response.status().as_u16(), response.json::<Value>().await.unwrap())
    };
    assert_eq!(later["delivery"], "delivered");
    agent.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_network_that_drops_resets_and_stalls_loses_and_doubles_nothing() {
    let (dir, server, token) = running_server();
    let proxy = e2e::Proxy::start(&server.url).await;
    proxy.set_mode(e2e::ProxyMode::Chaos);
    let mut agent =
        AgentProcess::configure_with(dir.path(), &dir.path().join("agent"), "", &server_section(&proxy.url, &token));
    agent.start();
    assert_eq!(post_json(&agent.url, "/v1/shift/open", &json!({"cashier": "И"})).await.0, 201);
    make_documents(&agent.url, 5000, 4).await;
    // Keep the chaos on until a good part has crossed it.
    let reader = agent.reader();
    wait_until(Duration::from_secs(120), "some delivery through the chaos", || {
        reader.delivery().unwrap().pending < 3000
    });
    let faults = proxy.faults.load(std::sync::atomic::Ordering::SeqCst);
    assert!(faults >= 10, "the proxy misbehaved only {faults} times");
    proxy.set_mode(e2e::ProxyMode::Pass);
    wait_delivered(&agent, Duration::from_secs(120));
    assert_delivered_exactly(&agent, &server);
    agent.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_server_mid_batch_again_and_again_loses_and_doubles_nothing() {
    let Setup { _dir, mut server, mut agent } = setup(None);
    server.start();
    assert_eq!(post_json(&agent.url, "/v1/shift/open", &json!({"cashier": "И"})).await.0, 201);
    let url = agent.url.clone();
    let making = tokio::spawn(async move { make_documents(&url, 3000, 4).await });
    let server = tokio::task::spawn_blocking(move || {
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(fastrand::u64(50..300)));
            server.kill9();
            server.start();
        }
        server
    })
    .await
    .unwrap();
    making.await.unwrap();
    wait_delivered(&agent, Duration::from_secs(120));
    assert_delivered_exactly(&agent, &server);
    agent.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agent_killed_after_the_server_committed_resends_as_duplicates() {
    let (dir, server, token) = running_server();
    let proxy = e2e::Proxy::start(&server.url).await;
    proxy.set_mode(e2e::ProxyMode::KillOnAnswer);
    // The agent's first batch (its power-on event) reaches the server; the answer never
    // reaches the agent.
    let mut agent =
        AgentProcess::configure_with(dir.path(), &dir.path().join("agent"), "", &server_section(&proxy.url, &token));
    proxy.set_victim(agent.spawn());
    wait_until(Duration::from_secs(30), "the agent killed after the server's commit", || {
        proxy.faults.load(std::sync::atomic::Ordering::SeqCst) == 1
    });
    let status = agent.child.as_mut().unwrap().wait().unwrap();
    assert!(!status.success(), "killed");
    agent.child = None;

    // The server holds entries the agent still thinks are pending.
    let stored = protocol_entries(&server);
    assert!(!stored.is_empty());
    let journal = agent.reader().entries(Seq(1), false, MAX).unwrap();
    assert_eq!(journal[0].delivery, agent::journal::Delivery::Pending, "the answer never arrived");
    let received_before: Vec<_> = {
        use cabinet_server::store::Store;
        server.store().entries(reg(), Seq(1), MAX).unwrap().into_iter().map(|e| e.received_at).collect()
    };

    agent.start();
    wait_delivered(&agent, Duration::from_secs(30));
    assert_delivered_exactly(&agent, &server);
    use cabinet_server::store::Store;
    let received_after: Vec<_> =
        server.store().entries(reg(), Seq(1), MAX).unwrap().into_iter().map(|e| e.received_at).collect();
    assert_eq!(&received_after[..received_before.len()], &received_before[..], "resent entries were duplicates");
    agent.stop();
}

#[tokio::test]
async fn the_server_blocks_and_unblocks_the_register_and_sees_its_heartbeats() {
    let Setup { _dir, mut server, mut agent } = setup(None);
    server.start();
    assert_eq!(post_json(&agent.url, "/v1/shift/open", &json!({"cashier": "И"})).await.0, 201);
    wait_delivered(&agent, Duration::from_secs(30));
    {
        use cabinet_server::store::Store;
        let status = server.store().device_status(reg()).unwrap();
        let info = status.info.expect("the device reported itself");
        assert_eq!(info.info, "9.1.18.1 - TitanPos Mobile");
        assert_eq!(info.pos_version, "2.1.0");
        assert!(status.last_seen_at.is_some());
    }

    server.admin(&["admin", "device", "block", "--reg-number", REG_NUMBER, "--reason", "решение оператора"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = post_json(&agent.url, "/v1/documents", &payment(100)).await;
        if status == 423 {
            assert!(body["error"]["message"].as_str().unwrap().contains("решение оператора"), "{body}");
            break;
        }
        assert_eq!(status, 201, "{body}");
        assert!(std::time::Instant::now() < deadline, "the block never arrived");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Closing the shift is still allowed.
    assert_eq!(post_json(&agent.url, "/v1/shift/close", &json!({"cashier": "И"})).await.0, 201);

    server.admin(&["admin", "device", "unblock", "--reg-number", REG_NUMBER]);
    wait_until(Duration::from_secs(30), "the unblock", || agent.reader().state().unwrap().0.blocked.is_none());
    assert_eq!(post_json(&agent.url, "/v1/shift/open", &json!({"cashier": "И"})).await.0, 201);
    agent.stop();
    let codes: Vec<u32> = agent
        .reader()
        .entries(Seq(1), false, MAX)
        .unwrap()
        .into_iter()
        .filter_map(|l| match l.payload {
            Payload::Event(e) => Some(e.code.code()),
            Payload::Document(_) => None,
        })
        .collect();
    let blocked_at = codes.iter().position(|&c| c == 1020).expect("1020 journaled");
    let unblocked_at = codes.iter().position(|&c| c == 1022).expect("1022 journaled");
    assert!(blocked_at < unblocked_at, "{codes:?}");
    assert!(codes[blocked_at..unblocked_at].contains(&27), "the shift closed while blocked: {codes:?}");
}

#[tokio::test]
async fn delivery_works_over_https_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("server")).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let mut server = ServerProcess::configure(&dir.path().join("server"));
    let mut config = std::fs::read_to_string(&server.config_path).unwrap();
    config.push_str(&format!("[tls]\ncert = \"{}\"\nkey = \"{}\"\n", cert_path.display(), key_path.display()));
    std::fs::write(&server.config_path, config).unwrap();
    let token = server.register_device(REG_NUMBER, "AVQ11169990740");
    server.start();
    let https = server.url.replace("http://127.0.0.1", "https://localhost");
    let tail = format!("{}ca_file = \"{}\"\nresolvers = []\n", server_section(&https, &token), cert_path.display());
    let mut agent = AgentProcess::configure_with(dir.path(), &dir.path().join("agent"), "", &tail);
    agent.start();
    assert_eq!(post_json(&agent.url, "/v1/shift/open", &json!({"cashier": "И"})).await.0, 201);
    wait_delivered(&agent, Duration::from_secs(30));
    assert_delivered_exactly(&agent, &server);

    // Without the private CA the server is not trusted, and the status says why.
    agent.stop();
    let config = std::fs::read_to_string(&agent.config_path).unwrap();
    let without_ca: String = config.lines().filter(|l| !l.starts_with("ca_file")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&agent.config_path, without_ca).unwrap();
    agent.start();
    wait_until(Duration::from_secs(30), "a TLS failure in the status", || {
        agent.reader().delivery().unwrap().last_error.is_some()
    });
    assert!(agent.reader().delivery().unwrap().pending > 0);
    agent.stop();
}
