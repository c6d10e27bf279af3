//! Connection strings and options of the PostgreSQL backend.
//!
//! A store URL is a libpq URL plus Caseflow's own query parameters, which are taken out
//! before the rest goes to the driver:
//!
//! ```text
//! postgres://caseflow:secret@db1:5432/caseflow?schema=district_0042&pool_max=16&statement_timeout_ms=5000
//! ```
//!
//! | parameter | default | meaning |
//! |---|---|---|
//! | `schema` | `caseflow` | the PostgreSQL schema holding the store (one per district or tenant) |
//! | `pool_max` | 16 | most pooled connections of this process (plus one listener, one per leadership) |
//! | `statement_timeout_ms` | 10000 | server-side limit on any one statement (0 = none) |
//! | `connect_timeout_ms` | 5000 | limit on opening one connection, and on waiting for a pooled one |
//! | `poll_ms` | 500 | how often subscriptions poll the head when no notification arrives |
//! | `batch_max` | 256 | most appends this process commits in one transaction |

use std::time::Duration;

use crate::error::StoreError;

/// Options of a [`super::PostgresStore`].
#[derive(Clone)]
pub struct PostgresOptions {
    /// The driver's configuration (host, port, user, password, database, ...).
    pub(crate) pg: tokio_postgres::Config,
    /// The URL with any password replaced by `***`, for messages.
    pub(crate) redacted: String,
    /// The schema holding the store's tables.
    pub schema: String,
    /// Most pooled connections.
    pub pool_max: usize,
    /// Server-side limit on one statement (`None` = no limit).
    pub statement_timeout: Option<Duration>,
    /// Limit on opening a connection and on waiting for a pooled one.
    pub connect_timeout: Duration,
    /// Subscription polling interval (the fallback when notifications are lost).
    pub poll_interval: Duration,
    /// Most appends committed in one transaction.
    pub batch_max: usize,
    /// Create the schema and tables when the schema does not exist yet.
    pub create: bool,
}

impl std::fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &self.redacted)
            .field("schema", &self.schema)
            .field("pool_max", &self.pool_max)
            .field("statement_timeout", &self.statement_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("poll_interval", &self.poll_interval)
            .field("batch_max", &self.batch_max)
            .field("create", &self.create)
            .finish()
    }
}

/// The schema used when the URL names none.
pub const DEFAULT_SCHEMA: &str = "caseflow";

impl PostgresOptions {
    /// Parses a `postgres://` or `postgresql://` URL with Caseflow's query parameters.
    /// A malformed URL or parameter is [`StoreError::Misconfigured`], naming the URL
    /// without its password.
    pub fn from_url(url: &str) -> Result<PostgresOptions, StoreError> {
        let redacted = redact_url(url);
        let bad = |reason: String| StoreError::Misconfigured {
            reason: format!("{redacted}: {reason}"),
        };
        let (base, query) = match url.split_once('?') {
            Some((base, query)) => (base, query),
            None => (url, ""),
        };
        let mut options = PostgresOptions {
            pg: tokio_postgres::Config::new(),
            redacted: redacted.clone(),
            schema: DEFAULT_SCHEMA.to_owned(),
            pool_max: 16,
            statement_timeout: Some(Duration::from_secs(10)),
            connect_timeout: Duration::from_secs(5),
            poll_interval: Duration::from_millis(500),
            batch_max: 256,
            create: true,
        };
        let mut driver_params = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let millis = || {
                value
                    .parse::<u64>()
                    .map_err(|_| bad(format!("{key} must be a number of milliseconds")))
            };
            match key {
                "schema" => options.schema = value.to_owned(),
                "pool_max" => {
                    options.pool_max = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad("pool_max must be a positive number".into()))?
                }
                "batch_max" => {
                    options.batch_max = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad("batch_max must be a positive number".into()))?
                }
                "statement_timeout_ms" => {
                    let ms = millis()?;
                    options.statement_timeout = (ms > 0).then(|| Duration::from_millis(ms));
                }
                "connect_timeout_ms" => options.connect_timeout = Duration::from_millis(millis()?),
                "poll_ms" => options.poll_interval = Duration::from_millis(millis()?.max(10)),
                _ => driver_params.push(pair),
            }
        }
        validate_schema_name(&options.schema).map_err(|reason| bad(reason.to_owned()))?;
        let driver_url = if driver_params.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", driver_params.join("&"))
        };
        options.pg = driver_url
            .parse::<tokio_postgres::Config>()
            .map_err(|e| bad(format!("not a PostgreSQL connection string: {e}")))?;
        Ok(options)
    }

    /// The URL without its password (safe to log).
    pub fn redacted_url(&self) -> &str {
        &self.redacted
    }

    /// The same options with another schema.
    pub fn with_schema(mut self, schema: &str) -> Result<Self, StoreError> {
        validate_schema_name(schema).map_err(|reason| StoreError::Misconfigured {
            reason: format!("{}: {reason}", self.redacted),
        })?;
        self.schema = schema.to_owned();
        Ok(self)
    }

    /// The driver configuration for one connection: the schema as the search path and the
    /// statement timeout, both set at connection start so pooled connections need no setup.
    pub(crate) fn connection_config(&self) -> tokio_postgres::Config {
        let mut pg = self.pg.clone();
        let timeout_ms = self.statement_timeout.map_or(0, |d| d.as_millis());
        pg.options(format!(
            "-c search_path={} -c statement_timeout={timeout_ms}",
            self.schema
        ));
        pg.connect_timeout(self.connect_timeout);
        if pg.get_application_name().is_none() {
            pg.application_name("caseflow");
        }
        pg
    }
}

