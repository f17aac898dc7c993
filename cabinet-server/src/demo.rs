//! `cabinet-server demo`: the whole system on one machine (CONTRACTS §4).
//!
//! [`run`] opens (or creates) an embedded SQLite database with a demo taxpayer, its two
//! trade objects, two registers and a merchant user; serves the portal; starts two agents
//! in-process, each with its journal under `DIR/agents/<reg_number>/`; and plays a cashier
//! on each through the agent's real POS API. A new register first gets thirty days of
//! history, made while its [`DemoClock`] shows the past; then the clock follows the system
//! clock and the cashier sells a basket every few seconds until shutdown.
//!
//! What the simulated cashier does is decided by pure functions ([`plan_day`], [`basket`],
//! [`refund`], [`withdrawal`]) over a seeded random source, so a register's history is the
//! same on every machine; the async shell only sets the clock and posts the requests.

use std::future::Future;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent::clock::Clock;
use anyhow::{Context, bail};
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use protocol::{Item, Money, Quantity, RegNumber, SignedMoney, Tenders, Unp};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::accounts::{self, AccountError};
use crate::config::Config;
use crate::store::sqlite::SqliteStore;
use crate::store::{NewDevice, ObjectId, Role, Store, StoreError};
use crate::tokens;

/// What `cabinet-server demo` is told on its command line.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Where the database, the registers' journals and their device tokens live
    /// (`--data-dir`, default `cabinet-demo`). A second run reuses them.
    pub data_dir: PathBuf,
    /// Where the portal listens (`--listen`, default `127.0.0.1:8080`); port 0 picks a free
    /// one, and the printed URL names it.
    pub listen: SocketAddr,
}

/// The database file in the data directory.
const DATABASE_FILE: &str = "cabinet.sqlite";
/// The demo taxpayer.
const UNP: &str = "100231650";
/// Its full name, as registered and printed on receipts.
const ORG_NAME: &str = "Торговое частное унитарное предприятие \"АВТО-КОМБИ\"";
/// The merchant user's login and mail.
const LOGIN: &str = "demo";
const EMAIL: &str = "demo@example.com";
/// The registers' time zone: the simulated shop keeps Minsk hours.
const ZONE: Tz = chrono_tz::Europe::Minsk;
/// How many days of history a new register gets (today included).
const BACKFILL_DAYS: u64 = 30;
/// A shift older than this is closed and a new one opened: the agent refuses documents in
/// a shift past 24 hours, and the simulated cashier never lets it get there.
const MAX_SHIFT: TimeDelta = TimeDelta::hours(23);
/// How often a person watching the start is told what is going on.
const PROGRESS_EVERY: Duration = Duration::from_secs(3);
/// How long the start waits for the history to reach the server before announcing anyway.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long an agent may take to open its journal and answer.
const AGENT_START_TIMEOUT: Duration = Duration::from_secs(30);

/// A trade object of the demo taxpayer.
struct TradeObject {
    name: &'static str,
    address: &'static str,
    actual_address: Option<&'static str>,
}

const OBJECTS: [TradeObject; 2] = [
    TradeObject {
        name: "Офис Колодищи",
        address: "Минская обл., Минский р-н, Колодищанский с/с, аг. Колодищи УЛ. ЦЕНТРАЛЬНАЯ, 22",
        actual_address: Some("г. Минск, проспект Независимости, 58/22"),
    },
    TradeObject {
        name: "Офис г. Минск пр. Независимости д. 58 корп. 22",
        address: "г. Минск, пр. Независимости, 58, корп. 22",
        actual_address: None,
    },
];

/// A demo register.
struct RegisterSpec {
    /// РН СККО.
    reg_number: &'static str,
    /// Номер СКО.
    serial: &'static str,
    /// Its trade object, an index into [`OBJECTS`].
    object: usize,
    /// Who works its shifts.
    cashiers: [&'static str; 2],
}

const REGISTERS: [RegisterSpec; 2] = [
    RegisterSpec {
        reg_number: "119026501",
        serial: "AVQ11169990740",
        object: 0,
        cashiers: ["Иванова О. Н.", "Ковалевич А. С."],
    },
    RegisterSpec {
        reg_number: "119017625",
        serial: "AVQ11071128569",
        object: 1,
        cashiers: ["Петрович Е. В.", "Жук Д. А."],
    },
];

/// Runs the demo until `shutdown` resolves: sets up the data, serves the portal, starts the
/// agents and their cashiers, prints the portal's URL and a login (the password alone on
/// the last line) once the history has reached the server, and on shutdown stops the
/// cashiers, then the agents (which journal event 1011), then the server.
pub async fn run(options: DemoOptions, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    std::fs::create_dir_all(&options.data_dir)
        .with_context(|| format!("cannot create {}", options.data_dir.display()))?;
    let dir = std::fs::canonicalize(&options.data_dir)
        .with_context(|| format!("cannot resolve {}", options.data_dir.display()))?;
    let setup = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || set_up(&dir)).await.context("the setup task failed")??
    };
    // Bound before anything else starts, so that the agents and the announcement know the port.
    let listener =
        std::net::TcpListener::bind(options.listen).with_context(|| format!("cannot listen on {}", options.listen))?;
    let address = reachable(listener.local_addr()?);
    let config = server_config(&dir, address)?;
    tracing::info!("serving on http://{address}");

    let mut demo = Running::new();
    let stop = demo.server_stop.subscribe();
    demo.server = Some(tokio::spawn(async move { crate::serve(&config, listener, setup.store, stopped(stop)).await }));
    let started = demo.start_registers(&dir, address).await;

    tokio::pin!(shutdown);
    // `Ok(true)` once ready, `Ok(false)` when told to stop before.
    let outcome = match started {
        Err(e) => Err(e),
        Ok(()) => tokio::select! {
            ready = wait_until_ready(&demo.registers) => ready.map(|()| true),
            () = &mut shutdown => Ok(false),
        },
    };
    let outcome = match outcome {
        Ok(true) => match announce(address, &setup.password) {
            Ok(()) => {
                shutdown.await;
                Ok(())
            }
            Err(e) => Err(anyhow::Error::from(e).context("cannot write to stdout")),
        },
        other => other.map(drop),
    };
    let stopped = demo.stop().await;
    outcome.and(stopped)
}

