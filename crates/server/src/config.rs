//! The server's configuration: a TOML file, then `CASEFLOW_*` environment variables over it,
//! then the command line over both. `caseflow serve --check-config` loads and checks it all
//! (the district file, the store's directory, the users database) without serving.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use caseflow::domain::{Channel, Lang};
use serde::Deserialize;

/// Everything `caseflow serve` needs. Every field has a default except the store.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port to listen on (`127.0.0.1:8080`; put a reverse proxy in front for
    /// TLS and a public name, see docs/server.md).
    pub listen: SocketAddr,
    /// The SQLite store file. Required.
    pub store: Option<PathBuf>,
    /// The district file; the built-in sample district when absent.
    pub district: Option<PathBuf>,
    /// The users database; `<store stem>.users.db` beside the store when absent.
    pub users: Option<PathBuf>,
    /// SQLite durability: `full` (every acknowledged command is on disk; the default) or
    /// `normal` (faster; a power cut may lose the last commands, a process crash never).
    pub durability: Durability,
    /// The workbench's default language; the district file's language when absent.
    pub language: Option<String>,
    /// How long a sign-in lasts, in hours.
    pub session_hours: u32,
    /// Mark cookies `Secure` (set this when a TLS reverse proxy is in front).
    pub secure_cookies: bool,
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// Longest a request may take, in seconds, before it gets a 503 problem.
    pub request_timeout_seconds: u64,
    /// Requests per minute allowed per token or signed-in user (and per client address for
    /// requests that carry neither).
    pub rate_limit_per_minute: u32,
    /// Requests a client may send at once above the steady rate.
    pub rate_limit_burst: u32,
    /// How often the deadline watcher runs, in seconds (0: not in this process).
    pub watcher_interval_seconds: u64,
    /// Whether `/metrics` may be scraped without a token (only on a private network).
    pub metrics_public: bool,
    /// Logs as JSON lines (`json`, the default) or human-readable text (`text`).
    pub log_format: LogFormat,
    /// Open311 GeoReport v2 intake.
    pub open311: Open311Config,
}

/// SQLite durability of the store.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// `synchronous=FULL`.
    #[default]
    Full,
    /// `synchronous=NORMAL`.
    Normal,
}

/// Log line format.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One JSON object per line.
    #[default]
    Json,
    /// Human-readable.
    Text,
}

/// The Open311 intake's mapping onto the domain.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Open311Config {
    /// The channel every Open311 report comes in through (an online channel).
    pub channel: Channel,
    /// The jurisdiction id clients may send (any other is refused).
    pub jurisdiction_id: String,
}

impl Default for Open311Config {
    fn default() -> Self {
        Open311Config {
            channel: Channel::PettyPowerMiniProgram,
            jurisdiction_id: "caseflow".to_owned(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            store: None,
            district: None,
            users: None,
            durability: Durability::Full,
            language: None,
            session_hours: 8,
            secure_cookies: false,
            body_limit_bytes: 256 * 1024,
            request_timeout_seconds: 30,
            rate_limit_per_minute: 1200,
            rate_limit_burst: 200,
            watcher_interval_seconds: 300,
            metrics_public: false,
            log_format: LogFormat::Json,
            open311: Open311Config::default(),
        }
    }
}

/// A configuration that cannot be used. Every variant is the operator's to fix (a caller
/// error of the command line); none is worth retrying unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file cannot be read.
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML of the expected shape.
    #[error("invalid configuration file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (line, column, field).
        message: String,
    },
    /// An environment variable has a value the field cannot take.
    #[error("environment variable {name}: {message}")]
    Env {
        /// The variable.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("configuration `{field}`: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// The environment variables read over the file, with the field each sets.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("CASEFLOW_LISTEN", "listen"),
    ("CASEFLOW_STORE", "store"),
    ("CASEFLOW_DISTRICT", "district"),
    ("CASEFLOW_USERS", "users"),
    ("CASEFLOW_DURABILITY", "durability"),
    ("CASEFLOW_LANGUAGE", "language"),
    ("CASEFLOW_SESSION_HOURS", "session_hours"),
    ("CASEFLOW_SECURE_COOKIES", "secure_cookies"),
    ("CASEFLOW_BODY_LIMIT_BYTES", "body_limit_bytes"),
    (
        "CASEFLOW_REQUEST_TIMEOUT_SECONDS",
        "request_timeout_seconds",
    ),
    ("CASEFLOW_RATE_LIMIT_PER_MINUTE", "rate_limit_per_minute"),
    ("CASEFLOW_RATE_LIMIT_BURST", "rate_limit_burst"),
    (
        "CASEFLOW_WATCHER_INTERVAL_SECONDS",
        "watcher_interval_seconds",
    ),
    ("CASEFLOW_METRICS_PUBLIC", "metrics_public"),
    ("CASEFLOW_LOG_FORMAT", "log_format"),
    ("CASEFLOW_OPEN311_CHANNEL", "open311.channel"),
];

