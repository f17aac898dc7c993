//! `agent.toml`: what the agent is told about its register and its surroundings
//! (CONTRACTS §1). Parsed once at start into domain types; every mistake is reported with
//! the key it concerns.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset};
use chrono_tz::Tz;
use protocol::{DocumentNumber, Money, RegNumber, Serial, ShiftNumber, Unp};
use serde::Deserialize;

/// The agent's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The register this agent journals for.
    pub register: RegisterConfig,
    /// Where the journal lives.
    pub data_dir: PathBuf,
    /// Where the POS API listens.
    pub listen: SocketAddr,
    /// The cabinet server, when delivery is configured.
    pub server: Option<ServerConfig>,
    /// The register's limits.
    pub rules: RulesConfig,
}

/// The register's identity and its starting figures.
#[derive(Clone, Debug)]
pub struct RegisterConfig {
    /// РН СККО.
    pub reg_number: RegNumber,
    /// Номер СКО.
    pub serial: Serial,
    /// The taxpayer.
    pub unp: Unp,
    /// The legal entity's full name, as printed.
    pub org_name: String,
    /// Model/info line (`9.1.18.1 - TitanPos Mobile`).
    pub info: String,
    /// The POS software's version.
    pub pos_version: String,
    /// When the ТСОК expires.
    pub tsok_expires_at: Option<DateTime<FixedOffset>>,
    /// The register's time zone (documents carry its local time).
    pub time_zone: Tz,
    /// Where a register moving from another system starts; read once, when the journal is created.
    pub start: StartFigures,
}

/// The figures a new journal starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StartFigures {
    /// The first document's number.
    pub number: DocumentNumber,
    /// The first shift's number.
    pub shift: ShiftNumber,
    /// The cumulative total before the first shift.
    pub cumulative_total: Money,
    /// The cash in the drawer before the first document.
    pub cash_in_drawer: Money,
}

/// How to reach the cabinet server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Base URL (`https://cabinet.example.by`).
    pub url: String,
    /// The device token.
    pub token: String,
    /// A PEM file of extra trust roots.
    pub ca_file: Option<PathBuf>,
    /// DNS servers to ask instead of the system's (needed where there is no
    /// `/etc/resolv.conf`, as on Android).
    pub resolvers: Vec<std::net::IpAddr>,
    /// How long one request to the server may take.
    pub timeout: std::time::Duration,
    /// How often to send a heartbeat when there is nothing to deliver.
    pub heartbeat: std::time::Duration,
    /// The longest wait between two failed attempts.
    pub retry_max: std::time::Duration,
}

/// The register's limits.
#[derive(Clone, Copy, Debug)]
pub struct RulesConfig {
    /// A shift longer than this accepts nothing but its closing.
    pub max_shift_hours: u32,
    /// An undelivered entry older than this blocks the register.
    pub max_undelivered_days: u32,
}