/// What the setup leaves for the rest of the run.
struct Setup {
    store: Arc<dyn Store>,
    password: String,
}

/// Opens the database and, on a new one, adds the demo taxpayer, objects, registers and
/// user; on an existing one, checks that the registers' tokens and journals are still
/// there and gives the user a new password (only its hash is stored, so the old one cannot
/// be printed again).
fn set_up(dir: &Path) -> anyhow::Result<Setup> {
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.join(DATABASE_FILE)).context("cannot open the demo database")?);
    let unp: Unp = UNP.parse().context("the demo УНП")?;
    let fresh = match store.add_taxpayer(unp, ORG_NAME) {
        Ok(()) => true,
        Err(StoreError::Duplicate(_)) => false,
        Err(e) => return Err(e).context("cannot add the demo taxpayer"),
    };
    if fresh {
        add_demo_data(store.as_ref(), dir, unp)?;
    } else {
        for spec in &REGISTERS {
            check_register_files(dir, spec)?;
        }
    }
    let password = match accounts::reset_password(store.as_ref(), LOGIN) {
        Ok(password) => password,
        // A new database, or one whose first run stopped before the user was added.
        Err(AccountError::Store(StoreError::NotFound(_))) => {
            accounts::create_user(store.as_ref(), LOGIN, EMAIL, Role::Merchant, &[unp])
                .context("cannot add the demo user")?
                .1
        }
        Err(e) => return Err(e).context("cannot reset the demo user's password"),
    };
    Ok(Setup { store, password })
}

/// Adds the trade objects and the registers, keeping each device token in its register's
/// folder.
fn add_demo_data(store: &dyn Store, dir: &Path, unp: Unp) -> anyhow::Result<()> {
    let mut objects = Vec::new();
    for object in &OBJECTS {
        let id = store
            .add_object(unp, object.name, object.address, object.actual_address)
            .with_context(|| format!("cannot add the trade object «{}»", object.name))?;
        objects.push(id);
    }
    let commissioned_on = NaiveDate::from_ymd_opt(2022, 9, 19).expect("a valid date");
    for spec in &REGISTERS {
        let home = register_home(dir, spec);
        std::fs::create_dir_all(&home).with_context(|| format!("cannot create {}", home.display()))?;
        let token = tokens::new_token();
        // Written before the device is added: a token the store knows but nobody kept
        // would leave the register unable to deliver.
        write_secret(&home.join("token"), &token)?;
        store
            .add_device(&NewDevice {
                unp,
                object: ObjectId(objects[spec.object].0),
                reg_number: spec.reg_number.parse().context("a demo РН СККО")?,
                serial: spec.serial.parse().context("a demo Номер СКО")?,
                commissioned_on,
                time_zone: ZONE,
                token_hash: tokens::token_hash(&token),
            })
            .with_context(|| format!("cannot add the register {}", spec.reg_number))?;
    }
    Ok(())
}

/// An existing database needs the registers' tokens (the store keeps only their hashes)
/// and their journals (a new journal would restart the chain the server already holds).
fn check_register_files(dir: &Path, spec: &RegisterSpec) -> anyhow::Result<()> {
    let home = register_home(dir, spec);
    let journal = home.join("journal").join(agent::journal::FILE_NAME);
    for needed in [home.join("token"), journal] {
        if !needed.exists() {
            bail!(
                "{} is missing while the demo database exists; remove {} to start the demo afresh",
                needed.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

/// Writes a secret readable by its owner only.
fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // `mode` applies only to a new file: an old one keeps its permissions unless told.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    writeln!(file, "{secret}").with_context(|| format!("cannot write {}", path.display()))
}

fn register_home(dir: &Path, spec: &RegisterSpec) -> PathBuf {
    dir.join("agents").join(spec.reg_number)
}

/// The server's configuration: the defaults (and `CABINET_*` variables) with the demo's
/// database, address and mail folder, without TLS.
fn server_config(dir: &Path, listen: SocketAddr) -> anyhow::Result<Config> {
    let mut config = Config::load(None).context("invalid configuration")?;
    config.listen = listen;
    config.database_url = format!("sqlite:{}", dir.join(DATABASE_FILE).display());
    config.mail_spool = dir.join("mail");
    config.tls = None;
    Ok(config)
}

/// The address to give agents and people: a wildcard address is reached on loopback.
fn reachable(bound: SocketAddr) -> SocketAddr {
    match bound.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), bound.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), bound.port()),
        _ => bound,
    }
}

/// Prints the portal's URL and the login; the password alone on the last line (CONTRACTS §4).
fn announce(address: SocketAddr, password: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "Личный кабинет: http://{address}/")?;
    writeln!(out, "Логин: {LOGIN}")?;
    writeln!(out, "Пароль:")?;
    writeln!(out, "{password}")?;
    out.flush()
}

/// A future that resolves once `stop` turns true (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

/// Everything the demo started, and the switches that stop it in order.
struct Running {
    server: Option<JoinHandle<std::io::Result<()>>>,
    server_stop: watch::Sender<bool>,
    registers: Vec<Register>,
    agent_stop: watch::Sender<bool>,
    cashier_stop: watch::Sender<bool>,
}

/// One register of the demo: its agent, its clock and its simulated cashier.
struct Register {
    reg_number: &'static str,
    pos: Pos,
    clock: Arc<DemoClock>,
    agent: JoinHandle<Result<(), agent::AgentError>>,
    cashier: Option<JoinHandle<()>>,
    /// Set once the history is made and the cashier sells in real time.
    live: Arc<AtomicBool>,
}

impl Running {
    fn new() -> Running {
        Running {
            server: None,
            server_stop: watch::Sender::new(false),
            registers: Vec::new(),
            agent_stop: watch::Sender::new(false),
            cashier_stop: watch::Sender::new(false),
        }
    }

