//! The agent in-process, with an injected clock: the golden day through the POS API, every
//! refusal of CONTRACTS §1, idempotency across restarts, blocking.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent::clock::ManualClock;
use agent::config::Config;
use agent::journal::Reader;
use chrono::{DateTime, Utc};
use protocol::{ChainHead, DocumentKind, Payload, Seq, Standing, Summary, verify_chain};
use serde_json::{Value, json};
use tokio::sync::oneshot;

struct TestAgent {
    url: String,
    config: Config,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), agent::AgentError>>,
    client: reqwest::Client,
}

fn config_text(dir: &Path, extra_register: &str, extra: &str) -> String {
    format!(
        r#"
[register]
reg_number = "119026501"
serial = "AVQ11169990740"
unp = "100231650"
org_name = "Торговое частное унитарное предприятие \"АВТО-КОМБИ\""
info = "9.1.18.1 - TitanPos Mobile"
pos_version = "2.1.0"
{extra_register}
[storage]
data_dir = "{}"
[pos_api]
listen = "127.0.0.1:0"
{extra}
"#,
        dir.display()
    )
}

impl TestAgent {
    async fn start(config_text: &str, clock: Arc<ManualClock>) -> TestAgent {
        let config = Config::parse(config_text, Path::new("/nonexistent/agent.toml")).expect("test config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(agent::run(config.clone(), listener, clock, async {
            stopped.await.ok();
        }));
        let agent = TestAgent { url, config, stop: Some(stop), task, client: reqwest::Client::new() };
        // Served only once the journal is open and event 1010 is durable.
        assert_eq!(agent.get("/v1/status").await.0, 200);
        agent
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }

    async fn post(&self, path: &str, body: &str, key: Option<&str>) -> (u16, Value) {
        let mut request = self.client.post(format!("{}{path}", self.url)).body(body.to_owned());
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.header("content-type", "application/json").send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.client.get(format!("{}{path}", self.url)).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    fn reader(&self) -> Reader {
        Reader::open(&self.config.data_dir, self.config.register.reg_number).unwrap()
    }
}

fn golden() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/seed-day.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

/// The journal's documents and events, decoded.
fn journal(reader: &Reader) -> Vec<Payload> {
    reader.entries(Seq(1), false, 100_000).unwrap().into_iter().map(|l| l.payload).collect()
}

