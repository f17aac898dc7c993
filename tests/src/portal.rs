//! Helpers for the portal's tests and benchmarks: the cabinet server in-process on a random
//! port over a fresh SQLite store, a browser that keeps its session cookie by hand (so a
//! test can replay an old one), two tenants, and documents journaled as a register would.

use std::sync::Arc;

use cabinet_server::accounts;
use cabinet_server::store::sqlite::SqliteStore;
use cabinet_server::store::{NewDevice, ObjectId, Role, Store};
use chrono::{DateTime, FixedOffset};
use protocol::{
    ChainHead, DeviceInfo, Document, DocumentBody, DocumentNumber, Entry, Item, Money, Payload, Quantity, RegNumber,
    ShiftNumber, Tenders, Unp,
};
use reqwest::header::{COOKIE, SET_COOKIE};

/// The cabinet server running in this process.
pub struct PortalServer {
    /// Its base URL.
    pub url: String,
    /// Its store (the same one it serves).
    pub store: Arc<dyn Store>,
    /// Its folder.
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl PortalServer {
    /// Starts a server over a new database.
    pub async fn start() -> PortalServer {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("cabinet.sqlite")).unwrap());
        Self::start_on(dir, store).await
    }

    /// Starts a server over `store`.
    pub async fn start_on(dir: tempfile::TempDir, store: Arc<dyn Store>) -> PortalServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let config = cabinet_server::config::Config::load(None).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = store.clone();
        tokio::spawn(async move {
            cabinet_server::serve(&config, listener, serving, async {
                stopped.await.ok();
            })
            .await
            .unwrap();
        });
        PortalServer { url, store, dir, stop: Some(stop) }
    }
}

impl Drop for PortalServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.send(()).ok();
        }
    }
}

/// One taxpayer with its objects, registers, user and API token.
pub struct Tenant {
    /// УНП.
    pub unp: Unp,
    /// The legal entity's name.
    pub name: String,
    /// Its trade objects.
    pub objects: Vec<ObjectId>,
    /// Its registers.
    pub registers: Vec<RegNumber>,
    /// The user's login.
    pub login: String,
    /// The user's password.
    pub password: String,
    /// An API token of the user.
    pub token: String,
    /// The id of that token.
    pub token_id: i64,
}

/// Adds a taxpayer with `registers` registers (one object each) and a user holding it.
pub fn add_tenant(store: &dyn Store, unp: &str, name: &str, login: &str, registers: &[&str]) -> Tenant {
    let unp: Unp = unp.parse().unwrap();
    store.add_taxpayer(unp, name).unwrap();
    let mut objects = Vec::new();
    let mut regs = Vec::new();
    for (i, reg) in registers.iter().enumerate() {
        let object = store.add_object(unp, &format!("Магазин {login} №{}", i + 1), "г. Минск", None).unwrap();
        let reg: RegNumber = reg.parse().unwrap();
        store
            .add_device(&NewDevice {
                unp,
                object,
                reg_number: reg,
                serial: format!("AVQ{:011}", reg.get()).parse().unwrap(),
                commissioned_on: "2022-09-19".parse().unwrap(),
                time_zone: chrono_tz::Europe::Minsk,
                token_hash: cabinet_server::tokens::token_hash(&format!("device-{reg}")),
            })
            .unwrap();
        objects.push(object);
        regs.push(reg);
    }
    let (user, password) =
        accounts::create_user(store, login, &format!("{login}@example.by"), Role::Merchant, &[unp]).unwrap();
    let (token_id, token) = accounts::create_api_token(store, user, "учёт").unwrap();
    Tenant { unp, name: name.into(), objects, registers: regs, login: login.into(), password, token, token_id }
}

/// A register's journal as the server receives it: numbered documents, shifts, the chain.
pub struct Journal {
    /// The register.
    pub reg: RegNumber,
    head: ChainHead,
    next_number: u64,
    shift: u32,
    /// Entries made and not yet sent.
    pub unsent: Vec<Entry>,
}

impl Journal {
    /// A new journal of `reg`.
    pub fn new(reg: RegNumber) -> Journal {
        Journal { reg, head: ChainHead::EMPTY, next_number: 1, shift: 1, unsent: Vec::new() }
    }

    fn push(&mut self, payload: Payload) {
        let entry = Entry::after(&self.head, payload.to_cbor());
        self.head.advance(&entry).unwrap();
        self.unsent.push(entry);
    }

