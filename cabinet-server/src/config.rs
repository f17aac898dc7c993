//! `cabinet.toml` and its environment overrides (`CABINET_<SECTION>_<KEY>`, which win over
//! the file). With neither, the defaults serve a first run on one machine.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The server's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen (`[http] listen`).
    pub listen: SocketAddr,
    /// The database (`[database] url`: `sqlite:path`, a plain path, or `postgres://…`).
    pub database_url: String,
    /// Where outgoing mail is written as `.eml` files (`[mail] spool`).
    pub mail_spool: PathBuf,
    /// The certificate and key to serve HTTPS with (`[tls] cert, key`).
    pub tls: Option<Tls>,
}

/// PEM files for HTTPS.
#[derive(Clone, Debug)]
pub struct Tls {
    /// The certificate chain.
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
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
        /// What is wrong.
        message: String,
    },
    /// A value is wrong.
    #[error("{key}: {message}")]
    Value {
        /// The key (`http.listen` or `CABINET_HTTP_LISTEN`).
        key: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    database: RawDatabase,
    #[serde(default)]
    mail: RawMail,
    #[serde(default)]
    tls: RawTls,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMail {
    spool: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Option<String>,
    key: Option<String>,
}

/// The default address of the server.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default database: a SQLite file in `cabinet-data/`.
pub const DEFAULT_DATABASE: &str = "sqlite:cabinet-data/cabinet.sqlite";

impl Config {
    /// Reads `path` (if given) and applies the environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let raw = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
                toml::from_str(&text)
                    .map_err(|e| ConfigError::Syntax { path: path.to_owned(), message: e.to_string() })?
            }
            None => RawConfig::default(),
        };
        let base = path.and_then(Path::parent).unwrap_or(Path::new("."));
        Config::resolve(raw, base, |key| std::env::var(key).ok())
    }

    fn resolve(raw: RawConfig, base: &Path, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let pick = |file: Option<String>, var: &str| env(var).or(file);
        let listen_text = pick(raw.http.listen, "CABINET_HTTP_LISTEN").unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen = listen_text.parse().map_err(|_| ConfigError::Value {
            key: "http.listen".into(),
            message: format!("{listen_text:?} is not an address like {DEFAULT_LISTEN}"),
        })?;
        let relative = |p: String| base.join(p);
        let database_url = pick(raw.database.url, "CABINET_DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE.into());
        let database_url = match database_url.strip_prefix("sqlite:") {
            // A relative SQLite path is relative to the config file.
            Some(path) if !path.starts_with('/') && !path.starts_with("//") => {
                format!("sqlite:{}", relative(path.into()).display())
            }
            _ => database_url,
        };
        let mail_spool =
            relative(pick(raw.mail.spool, "CABINET_MAIL_SPOOL").unwrap_or_else(|| "cabinet-data/mail".into()));
        let tls = match (pick(raw.tls.cert, "CABINET_TLS_CERT"), pick(raw.tls.key, "CABINET_TLS_KEY")) {
            (Some(cert), Some(key)) => Some(Tls { cert: relative(cert), key: relative(key) }),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Value {
                    key: "tls".into(),
                    message: "give both cert and key, or neither".into(),
                });
            }
        };
        Ok(Config { listen, database_url, mail_spool, tls })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_wins_over_the_file_and_defaults_fill_the_rest() {
        let raw: RawConfig =
            toml::from_str("[http]\nlisten = \"127.0.0.1:9000\"\n[database]\nurl = \"sqlite:db.sqlite\"\n").unwrap();
        let env = |key: &str| (key == "CABINET_HTTP_LISTEN").then(|| "127.0.0.1:9100".to_owned());
        let config = Config::resolve(raw, Path::new("/etc/cabinet"), env).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:9100");
        assert_eq!(config.database_url, "sqlite:/etc/cabinet/db.sqlite");
        assert_eq!(config.mail_spool, Path::new("/etc/cabinet/cabinet-data/mail"));
        assert!(config.tls.is_none());

        let defaults = Config::resolve(RawConfig::default(), Path::new("."), |_| None).unwrap();
        assert_eq!(defaults.listen.to_string(), DEFAULT_LISTEN);
    }

    #[test]
    fn half_a_tls_pair_is_an_error() {
        let raw: RawConfig = toml::from_str("[tls]\ncert = \"c.pem\"\n").unwrap();
        assert!(matches!(Config::resolve(raw, Path::new("."), |_| None), Err(ConfigError::Value { .. })));
        let env = |key: &str| (key == "CABINET_HTTP_LISTEN").then(|| "nonsense".to_owned());
        assert!(Config::resolve(RawConfig::default(), Path::new("."), env).is_err());
    }
}