#[tokio::test]
async fn golden_day_through_the_pos_api() {
    let golden = golden();
    let register = &golden["register"];
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "tsok_expires_at = \"{}\"\nstart_number = {}\nstart_shift = {}\nstart_cumulative_total = \"{}\"\nstart_cash_in_drawer = \"{}\"",
        register["tsok_expires_at"].as_str().unwrap(),
        golden["first_number"],
        golden["shift"],
        register["cumulative_total_before"].as_str().unwrap(),
        register["cash_in_drawer_before"].as_str().unwrap(),
    );
    let steps = golden["steps"].as_array().unwrap();
    let clock = Arc::new(ManualClock::new(utc(steps[0]["at"].as_str().unwrap())));
    let agent = TestAgent::start(&config_text(dir.path(), &extra, ""), clock.clone()).await;
    let mut receipts = std::collections::HashMap::new();

    for step in steps {
        clock.set(utc(step["at"].as_str().unwrap()));
        if step.get("event").is_some_and(|e| e == 1010) {
            continue; // journaled when the agent started
        }
        if let Some(open) = step.get("open_shift") {
            let (status, body) = agent.post("/v1/shift/open", &open.to_string(), None).await;
            assert_eq!(status, 201, "{body}");
            assert_eq!(body["shift"], golden["shift"]);
            assert_eq!(body["opened_at"], step["at"]);
        }
        if let Some(document) = step.get("document") {
            let (status, body) = agent.post("/v1/documents", &document.to_string(), None).await;
            assert_eq!(status, 201, "{body}");
            assert_eq!(body["number"], step["expect_number"]);
            assert_eq!(body["created_at"], step["at"]);
            assert!(body["uid"].as_str().unwrap().ends_with("07183345"));
            if let Some(total) = step.get("expect_total") {
                assert_eq!(&body["total"], total);
            }
            receipts.insert(body["number"].as_u64().unwrap(), (body["receipt"].clone(), body["uid"].clone()));
        }
        if let Some(close) = step.get("close_shift") {
            let (status, body) = agent.post("/v1/shift/close", &close.to_string(), None).await;
            assert_eq!(status, 201, "{body}");
            assert_eq!(body["kind"], "shift_report");
            assert_eq!(body["number"], step["expect_number"]);
            assert_eq!(body["cumulative_total"], step["expect_cumulative_total"]);
            assert_eq!(body["total"], "14.37", "the shift's gross payments, annulled ones included");
            assert_eq!(body["counts"]["payment"], 3);
            let (status, again) = agent.get(&format!("/v1/shift-reports/{}", golden["shift"])).await;
            assert_eq!(status, 200);
            assert_eq!(again["delivery"], "pending");
            assert_eq!(again["uid"], body["uid"]);
        }
    }
    let (_, status) = agent.get("/v1/status").await;
    assert_eq!(status["cash_in_drawer"], golden["expect_cash_in_drawer_after"]);
    assert_eq!(status["shift"]["open"], false);
    assert_eq!(status["next_number"], 4327);

    for number in [4319, 4320] {
        let (receipt, uid) = &receipts[&number];
        let expected =
            golden[format!("expect_receipt_{number}")].as_str().unwrap().replace("<uid>", uid.as_str().unwrap());
        assert_eq!(receipt.as_str().unwrap(), expected);
        let (status, stored) = agent.get(&format!("/v1/documents/{number}")).await;
        assert_eq!(status, 200);
        assert_eq!(&stored["receipt"], receipt);
        assert_eq!(stored["delivery"], "pending");
    }
    let reader = agent.reader();
    agent.stop().await;

    // The journal: the manual's events, an intact chain, and the manual's summary.
    let payloads = journal(&reader);
    let events: Vec<Value> = payloads
        .iter()
        .filter_map(|p| match p {
            Payload::Event(e) => Some(match &e.parameter {
                Some(parameter) => json!({"code": e.code.code(), "label": e.code.label(), "parameter": parameter}),
                None => json!({"code": e.code.code(), "label": e.code.label()}),
            }),
            Payload::Document(_) => None,
        })
        .collect();
    assert_eq!(Value::Array(events), golden["expect_events"]);
    let mut summary = Summary::default();
    for payload in &payloads {
        if let Payload::Document(d) = payload {
            summary.add(d.kind(), &d.figures(), Standing::Counted);
        }
    }
    let mut expected = golden["expect_summary"].clone();
    expected.as_object_mut().unwrap().remove("period");
    assert_eq!(serde_json::to_value(summary).unwrap(), expected);
    verify_chain(ChainHead::EMPTY, &reader.raw_entries(Seq(1), 100_000).unwrap()).unwrap();
    assert_eq!(reader.integrity_check().unwrap(), "ok");
}

const T0: &str = "2024-10-11T06:00:00Z";

fn payment(price: &str, tenders: Value) -> String {
    json!({"kind": "payment", "cashier": "Иванов",
           "items": [{"name": "Товар", "section": 1, "price": price, "quantity": "1.000"}],
           "tenders": tenders})
    .to_string()
}