/// Whether a URL names the PostgreSQL backend.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Schema names go into SQL and notification channel names unquoted, so they are limited
/// to `[a-z_][a-z0-9_]*`, at most 48 bytes (the channel name adds a prefix within 63).
pub(crate) fn validate_schema_name(schema: &str) -> Result<(), &'static str> {
    let mut chars = schema.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && schema.len() <= 48
        && !schema.starts_with("pg_");
    if ok {
        Ok(())
    } else {
        Err("schema must be 1..=48 characters of [a-z0-9_], start with a letter or _, not pg_")
    }
}

/// Replaces the password of a URL (`user:password@`) by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some(at) = authority.rfind('@') else {
        return strip_password_param(url);
    };
    let (userinfo, host) = authority.split_at(at);
    let user = userinfo.split(':').next().unwrap_or_default();
    let masked = if userinfo.contains(':') {
        format!("{user}:***")
    } else {
        user.to_owned()
    };
    strip_password_param(&format!("{scheme}://{masked}{host}{tail}"))
}

/// Masks a `password=` query parameter.
fn strip_password_param(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| {
            if pair.starts_with("password=") {
                "password=***".to_owned()
            } else {
                pair.to_owned()
            }
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgres://cf:s3cret@db:5432/x?schema=a"),
            "postgres://cf:***@db:5432/x?schema=a"
        );
        assert_eq!(
            redact_url("postgres://db/x?user=cf&password=s3cret"),
            "postgres://db/x?user=cf&password=***"
        );
        assert_eq!(redact_url("postgres://cf@db/x"), "postgres://cf@db/x");
        let err = PostgresOptions::from_url("postgres://cf:s3cret@db/x?pool_max=zero")
            .expect_err("bad pool size");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    #[test]
    fn caseflow_parameters_are_taken_out_of_the_url() {
        let o = PostgresOptions::from_url(
            "postgres://cf@db/x?schema=district_7&pool_max=4&statement_timeout_ms=0&application_name=desk",
        )
        .expect("parse");
        assert_eq!(o.schema, "district_7");
        assert_eq!(o.pool_max, 4);
        assert_eq!(o.statement_timeout, None);
        assert_eq!(o.pg.get_application_name(), Some("desk"));
        assert_eq!(o.pg.get_dbname(), Some("x"));
    }

    #[test]
    fn unsafe_schema_names_are_refused() {
        for bad in ["", "Caps", "a;drop", "pg_catalog", "1a", &"x".repeat(49)] {
            let url = format!("postgres://db/x?schema={bad}");
            assert!(
                matches!(
                    PostgresOptions::from_url(&url),
                    Err(StoreError::Misconfigured { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