impl ServerConfig {
    /// Reads the file (if any), then applies `env` (name, value) pairs over it. Call
    /// [`ServerConfig::validate`] once the command line's values are set too.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<ServerConfig, ConfigError> {
        let mut table = match file {
            Some(path) => read_table(path)?,
            None => toml::Table::new(),
        };
        // The file alone, then each variable over it: an error names its origin.
        if let Some(path) = file {
            parse(&table).map_err(|message| ConfigError::Parse {
                path: path.to_path_buf(),
                message,
            })?;
        }
        for (name, value) in env {
            if let Some((_, field)) = ENV_VARS.iter().find(|(n, _)| *n == name) {
                set_field(&mut table, field, &value);
                parse(&table).map_err(|message| ConfigError::Env {
                    name: name.clone(),
                    message,
                })?;
            }
        }
        parse(&table).map_err(|message| ConfigError::Parse {
            path: file.map(Path::to_path_buf).unwrap_or_default(),
            message,
        })
    }

    /// Checks ranges and consistency (the district and files are checked when opened).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, message: &str| {
            Err(ConfigError::Invalid {
                field,
                message: message.to_owned(),
            })
        };
        if self.store.is_none() {
            return invalid(
                "store",
                "the store file is required (--db, CASEFLOW_STORE or `store = ...`)",
            );
        }
        if self.session_hours == 0 || self.session_hours > 24 * 30 {
            return invalid("session_hours", "must be between 1 and 720");
        }
        if self.body_limit_bytes < 1024 {
            return invalid("body_limit_bytes", "must be at least 1024");
        }
        if self.request_timeout_seconds == 0 {
            return invalid("request_timeout_seconds", "must be at least 1");
        }
        if self.rate_limit_per_minute == 0 || self.rate_limit_burst == 0 {
            return invalid("rate_limit_per_minute", "rate limits must be at least 1");
        }
        if let Some(tag) = &self.language {
            if Lang::parse(tag).is_none() {
                return invalid("language", "must be zh-CN or en");
            }
        }
        if self.open311.channel.group() != caseflow::domain::ChannelGroup::Online {
            return invalid(
                "open311.channel",
                "Open311 reports come in through an online channel",
            );
        }
        Ok(())
    }

    /// The store file (validated to be set).
    pub fn store_path(&self) -> &Path {
        self.store.as_deref().unwrap_or(Path::new("caseflow.db"))
    }

    /// The users database: the configured file, or `<stem>.users.db` beside the store.
    pub fn users_path(&self) -> PathBuf {
        self.users
            .clone()
            .unwrap_or_else(|| users_path_for(self.store_path()))
    }
}

/// The users database that goes with a store file (`cases.db` -> `cases.users.db`). Users
/// never go into the event log: they change (passwords, tokens) and would leak into exports.
pub fn users_path_for(store: &Path) -> PathBuf {
    let stem = store
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "caseflow".to_owned());
    store.with_file_name(format!("{stem}.users.db"))
}

/// The configuration a table holds, or the parser's message.
fn parse(table: &toml::Table) -> Result<ServerConfig, String> {
    table
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_owned())
}

fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text.parse::<toml::Table>().map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.message().to_owned(),
    })
}

/// Sets `field` (maybe `section.field`) to `value`, typed like TOML would read it: a
/// number, a boolean, or else a string.
fn set_field(table: &mut toml::Table, field: &str, value: &str) {
    let typed = if let Ok(n) = value.parse::<i64>() {
        toml::Value::Integer(n)
    } else if let Ok(b) = value.parse::<bool>() {
        toml::Value::Boolean(b)
    } else {
        toml::Value::String(value.to_owned())
    };
    match field.split_once('.') {
        Some((section, name)) => {
            let entry = table
                .entry(section.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(inner) = entry {
                inner.insert(name.to_owned(), typed);
            }
        }
        None => {
            table.insert(field.to_owned(), typed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn environment_overrides_the_file_and_unknown_variables_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.toml");
        std::fs::write(
            &file,
            "store = \"a.db\"\nsession_hours = 4\n[open311]\njurisdiction_id = \"x\"\n",
        )
        .unwrap();
        let config = ServerConfig::load(
            Some(&file),
            env(&[
                ("CASEFLOW_SESSION_HOURS", "2"),
                ("CASEFLOW_UNRELATED", "1"),
                ("CASEFLOW_OPEN311_CHANNEL", "photo_report_app"),
            ]),
        )
        .unwrap();
        assert_eq!(config.session_hours, 2);
        assert_eq!(config.store.as_deref(), Some(Path::new("a.db")));
        assert_eq!(config.open311.channel, Channel::PhotoReportApp);
        assert_eq!(config.open311.jurisdiction_id, "x");
        assert_eq!(config.users_path(), PathBuf::from("a.users.db"));
    }

    #[test]
    fn a_missing_store_an_unknown_field_and_an_offline_open311_channel_are_refused() {
        assert!(matches!(
            ServerConfig::load(None, env(&[])).unwrap().validate(),
            Err(ConfigError::Invalid { field: "store", .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.toml");
        std::fs::write(&file, "store = \"a.db\"\nlisten_port = 3\n").unwrap();
        let err = ServerConfig::load(Some(&file), env(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
        assert!(err.to_string().contains("listen_port"), "{err}");
        let err = ServerConfig::load(
            None,
            env(&[
                ("CASEFLOW_STORE", "a.db"),
                ("CASEFLOW_OPEN311_CHANNEL", "hotline"),
            ]),
        )
        .unwrap()
        .validate()
        .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                field: "open311.channel",
                ..
            }
        ));
        let err = ServerConfig::load(
            None,
            env(&[
                ("CASEFLOW_STORE", "a.db"),
                ("CASEFLOW_LISTEN", "nowhere"),
                ("CASEFLOW_SESSION_HOURS", "4"),
            ]),
        )
        .unwrap_err();
        assert!(
            matches!(&err, ConfigError::Env { name, .. } if name == "CASEFLOW_LISTEN"),
            "{err}"
        );
    }
}