#[tokio::test]
async fn every_refusal_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(utc(T0)));
    let agent = TestAgent::start(&config_text(dir.path(), "", ""), clock.clone()).await;
    let reader = agent.reader();
    let cashier = r#"{"cashier": "Иванов"}"#;

    // Before a shift is open.
    let (status, body) = agent.post("/v1/documents", &payment("1.00", json!({"cash": "1.00"})), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("no_open_shift")));
    let (status, _) = agent.post("/v1/shift/close", cashier, None).await;
    assert_eq!(status, 409);

    assert_eq!(agent.post("/v1/shift/open", cashier, None).await.0, 201);
    let (status, sale) = agent.post("/v1/documents", &payment("10.00", json!({"cash": "10.00"})), None).await;
    assert_eq!(status, 201);
    let sale_number = sale["number"].as_u64().unwrap();
    let before = reader.raw_entries(Seq(1), 1000).unwrap();

    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("/v1/shift/open", cashier.into(), 409, "shift_already_open"),
        ("/v1/documents", "not json".into(), 400, "bad_request"),
        ("/v1/documents", "{}".into(), 400, "bad_request"),
        ("/v1/documents", json!({"kind": "sale", "cashier": "И"}).to_string(), 400, "bad_request"),
        ("/v1/documents", json!({"kind": "payment", "cashier": "И"}).to_string(), 400, "bad_request"),
        (
            "/v1/documents",
            json!({"kind": "cash_in", "cashier": "И", "amount": "1.00", "extra": 1}).to_string(),
            400,
            "bad_request",
        ),
        ("/v1/documents", json!({"kind": "cash_in", "cashier": "И", "amount": 5}).to_string(), 400, "bad_request"),
        ("/v1/documents", json!({"kind": "shift_report", "cashier": "И"}).to_string(), 400, "bad_request"),
        ("/v1/documents", json!({"kind": "annulment", "cashier": "И"}).to_string(), 400, "bad_request"),
        ("/v1/documents", payment("4.79", json!({"cash": "4.80"})), 422, "sums_mismatch"),
        ("/v1/documents", payment("4.789", json!({"cash": "4.79"})), 422, "invalid_amount"),
        ("/v1/documents", payment("-1", json!({"cash": "1.00"})), 422, "invalid_amount"),
        (
            "/v1/documents",
            json!({"kind": "payment", "cashier": "И",
            "items": [{"name": "Товар", "section": 1, "price": "999999999999999", "quantity": "999999.000"}],
            "tenders": {"cash": "1.00"}})
            .to_string(),
            422,
            "invalid_amount",
        ),
        (
            "/v1/documents",
            json!({"kind": "payment", "cashier": "И",
            "items": [{"name": "Товар", "section": 1, "price": "1.00", "quantity": "1000000"}],
            "tenders": {"cash": "1.00"}})
            .to_string(),
            422,
            "invalid_amount",
        ),
        ("/v1/documents", payment("1e3", json!({"cash": "1.00"})), 422, "invalid_amount"),
        ("/v1/documents", payment("abc", json!({"cash": "1.00"})), 422, "invalid_amount"),
        ("/v1/documents", payment("0.00", json!({})), 422, "invalid_amount"),
        ("/v1/documents", json!({"kind": "cash_in", "cashier": "И", "amount": ""}).to_string(), 422, "invalid_amount"),
        ("/v1/documents", json!({"kind": "cash_in", "cashier": "И", "amount": "0"}).to_string(), 422, "invalid_amount"),
        (
            "/v1/documents",
            json!({"kind": "cash_in", "cashier": "", "amount": "1.00"}).to_string(),
            422,
            "invalid_document",
        ),
        (
            "/v1/documents",
            json!({"kind": "cash_out", "cashier": "И", "amount": "10.01"}).to_string(),
            422,
            "not_enough_cash",
        ),
        (
            "/v1/documents",
            json!({"kind": "payout", "cashier": "И", "amount": "10.01"}).to_string(),
            422,
            "not_enough_cash",
        ),
        (
            "/v1/documents",
            json!({"kind": "annulment", "cashier": "И", "ref_number": 999_999}).to_string(),
            422,
            "unknown_document",
        ),
        (
            "/v1/documents",
            json!({"kind": "return", "cashier": "И", "ref_number": sale_number,
            "items": [{"name": "Товар", "section": 1, "price": "10.01", "quantity": "1.000"}],
            "tenders": {"cash": "10.01"}})
            .to_string(),
            422,
            "return_exceeds_payment",
        ),
    ];
    for (path, body, status, code) in &cases {
        let (got, answer) = agent.post(path, body, None).await;
        assert_eq!((got, answer["error"]["code"].as_str().unwrap()), (*status, *code), "{path} {body}: {answer}");
        assert!(!answer["error"]["message"].as_str().unwrap().is_empty());
    }

    // Annul once; the second time is refused.
    let annul = json!({"kind": "annulment", "cashier": "И", "ref_number": sale_number}).to_string();
    assert_eq!(agent.post("/v1/documents", &annul, None).await.0, 201);
    let after_annulment = reader.raw_entries(Seq(1), 1000).unwrap();
    let (status, body) = agent.post("/v1/documents", &annul, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("already_annulled")));

    assert_eq!(after_annulment.len(), before.len() + 1, "only the annulment was journaled");
    assert_eq!(reader.raw_entries(Seq(1), 1000).unwrap(), after_annulment);
    let (status, _) = agent.get("/v1/documents/999999").await;
    assert_eq!(status, 404);
    let (status, _) = agent.get("/v1/documents/abc").await;
    assert_eq!(status, 400);
    agent.stop().await;
}

