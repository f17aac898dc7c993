//! The merchant portal and its JSON API: the golden day from the agent through ingest to the
//! API, a random workload's summary against an independent count, tenant walls on every
//! route, sessions and CSRF, and the pages with the manual's words.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agent::clock::ManualClock;
use chrono::{DateTime, FixedOffset, TimeDelta};
use e2e::portal::{Browser, Journal, PortalServer, Tenant, add_tenant, item, tenders};
use protocol::{DocumentBody, DocumentKind, Money, ShiftReport, Summary};
use reqwest::Method;
use serde_json::{Value, json};

const UNP_A: &str = "100231650";
const UNP_B: &str = "291000009";

fn at(text: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(text).unwrap()
}

fn golden() -> Value {
    serde_json::from_str(&std::fs::read_to_string(e2e::golden_dir().join("seed-day.json")).unwrap()).unwrap()
}

/// The agent in-process with a manual clock, delivering to `server_url`.
struct LiveAgent {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), agent::AgentError>>,
}

impl LiveAgent {
    async fn start(config: &str, clock: Arc<ManualClock>) -> LiveAgent {
        let config = agent::config::Config::parse(config, std::path::Path::new("/nonexistent/agent.toml")).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(agent::run(config, listener, clock, async {
            stopped.await.ok();
        }));
        LiveAgent { url, stop: Some(stop), task }
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        let response = reqwest::Client::new().post(format!("{}{path}", self.url)).json(body).send().await.unwrap();
        assert_eq!(response.status(), 201, "{path}");
        response.json().await.unwrap()
    }

    async fn pending(&self) -> u64 {
        let status: Value = reqwest::get(format!("{}/v1/status", self.url)).await.unwrap().json().await.unwrap();
        status["pending"].as_u64().unwrap()
    }

