//! Helpers for the end-to-end tests: finding and running the real binaries, the golden data.
//!
//! The agent binary is `target/<profile>/agent`, built on demand; `AGENT_BIN` points at
//! another one (the ARM64 build) and `AGENT_RUNNER` names a program to run it with
//! (`qemu-aarch64`).

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
        assert!(self.child.is_none(), "already running");
        let child = agent_command()
            .args(["run", "--config"])
            .arg(&self.config_path)
            .env("RUST_LOG", std::env::var("E2E_LOG").unwrap_or_else(|_| "error".into()))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the agent");
        self.child = Some(child);
        self.wait_ready();
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
