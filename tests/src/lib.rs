//! Helpers for the end-to-end tests: finding and running the real binaries, the golden data.
//!
//! The agent binary is `target/<profile>/agent`, built on demand; `AGENT_BIN` points at
//! another one (the ARM64 build) and `AGENT_RUNNER` names a program to run it with
//! (`qemu-aarch64`).

pub mod portal;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use agent::journal::Reader;
use protocol::RegNumber;

/// The folder of shared test data (`tests/golden`).
pub fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden")
}

/// The workspace's target directory for this profile (`target/debug`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>
    exe.parent().and_then(Path::parent).expect("target/<profile>").to_owned()
}

/// Builds `package`'s binary of the same name in this test's profile; returns its path.
fn build(package: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "-p", package, "--bin", package]);
    if profile_dir().file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("running cargo build");
    assert!(status.success(), "building {package} failed");
    profile_dir().join(package)
}

/// The agent binary under test, built if needed (or `AGENT_BIN`).
pub fn agent_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| std::env::var_os("AGENT_BIN").map_or_else(|| build("agent"), PathBuf::from)).clone()
}

/// The cabinet-server binary, built if needed.
pub fn server_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build("cabinet-server")).clone()
}

/// A command that runs the agent binary (through `AGENT_RUNNER` when set).
pub fn agent_command() -> Command {
    let bin = agent_binary();
    match std::env::var_os("AGENT_RUNNER") {
        Some(runner) => {
            let mut command = Command::new(runner);
            command.arg(bin);
            command
        }
        None => Command::new(bin),
    }
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The register every agent test uses.
pub const REG_NUMBER: &str = "119026501";

/// An agent process on a data directory of its own.
pub struct AgentProcess {
    /// The running process, if any.
    pub child: Option<Child>,
    /// The POS API's base URL.
    pub url: String,
    /// The configuration file.
    pub config_path: PathBuf,
    /// The journal's folder.
    pub data_dir: PathBuf,
}

impl AgentProcess {
    /// Writes a configuration for `data_dir` (plus `extra` TOML appended to `[register]`)
    /// into `dir`, without starting anything.
    pub fn configure(dir: &Path, data_dir: &Path, extra_register: &str) -> AgentProcess {
        AgentProcess::configure_with(dir, data_dir, extra_register, "")
    }

    /// Like [`AgentProcess::configure`], with `tail` (more sections) appended.
    pub fn configure_with(dir: &Path, data_dir: &Path, extra_register: &str, tail: &str) -> AgentProcess {
        let port = free_port();
        let config_path = dir.join("agent.toml");
        std::fs::write(
            &config_path,
            format!(
                r#"[register]
reg_number = "{REG_NUMBER}"
serial = "AVQ11169990740"
unp = "100231650"
org_name = "Торговое частное унитарное предприятие \"АВТО-КОМБИ\""
info = "9.1.18.1 - TitanPos Mobile"
pos_version = "2.1.0"
{extra_register}
[storage]
data_dir = "{}"
[pos_api]
listen = "127.0.0.1:{port}"
{tail}
"#,
                data_dir.display()
            ),
        )
        .unwrap();
        AgentProcess {
            child: None,
            url: format!("http://127.0.0.1:{port}"),
            config_path,
            data_dir: data_dir.to_owned(),
        }
    }

    /// Starts the agent and waits until it answers.
    pub fn start(&mut self) {
        self.spawn();
        self.wait_ready();
    }

    /// Starts the agent without waiting for it; returns its pid.
    pub fn spawn(&mut self) -> u32 {
        assert!(self.child.is_none(), "already running");
        let child = agent_command()
            .args(["run", "--config"])
            .arg(&self.config_path)
            .env("RUST_LOG", std::env::var("E2E_LOG").unwrap_or_else(|_| "error".into()))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the agent");
        let pid = child.id();
        self.child = Some(child);
        pid
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let address = self.url.trim_start_matches("http://").to_owned();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("the agent exited at start: {status}");
            }
            if let Ok(mut stream) = std::net::TcpStream::connect(&address) {
                use std::io::{Read, Write};
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                if stream.write_all(b"GET /v1/status HTTP/1.0\r\n\r\n").is_ok() {
                    let mut answer = String::new();
                    let _ = stream.read_to_string(&mut answer);
                    if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
                        return;
                    }
                }
            }
            assert!(Instant::now() < deadline, "the agent did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the agent with SIGKILL: no chance to clean up, as in a power cut of the process.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().unwrap();
        }
    }

    /// Stops the agent with SIGTERM (systemd's stop) and waits for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: sending a signal to our own child process.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let status = child.wait().unwrap();
            assert!(status.success(), "the agent did not stop cleanly: {status}");
        }
    }

    /// A reader of the agent's journal.
    pub fn reader(&self) -> Reader {
        Reader::open(&self.data_dir, REG_NUMBER.parse::<RegNumber>().unwrap()).unwrap()
    }

    /// Runs `agent <args> --config <file>` to completion; returns its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = agent_command().args(args).arg("--config").arg(&self.config_path).output().unwrap();
        assert!(output.status.success(), "agent {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A cabinet-server process on a database of its own.
pub struct ServerProcess {
    /// The running process, if any.
    pub child: Option<Child>,
    /// Its base URL.
    pub url: String,
    /// Its configuration file.
    pub config_path: PathBuf,
    /// Its database file.
    pub database: PathBuf,
}

impl ServerProcess {
    /// Writes a configuration into `dir` (a free port, a SQLite database there).
    pub fn configure(dir: &Path) -> ServerProcess {
        let port = free_port();
        let database = dir.join("cabinet.sqlite");
        let config_path = dir.join("cabinet.toml");
        std::fs::write(
            &config_path,
            format!(
                "[http]\nlisten = \"127.0.0.1:{port}\"\n[database]\nurl = \"sqlite:{}\"\n[mail]\nspool = \"{}\"\n",
                database.display(),
                dir.join("mail").display()
            ),
        )
        .unwrap();
        ServerProcess { child: None, url: format!("http://127.0.0.1:{port}"), config_path, database }
    }

    /// Runs `cabinet-server --config <file> <args>`; returns its stdout's last line.
    pub fn admin(&self, args: &[&str]) -> String {
        let output = Command::new(server_binary()).arg("--config").arg(&self.config_path).args(args).output().unwrap();
        assert!(output.status.success(), "cabinet-server {args:?}: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap().lines().last().unwrap_or_default().to_owned()
    }

    /// Adds the manual's taxpayer, an object and register `reg`; returns the device token.
    pub fn register_device(&self, reg: &str, serial: &str) -> String {
        let _ = Command::new(server_binary())
            .arg("--config")
            .arg(&self.config_path)
            .args(["admin", "unp", "add", "--unp", "100231650", "--name", "ЧУП \"АВТО-КОМБИ\""])
            .output();
        let object =
            self.admin(&["admin", "object", "add", "--unp", "100231650", "--name", "Офис", "--address", "г. Минск"]);
        self.admin(&[
            "admin",
            "device",
            "add",
            "--unp",
            "100231650",
            "--object",
            &object,
            "--reg-number",
            reg,
            "--serial",
            serial,
            "--commissioned",
            "2022-09-19",
        ])
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(server_binary())
            .arg("--config")
            .arg(&self.config_path)
            .arg("serve")
            .env("RUST_LOG", std::env::var("E2E_LOG").unwrap_or_else(|_| "error".into()))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the server");
        self.child = Some(child);
        let address = self.url.trim_start_matches("http://").to_owned();
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(&address).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("the server exited at start: {status}");
            }
            assert!(Instant::now() < deadline, "the server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server with SIGKILL.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().unwrap();
        }
    }

    /// The server's store, opened beside it (WAL lets both read and write).
    pub fn store(&self) -> cabinet_server::store::sqlite::SqliteStore {
        cabinet_server::store::sqlite::SqliteStore::open(&self.database).unwrap()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The `[server]` section pointing an agent at `url` with `token`, with short timeouts so
/// that tests recover quickly.
pub fn server_section(url: &str, token: &str) -> String {
    format!(
        "[server]\nurl = \"{url}\"\ntoken = \"{token}\"\ntimeout_secs = 2\nretry_max_secs = 1\nheartbeat_secs = 1\n"
    )
}

/// Waits (up to `limit`) until `done()` holds; panics with `what` otherwise.
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What a [`Proxy`] does to each new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyMode {
    /// Pass everything through.
    Pass,
    /// At random: refuse, reset, stall past the client's timeout, cut at a random moment
    /// (perhaps after the server committed), or pass.
    Chaos,
    /// Pass the request, and when the server's answer starts to arrive (it committed),
    /// SIGKILL the victim ([`Proxy::set_victim`]) before the answer reaches it — once, then pass.
    KillOnAnswer,
}

/// A TCP proxy between the agent and the server that misbehaves on demand.
pub struct Proxy {
    /// Its address (`http://127.0.0.1:port`).
    pub url: String,
    mode: std::sync::Arc<std::sync::Mutex<ProxyMode>>,
    victim: std::sync::Arc<std::sync::atomic::AtomicU32>,
    /// How many connections it cut, stalled or refused.
    pub faults: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// What a connection handler shares with the proxy.
struct Shared {
    mode: std::sync::Arc<std::sync::Mutex<ProxyMode>>,
    victim: std::sync::Arc<std::sync::atomic::AtomicU32>,
    faults: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Proxy {
    /// Starts a proxy to `upstream` (`http://host:port`) on the current tokio runtime.
    pub async fn start(upstream: &str) -> Proxy {
        use std::sync::atomic::AtomicUsize;
        use std::sync::{Arc, Mutex};
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mode = Arc::new(Mutex::new(ProxyMode::Pass));
        let faults = Arc::new(AtomicUsize::new(0));
        let victim = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let shared = Arc::new(Shared { mode: mode.clone(), victim: victim.clone(), faults: faults.clone() });
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let shared = shared.clone();
                tokio::spawn(async move { handle(client, &upstream, &shared).await });
            }
        });
        Proxy { url, mode, victim, faults }
    }

    /// The process [`ProxyMode::KillOnAnswer`] kills.
    pub fn set_victim(&self, pid: u32) {
        self.victim.store(pid, std::sync::atomic::Ordering::SeqCst);
    }

    /// Changes what it does to new connections.
    pub fn set_mode(&self, mode: ProxyMode) {
        *self.mode.lock().unwrap() = mode;
    }
}

/// Closes `stream` with a TCP reset instead of a clean close.
fn reset(stream: tokio::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: setting a socket option on a socket we own, with a correctly sized value.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(stream);
}

async fn handle(mut client: tokio::net::TcpStream, upstream: &str, shared: &Shared) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fault = || shared.faults.fetch_add(1, Ordering::SeqCst);
    let mode = *shared.mode.lock().unwrap();
    match mode {
        ProxyMode::Pass => {}
        ProxyMode::Chaos => match fastrand::u32(0..100) {
            0..15 => {
                fault();
                return; // closed at once
            }
            15..30 => {
                fault();
                reset(client);
                return;
            }
            30..45 => {
                fault();
                tokio::time::sleep(Duration::from_millis(3000)).await; // past the agent's timeout
                return;
            }
            45..65 => {
                fault();
                let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else { return };
                let cut = Duration::from_millis(fastrand::u64(0..60));
                let _ = tokio::time::timeout(cut, tokio::io::copy_bidirectional(&mut client, &mut server)).await;
                return;
            }
            _ => {
                // Even a good connection lives only a while: keep-alive must not dodge the chaos.
                let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else { return };
                let life = Duration::from_millis(fastrand::u64(100..1500));
                if tokio::time::timeout(life, tokio::io::copy_bidirectional(&mut client, &mut server)).await.is_err() {
                    fault();
                }
                return;
            }
        },
        ProxyMode::KillOnAnswer => {
            let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else { return };
            let (mut client_read, mut client_write) = client.split();
            let (mut server_read, mut server_write) = server.split();
            let request = async {
                let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
            };
            let answer = async {
                let mut first = [0u8; 1];
                if server_read.read(&mut first).await.unwrap_or(0) == 1 {
                    // The server answers only after its commit: kill the agent before it hears.
                    // SAFETY: signalling a process this test started.
                    let pid = shared.victim.load(Ordering::SeqCst);
                    assert!(pid > 0, "no victim set");
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                    fault();
                    *shared.mode.lock().unwrap() = ProxyMode::Pass;
                }
            };
            tokio::select! {
                _ = request => {}
                _ = answer => {}
            }
            let _ = client_write.shutdown().await;
            return;
        }
    }
    let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else { return };
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

/// The manual's chocolate bar, 4.79, as a sale line.
pub fn chocolate() -> protocol::Item {
    protocol::Item {
        name: "Шоколад молочный \"Ritter sport\" ром изюм орех 100г".into(),
        gtin: Some("3702760306879".into()),
        section: 3,
        price: "4.79".parse().unwrap(),
        quantity: protocol::Quantity::ONE,
    }
}

/// Writes `n` cash payments of [`chocolate`] into a new journal in `data_dir`, through the
/// agent's own rules and journal (big transactions), leaving the shift open: a big journal
/// for benchmarks, in seconds.
pub fn prefill_journal(data_dir: &Path, n: u64) {
    use agent::rules::{Command as PosCommand, DocumentRequest, decide};
    use protocol::{DocumentNumber, Money, ShiftNumber, Tenders};
    let start = agent::config::StartFigures {
        number: DocumentNumber(1),
        shift: ShiftNumber(1),
        cumulative_total: Money::ZERO,
        cash_in_drawer: Money::ZERO,
    };
    let mut journal = agent::journal::Journal::open(data_dir, REG_NUMBER.parse().unwrap(), &start).unwrap();
    let (mut state, mut head) = journal.load().unwrap();
    let rules = agent::config::RulesConfig::default();
    let now = chrono::Utc::now().fixed_offset();
    let open = decide(&state, &rules, &PosCommand::OpenShift { cashier: "Иванов".into() }, None, now).unwrap();
    let item = chocolate();
    let payment = PosCommand::Document {
        cashier: "Иванов".into(),
        request: DocumentRequest::Payment { tenders: Tenders::cash(item.price), items: vec![item] },
    };
    let mut pending = vec![open];
    let mut written = 0;
    while written < n {
        let tx = journal.begin().unwrap();
        for _ in 0..(n - written).min(20_000) {
            if pending.is_empty() {
                pending.push(decide(&state, &rules, &payment, None, now).unwrap());
                written += 1;
            }
            for decision in pending.drain(..) {
                for payload in &decision.payloads {
                    tx.append(&mut head, payload).unwrap();
                }
                state = decision.state;
            }
        }
        tx.save_state(&state, &head).unwrap();
        tx.commit().unwrap();
    }
}

/// A minimal keep-alive HTTP/1.1 client for the benchmarks, so that the figures are the
/// server's and not an HTTP client library's.
pub struct RawClient {
    stream: tokio::io::BufStream<tokio::net::TcpStream>,
}

impl RawClient {
    /// Connects to `url` (`http://host:port`).
    pub async fn connect(url: &str) -> RawClient {
        let address = url.trim_start_matches("http://");
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.set_nodelay(true).unwrap();
        RawClient { stream: tokio::io::BufStream::new(stream) }
    }

    /// POSTs a JSON `body` to `path`; returns the status.
    pub async fn post(&mut self, path: &str, body: &str) -> u16 {
        self.send("POST", path, "Content-Type: application/json\r\n", body).await.0
    }

    /// Sends one request (`headers` each ending in CRLF); returns the status and the body.
    pub async fn send(&mut self, method: &str, path: &str, headers: &str, body: &str) -> (u16, Vec<u8>) {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        let request =
            format!("{method} {path} HTTP/1.1\r\nHost: bench\r\n{headers}Content-Length: {}\r\n\r\n{body}", body.len());
        self.stream.write_all(request.as_bytes()).await.unwrap();
        self.stream.flush().await.unwrap();
        let mut line = String::new();
        self.stream.read_line(&mut line).await.unwrap();
        let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut length = 0;
        loop {
            line.clear();
            self.stream.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut answer = vec![0; length];
        self.stream.read_exact(&mut answer).await.unwrap();
        (status, answer)
    }
}
