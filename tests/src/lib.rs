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

/// The agent binary under test, built if needed.
pub fn agent_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("AGENT_BIN") {
            return PathBuf::from(bin);
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "-p", "agent", "--bin", "agent"]);
        if profile_dir().file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status().expect("running cargo build");
        assert!(status.success(), "building the agent failed");
        profile_dir().join("agent")
    })
    .clone()
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
            .env("RUST_LOG", "warn")
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