    /// Journals a document of `body` at `at`; returns its number.
    pub fn document(&mut self, at: DateTime<FixedOffset>, body: DocumentBody) -> u64 {
        let number = match &body {
            DocumentBody::ShiftReport(_) => u64::from(self.shift),
            _ => {
                self.next_number += 1;
                self.next_number - 1
            }
        };
        let closes = matches!(body, DocumentBody::ShiftReport(_));
        self.push(Payload::Document(Document {
            number: DocumentNumber(number),
            shift: ShiftNumber(self.shift),
            created_at: at,
            cashier: "Иванова".into(),
            body,
        }));
        if closes {
            self.shift += 1;
        }
        number
    }

    /// The current shift's number.
    pub fn shift(&self) -> ShiftNumber {
        ShiftNumber(self.shift)
    }

    /// Hands over what was journaled to the store, as a batch would, in chunks of `per`.
    pub fn deliver(&mut self, store: &dyn Store, at: DateTime<FixedOffset>, per: usize) {
        let device = DeviceInfo {
            info: "9.1.18.1 - TitanPos Mobile".into(),
            pos_version: "2.1.0".into(),
            agent_version: "test".into(),
            tsok_expires_at: None,
            pending: 0,
            oldest_pending_at: None,
            sent_at: at,
        };
        for chunk in self.unsent.chunks(per) {
            let outcome = store.ingest(self.reg, &device, chunk, at.to_utc()).unwrap();
            assert!(matches!(outcome, cabinet_server::store::IngestOutcome::Stored { .. }), "{outcome:?}");
        }
        self.unsent.clear();
    }
}

/// An item of `kopecks` at quantity 1.
pub fn item(name: &str, kopecks: u64) -> Item {
    Item { name: name.into(), gtin: None, section: 1, price: Money::from_kopecks(kopecks), quantity: Quantity::ONE }
}

/// Tenders of cash, card and other, in kopecks.
pub fn tenders(cash: u64, card: u64, other: u64) -> Tenders {
    Tenders { cash: Money::from_kopecks(cash), card: Money::from_kopecks(card), other: Money::from_kopecks(other) }
}

/// A browser: a client that does not follow redirects and keeps the session cookie itself.
pub struct Browser {
    /// The server's base URL.
    pub base: String,
    client: reqwest::Client,
    /// The session cookie (`cabinet_session=…`), if any.
    pub cookie: Option<String>,
}

/// A response, read.
pub struct Page {
    /// The status.
    pub status: u16,
    /// Where a redirect points.
    pub location: Option<String>,
    /// The content type.
    pub content_type: String,
    /// The body as text (lossy for files).
    pub text: String,
    /// The body's bytes.
    pub bytes: Vec<u8>,
}

impl Page {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The value of the hidden `csrf` field in the page.
    pub fn csrf(&self) -> String {
        let at = self.text.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
        self.text[at..].split('"').next().unwrap().to_owned()
    }
}

impl Browser {
    /// A browser with no cookie.
    pub fn new(base: &str) -> Browser {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { base: base.into(), client, cookie: None }
    }

    /// Sends a request; keeps any new session cookie.
    pub async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = match &self.cookie {
            Some(cookie) => request.header(COOKIE, cookie),
            None => request,
        };
        let response = request.send().await.unwrap();
        for value in response.headers().get_all(SET_COOKIE) {
            let value = value.to_str().unwrap();
            if value.starts_with("cabinet_session=") {
                let pair = value.split(';').next().unwrap().to_owned();
                self.cookie = (!value.contains("Max-Age=0") && pair != "cabinet_session=").then_some(pair);
            }
        }
        let status = response.status().as_u16();
        let header =
            |name| response.headers().get(name).map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_owned());
        let location = header(reqwest::header::LOCATION);
        let content_type = header(reqwest::header::CONTENT_TYPE).unwrap_or_default();
        let bytes = response.bytes().await.unwrap().to_vec();
        Page { status, location, content_type, text: String::from_utf8_lossy(&bytes).into_owned(), bytes }
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// `POST path` with a form.
    pub async fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self.client.post(format!("{}{path}", self.base)).form(form);
        self.send(request).await
    }

    /// A request with method `method` to `path`, to add headers and a body to.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.base))
    }

    /// Logs in; panics unless it succeeds.
    pub async fn login(&mut self, login: &str, password: &str) {
        let page = self.post_form("/login", &[("login", login), ("password", password)]).await;
        assert_eq!((page.status, page.location.as_deref()), (303, Some("/equipment")), "{}", page.text);
        assert!(self.cookie.is_some(), "a session cookie after login");
    }
}