impl Default for RulesConfig {
    fn default() -> Self {
        RulesConfig { max_shift_hours: 24, max_undelivered_days: 30 }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's explanation, with the line.
        message: String,
    },
    /// A value is present but wrong.
    #[error("{path}: [{key}]: {message}")]
    Value {
        /// The file.
        path: PathBuf,
        /// The key, as `section.key`.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    register: RawRegister,
    storage: RawStorage,
    #[serde(default)]
    pos_api: RawPosApi,
    server: Option<RawServer>,
    #[serde(default)]
    rules: RawRules,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegister {
    reg_number: String,
    serial: String,
    unp: String,
    org_name: String,
    #[serde(default)]
    info: String,
    #[serde(default)]
    pos_version: String,
    tsok_expires_at: Option<String>,
    time_zone: Option<String>,
    start_number: Option<u64>,
    start_shift: Option<u32>,
    start_cumulative_total: Option<String>,
    start_cash_in_drawer: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    data_dir: PathBuf,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPosApi {
    listen: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    url: String,
    token: Option<String>,
    token_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    #[serde(default)]
    resolvers: Vec<String>,
    timeout_secs: Option<u64>,
    heartbeat_secs: Option<u64>,
    retry_max_secs: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRules {
    max_shift_hours: Option<u32>,
    max_undelivered_days: Option<u32>,
}

/// The POS API's default address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8710";

impl Config {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Config::parse(&text, path)
    }

    /// Checks the text of a configuration file (`path` is only for messages and for
    /// resolving relative paths).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::Syntax { path: path.to_owned(), message: e.to_string() })?;
        let bad = |key: &'static str, message: String| ConfigError::Value { path: path.to_owned(), key, message };
        let base = path.parent().unwrap_or(Path::new("."));
        let r = raw.register;

        let time_zone = match r.time_zone.as_deref() {
            None => chrono_tz::Europe::Minsk,
            Some(name) => {
                name.parse::<Tz>().map_err(|_| bad("register.time_zone", format!("unknown IANA time zone {name:?}")))?
            }
        };
        let money = |key, value: Option<String>| -> Result<Money, ConfigError> {
            value.map_or(Ok(Money::ZERO), |v| v.parse().map_err(|e: protocol::AmountError| bad(key, e.to_string())))
        };
        let nonempty = |key, value: String| {
            if value.trim().is_empty() { Err(bad(key, "must not be empty".into())) } else { Ok(value) }
        };
        let register = RegisterConfig {
            reg_number: r
                .reg_number
                .parse()
                .map_err(|e: protocol::IdError| bad("register.reg_number", e.to_string()))?,
            serial: r.serial.parse().map_err(|e: protocol::IdError| bad("register.serial", e.to_string()))?,
            unp: r.unp.parse().map_err(|e: protocol::IdError| bad("register.unp", e.to_string()))?,
            org_name: nonempty("register.org_name", r.org_name)?,
            info: r.info,
            pos_version: r.pos_version,
            tsok_expires_at: r
                .tsok_expires_at
                .map(|t| DateTime::parse_from_rfc3339(&t))
                .transpose()
                .map_err(|e| bad("register.tsok_expires_at", format!("expected RFC 3339 with offset: {e}")))?,
            time_zone,
            start: StartFigures {
                number: DocumentNumber(match r.start_number {
                    Some(0) => return Err(bad("register.start_number", "numbers start from 1".into())),
                    n => n.unwrap_or(1),
                }),
                shift: ShiftNumber(match r.start_shift {
                    Some(0) => return Err(bad("register.start_shift", "shifts start from 1".into())),
                    n => n.unwrap_or(1),
                }),
                cumulative_total: money("register.start_cumulative_total", r.start_cumulative_total)?,
                cash_in_drawer: money("register.start_cash_in_drawer", r.start_cash_in_drawer)?,
            },
        };

        let listen_text = raw.pos_api.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen: SocketAddr = listen_text
            .parse()
            .map_err(|_| bad("pos_api.listen", format!("{listen_text:?} is not an address like {DEFAULT_LISTEN}")))?;
        if !listen.ip().is_loopback() {
            return Err(bad(
                "pos_api.listen",
                format!("{listen} is not a loopback address: the POS API serves this terminal only"),
            ));
        }

        let server = raw
            .server
            .map(|s| {
                if !(s.url.starts_with("https://") || s.url.starts_with("http://")) {
                    return Err(bad("server.url", format!("{:?} must start with https:// (or http://)", s.url)));
                }
                let token = match (s.token, s.token_file) {
                    (Some(token), None) => token,
                    (None, Some(file)) => {
                        let file = base.join(file);
                        std::fs::read_to_string(&file)
                            .map_err(|e| bad("server.token_file", format!("cannot read {}: {e}", file.display())))?
                            .trim()
                            .to_owned()
                    }
                    _ => return Err(bad("server.token", "give exactly one of token and token_file".into())),
                };
                if token.is_empty() {
                    return Err(bad("server.token", "must not be empty".into()));
                }
                let resolvers = s
                    .resolvers
                    .iter()
                    .map(|r| r.parse().map_err(|_| bad("server.resolvers", format!("{r:?} is not an IP address"))))
                    .collect::<Result<_, _>>()?;
                let seconds = |key, value: Option<u64>, default: u64, max: u64| match value {
                    Some(v) if v == 0 || v > max => Err(bad(key, format!("must be from 1 to {max}"))),
                    v => Ok(std::time::Duration::from_secs(v.unwrap_or(default))),
                };
                const DAY: u64 = 24 * 60 * 60;
                Ok(ServerConfig {
                    url: s.url.trim_end_matches('/').to_owned(),
                    token,
                    ca_file: s.ca_file.map(|f| base.join(f)),
                    resolvers,
                    timeout: seconds("server.timeout_secs", s.timeout_secs, 30, 600)?,
                    heartbeat: seconds("server.heartbeat_secs", s.heartbeat_secs, 300, DAY)?,
                    retry_max: seconds("server.retry_max_secs", s.retry_max_secs, 120, DAY)?,
                })
            })
            .transpose()?;

        let defaults = RulesConfig::default();
        let rules = RulesConfig {
            max_shift_hours: raw.rules.max_shift_hours.unwrap_or(defaults.max_shift_hours),
            max_undelivered_days: raw.rules.max_undelivered_days.unwrap_or(defaults.max_undelivered_days),
        };
        if rules.max_shift_hours == 0 {
            return Err(bad("rules.max_shift_hours", "must be at least 1".into()));
        }
        if rules.max_undelivered_days == 0 {
            return Err(bad("rules.max_undelivered_days", "must be at least 1".into()));
        }

        Ok(Config { register, data_dir: base.join(raw.storage.data_dir), listen, server, rules })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[register]
reg_number = "119026501"
serial = "AVQ11169990740"
unp = "100231650"
org_name = "ЧУП \"АВТО-КОМБИ\""
[storage]
data_dir = "data"
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/agent/agent.toml"))
    }

    #[test]
    fn minimal_config_gets_the_defaults() {
        let config = parse(MINIMAL).unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.register.time_zone, chrono_tz::Europe::Minsk);
        assert_eq!(config.data_dir, Path::new("/etc/agent/data"));
        assert_eq!(config.register.start.number, DocumentNumber(1));
        assert_eq!(config.register.start.shift, ShiftNumber(1));
        assert_eq!(config.rules.max_shift_hours, 24);
        assert_eq!(config.rules.max_undelivered_days, 30);
        assert!(config.server.is_none());
    }

    #[test]
    fn mistakes_name_their_key() {
        let cases = [
            (MINIMAL.replace("119026501", "11902650"), "register.reg_number"),
            (MINIMAL.replace("100231650", "100231651"), "register.unp"),
            (format!("{MINIMAL}[rules]\nmax_shift_hours = 0\n"), "rules.max_shift_hours"),
            (
                MINIMAL.replace("[storage]", "start_cumulative_total = \"1.234\"\n[storage]"),
                "register.start_cumulative_total",
            ),
            (MINIMAL.replace("[storage]", "time_zone = \"Mars/Olympus\"\n[storage]"), "register.time_zone"),
            (format!("{MINIMAL}[pos_api]\nlisten = \"localhost\"\n"), "pos_api.listen"),
            (format!("{MINIMAL}[pos_api]\nlisten = \"0.0.0.0:8710\"\n"), "pos_api.listen"),
            (format!("{MINIMAL}[server]\nurl = \"ftp://x\"\ntoken = \"t\"\n"), "server.url"),
            (format!("{MINIMAL}[server]\nurl = \"https://x\"\n"), "server.token"),
            (
                format!("{MINIMAL}[server]\nurl = \"https://x\"\ntoken = \"t\"\nresolvers = [\"dns.google\"]\n"),
                "server.resolvers",
            ),
            (
                format!("{MINIMAL}[server]\nurl = \"https://x\"\ntoken = \"t\"\ntimeout_secs = 0\n"),
                "server.timeout_secs",
            ),
            (
                format!("{MINIMAL}[server]\nurl = \"https://x\"\ntoken = \"t\"\nheartbeat_secs = 99999999999\n"),
                "server.heartbeat_secs",
            ),
        ];
        for (text, key) in cases {
            let err = parse(&text).unwrap_err();
            assert!(matches!(&err, ConfigError::Value { key: k, .. } if *k == key), "{key}: {err}");
        }
        assert!(matches!(parse("[register]\n"), Err(ConfigError::Syntax { .. })));
        assert!(matches!(parse(&format!("{MINIMAL}bogus = 1\n")), Err(ConfigError::Syntax { .. })));
    }
}