    async fn start_registers(&mut self, dir: &Path, server: SocketAddr) -> anyhow::Result<()> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?;
        for spec in &REGISTERS {
            let register =
                start_register(spec, dir, server, &client, self.agent_stop.subscribe(), self.cashier_stop.subscribe())
                    .await
                    .with_context(|| format!("cannot start the register {}", spec.reg_number))?;
            self.registers.push(register);
        }
        Ok(())
    }

    /// Stops the cashiers, then the agents (they journal 1011), then the server; reports
    /// the first failure after everything has stopped.
    async fn stop(mut self) -> anyhow::Result<()> {
        let mut outcome = Ok(());
        self.cashier_stop.send_replace(true);
        for register in &mut self.registers {
            if let Some(cashier) = register.cashier.take() {
                cashier.await.ok();
            }
        }
        self.agent_stop.send_replace(true);
        for register in self.registers {
            let stopped = match register.agent.await {
                Ok(result) => result.map_err(anyhow::Error::from),
                Err(e) => Err(anyhow::Error::from(e)),
            };
            if let Err(e) = stopped {
                tracing::error!(register = register.reg_number, "the agent failed: {e:#}");
                outcome = outcome.and(Err(e.context(format!("the agent of {} failed", register.reg_number))));
            }
        }
        self.server_stop.send_replace(true);
        if let Some(server) = self.server {
            let served = server.await.context("the server task failed").and_then(|r| r.context("server failed"));
            outcome = outcome.and(served);
        }
        outcome
    }
}