#[tokio::test]
async fn an_idempotency_key_returns_the_first_answer_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(utc(T0)));
    let text = config_text(dir.path(), "", "");
    let agent = TestAgent::start(&text, clock.clone()).await;
    assert_eq!(agent.post("/v1/shift/open", r#"{"cashier": "И"}"#, Some("open-1")).await.0, 201);
    let body = payment("3.50", json!({"card": "3.50"}));
    let (status, first) = agent.post("/v1/documents", &body, Some("sale-1")).await;
    assert_eq!(status, 201);
    let (status, again) = agent.post("/v1/documents", &body, Some("sale-1")).await;
    assert_eq!((status, &again), (201, &first));
    // The same JSON laid out differently is the same request.
    let relaid = serde_json::to_string_pretty(&serde_json::from_str::<Value>(&body).unwrap()).unwrap();
    assert_eq!(agent.post("/v1/documents", &relaid, Some("sale-1")).await, (201, first.clone()));
    agent.stop().await;

    clock.advance(chrono::TimeDelta::hours(23));
    let agent = TestAgent::start(&text, clock.clone()).await;
    let entries = agent.reader().raw_entries(Seq(1), 1000).unwrap().len();
    assert_eq!(agent.post("/v1/documents", &body, Some("sale-1")).await, (201, first.clone()));
    assert_eq!(agent.post("/v1/shift/open", r#"{"cashier": "И"}"#, Some("open-1")).await.0, 201);
    let (status, other) = agent.post("/v1/documents", &payment("3.51", json!({"card": "3.51"})), Some("sale-1")).await;
    assert_eq!((status, other["error"]["code"].as_str()), (422, Some("idempotency_key_reused")));
    assert_eq!(agent.reader().raw_entries(Seq(1), 1000).unwrap().len(), entries, "nothing recorded");
    let (_, status) = agent.get("/v1/status").await;
    assert_eq!(status["next_number"], first["number"].as_u64().unwrap() + 1);
    agent.stop().await;
}

#[tokio::test]
async fn tsok_expiry_blocks_everything_but_closing_the_shift() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(utc(T0)));
    let agent = TestAgent::start(
        &config_text(dir.path(), "tsok_expires_at = \"2024-10-11T12:00:00+03:00\"", ""),
        clock.clone(),
    )
    .await;
    assert_eq!(agent.post("/v1/shift/open", r#"{"cashier": "И"}"#, None).await.0, 201);
    assert_eq!(agent.post("/v1/documents", &payment("1.00", json!({"cash": "1.00"})), None).await.0, 201);
    clock.set(utc("2024-10-11T09:00:00Z"));
    let (status, body) = agent.post("/v1/documents", &payment("1.00", json!({"cash": "1.00"})), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (423, Some("blocked")));
    assert!(body["error"]["message"].as_str().unwrap().contains("ТСОК"), "{body}");
    let (_, status) = agent.get("/v1/status").await;
    assert!(status["blocked"]["reason"].as_str().unwrap().contains("ТСОК"));
    let (status, report) = agent.post("/v1/shift/close", r#"{"cashier": "И"}"#, None).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(agent.post("/v1/shift/open", r#"{"cashier": "И"}"#, None).await.0, 423);
    let reader = agent.reader();
    agent.stop().await;
    let codes: Vec<u32> = journal(&reader)
        .iter()
        .filter_map(|p| match p {
            Payload::Event(e) => Some(e.code.code()),
            Payload::Document(_) => None,
        })
        .collect();
    assert_eq!(codes, [1010, 26, 1021, 1020, 27, 1011]);
}

#[tokio::test]
async fn a_shift_over_24_hours_accepts_only_its_closing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(utc(T0)));
    let agent = TestAgent::start(&config_text(dir.path(), "", ""), clock.clone()).await;
    assert_eq!(agent.post("/v1/shift/open", r#"{"cashier": "И"}"#, None).await.0, 201);
    clock.advance(chrono::TimeDelta::hours(24) + chrono::TimeDelta::seconds(1));
    let (status, body) = agent.post("/v1/documents", &payment("1.00", json!({"cash": "1.00"})), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("shift_expired")));
    assert_eq!(agent.post("/v1/shift/close", r#"{"cashier": "И"}"#, None).await.0, 201);
    assert_eq!(agent.post("/v1/shift/open", r#"{"cashier": "И"}"#, None).await.0, 201);
    let (_, body) = agent.post("/v1/documents", &payment("1.00", json!({"cash": "1.00"})), None).await;
    assert_eq!(body["shift"], 2);
    agent.stop().await;
}

#[tokio::test]
async fn concurrent_clients_get_gapless_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(utc(T0)));
    let agent = Arc::new(TestAgent::start(&config_text(dir.path(), "", ""), clock.clone()).await);
    assert_eq!(agent.post("/v1/shift/open", r#"{"cashier": "И"}"#, None).await.0, 201);
    let mut tasks = Vec::new();
    for client in 0..16 {
        let agent = agent.clone();
        tasks.push(tokio::spawn(async move {
            let mut numbers = Vec::new();
            for i in 0..25 {
                let price = format!("{}.{:02}", client + 1, i);
                let (status, body) = agent.post("/v1/documents", &payment(&price, json!({"cash": price})), None).await;
                assert_eq!(status, 201, "{body}");
                numbers.push(body["number"].as_u64().unwrap());
            }
            numbers
        }));
    }
    let mut numbers: Vec<u64> = Vec::new();
    for task in tasks {
        numbers.extend(task.await.unwrap());
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=400).collect::<Vec<_>>());
    let agent = Arc::into_inner(agent).unwrap();
    let reader = agent.reader();
    agent.stop().await;
    let documents = journal(&reader)
        .iter()
        .filter(|p| matches!(p, Payload::Document(d) if d.kind() == DocumentKind::Payment))
        .count();
    assert_eq!(documents, 400);
}

#[tokio::test]
async fn entries_undelivered_past_the_limit_block_the_register() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(utc(T0)));
    let agent =
        TestAgent::start(&config_text(dir.path(), "", "[rules]\nmax_undelivered_days = 30\n"), clock.clone()).await;
    assert_eq!(agent.post("/v1/shift/open", r#"{"cashier": "И"}"#, None).await.0, 201);
    clock.advance(chrono::TimeDelta::days(30));
    assert_eq!(agent.post("/v1/shift/close", r#"{"cashier": "И"}"#, None).await.0, 201);
    clock.advance(chrono::TimeDelta::seconds(1));
    let (status, body) = agent.post("/v1/shift/open", r#"{"cashier": "И"}"#, None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (423, Some("blocked")));
    assert!(body["error"]["message"].as_str().unwrap().contains("более 30 дней"), "{body}");
    let (_, status) = agent.get("/v1/status").await;
    assert!(status["blocked"]["reason"].as_str().unwrap().contains("более 30 дней"));
    assert!(status["pending"].as_u64().unwrap() >= 4);
    agent.stop().await;
}