    async fn wait_delivered(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while self.pending().await > 0 {
            assert!(std::time::Instant::now() < deadline, "the agent did not deliver");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_golden_day_goes_from_the_agent_through_ingest_to_the_api() {
    let golden = golden();
    let register = &golden["register"];
    let server = PortalServer::start().await;
    let tenant = add_tenant(server.store.as_ref(), UNP_A, register["org_name"].as_str().unwrap(), "golden", &[]);
    let object = server.store.add_object(tenant.unp, register["object"].as_str().unwrap(), "г. Минск", None).unwrap();
    let device_token = cabinet_server::tokens::new_token();
    server
        .store
        .add_device(&cabinet_server::store::NewDevice {
            unp: tenant.unp,
            object,
            reg_number: register["reg_number"].as_str().unwrap().parse().unwrap(),
            serial: register["serial"].as_str().unwrap().parse().unwrap(),
            commissioned_on: "2022-09-19".parse().unwrap(),
            time_zone: chrono_tz::Europe::Minsk,
            token_hash: cabinet_server::tokens::token_hash(&device_token),
        })
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[register]\nreg_number = \"{}\"\nserial = \"{}\"\nunp = \"{UNP_A}\"\norg_name = {}\ninfo = \"{}\"\npos_version = \"{}\"\n\
         tsok_expires_at = \"{}\"\nstart_number = {}\nstart_shift = {}\nstart_cumulative_total = \"{}\"\n\
         start_cash_in_drawer = \"{}\"\n[storage]\ndata_dir = \"{}\"\n[pos_api]\nlisten = \"127.0.0.1:0\"\n{}",
        register["reg_number"].as_str().unwrap(),
        register["serial"].as_str().unwrap(),
        register["org_name"],
        register["info"].as_str().unwrap(),
        register["pos_version"].as_str().unwrap(),
        register["tsok_expires_at"].as_str().unwrap(),
        golden["first_number"],
        golden["shift"],
        register["cumulative_total_before"].as_str().unwrap(),
        register["cash_in_drawer_before"].as_str().unwrap(),
        dir.path().display(),
        e2e::server_section(&server.url, &device_token),
    );
    let steps = golden["steps"].as_array().unwrap();
    let utc = |t: &Value| at(t.as_str().unwrap()).to_utc();
    let clock = Arc::new(ManualClock::new(utc(&steps[0]["at"])));
    let live = LiveAgent::start(&config, clock.clone()).await;
    let mut receipts = BTreeMap::new();
    for step in steps {
        clock.set(utc(&step["at"]));
        if let Some(open) = step.get("open_shift") {
            live.post("/v1/shift/open", open).await;
        }
        if let Some(document) = step.get("document") {
            let made = live.post("/v1/documents", document).await;
            receipts.insert(made["number"].as_u64().unwrap(), (made["uid"].clone(), made["receipt"].clone()));
        }
        if let Some(close) = step.get("close_shift") {
            live.post("/v1/shift/close", close).await;
        }
    }
    live.wait_delivered().await;
    // 1011 is journaled at the day's last instant and goes with the next start, a day later.
    live.stop().await;
    clock.set(utc(&json!("2024-10-12T09:00:00+03:00")));
    let live = LiveAgent::start(&config, clock.clone()).await;
    live.wait_delivered().await;
    live.stop().await;

    let reg = register["reg_number"].as_str().unwrap();
    let mut api = Browser::new(&server.url);
    let bearer = format!("Bearer {}", tenant.token);
    let day = "from=2024-10-11T00:00:00%2B03:00&to=2024-10-11T23:59:59%2B03:00";
    let list = api
        .send(
            api.request(Method::GET, &format!("/api/v1/equipment/{reg}/documents?{day}"))
                .header("authorization", &bearer),
        )
        .await
        .json();
    let mut expected = golden["expect_summary"].clone();
    expected.as_object_mut().unwrap().remove("period");
    assert_eq!(list["summary"], expected);
    let numbers: Vec<u64> =
        list["documents"].as_array().unwrap().iter().map(|d| d["number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [4319, 4320, 4321, 4322, 4323, 4324, 4325, 4326, 71]);
    assert!(list["documents"].as_array().unwrap().iter().all(|d| d["status"] == "delivered"));
    let payment = &list["documents"][1];
    assert_eq!(
        (&payment["kind"], &payment["cash"], &payment["card"], &payment["total"], &payment["created_at"]),
        (&json!("payment"), &json!("4.79"), &json!("0.00"), &json!("4.79"), &json!("2024-10-11T15:04:50+03:00"))
    );
    assert_eq!(list["documents"][0]["cash"], Value::Null, "cash kinds have no tenders");

    // Each receipt from the API is the one the agent printed.
    for (number, (uid, receipt)) in &receipts {
        let document = api
            .send(
                api.request(Method::GET, &format!("/api/v1/documents/{}", uid.as_str().unwrap()))
                    .header("authorization", &bearer),
            )
            .await
            .json();
        assert_eq!(&document["receipt"], receipt, "document {number}");
        assert_eq!(document["number"].as_u64(), Some(*number));
        assert_eq!(document["delivery"], "delivered");
    }

    let events = api
        .send(
            api.request(Method::GET, &format!("/api/v1/equipment/{reg}/events?{day}")).header("authorization", &bearer),
        )
        .await
        .json();
    let shown: Vec<Value> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let mut line = json!({"code": e["code"], "label": e["label"]});
            if !e["parameter"].is_null() {
                line["parameter"] = e["parameter"].clone();
            }
            assert_eq!(e["status"], "delivered");
            line
        })
        .collect();
    assert_eq!(Value::Array(shown), golden["expect_events"]);

    let totals = api
        .send(
            api.request(Method::GET, &format!("/api/v1/equipment/{reg}/cumulative-totals"))
                .header("authorization", &bearer),
        )
        .await
        .json();
    assert_eq!(totals, json!([{"shift": 71, "total": "93706.95", "consistent": true}]));

    // The page shows the same day with the manual's words.
    let mut browser = Browser::new(&server.url);
    browser.login(&tenant.login, &tenant.password).await;
    let page = browser.get(&format!("/equipment/{reg}/documents?from=2024-10-11T00:00&to=2024-10-11T23:59")).await;
    assert_eq!(page.status, 200);
    let uid_4320 = receipts[&4320].0.as_str().unwrap();
    for words in [
        uid_4320,
        "Кассовые документы по AVQ11169990740",
        "11.10.2024 00:00 - 11.10.2024 23:59",
        "Статус документа в АИС ККО (Доставлено/Ошибка отправки)",
        "<th>Платежный документ (3)</th>",
        "<th>Сменный отчет (1)</th>",
        "11.10.2024 15:04:50",
        "Экспорт в Excel",
    ] {
        assert!(page.text.contains(words), "the page lacks {words:?}");
    }
}

/// What the test itself counts, in kopecks, per kind: count, cash, card, other, total.
#[derive(Clone, Default, Debug, PartialEq)]
struct Count {
    count: u64,
    tenders: [u64; 3],
    total: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_random_workload_sums_up_in_the_api_as_counted_independently() {
    let server = PortalServer::start().await;
    let registers = ["119026501", "119017625", "119000001"];
    let tenant = add_tenant(server.store.as_ref(), UNP_A, "ЧУП «Тест»", "random", &registers);
    let mut rng = fastrand::Rng::with_seed(20261204);
    let start = at("2024-10-01T08:00:00+03:00");
    let window = (at("2024-10-03T00:00:00+03:00"), at("2024-10-05T23:59:59+03:00"));
    let mut expected: Vec<BTreeMap<&str, Count>> = vec![BTreeMap::new(); registers.len()];
    let mut documents = 0;
    for (r, reg) in tenant.registers.iter().enumerate() {
        let mut journal = Journal::new(*reg);
        let mut now = start;
        let mut cumulative = 0u64;
        for _day in 0..7 {
            let opened = now;
            let mut shift = Summary::default();
            let mut payments = Vec::new();
            for _ in 0..rng.usize(60..160) {
                now += TimeDelta::seconds(rng.i64(20..300));
                let kind = match rng.u8(0..100) {
                    0..70 => DocumentKind::Payment,
                    70..78 => DocumentKind::Return,
                    78..84 => DocumentKind::Annulment,
                    84..90 => DocumentKind::CashIn,
                    90..95 => DocumentKind::CashOut,
                    _ => DocumentKind::Payout,
                };
                let kopecks = rng.u64(1..2_000_000);
                let split = |rng: &mut fastrand::Rng, k: u64| {
                    let cash = if rng.bool() { k } else { rng.u64(0..=k) };
                    let card = rng.u64(0..=k - cash);
                    tenders(cash, card, k - cash - card)
                };
                let body = match kind {
                    DocumentKind::Payment => {
                        let t = split(&mut rng, kopecks);
                        DocumentBody::Payment { items: vec![item("Товар", kopecks)], tenders: t }
                    }
                    DocumentKind::Return => {
                        let t = split(&mut rng, kopecks);
                        DocumentBody::Return { ref_number: None, items: vec![item("Товар", kopecks)], tenders: t }
                    }
                    DocumentKind::Annulment => match payments.pop() {
                        Some((number, t)) => DocumentBody::Annulment { ref_number: number, tenders: t },
                        None => continue,
                    },
                    DocumentKind::CashIn => DocumentBody::CashIn { amount: Money::from_kopecks(kopecks) },
                    DocumentKind::CashOut => DocumentBody::CashOut { amount: Money::from_kopecks(kopecks) },
                    _ => DocumentBody::Payout { amount: Money::from_kopecks(kopecks) },
                };
                // One payment in 50 does not add up: the server rejects it, lists it, counts it nowhere.
                let broken = kind == DocumentKind::Payment && rng.u8(0..50) == 0;
                let body = if broken {
                    DocumentBody::Payment {
                        items: vec![item("Товар", kopecks)], tenders: tenders(kopecks + 1, 0, 0)
                    }
                } else {
                    body
                };
                if !broken {
                    shift.add_body(&body);
                }
                let number = journal.document(now, body.clone());
                documents += 1;
                if let DocumentBody::Payment { tenders: t, .. } = &body
                    && !broken
                {
                    payments.push((protocol::DocumentNumber(number), *t));
                }
                if (window.0..=window.1).contains(&now) && !broken {
                    count(&mut expected[r], &body);
                }
            }
            now += TimeDelta::minutes(5);
            let report = ShiftReport::new(opened, &shift, Money::from_kopecks(cumulative));
            cumulative = kopecks_of(report.cumulative_total);
            let report = DocumentBody::ShiftReport(report);
            if (window.0..=window.1).contains(&now) {
                count(&mut expected[r], &report);
            }
            journal.document(now, report);
            now = opened + TimeDelta::days(1);
        }
        journal.deliver(server.store.as_ref(), now, 400);
    }
    assert!(documents > 2000, "a workload of thousands ({documents})");

    let mut api = Browser::new(&server.url);
    let bearer = format!("Bearer {}", tenant.token);
    for (r, reg) in tenant.registers.iter().enumerate() {
        let query = format!(
            "/api/v1/equipment/{reg}/documents?from={}&to={}",
            window.0.to_rfc3339().replace('+', "%2B"),
            window.1.to_rfc3339().replace('+', "%2B")
        );
        let list = api.send(api.request(Method::GET, &query).header("authorization", &bearer)).await.json();
        let summary = &list["summary"];
        for (kind, counted) in &expected[r] {
            let got = &summary["kinds"][kind];
            assert_eq!(got["count"].as_u64(), Some(counted.count), "{reg} {kind}");
            assert_eq!(kopecks_text(&got["total"]), counted.total as i64, "{reg} {kind} total");
            if got.get("cash").is_some() {
                let tenders = ["cash", "card", "other"].map(|t| kopecks_text(&got[t]));
                assert_eq!(tenders, counted.tenders.map(|k| k as i64), "{reg} {kind} tenders");
            }
        }
        // Выручка = payments − returns − annulments, per tender, and its total is their sum.
        let tender = |kind: &str, i: usize| expected[r].get(kind).map_or(0, |c| c.tenders[i] as i64);
        let revenue: Vec<i64> =
            (0..3).map(|i| tender("payment", i) - tender("return", i) - tender("annulment", i)).collect();
        let got: Vec<i64> = ["cash", "card", "other"].iter().map(|t| kopecks_text(&summary["revenue"][t])).collect();
        assert_eq!(got, revenue, "{reg} revenue");
        assert_eq!(kopecks_text(&summary["revenue"]["total"]), revenue.iter().sum::<i64>());
        // Every listed document is in the window; the refused ones are listed as errors.
        let docs = list["documents"].as_array().unwrap();
        let listed = docs.iter().filter(|d| d["status"] == "delivered").count() as u64;
        assert_eq!(listed, expected[r].values().map(|c| c.count).sum::<u64>());
        assert!(docs.iter().filter(|d| d["status"] == "error").all(|d| !d["error"].as_str().unwrap().is_empty()));
        // Seven shifts, each report's cumulative total consistent with its payments.
        let totals = api
            .send(
                api.request(Method::GET, &format!("/api/v1/equipment/{reg}/cumulative-totals"))
                    .header("authorization", &bearer),
            )
            .await
            .json();
        assert_eq!(totals.as_array().unwrap().len(), 7);
        assert!(totals.as_array().unwrap().iter().all(|l| l["consistent"] == true), "{totals}");
    }
}

fn kopecks_of(m: Money) -> u64 {
    u64::try_from(m.as_decimal().mantissa()).unwrap()
}

fn kopecks_text(v: &Value) -> i64 {
    let text = v.as_str().unwrap_or_else(|| panic!("an amount, not {v}"));
    let (int, frac) = text.split_once('.').unwrap();
    let sign = if int.starts_with('-') { -1 } else { 1 };
    sign * (int.trim_start_matches('-').parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap())
}

/// Counts `body` the test's own way: integer kopecks, no shared code.
fn count(counts: &mut BTreeMap<&'static str, Count>, body: &DocumentBody) {
    let k = |m: &Money| kopecks_of(*m);
    let (kind, t, total): (&str, Option<&protocol::Tenders>, u64) = match body {
        DocumentBody::Payment { tenders, .. } => ("payment", Some(tenders), 0),
        DocumentBody::Return { tenders, .. } => ("return", Some(tenders), 0),
        DocumentBody::Annulment { tenders, .. } => ("annulment", Some(tenders), 0),
        DocumentBody::CashIn { amount } => ("cash_in", None, k(amount)),
        DocumentBody::CashOut { amount } => ("cash_out", None, k(amount)),
        DocumentBody::Payout { amount } => ("payout", None, k(amount)),
        DocumentBody::ShiftReport(r) => ("shift_report", Some(&r.tenders), 0),
    };
    let entry = counts.entry(kind).or_default();
    entry.count += 1;
    match t {
        Some(t) => {
            let parts = [k(&t.cash), k(&t.card), k(&t.other)];
            for (sum, part) in entry.tenders.iter_mut().zip(parts) {
                *sum += part;
            }
            entry.total += parts.iter().sum::<u64>();
        }
        None => entry.total += total,
    }
}

/// Two tenants with a day of documents each.
async fn two_tenants() -> (PortalServer, Tenant, Tenant, String) {
    let server = PortalServer::start().await;
    let a = add_tenant(server.store.as_ref(), UNP_A, "ЧУП «Альфа»", "alfa", &["119026501"]);
    let b = add_tenant(server.store.as_ref(), UNP_B, "ООО «Бета-Секрет»", "beta", &["119017625"]);
    let day = at("2024-10-11T10:00:00+03:00");
    let mut uid_b = String::new();
    for tenant in [&a, &b] {
        let mut journal = Journal::new(tenant.registers[0]);
        journal.document(
            day,
            DocumentBody::Payment {
                items: vec![item("Секретный товар", 98_765)], tenders: tenders(98_765, 0, 0)
            },
        );
        let entry_hash = journal.unsent.last().unwrap().hash;
        journal.deliver(server.store.as_ref(), day, 10);
        if tenant.unp == b.unp {
            uid_b = protocol::Uid::new(&entry_hash, tenant.registers[0]).to_string();
        }
    }
    (server, a, b, uid_b)
}

/// What of B must never appear in an answer to A.
fn assert_no_data_of(b: &Tenant, text: &str) {
    for secret in
        [b.name.as_str(), "Бета-Секрет", "987.65", "987,65", "Секретный товар", "beta@example.by", "Магазин beta"]
    {
        assert!(!text.contains(secret), "B's data {secret:?} leaked: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_reach_another_tenants_data_through_any_url() {
    let (server, a, b, uid_b) = two_tenants().await;
    let (reg_b, object_b, unp_b) = (b.registers[0], b.objects[0].0, b.unp);
    let day = "from=2024-10-11&to=2024-10-11";
    let mut browser = Browser::new(&server.url);
    browser.login(&a.login, &a.password).await;
    let csrf = browser.get("/account").await.csrf();
    let bearer = format!("Bearer {}", a.token);

    let mut api_paths = vec![
        format!("/api/v1/unps/{unp_b}/equipment"),
        format!("/api/v1/equipment/{reg_b}/documents?{day}"),
        format!("/api/v1/equipment/{reg_b}/events?{day}"),
        format!("/api/v1/equipment/{reg_b}/cumulative-totals"),
        format!("/api/v1/documents/{uid_b}"),
    ];
    for list in api_paths.clone().iter().filter(|p| !p.contains("/documents/")) {
        for format in ["xlsx", "pdf", "csv"] {
            let sep = if list.contains('?') { '&' } else { '?' };
            api_paths.push(format!("{list}{sep}format={format}"));
        }
    }
    for path in &api_paths {
        for auth in ["session", "token"] {
            let mut request = browser.request(Method::GET, path);
            if auth == "token" {
                request = request.header("authorization", &bearer);
            }
            let page = browser.send(request).await;
            assert_eq!(page.status, 404, "{auth} GET {path}: {}", page.text);
            assert_eq!(page.json()["error"]["code"], "not_found", "{path}");
            assert_no_data_of(&b, &page.text);
        }
    }
    // The same URLs for A's own data answer, so the 404s above are the wall, not a typo.
    let own = browser.get(&format!("/api/v1/equipment/{}/documents?{day}", a.registers[0])).await;
    assert_eq!(own.status, 200);
    assert!(own.text.contains("987.65"));

    for path in [
        format!("/equipment/{reg_b}"),
        format!("/equipment/{reg_b}/documents?{day}"),
        format!("/equipment/{reg_b}/events?{day}"),
        format!("/equipment/{reg_b}/cumulative"),
        format!("/documents/{uid_b}"),
        format!("/documents/{uid_b}/print"),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, 404, "GET {path}");
        assert_no_data_of(&b, &page.text);
    }

    let edit = json!({"actual_address": "взлом", "working_hours": "", "contacts": "", "notes": ""});
    let writes = [
        browser.request(Method::PUT, &format!("/api/v1/objects/{object_b}")).header("x-csrf-token", &csrf).json(&edit),
        browser
            .request(Method::PUT, &format!("/api/v1/objects/{object_b}"))
            .header("authorization", &bearer)
            .json(&edit),
        browser.request(Method::DELETE, &format!("/api/v1/tokens/{}", b.token_id)).header("x-csrf-token", &csrf),
        browser.request(Method::POST, &format!("/objects/{object_b}")).form(&[
            ("csrf", csrf.as_str()),
            ("actual_address", "взлом"),
            ("working_hours", ""),
            ("contacts", ""),
            ("notes", ""),
        ]),
        browser
            .request(Method::POST, &format!("/account/tokens/{}/revoke", b.token_id))
            .form(&[("csrf", csrf.as_str())]),
        browser.request(Method::POST, "/unp").form(&[("csrf", csrf.as_str()), ("unp", &unp_b.to_string())]),
    ];
    for request in writes {
        let page = browser.send(request).await;
        assert_eq!(page.status, 404, "{}", page.text);
        assert_no_data_of(&b, &page.text);
    }
    // Nothing of B changed: its object is as it was, its token still works.
    let mut as_b = Browser::new(&server.url);
    let objects = as_b
        .send(as_b.request(Method::GET, "/api/v1/objects").header("authorization", format!("Bearer {}", b.token)))
        .await;
    assert_eq!(objects.status, 200);
    assert_eq!(objects.json()[0]["actual_address"], "");
    // A's lists hold only A.
    let unps = browser.get("/api/v1/unps").await.json();
    assert_eq!(unps, json!([{"unp": UNP_A, "name": "ЧУП «Альфа»"}]));
    let objects = browser.get("/api/v1/objects").await;
    assert_eq!(objects.json().as_array().unwrap().len(), 1);
    assert_no_data_of(&b, &objects.text);
    assert_no_data_of(&b, &browser.get("/equipment").await.text);
    assert_no_data_of(&b, &browser.get("/objects").await.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_change_id_at_login_end_at_logout_and_password_change_and_forms_need_csrf() {
    let (server, a, _b, _) = two_tenants().await;
    let mut browser = Browser::new(&server.url);
    // Not signed in: pages go to the login, the API says 401; an API token opens the API only.
    assert_eq!(browser.get("/equipment").await.location.as_deref(), Some("/login"));
    let with_token = browser
        .send(browser.request(Method::GET, "/equipment").header("authorization", format!("Bearer {}", a.token)))
        .await;
    assert_eq!(with_token.location.as_deref(), Some("/login"));
    // A login form posted from another site is refused; from ours it is not.
    let forged = browser
        .send(
            browser
                .request(Method::POST, "/login")
                .header("origin", "https://evil.example")
                .form(&[("login", a.login.as_str()), ("password", a.password.as_str())]),
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(browser.cookie.is_none());
    let page = browser.get("/api/v1/unps").await;
    assert_eq!((page.status, page.json()["error"]["code"].as_str()), (401, Some("unauthorized")));

    // A planted cookie is not adopted: login issues a new id.
    browser.cookie = Some("cabinet_session=AAAAAAAAAAAAAAAAAAAAAA".into());
    let wrong = browser.post_form("/login", &[("login", &a.login), ("password", "Wrong-Passw0rd")]).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.text.contains("Неверный логин или пароль"));
    browser.login(&a.login, &a.password).await;
    let first = browser.cookie.clone().unwrap();
    assert_ne!(first, "cabinet_session=AAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(browser.get("/api/v1/unps").await.status, 200);

    // Answers are never framed nor cached; an unknown page is a page.
    let page = browser.get("/equipment").await;
    assert_eq!(page.status, 200);
    let headers = browser.send(browser.request(Method::GET, "/api/v1/unps")).await;
    assert_eq!(headers.status, 200);
    let raw_page = reqwest::Client::new()
        .get(format!("{}/api/v1/unps", server.url))
        .header("cookie", browser.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(raw_page.headers()["x-frame-options"], "DENY");
    assert_eq!(raw_page.headers()["cache-control"], "no-store");
    assert_eq!(raw_page.headers()["x-content-type-options"], "nosniff");
    let unknown = browser.get("/no-such-page").await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.content_type.starts_with("text/html") && unknown.text.contains("Не найдено"));

    // The cookie's attributes.
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/login", server.url))
        .form(&[("login", a.login.as_str()), ("password", a.password.as_str())])
        .send()
        .await
        .unwrap();
    let set_cookie = raw.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "plain HTTP: no Secure flag");
    let other_session = set_cookie.split(';').next().unwrap().to_owned();

    // Writes without the session's CSRF token are refused and change nothing.
    let object = a.objects[0].0;
    let form = [("actual_address", "Новый адрес"), ("working_hours", "9-18"), ("contacts", ""), ("notes", "")];
    let refused = browser.post_form(&format!("/objects/{object}"), &form).await;
    assert_eq!(refused.status, 403);
    let refused = browser
        .send(
            browser
                .request(Method::PUT, &format!("/api/v1/objects/{object}"))
                .json(&json!({"actual_address": "x", "working_hours": "", "contacts": "", "notes": ""})),
        )
        .await;
    assert_eq!((refused.status, refused.json()["error"]["code"].as_str()), (403, Some("csrf")));
    assert_eq!(browser.post_form("/logout", &[("csrf", "forged")]).await.status, 403);
    assert_eq!(browser.get("/api/v1/objects").await.json()[0]["actual_address"], "");
    // With it, they go through.
    let csrf = browser.get("/objects").await.csrf();
    let mut with_csrf = vec![("csrf", csrf.as_str())];
    with_csrf.extend(form);
    let saved = browser.post_form(&format!("/objects/{object}"), &with_csrf).await;
    assert_eq!(saved.status, 200);
    assert!(saved.text.contains("Сохранено"));
    assert_eq!(browser.get("/api/v1/objects").await.json()[0]["actual_address"], "Новый адрес");
    let put = browser
        .send(
            browser
                .request(Method::PUT, &format!("/api/v1/objects/{object}"))
                .header("x-csrf-token", &csrf)
                .json(&json!({"actual_address": "Адрес 2", "working_hours": "8-20", "contacts": "+375291555759", "notes": "склад"})),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.json()["working_hours"], "8-20");
    // A token caller needs no CSRF token: no browser can send it.
    let mut api = Browser::new(&server.url);
    let by_token = api
        .send(
            api.request(Method::PUT, &format!("/api/v1/objects/{object}"))
                .header("authorization", format!("Bearer {}", a.token))
                .json(&json!({"actual_address": "Адрес 3", "working_hours": "", "contacts": "", "notes": ""})),
        )
        .await;
    assert_eq!(by_token.status, 200);
    // Bad input: a clear 400, nothing saved.
    let long = "я".repeat(501);
    let bad = api
        .send(
            api.request(Method::PUT, &format!("/api/v1/objects/{object}"))
                .header("authorization", format!("Bearer {}", a.token))
                .json(&json!({"actual_address": long, "working_hours": "", "contacts": "", "notes": ""})),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"]["message"].as_str().unwrap().contains("Фактический адрес"));
    assert_eq!(browser.get("/api/v1/objects").await.json()[0]["actual_address"], "Адрес 3");

    // A password change: the policy, then every other session ends; this one goes on under a new id.
    let csrf = browser.get("/account").await.csrf();
    for (new, repeat, says) in [
        ("short1A", "short1A", "короче 8"),
        ("alllowercase1", "alllowercase1", "большие и маленькие"),
        ("Good-Passw0rd", "Other-Passw0rd", "не совпадают"),
    ] {
        let page = browser
            .post_form(
                "/account/password",
                &[("csrf", &csrf), ("current", &a.password), ("new", new), ("repeat", repeat)],
            )
            .await;
        assert_eq!(page.status, 400);
        assert!(page.text.contains(says), "{says}: {}", page.text);
    }
    let incomplete = browser.post_form("/account/password", &[("csrf", &csrf)]).await;
    assert_eq!(incomplete.status, 400);
    assert!(
        incomplete.content_type.starts_with("text/html") && incomplete.text.contains("Форма отправлена не полностью")
    );
    let wrong_current = browser
        .post_form(
            "/account/password",
            &[("csrf", &csrf), ("current", "nope"), ("new", "Good-Passw0rd"), ("repeat", "Good-Passw0rd")],
        )
        .await;
    assert!(wrong_current.text.contains("Текущий пароль указан неверно"));
    let passphrase = "длинная фраза вместо пароля, которую легко запомнить и трудно подобрать";
    let changed = browser
        .post_form(
            "/account/password",
            &[("csrf", &csrf), ("current", &a.password), ("new", passphrase), ("repeat", passphrase)],
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert!(changed.text.contains("Пароль изменён"));
    let current = browser.cookie.clone().unwrap();
    assert_ne!(current, first, "a new session id after the password change");
    assert_eq!(browser.get("/api/v1/unps").await.status, 200);
    for old in [&first, &other_session] {
        let mut stale = Browser::new(&server.url);
        stale.cookie = Some(old.clone());
        assert_eq!(stale.get("/api/v1/unps").await.status, 401, "an old session after the password change");
    }
    let mut again = Browser::new(&server.url);
    assert_eq!(again.post_form("/login", &[("login", &a.login), ("password", &a.password)]).await.status, 401);
    again.login(&a.login, passphrase).await;

    // Logout ends the session on the server: the old cookie is worthless.
    let csrf = again.get("/account").await.csrf();
    let before_logout = again.cookie.clone().unwrap();
    let out = again.post_form("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.location.as_deref(), Some("/login"));
    let mut replay = Browser::new(&server.url);
    replay.cookie = Some(before_logout);
    assert_eq!(replay.get("/api/v1/unps").await.status, 401);
    assert_eq!(replay.get("/equipment").await.location.as_deref(), Some("/login"));

    // Five wrong passwords lock the login for a while, even with the right one after.
    let mut guessing = Browser::new(&server.url);
    for _ in 0..5 {
        assert_eq!(guessing.post_form("/login", &[("login", "beta"), ("password", "guess")]).await.status, 401);
    }
    let locked = guessing.post_form("/login", &[("login", "beta"), ("password", "guess")]).await;
    assert_eq!(locked.status, 429);
    assert!(locked.text.contains("Слишком много"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_are_made_listed_and_revoked() {
    let (server, a, _b, _) = two_tenants().await;
    let mut browser = Browser::new(&server.url);
    browser.login(&a.login, &a.password).await;
    let csrf = browser.get("/account").await.csrf();
    let made = browser.post_form("/account/tokens", &[("csrf", &csrf), ("name", "1С Бухгалтерия")]).await;
    assert_eq!(made.status, 200);
    let at = made.text.find("class=\"secret\">").unwrap() + "class=\"secret\">".len();
    let token = made.text[at..at + 64].to_owned();
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()), "{token}");
    assert!(made.text.contains("1С Бухгалтерия"));
    let list = browser.get("/api/v1/tokens").await.json();
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["учёт", "1С Бухгалтерия"]);
    assert!(!list.to_string().contains(&token), "a token is shown once, never listed");

    let mut api = Browser::new(&server.url);
    let with = |api: &Browser, token: &str| {
        api.request(Method::GET, "/api/v1/unps").header("authorization", format!("Bearer {token}"))
    };
    assert_eq!(api.send(with(&api, &token)).await.status, 200);
    let id = list[1]["id"].as_i64().unwrap();
    let revoked = browser.post_form(&format!("/account/tokens/{id}/revoke"), &[("csrf", &csrf)]).await;
    assert!(revoked.text.contains("Токен отозван"));
    assert_eq!(api.send(with(&api, &token)).await.status, 401);
    assert_eq!(api.send(with(&api, "not-a-token")).await.status, 401);

    // Through the API too, from a signed-in session; a token cannot mint or revoke tokens.
    let by_token = api
        .send(
            api.request(Method::POST, "/api/v1/tokens")
                .header("authorization", format!("Bearer {}", a.token))
                .json(&json!({"name": "скрипт"})),
        )
        .await;
    assert_eq!((by_token.status, by_token.json()["error"]["code"].as_str()), (403, Some("session_required")));
    let made = browser
        .send(
            browser
                .request(Method::POST, "/api/v1/tokens")
                .header("x-csrf-token", &csrf)
                .json(&json!({"name": "скрипт"})),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.text);
    let second = made.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(api.send(with(&api, &second)).await.status, 200);
    let empty = browser
        .send(
            browser.request(Method::POST, "/api/v1/tokens").header("x-csrf-token", &csrf).json(&json!({"name": "  "})),
        )
        .await;
    assert_eq!(empty.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_list_exports_to_excel_pdf_and_csv_and_bad_parameters_say_what_is_wrong() {
    let (server, a, _b, _) = two_tenants().await;
    let reg = a.registers[0];
    let mut api = Browser::new(&server.url);
    let bearer = format!("Bearer {}", a.token);
    let lists = [
        format!("/api/v1/unps/{}/equipment", a.unp),
        format!("/api/v1/equipment/{reg}/documents?from=2024-10-11&to=2024-10-11"),
        format!("/api/v1/equipment/{reg}/events?from=2024-10-11&to=2024-10-11"),
        format!("/api/v1/equipment/{reg}/cumulative-totals"),
        "/api/v1/objects".to_owned(),
    ];
    for list in &lists {
        let json = api.send(api.request(Method::GET, list).header("authorization", &bearer)).await;
        assert_eq!(json.status, 200, "{list}");
        assert!(json.content_type.starts_with("application/json"));
        for (format, content_type, magic) in [
            ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", &b"PK"[..]),
            ("pdf", "application/pdf", b"%PDF"),
            ("csv", "text/csv", b""),
        ] {
            let sep = if list.contains('?') { '&' } else { '?' };
            let file = api
                .send(api.request(Method::GET, &format!("{list}{sep}format={format}")).header("authorization", &bearer))
                .await;
            assert_eq!(file.status, 200, "{list} {format}");
            assert!(file.content_type.starts_with(content_type), "{list} {format}: {}", file.content_type);
            assert!(file.bytes.starts_with(magic), "{list} {format}");
        }
    }
    let csv =
        api.send(api.request(Method::GET, &format!("{}&format=csv", lists[1])).header("authorization", &bearer)).await;
    assert!(csv.text.starts_with("Тип документа,Номер документа,UID,"), "{}", csv.text);
    assert!(csv.text.contains("Платежный документ,1,"), "{}", csv.text);
    assert!(csv.text.contains(",987.65"), "{}", csv.text);

    for (path, says) in [
        (format!("/api/v1/equipment/{reg}/documents?from=вчера"), "from"),
        (format!("/api/v1/equipment/{reg}/documents?kinds=sale"), "sale"),
        (format!("/api/v1/equipment/{reg}/events?codes=x"), "x"),
        (format!("/api/v1/equipment/{reg}/documents?format=doc"), "xlsx"),
        (format!("/api/v1/equipment/{reg}/documents?from=2024-10-12&to=2024-10-11"), "начало периода"),
    ] {
        let page = api.send(api.request(Method::GET, &path).header("authorization", &bearer)).await;
        assert_eq!(page.status, 400, "{path}");
        let error = page.json();
        assert_eq!(error["error"]["code"], "bad_request");
        assert!(error["error"]["message"].as_str().unwrap().contains(says), "{path}: {error}");
    }
    let missing = api.send(api.request(Method::GET, "/api/v1/nothing").header("authorization", &bearer)).await;
    assert_eq!((missing.status, missing.json()["error"]["code"].as_str()), (404, Some("not_found")));
    // A repeated parameter is a JSON 400 too; an offset's unencoded `+` is understood.
    let twice = api
        .send(
            api.request(Method::GET, &format!("/api/v1/equipment/{reg}/documents?format=csv&format=pdf"))
                .header("authorization", &bearer),
        )
        .await;
    assert_eq!((twice.status, twice.json()["error"]["code"].as_str()), (400, Some("bad_request")));
    let plus = api
        .send(
            api.request(
                Method::GET,
                &format!(
                    "/api/v1/equipment/{reg}/documents?from=2024-10-11T00:00:00+03:00&to=2024-10-11T23:59:59+03:00"
                ),
            )
            .header("authorization", &bearer),
        )
        .await;
    assert_eq!(plus.json()["documents"].as_array().unwrap().len(), 1, "{}", plus.text);
}

/// Compares `page` (with its CSRF token and today's times masked) with the committed
/// snapshot `tests/snapshots/<name>.html`; `UPDATE_SNAPSHOTS=1` rewrites the snapshots.
fn snapshot(name: &str, page: &e2e::portal::Page) {
    let mut text = page.text.clone();
    if let Some(at) = text.find("name=\"csrf\" value=\"") {
        let csrf = text[at + 19..].split('"').next().unwrap().to_owned();
        text = text.replace(&csrf, "CSRF");
    }
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Europe::Minsk).format("%d.%m.%Y").to_string();
    while let Some(at) = text.find(&today) {
        text.replace_range(at..at + 19, "DD.MM.YYYY hh:mm:ss");
    }
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("snapshots").join(format!("{name}.html"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_SNAPSHOTS=1 to make it)", path.display()));
    assert!(
        text == expected,
        "page {name} differs from {}; if the change is meant, UPDATE_SNAPSHOTS=1",
        path.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_renders_with_the_manuals_words() {
    let server = PortalServer::start().await;
    let store = server.store.as_ref();
    let a = add_tenant(store, UNP_A, "Торговое частное унитарное предприятие \"АВТО-КОМБИ\"", "demo", &["119026501"]);
    store.add_taxpayer(UNP_B.parse().unwrap(), "ООО «Второе»").unwrap();
    store.link_user("demo", UNP_B.parse().unwrap()).unwrap();
    let reg = a.registers[0];
    let mut journal = Journal::new(reg);
    let t = |s: &str| at(&format!("2024-10-11T{s}+03:00"));
    let opened = t("15:04:05");
    let mut shift = Summary::default();
    for body in [
        DocumentBody::CashIn { amount: Money::from_kopecks(5000) },
        DocumentBody::Payment { items: vec![e2e::chocolate()], tenders: tenders(479, 0, 0) },
        DocumentBody::Payment {
            items: vec![item("Вода", 279), item("Хлеб", 200)], tenders: tenders(0, 279, 200)
        },
        DocumentBody::Return { ref_number: None, items: vec![e2e::chocolate()], tenders: tenders(479, 0, 0) },
    ] {
        shift.add_body(&body);
        journal.document(t("15:30:00"), body);
    }
    journal.document(t("15:32:43"), DocumentBody::ShiftReport(ShiftReport::new(opened, &shift, Money::ZERO)));
    let uid = protocol::Uid::new(&journal.unsent[1].hash, reg).to_string();
    journal.deliver(store, t("15:32:50"), 100);

    let mut browser = Browser::new(&server.url);
    snapshot("login", &browser.get("/login").await);
    browser.login(&a.login, &a.password).await;
    let day = "from=2024-10-11T00:00&to=2024-10-11T23:59";
    let pages = [
        (
            "equipment",
            "/equipment".to_owned(),
            &[
                "Кассовое оборудование",
                "Субъект хозяйствования",
                "Торговый объект",
                "РН СККО",
                "Номер СКО",
                "Дата снаряжения",
                "Экспорт в PDF",
            ][..],
        ),
        (
            "register",
            format!("/equipment/{reg}"),
            &[
                "Дополнительная информация",
                "Информация:",
                "Дата и время передачи данных:",
                "TitanPOS версия:",
                "Дата и время завершения действия ТСОК:",
            ][..],
        ),
        (
            "documents",
            format!("/equipment/{reg}/documents?{day}"),
            &[
                "Тип документа",
                "Номер документа",
                "UID",
                "Сумма наличными",
                "Сумма безналичными",
                "Сумма иными",
                "Сумма общая",
                "Выручка",
                "ИТОГО",
                "Наличными",
                "Картой",
                "Прочее",
                "Получить",
            ][..],
        ),
        (
            "documents-payments",
            format!("/equipment/{reg}/documents?{day}&kind=payment"),
            &["Платежный документ (2)", "Возврат (0)"][..],
        ),
        (
            "events",
            format!("/equipment/{reg}/events?{day}"),
            &[
                "События по",
                "Код события",
                "Тип события",
                "Параметр события",
                "Дата и время формирования события",
                "Дата и время отправки события",
                "Состояние передачи в АИС ККО",
            ][..],
        ),
        (
            "cumulative",
            format!("/equipment/{reg}/cumulative"),
            &["Накопительный итог по", "№ Смены", "Накопительный итог"][..],
        ),
        ("document", format!("/documents/{uid}"), &["ПЛАТЕЖНЫЙ ДОКУМЕНТ", "НАЛИЧНЫМИ 4.79", "Версия для печати"][..]),
        ("print", format!("/documents/{uid}/print"), &["ИТОГО К ОПЛАТЕ 4.79", "@page"][..]),
        (
            "objects",
            "/objects".to_owned(),
            &[
                "Торговые объекты",
                "Адрес торгового объекта по АИС ККО:",
                "Фактический Адрес торгового объекта:",
                "Время работы:",
                "Контактные данные:",
                "Заметки:",
                "Сохранить",
            ][..],
        ),
        (
            "account",
            "/account".to_owned(),
            &["Мой кабинет", "Новый пароль", "Повторно", "большие-маленькие латинские буквы + цифры", "API-токены"][..],
        ),
        ("unp", "/unp".to_owned(), &["Смена УНП", "Выбран", "Выбрать"][..]),
        ("not-found", "/equipment/999999999".to_owned(), &["Не найдено"][..]),
    ];
    for (name, path, words) in pages {
        let page = browser.get(&path).await;
        assert_eq!(page.status, if name == "not-found" { 404 } else { 200 }, "{path}");
        assert!(page.content_type.starts_with("text/html"), "{path}");
        for word in words {
            assert!(page.text.contains(word), "{name} lacks {word:?}");
        }
        // Смена УНП is in the menu only for a user with several УНП.
        if name != "print" {
            assert!(page.text.contains("href=\"/unp\""), "{name}: the menu offers Смена УНП");
        }
        snapshot(name, &page);
    }
    let mut single = Browser::new(&server.url);
    let b = add_tenant(store, "190000005", "ООО «Один»", "single", &[]);
    single.login(&b.login, &b.password).await;
    assert!(!single.get("/equipment").await.text.contains("href=\"/unp\""), "one УНП: no Смена УНП");
    // Choosing the other УНП switches the equipment page.
    let csrf = browser.get("/unp").await.csrf();
    let chosen = browser.post_form("/unp", &[("csrf", &csrf), ("unp", UNP_B)]).await;
    assert_eq!(chosen.location.as_deref(), Some("/equipment"));
    let page = browser.get("/equipment").await;
    assert!(page.text.contains(&format!("УНП {UNP_B}")) && page.text.contains("нет зарегистрированных касс"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_command_line_makes_users_tokens_and_operators_and_https_marks_the_cookie_secure() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let mut server = e2e::ServerProcess::configure(dir.path());
    let mut config = std::fs::read_to_string(&server.config_path).unwrap();
    config.push_str(&format!("[tls]\ncert = \"{}\"\nkey = \"{}\"\n", cert_path.display(), key_path.display()));
    std::fs::write(&server.config_path, config).unwrap();
    server.register_device("119026501", "AVQ11169990740");
    server.admin(&["admin", "unp", "add", "--unp", UNP_B, "--name", "ООО «Второе»"]);

    // `user add` prints the password alone as its last line; `user link` adds a УНП.
    let password =
        server.admin(&["admin", "user", "add", "--login", "ivanov", "--email", "i@example.by", "--unp", UNP_A]);
    assert_eq!(password.len(), 16, "{password}");
    server.admin(&["admin", "user", "link", "--login", "ivanov", "--unp", UNP_B]);
    let token = server.admin(&["admin", "token", "create", "--login", "ivanov"]);
    assert_eq!(token.len(), 64);
    let operator = server.admin(&["admin", "operator", "add", "--login", "operator-1"]);
    assert_eq!(operator.len(), 16);
    // Bad input: a clear message, a failing status, nothing added.
    for (args, says) in [
        (vec!["admin", "user", "add", "--login", "иванов", "--email", "x@y.by", "--unp", UNP_A], "логин"),
        (vec!["admin", "user", "add", "--login", "ivanov", "--email", "x@y.by", "--unp", UNP_A], "уже существует"),
        (vec!["admin", "user", "add", "--login", "petrov", "--email", "x@y.by", "--unp", "100231651"], "УНП"),
        (vec!["admin", "user", "link", "--login", "nobody", "--unp", UNP_A], "не найден"),
        (vec!["admin", "token", "create", "--login", "nobody"], "не найден"),
    ] {
        let output = std::process::Command::new(e2e::server_binary())
            .arg("--config")
            .arg(&server.config_path)
            .args(&args)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }

    server.start();
    let https = server.url.replace("http://127.0.0.1", "https://localhost");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", server.url.trim_start_matches("http://").parse().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = client
        .post(format!("{https}/login"))
        .form(&[("login", "ivanov"), ("password", password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("Secure") && cookie.contains("HttpOnly"), "{cookie}");
    let unps: Value =
        client.get(format!("{https}/api/v1/unps")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(unps.as_array().unwrap().len(), 2, "{unps}");
    // A new password from the operator ends the old one.
    let reset = server.admin(&["admin", "user", "reset-password", "--login", "ivanov"]);
    assert_ne!(reset, password);
    let revoked = client.get(format!("{https}/api/v1/unps")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(revoked.status(), 401, "a reset revokes the user's API tokens");
    let old = client
        .post(format!("{https}/login"))
        .form(&[("login", "ivanov"), ("password", password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_a_month_of_history_and_live_registers_with_the_printed_login() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut demo = std::process::Command::new(e2e::server_binary())
        .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = demo.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout).lines().take(4).map(Result::unwrap).collect::<Vec<_>>()
    });
    let lines = tokio::time::timeout(Duration::from_secs(300), lines).await.expect("the demo became ready").unwrap();
    assert_eq!(lines.len(), 4, "{lines:?}");
    let url = lines[0].strip_prefix("Личный кабинет: ").unwrap().trim_end_matches('/').to_owned();
    assert_eq!(lines[1], "Логин: demo");
    let password = &lines[3];

    let mut browser = Browser::new(&url);
    browser.login("demo", password).await;
    let equipment = browser.get("/equipment").await;
    for words in ["АВТО-КОМБИ", "AVQ11169990740", "AVQ11071128569", "Офис Колодищи"] {
        assert!(equipment.text.contains(words), "the equipment page lacks {words:?}");
    }
    // A month of history: every register has shift reports whose totals add up, and
    // documents on a past day.
    let week_ago = (chrono::Utc::now() - TimeDelta::days(7)).with_timezone(&chrono_tz::Europe::Minsk).date_naive();
    for reg in ["119026501", "119017625"] {
        let totals = browser.get(&format!("/api/v1/equipment/{reg}/cumulative-totals")).await.json();
        let totals = totals.as_array().unwrap();
        assert!(totals.len() >= 25, "{reg}: {} shift reports", totals.len());
        assert!(totals.iter().all(|t| t["consistent"] == true), "{reg}: {totals:?}");
        let day = browser.get(&format!("/api/v1/equipment/{reg}/documents?from={week_ago}&to={week_ago}")).await.json();
        assert!(day["summary"]["kinds"]["payment"]["count"].as_u64().unwrap() >= 10, "{reg}: {}", day["summary"]);
        assert!(day["documents"].as_array().unwrap().iter().all(|d| d["status"] == "delivered"));
    }
    // Live: new documents keep arriving.
    let count = async |browser: &mut Browser| {
        let list = browser.get("/api/v1/equipment/119026501/documents").await.json();
        list["documents"].as_array().unwrap().len()
    };
    let before = count(&mut browser).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while count(&mut browser).await <= before {
        assert!(std::time::Instant::now() < deadline, "no live sale within a minute");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // SIGTERM stops it cleanly.
    unsafe { libc::kill(demo.id() as i32, libc::SIGTERM) };
    let status = tokio::task::spawn_blocking(move || demo.wait().unwrap()).await.unwrap();
    assert!(status.success(), "{status}");
}