/// Writes the register's `agent.toml`, starts its agent on a clock showing where its
/// history resumes, waits until it answers, and sets its cashier going.
async fn start_register(
    spec: &'static RegisterSpec,
    dir: &Path,
    server: SocketAddr,
    client: &reqwest::Client,
    agent_stop: watch::Receiver<bool>,
    cashier_stop: watch::Receiver<bool>,
) -> anyhow::Result<Register> {
    let home = register_home(dir, spec);
    let path = home.join("agent.toml");
    let today = Utc::now().with_timezone(&ZONE).date_naive();
    let text = agent_toml(spec, &format!("http://{server}"), today);
    // On disk as well, so that `agent status --config …/agent.toml` works beside the demo.
    std::fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    let config = agent::config::Config::parse(&text, &path)?;

    let last = {
        let data_dir = config.data_dir.clone();
        let reg = config.register.reg_number;
        tokio::task::spawn_blocking(move || last_entry_at(&data_dir, reg)).await??
    };
    let now = Utc::now();
    let history_from = history_start(last, now);
    // The agent journals 1010 when it starts: at the journal's last time, so that nothing
    // it records goes back, and nothing pending looks old enough to block the register.
    let clock = Arc::new(DemoClock::at(last.or(history_from).unwrap_or(now)));
    if history_from.is_none() {
        clock.go_live();
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let pos = Pos { base: format!("http://{}", listener.local_addr()?), client: client.clone() };
    let agent = tokio::spawn(agent::run(config, listener, clock.clone(), stopped(agent_stop)));
    let agent = wait_for_agent(&pos, agent).await?;

    let live = Arc::new(AtomicBool::new(false));
    let cashier = Cashier::new(spec, pos.clone(), clock.clone());
    // Seeded by the register's number: its documents are the same on every machine.
    let seed = spec.reg_number.parse().unwrap_or_default();
    let cashier = tokio::spawn(work(cashier, history_from, seed, live.clone(), cashier_stop));
    Ok(Register { reg_number: spec.reg_number, pos, clock, agent, cashier: Some(cashier), live })
}

/// Waits until the agent answers; if it stopped instead, says why.
async fn wait_for_agent(
    pos: &Pos,
    agent: JoinHandle<Result<(), agent::AgentError>>,
) -> anyhow::Result<JoinHandle<Result<(), agent::AgentError>>> {
    // The listener is bound already: the request waits until the journal is open.
    match tokio::time::timeout(AGENT_START_TIMEOUT, pos.status()).await {
        Ok(Ok(_)) => Ok(agent),
        answer if agent.is_finished() => match agent.await {
            Ok(Err(e)) => Err(e).context("the agent stopped"),
            _ => bail!("the agent stopped without answering: {answer:?}"),
        },
        Ok(Err(e)) => Err(e).context("the agent does not answer"),
        Err(_) => bail!("the agent did not answer within {AGENT_START_TIMEOUT:?}"),
    }
}

/// The register's `agent.toml`.
fn agent_toml(spec: &RegisterSpec, server_url: &str, today: NaiveDate) -> String {
    // A JSON string is also a valid TOML basic string: the quotes in the name are escaped.
    let org_name = serde_json::to_string(ORG_NAME).expect("strings serialize");
    // Two years ahead: the ТСОК never expires (and blocks the register) during a demo.
    let tsok_year = today.year() + 2;
    format!(
        r#"# Written by `cabinet-server demo` at each start.
[register]
reg_number = "{reg}"
serial = "{serial}"
unp = "{UNP}"
org_name = {org_name}
info = "9.1.18.1 - TitanPos Mobile"
pos_version = "2.1.0"
tsok_expires_at = "{tsok_year}-09-19T23:59:59+03:00"
time_zone = "Europe/Minsk"

[storage]
data_dir = "journal"

[pos_api]
# The demo binds a free port itself and hands it to the agent.
listen = "127.0.0.1:0"

[server]
url = "{server_url}"
token_file = "token"
heartbeat_secs = 30
retry_max_secs = 5
"#,
        reg = spec.reg_number,
        serial = spec.serial,
    )
}

/// When the journal's last entry was recorded, if there is a journal with entries.
fn last_entry_at(data_dir: &Path, reg: RegNumber) -> anyhow::Result<Option<DateTime<Utc>>> {
    if !data_dir.join(agent::journal::FILE_NAME).exists() {
        return Ok(None);
    }
    let reader = agent::journal::Reader::open(data_dir, reg)?;
    let last = reader.cursor()?.last_seq;
    if last.0 == 0 {
        return Ok(None);
    }
    let lines = reader.entries(last, false, 1)?;
    Ok(lines.first().map(|line| line.payload.created_at().with_timezone(&Utc)))
}

/// Where a register's history is to be made from: nowhere when its journal has entries of
/// today (it simply goes on live); otherwise from the morning [`BACKFILL_DAYS`] days back,
/// or from the journal's last entry when that is later.
fn history_start(last_entry: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let today = now.with_timezone(&ZONE).date_naive();
    if last_entry.is_some_and(|last| last.with_timezone(&ZONE).date_naive() >= today) {
        return None;
    }
    let first_day = today - chrono::Days::new(BACKFILL_DAYS - 1);
    let morning = local_time(first_day, 8 * HOUR).unwrap_or(now - TimeDelta::days(BACKFILL_DAYS as i64));
    Some(last_entry.map_or(morning, |last| last.max(morning)))
}

/// Waits until every cashier has made its history and the agents have delivered it,
/// telling the person at the terminal how far it got every few seconds. A delivery that
/// takes too long is reported, not fatal: the portal is usable meanwhile.
async fn wait_until_ready(registers: &[Register]) -> anyhow::Result<()> {
    let mut told = Instant::now();
    while !registers.iter().all(|r| r.live.load(Ordering::Acquire)) {
        if let Some(register) = registers.iter().find(|r| r.cashier.as_ref().is_none_or(JoinHandle::is_finished)) {
            bail!("the cashier of {} stopped (the log above says why)", register.reg_number);
        }
        if told.elapsed() >= PROGRESS_EVERY {
            told = Instant::now();
            let days: Vec<String> = registers
                .iter()
                .map(|r| format!("{} — {}", r.reg_number, r.clock.now().with_timezone(&ZONE).format("%d.%m.%Y %H:%M")))
                .collect();
            eprintln!("Демо: история продаж, касса {}", days.join(", касса "));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    loop {
        let mut pending = Vec::new();
        for register in registers {
            let status =
                register.pos.status().await.with_context(|| format!("the agent of {}", register.reg_number))?;
            pending.push((register.reg_number, status.pending));
        }
        if pending.iter().all(|(_, n)| *n == 0) {
            return Ok(());
        }
        let left: Vec<String> = pending.iter().map(|(reg, n)| format!("касса {reg} — {n}")).collect();
        if Instant::now() >= deadline {
            eprintln!("Демо: не всё передано на сервер за {DELIVERY_TIMEOUT:?} ({}); продолжаем", left.join(", "));
            return Ok(());
        }
        if told.elapsed() >= PROGRESS_EVERY {
            told = Instant::now();
            eprintln!("Демо: передача на сервер, осталось записей: {}", left.join(", "));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The clock of a demo register: it shows a time it is set to while the history is made,
/// then follows the system clock. It never goes back: a time earlier than one it has shown
/// (a late `set`, the system clock stepping back) shows as the latest shown.
#[derive(Debug)]
pub struct DemoClock(Mutex<ClockState>);

#[derive(Debug)]
struct ClockState {
    /// The time set, or `None` to follow the system clock.
    set: Option<DateTime<Utc>>,
    /// The latest time shown.
    shown: DateTime<Utc>,
}

impl DemoClock {
    /// A clock showing `at` until told otherwise.
    pub fn at(at: DateTime<Utc>) -> DemoClock {
        DemoClock(Mutex::new(ClockState { set: Some(at), shown: at }))
    }

    /// Shows `at` from now on (or the latest time shown, if that is later).
    pub fn set(&self, at: DateTime<Utc>) {
        self.state().set = Some(at);
    }

    /// Follows the system clock from now on.
    pub fn go_live(&self) {
        self.state().set = None;
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ClockState> {
        // The state is two plain values, valid whatever a panicking holder left.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Clock for DemoClock {
    fn now(&self) -> DateTime<Utc> {
        let mut state = self.state();
        let now = state.set.unwrap_or_else(Utc::now).max(state.shown);
        state.shown = now;
        now
    }
}

/// What the POS app sees of `GET /v1/status`.
#[derive(Debug, Deserialize)]
struct Status {
    shift: ShiftStatus,
    cash_in_drawer: SignedMoney,
    pending: u64,
}

#[derive(Debug, Deserialize)]
struct ShiftStatus {
    open: bool,
    opened_at: Option<DateTime<FixedOffset>>,
}

/// An agent's POS API, as the POS app calls it.
#[derive(Clone)]
struct Pos {
    base: String,
    client: reqwest::Client,
}

/// A request the agent answered with an error status.
#[derive(Debug)]
struct Refused {
    status: u16,
    body: Value,
}

impl Pos {
    async fn status(&self) -> Result<Status, reqwest::Error> {
        self.client.get(format!("{}/v1/status", self.base)).send().await?.error_for_status()?.json().await
    }

    /// Posts `body`; the outer error is a failed exchange, the inner one a refusal.
    async fn post(&self, path: &str, body: &Value) -> Result<Result<Value, Refused>, reqwest::Error> {
        let response = self.client.post(format!("{}{path}", self.base)).json(body).send().await?;
        let status = response.status();
        // Errors are JSON too (CONTRACTS §1).
        let body: Value = response.json().await?;
        Ok(if status.is_success() { Ok(body) } else { Err(Refused { status: status.as_u16(), body }) })
    }
}

/// The simulated cashier of one register: carries out [`Action`]s through the POS API.
struct Cashier {
    reg_number: &'static str,
    names: [&'static str; 2],
    /// Who works the current shift.
    name: &'static str,
    pos: Pos,
    clock: Arc<DemoClock>,
    /// The payments of the open shift that can still be returned or annulled.
    payments: Vec<Payment>,
    /// Documents made (shift reports included), for the progress line.
    documents: u64,
}

/// A payment the cashier made in the open shift.
struct Payment {
    number: u64,
    items: Vec<Item>,
    tenders: Tenders,
}

impl Cashier {
    fn new(spec: &'static RegisterSpec, pos: Pos, clock: Arc<DemoClock>) -> Cashier {
        Cashier {
            reg_number: spec.reg_number,
            names: spec.cashiers,
            name: spec.cashiers[0],
            pos,
            clock,
            payments: Vec::new(),
            documents: 0,
        }
    }

    /// Does `action` at the clock's time. A refusal is logged and the day goes on; only a
    /// failed exchange with the agent is an error.
    async fn perform(&mut self, rng: &mut fastrand::Rng, action: Action) -> Result<(), reqwest::Error> {
        if !matches!(action, Action::CloseShift) {
            self.ensure_shift(rng).await?;
        }
        match action {
            Action::OpenShift => Ok(()),
            Action::Sale(basket) => self.sell(basket).await,
            Action::Return => self.take_back(rng).await,
            Action::Annul => self.annul().await,
            Action::Withdraw(kind) => self.withdraw(kind, rng).await,
            Action::CloseShift => self.close_if_open().await,
        }
    }

    /// Opens a shift unless one of today, younger than [`MAX_SHIFT`], is open; an older one
    /// is closed first.
    async fn ensure_shift(&mut self, rng: &mut fastrand::Rng) -> Result<(), reqwest::Error> {
        let status = self.pos.status().await?;
        if let Some(opened_at) = status.shift.opened_at.filter(|_| status.shift.open) {
            if !shift_is_stale(opened_at, self.clock.now()) {
                return Ok(());
            }
            self.close_shift().await?;
        }
        self.open_shift(rng).await
    }

    /// Opens a shift and puts the change float into the drawer.
    async fn open_shift(&mut self, rng: &mut fastrand::Rng) -> Result<(), reqwest::Error> {
        self.name = self.names[rng.usize(..self.names.len())];
        if self.post("/v1/shift/open", json!({"cashier": self.name})).await?.is_none() {
            return Ok(());
        }
        self.payments.clear();
        let float = Money::from_kopecks(rng.u64(50..=100) * 100);
        self.post("/v1/documents", json!({"kind": "cash_in", "cashier": self.name, "amount": float})).await?;
        Ok(())
    }

    async fn close_if_open(&mut self) -> Result<(), reqwest::Error> {
        if self.pos.status().await?.shift.open { self.close_shift().await } else { Ok(()) }
    }

    async fn close_shift(&mut self) -> Result<(), reqwest::Error> {
        self.post("/v1/shift/close", json!({"cashier": self.name})).await?;
        self.payments.clear();
        Ok(())
    }

    async fn sell(&mut self, basket: Basket) -> Result<(), reqwest::Error> {
        let body = json!({"kind": "payment", "cashier": self.name, "items": basket.items, "tenders": basket.tenders});
        if let Some(number) = self.post("/v1/documents", body).await?.and_then(|answer| answer["number"].as_u64()) {
            self.payments.push(Payment { number, items: basket.items, tenders: basket.tenders });
        }
        Ok(())
    }

    /// A customer brings back one line of an earlier payment of the shift.
    async fn take_back(&mut self, rng: &mut fastrand::Rng) -> Result<(), reqwest::Error> {
        if self.payments.is_empty() {
            return Ok(());
        }
        // Taken off the list whatever the answer: a payment is returned at most once.
        let payment = self.payments.remove(rng.usize(..self.payments.len()));
        let line = payment.items[rng.usize(..payment.items.len())].clone();
        let tenders = refund(&payment.tenders, line.sum());
        let body = json!({"kind": "return", "cashier": self.name, "ref_number": payment.number,
                          "items": [line], "tenders": tenders});
        self.post("/v1/documents", body).await?;
        Ok(())
    }

    /// The cashier cancels the shift's latest payment (a mistyped basket, say).
    async fn annul(&mut self) -> Result<(), reqwest::Error> {
        let Some(payment) = self.payments.pop() else { return Ok(()) };
        self.post("/v1/documents", json!({"kind": "annulment", "cashier": self.name, "ref_number": payment.number}))
            .await?;
        Ok(())
    }

    /// Takes cash out of the drawer: never more than the agent says it holds.
    async fn withdraw(&mut self, kind: Withdrawal, rng: &mut fastrand::Rng) -> Result<(), reqwest::Error> {
        let drawer = self.pos.status().await?.cash_in_drawer.to_money().unwrap_or(Money::ZERO);
        let Some(amount) = withdrawal(drawer, rng) else { return Ok(()) };
        self.post("/v1/documents", json!({"kind": kind.kind(), "cashier": self.name, "amount": amount})).await?;
        Ok(())
    }

    /// Posts a request; returns the answer, or `None` when the agent refused (logged).
    async fn post(&mut self, path: &str, body: Value) -> Result<Option<Value>, reqwest::Error> {
        match self.pos.post(path, &body).await? {
            Ok(answer) => {
                // Opening a shift journals an event, not a document.
                self.documents += u64::from(path != "/v1/shift/open");
                Ok(Some(answer))
            }
            Err(Refused { status, body: answer }) => {
                let code = answer["error"]["code"].as_str().unwrap_or("-");
                let message = answer["error"]["message"].as_str().unwrap_or("-");
                tracing::warn!(register = self.reg_number, path, status, code, "the register refused: {message}");
                Ok(None)
            }
        }
    }
}

/// Whether a shift opened at `opened_at` must be closed before selling at `now`: it is
/// older than [`MAX_SHIFT`], or it was opened on another day.
fn shift_is_stale(opened_at: DateTime<FixedOffset>, now: DateTime<Utc>) -> bool {
    let opened_at = opened_at.with_timezone(&Utc);
    now - opened_at > MAX_SHIFT || opened_at.with_timezone(&ZONE).date_naive() != now.with_timezone(&ZONE).date_naive()
}

/// A register's cashier at work: the history from `history_from`, then live until `stop`.
async fn work(
    mut cashier: Cashier,
    history_from: Option<DateTime<Utc>>,
    seed: u64,
    live: Arc<AtomicBool>,
    mut stop: watch::Receiver<bool>,
) {
    if let Some(from) = history_from {
        let began = Instant::now();
        match make_history(&mut cashier, from, seed, &stop).await {
            Ok(true) => eprintln!(
                "Демо: касса {}: история с {} — {} документов за {:.1} с",
                cashier.reg_number,
                from.with_timezone(&ZONE).format("%d.%m.%Y"),
                cashier.documents,
                began.elapsed().as_secs_f64()
            ),
            Ok(false) => return,
            Err(e) => {
                tracing::error!(register = cashier.reg_number, "the simulated cashier stopped: {e}");
                return;
            }
        }
    }
    cashier.clock.go_live();
    live.store(true, Ordering::Release);
    sell_live(&mut cashier, seed, &mut stop).await;
}

/// Plays each day from `from` to now on the register's clock. `Ok(false)` when stopped.
async fn make_history(
    cashier: &mut Cashier,
    from: DateTime<Utc>,
    seed: u64,
    stop: &watch::Receiver<bool>,
) -> Result<bool, reqwest::Error> {
    // What the journal holds already goes first: the clock is about to jump forward, and
    // entries left undelivered across the jump could look old enough to block the register.
    wait_delivered(&cashier.pos, Duration::from_secs(30)).await?;
    let today = Utc::now().with_timezone(&ZONE).date_naive();
    for date in from.with_timezone(&ZONE).date_naive().iter_days().take_while(|date| *date <= today) {
        // One seed per day: a day's documents are the same whenever the history is made.
        let mut rng = fastrand::Rng::with_seed(seed ^ (u64::from(date.num_days_from_ce().unsigned_abs()) << 20));
        for (at, action) in plan_day(&mut rng, date) {
            if *stop.borrow() {
                return Ok(false);
            }
            if at > Utc::now() {
                return Ok(true);
            }
            // Up to the journal's last entry: done in an earlier run (days replay alike).
            if at <= from {
                continue;
            }
            cashier.clock.set(at);
            cashier.perform(&mut rng, action).await?;
        }
    }
    Ok(true)
}

/// Polls the agent until nothing is left to deliver, for at most `limit`.
async fn wait_delivered(pos: &Pos, limit: Duration) -> Result<(), reqwest::Error> {
    let deadline = Instant::now() + limit;
    while pos.status().await?.pending > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Sells in real time: an action every 3–10 seconds until `stop`.
async fn sell_live(cashier: &mut Cashier, seed: u64, stop: &mut watch::Receiver<bool>) {
    let mut rng = fastrand::Rng::with_seed(seed);
    // A shift is opened at once, so the portal shows one from the start.
    let mut next = Action::OpenShift;
    loop {
        if let Err(e) = cashier.perform(&mut rng, next).await {
            tracing::warn!(register = cashier.reg_number, "the register does not answer: {e}");
        }
        let pause = Duration::from_millis(rng.u64(3_000..=10_000));
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stop.wait_for(|stopping| *stopping) => return,
        }
        next = live_action(&mut rng);
    }
}

/// One thing the simulated cashier does.
#[derive(Debug)]
enum Action {
    /// Open a shift (with a change float) unless a fresh one is open.
    OpenShift,
    /// Sell a basket.
    Sale(Basket),
    /// Take back one line of an earlier payment of the shift.
    Return,
    /// Annul the shift's latest payment.
    Annul,
    /// Take cash out of the drawer.
    Withdraw(Withdrawal),
    /// Close the shift, if open.
    CloseShift,
}

/// How cash leaves the drawer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Withdrawal {
    /// Изъятие: the takings handed over at the end of the day.
    CashOut,
    /// Выплата: paid out of the drawer (a supplier, say).
    Payout,
}

impl Withdrawal {
    fn kind(self) -> &'static str {
        match self {
            Withdrawal::CashOut => "cash_out",
            Withdrawal::Payout => "payout",
        }
    }
}

/// A customer's basket and how it is paid; the tenders add up to the items' total.
#[derive(Clone, Debug, PartialEq)]
struct Basket {
    items: Vec<Item>,
    tenders: Tenders,
}

const HOUR: u32 = 60 * 60;
const OPENING: u32 = 9 * HOUR;
const FIRST_SALE: u32 = 9 * HOUR + 15 * 60;
const NOON: u32 = 12 * HOUR;
const LAST_SALE: u32 = 19 * HOUR + 45 * 60;
const CLOSING: u32 = 20 * HOUR;

/// A shop day at `date`: the shift opened about 09:00, 15–40 sales until 19:45, now and
/// then a return, an annulment or a payout, usually the takings handed over before the
/// shift closes about 20:00. In time order.
fn plan_day(rng: &mut fastrand::Rng, date: NaiveDate) -> Vec<(DateTime<Utc>, Action)> {
    let mut plan = vec![(OPENING + rng.u32(..10 * 60), Action::OpenShift)];
    for _ in 0..rng.usize(15..=40) {
        plan.push((rng.u32(FIRST_SALE..LAST_SALE), Action::Sale(basket(rng))));
    }
    let chance = |rng: &mut fastrand::Rng, percent: u32| rng.u32(..100) < percent;
    if chance(rng, 30) {
        plan.push((rng.u32(NOON..LAST_SALE), Action::Return));
    }
    if chance(rng, 25) {
        plan.push((rng.u32(FIRST_SALE..LAST_SALE), Action::Annul));
    }
    if chance(rng, 15) {
        plan.push((rng.u32(NOON..LAST_SALE), Action::Withdraw(Withdrawal::Payout)));
    }
    if chance(rng, 60) {
        plan.push((LAST_SALE + rng.u32(..10 * 60), Action::Withdraw(Withdrawal::CashOut)));
    }
    plan.push((CLOSING + rng.u32(..10 * 60), Action::CloseShift));
    plan.sort_by_key(|(seconds, _)| *seconds);
    plan.into_iter().filter_map(|(seconds, action)| Some((local_time(date, seconds)?, action))).collect()
}

/// The next thing a cashier does in real time: mostly a sale.
fn live_action(rng: &mut fastrand::Rng) -> Action {
    match rng.u32(..100) {
        0..3 => Action::Return,
        3..6 => Action::Annul,
        6..8 => Action::Withdraw(Withdrawal::Payout),
        _ => Action::Sale(basket(rng)),
    }
}

/// `seconds` after the local midnight of `date`, in UTC (`None` inside a clock change's gap).
fn local_time(date: NaiveDate, seconds: u32) -> Option<DateTime<Utc>> {
    let local = date.and_hms_opt(0, 0, 0)? + TimeDelta::seconds(seconds.into());
    ZONE.from_local_datetime(&local).earliest().map(|at| at.with_timezone(&Utc))
}

/// A basket of 1–5 different products (smaller ones more often), paid mostly in cash,
/// often by card, now and then by card with a gift certificate.
fn basket(rng: &mut fastrand::Rng) -> Basket {
    const LINES: [usize; 10] = [1, 1, 1, 2, 2, 2, 3, 3, 4, 5];
    let lines = LINES[rng.usize(..LINES.len())];
    let mut chosen: Vec<&Product> = Vec::with_capacity(lines);
    while chosen.len() < lines {
        let product = &CATALOGUE[rng.usize(..CATALOGUE.len())];
        if !chosen.iter().any(|p| std::ptr::eq(*p, product)) {
            chosen.push(product);
        }
    }
    let items: Vec<Item> = chosen.into_iter().map(|product| product.item(rng)).collect();
    let tenders = tenders_for(protocol::document::items_total(&items), rng);
    Basket { items, tenders }
}

/// How a total is paid: 60 % cash, 32 % card, 8 % card with a gift certificate.
fn tenders_for(total: Money, rng: &mut fastrand::Rng) -> Tenders {
    let by_card = Tenders { card: total, ..Tenders::ZERO };
    match rng.u32(..100) {
        0..60 => Tenders::cash(total),
        60..92 => by_card,
        _ => {
            // A certificate of 5, 10 or 20 rubles covers part; the card pays the rest.
            let certificates: Vec<Money> =
                [500, 1000, 2000].into_iter().map(Money::from_kopecks).filter(|c| *c < total).collect();
            if certificates.is_empty() {
                return by_card;
            }
            let other = certificates[rng.usize(..certificates.len())];
            let card = total.checked_sub(other).expect("the certificate is below the total");
            Tenders { cash: Money::ZERO, card, other }
        }
    }
}

/// How `amount` (at most what `paid` totals) is paid back: the way it was paid, cash first,
/// then card, then other.
fn refund(paid: &Tenders, amount: Money) -> Tenders {
    let cash = paid.cash.min(amount);
    let rest = amount.checked_sub(cash).expect("cash is at most the amount");
    let card = paid.card.min(rest);
    let other = rest.checked_sub(card).expect("card is at most the rest");
    Tenders { cash, card, other }
}

/// Whole rubles between a quarter and a half of the drawer; `None` when it holds under
/// 10 rubles.
fn withdrawal(drawer: Money, rng: &mut fastrand::Rng) -> Option<Money> {
    let kopecks = (drawer.as_decimal() * Decimal::ONE_HUNDRED).to_u64()?;
    if kopecks < 1000 {
        return None;
    }
    let rubles = rng.u64((kopecks / 400).max(1)..=kopecks / 200);
    Some(Money::from_kopecks(rubles * 100))
}

/// A product on the shop's shelves.
struct Product {
    name: &'static str,
    /// GTIN-13; weighed goods are sold by the scale's code and have none.
    gtin: Option<&'static str>,
    section: u32,
    /// Kopecks per piece, or per kilogram when weighed.
    price: u64,
    weighed: bool,
}

impl Product {
    /// A line of this product: weighed goods from 150 g to 1.6 kg, pieces mostly one.
    fn item(&self, rng: &mut fastrand::Rng) -> Item {
        const PIECES: [u64; 10] = [1, 1, 1, 1, 1, 1, 1, 1, 2, 3];
        let thousandths = if self.weighed { rng.u64(150..=1600) } else { PIECES[rng.usize(..PIECES.len())] * 1000 };
        Item {
            name: self.name.into(),
            gtin: self.gtin.map(Into::into),
            section: self.section,
            price: Money::from_kopecks(self.price),
            quantity: Quantity::from_thousandths(thousandths).expect("above zero"),
        }
    }
}

const fn piece(name: &'static str, gtin: &'static str, section: u32, price: u64) -> Product {
    Product { name, gtin: Some(gtin), section, price, weighed: false }
}

const fn weighed(name: &'static str, section: u32, price: u64) -> Product {
    Product { name, gtin: None, section, price, weighed: true }
}

/// Sections: 1 — продукты, 2 — напитки, 3 — кондитерские изделия, 4 — хозтовары.
const CATALOGUE: [Product; 36] = [
    piece("Молоко «Савушкин» 3,1% 1 л", "4810268012457", 1, 279),
    piece("Кефир «Савушкин» 2,5% 900 г", "4810268003127", 1, 249),
    piece("Сметана «Брест-Литовск» 20% 300 г", "4810161008939", 1, 319),
    piece("Масло сливочное «Беловежское» 82,5% 180 г", "4810168021146", 1, 549),
    piece("Творог «Минская марка» 5% 350 г", "4810223005715", 1, 389),
    piece("Сырок глазированный «Минская марка» 45 г", "4810223007559", 1, 115),
    piece("Хлеб «Нарочанский» 800 г", "4810162022675", 1, 189),
    piece("Батон «Нарезной» 400 г", "4810162021135", 1, 135),
    piece("Сосиски «Молочные» 500 г", "4810658001276", 1, 799),
    piece("Колбаса «Докторская» 400 г", "4810658002396", 1, 1250),
    piece("Яйца куриные С1, 10 шт", "4810033001242", 1, 399),
    piece("Крупа гречневая 900 г", "4811075003485", 1, 359),
    piece("Сахар 1 кг", "4810002023107", 1, 235),
    piece("Макароны «Рожки» 450 г", "4811024012872", 1, 169),
    weighed("Сыр «Российский» 50%, кг", 1, 2690),
    weighed("Картофель, кг", 1, 129),
    weighed("Яблоки «Антоновка», кг", 1, 299),
    weighed("Бананы, кг", 1, 479),
    weighed("Огурцы, кг", 1, 690),
    piece("Вода «Дарида» негазированная 1,5 л", "4810069041076", 2, 119),
    piece("Сок «Сочны» яблочный 1 л", "4810024011564", 2, 329),
    piece("Морс «Сочны» клюквенный 1 л", "4810024012622", 2, 289),
    piece("Квас «Лидский» 1,5 л", "4811069000360", 2, 269),
    piece("Лимонад «Дарида» «Буратино» 1,5 л", "4810069050191", 2, 219),
    piece("Пиво «Лидское» светлое 0,5 л", "4810248043211", 2, 239),
    piece("Чай «Беседа» черный, 100 пак.", "4810248004588", 2, 749),
    piece("Шоколад «Коммунарка» горький 68% 85 г", "4810034000213", 3, 349),
    piece("Вафли «Спартак» 72 г", "4810034003665", 3, 145),
    piece("Зефир «Красный пищевик» 250 г", "4810029003151", 3, 429),
    piece("Печенье «Слодыч» овсяное 400 г", "4810003015064", 3, 379),
    weighed("Конфеты «Вечерний Минск», кг", 3, 2490),
    piece("Туалетная бумага «Слонимская», 4 рул.", "4811233000714", 4, 449),
    piece("Средство для посуды «Мара» 500 мл", "4810008001093", 4, 399),
    piece("Стиральный порошок «Аист» 400 г", "4810297002481", 4, 599),
    piece("Спички хозяйственные, 10 кор.", "4810126001975", 4, 95),
    piece("Пакет-майка", "4810136000647", 4, 15),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn baskets_are_paid_exactly() {
        let mut rng = fastrand::Rng::with_seed(119026501);
        let mut by = [0; 3];
        for _ in 0..5000 {
            let basket = basket(&mut rng);
            assert!((1..=5).contains(&basket.items.len()));
            let total = protocol::document::items_total(&basket.items);
            assert!(!total.is_zero());
            assert_eq!(basket.tenders.total(), total, "{basket:?}");
            for (count, tender) in by.iter_mut().zip([basket.tenders.cash, basket.tenders.card, basket.tenders.other]) {
                *count += usize::from(!tender.is_zero());
            }
        }
        assert!(by[0] > by[1] && by[1] > by[2] && by[2] > 0, "mostly cash, some card, a few certificates: {by:?}");
    }

    #[test]
    fn a_refund_goes_back_the_way_it_was_paid_and_adds_up() {
        let money = |s: &str| s.parse::<Money>().unwrap();
        let paid = Tenders { cash: money("3.00"), card: money("7.50"), other: money("5.00") };
        for (amount, cash, card, other) in [
            ("2.00", "2.00", "0.00", "0.00"),
            ("4.79", "3.00", "1.79", "0.00"),
            ("12.00", "3.00", "7.50", "1.50"),
            ("15.50", "3.00", "7.50", "5.00"),
        ] {
            let back = refund(&paid, money(amount));
            assert_eq!(back, Tenders { cash: money(cash), card: money(card), other: money(other) }, "{amount}");
            assert_eq!(back.total(), money(amount));
        }
    }

    #[test]
    fn withdrawals_never_exceed_the_drawer() {
        let mut rng = fastrand::Rng::with_seed(7);
        assert_eq!(withdrawal(Money::from_kopecks(999), &mut rng), None);
        for kopecks in [1000, 1099, 5000, 123_456, 10_000_000] {
            let drawer = Money::from_kopecks(kopecks);
            for _ in 0..100 {
                let amount = withdrawal(drawer, &mut rng).unwrap();
                assert!(!amount.is_zero() && amount <= drawer, "{amount} of {drawer}");
            }
        }
    }

    #[test]
    fn a_day_opens_sells_and_closes_in_order_within_shop_hours() {
        let date = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        let mut rng = fastrand::Rng::with_seed(1);
        let plan = plan_day(&mut rng, date);
        assert!(matches!(plan.first(), Some((_, Action::OpenShift))));
        assert!(matches!(plan.last(), Some((_, Action::CloseShift))));
        assert!(plan.windows(2).all(|pair| pair[0].0 <= pair[1].0));
        let sales = plan.iter().filter(|(_, action)| matches!(action, Action::Sale(_))).count();
        assert!((15..=40).contains(&sales));
        assert!(plan[0].0 >= utc("2026-11-20T09:00:00+03:00") && plan[0].0 < utc("2026-11-20T09:10:00+03:00"));
        assert!(plan.last().unwrap().0 < utc("2026-11-20T20:10:00+03:00"));
        // The same seed makes the same day.
        let again = plan_day(&mut fastrand::Rng::with_seed(1), date);
        assert_eq!(format!("{plan:?}"), format!("{again:?}"));
    }

    #[test]
    fn the_clock_never_goes_back() {
        let t0 = utc("2026-11-05T09:00:00+03:00");
        let clock = DemoClock::at(t0);
        assert_eq!(clock.now(), t0);
        clock.set(t0 - TimeDelta::hours(1));
        assert_eq!(clock.now(), t0, "set into the past");
        clock.set(t0 + TimeDelta::hours(2));
        assert_eq!(clock.now(), t0 + TimeDelta::hours(2));
        clock.go_live();
        let live = clock.now();
        assert!(live >= Utc::now() - TimeDelta::seconds(5) && live > t0);
        assert!(clock.now() >= live);

        let ahead = Utc::now() + TimeDelta::days(1);
        let clock = DemoClock::at(ahead);
        assert_eq!(clock.now(), ahead);
        clock.go_live();
        assert_eq!(clock.now(), ahead, "the system clock behind the time shown");
    }

    #[test]
    fn history_covers_thirty_days_or_resumes_where_the_journal_ends() {
        let now = utc("2026-12-05T14:00:00+03:00");
        let morning = utc("2026-11-06T08:00:00+03:00");
        assert_eq!(history_start(None, now), Some(morning));
        let yesterday = utc("2026-12-04T15:30:00+03:00");
        assert_eq!(history_start(Some(yesterday), now), Some(yesterday));
        assert_eq!(history_start(Some(utc("2026-01-01T10:00:00+03:00")), now), Some(morning));
        assert_eq!(history_start(Some(utc("2026-12-05T00:30:00+03:00")), now), None);
    }

    #[test]
    fn a_shift_is_renewed_after_23_hours_or_at_midnight() {
        let opened = DateTime::parse_from_rfc3339("2026-12-05T09:00:00+03:00").unwrap();
        assert!(!shift_is_stale(opened, utc("2026-12-05T20:00:00+03:00")));
        assert!(shift_is_stale(opened, utc("2026-12-06T00:00:01+03:00")));
        let night = DateTime::parse_from_rfc3339("2026-12-05T00:10:00+03:00").unwrap();
        assert!(shift_is_stale(night, utc("2026-12-05T23:10:01+03:00")));
    }

    #[test]
    fn the_catalogue_has_valid_barcodes_and_prices() {
        for product in &CATALOGUE {
            assert!(product.price > 0 && protocol::document::valid_text(product.name), "{}", product.name);
            if let Some(gtin) = product.gtin {
                let digits: Vec<u32> = gtin.chars().map(|c| c.to_digit(10).unwrap()).collect();
                assert_eq!(digits.len(), 13, "{gtin}");
                let weighted: u32 =
                    digits[..12].iter().enumerate().map(|(i, d)| d * if i % 2 == 1 { 3 } else { 1 }).sum();
                assert_eq!((10 - weighted % 10) % 10, digits[12], "check digit of {gtin}");
            }
        }
    }

    #[test]
    fn the_agent_accepts_the_written_configuration() {
        let text = agent_toml(&REGISTERS[0], "http://127.0.0.1:8080", NaiveDate::from_ymd_opt(2026, 12, 5).unwrap());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "secret\n").unwrap();
        let config = agent::config::Config::parse(&text, &dir.path().join("agent.toml")).unwrap();
        assert_eq!(config.register.org_name, ORG_NAME);
        assert_eq!(config.server.unwrap().token, "secret");
        assert_eq!(config.data_dir, dir.path().join("journal"));
        assert_eq!(config.register.tsok_expires_at.unwrap().to_rfc3339(), "2028-09-19T23:59:59+03:00");
    }
}
