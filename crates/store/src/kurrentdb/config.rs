//! Connection strings and the backend's own options.
//!
//! A KurrentDB store is configured by one connection string, so that the engine config and
//! the CLI (`--store kurrentdb://...`) need nothing else:
//!
//! ```text
//! kurrentdb://admin:changeit@node1:2113,node2:2113,node3:2113?tls=true&tlsCaFile=/etc/kdb/ca.crt&nodePreference=leader
//! kurrentdb+discover://admin:changeit@cluster.example.org:2113?caseflowNamespace=prod-
//! esdb://localhost:2113?tls=false
//! ```
//!
//! Everything the official client understands (gossip seeds, `+discover` DNS discovery,
//! `tls`, `tlsVerifyCert`, `tlsCaFile`, `userCertFile`/`userKeyFile`, `nodePreference`,
//! `defaultDeadline`, keep-alive, ...) is passed to it unchanged. Two parameters are Caseflow's
//! own and are removed before the client sees the string:
//!
//! - `caseflowNamespace` (default empty): prepended to every stream name, so that several
//!   Caseflow deployments (or test runs) can share one KurrentDB database;
//! - `caseflowStreamPrefixes` (default `case-`): comma-separated prefixes of the store's stream
//!   ids. `read_all`, `head_position` and subscriptions read `$all` through a server-side
//!   stream-prefix filter made of `namespace + prefix`, so an append to a stream id outside
//!   these prefixes is refused (it would be invisible to the global log).

use std::fmt;
use std::time::Duration;

use kurrentdb::ClientSettings;

/// The URL schemes the official client accepts (`+discover` = DNS cluster discovery).
pub const SUPPORTED_SCHEMES: &[&str] = &[
    "kurrentdb",
    "kurrentdb+discover",
    "kurrent",
    "kurrent+discover",
    "kdb",
    "kdb+discover",
    "esdb",
    "esdb+discover",
];

/// Prefix of the command-id ledger streams (see [`super::KurrentDbStore`]). No data stream filter may
/// overlap it, so ledger records never show up in the global log.
pub const LEDGER_STREAM_PREFIX: &str = "caseflow-ledger-";

/// Query parameter naming the stream namespace.
pub const NAMESPACE_PARAM: &str = "caseflowNamespace";
/// Query parameter listing the stream-id prefixes.
pub const STREAM_PREFIXES_PARAM: &str = "caseflowStreamPrefixes";

/// Longest accepted namespace, in bytes.
pub const NAMESPACE_LEN_MAX: usize = 64;

/// Why a connection string or option was refused. Every variant is a **caller** error: the
/// configuration is wrong and retrying it unchanged fails again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionStringError {
    /// **Caller**: the connection string is empty or only whitespace.
    #[error("the KurrentDB connection string is empty")]
    Empty,

    /// **Caller**: the scheme is not one the client speaks (`kurrentdb://`, `esdb://`, ...).
    #[error(
        "unsupported scheme {scheme:?}: use one of kurrentdb://, kurrentdb+discover://, esdb://, esdb+discover://, kurrent://, kdb://"
    )]
    UnsupportedScheme {
        /// The scheme found (text before `://`, or the whole string if there is none).
        scheme: String,
    },

    /// **Caller**: the official client rejected the string (bad host list, port, option value,
    /// half a client certificate pair, ...). Credentials are redacted from `reason`.
    #[error("invalid KurrentDB connection string {redacted}: {reason}")]
    Invalid {
        /// The connection string with its password replaced by `***`.
        redacted: String,
        /// What the client reported.
        reason: String,
    },

    /// **Caller**: the namespace is too long, contains control characters, or starts with `$`
    /// (KurrentDB reserves `$` streams for the system).
    #[error("invalid caseflowNamespace {namespace:?}: {reason}")]
    InvalidNamespace {
        /// The namespace given.
        namespace: String,
        /// Which rule it broke.
        reason: String,
    },

    /// **Caller**: a stream prefix would make the `$all` filter match system streams or the
    /// command-id ledger, or is malformed.
    #[error("invalid stream prefix {prefix:?}: {reason}")]
    InvalidStreamPrefix {
        /// The prefix given (without the namespace).
        prefix: String,
        /// Which rule it broke.
        reason: String,
    },

    /// **Caller**: a TLS file named by `tlsCaFile`, `userCertFile` or `userKeyFile` cannot be
    /// read or holds no valid PEM item. Checked up front because the client would otherwise
    /// panic on a malformed CA file.
    #[error("{option} file {path:?} is unusable: {reason}")]
    TlsFile {
        /// The connection-string option naming the file.
        option: &'static str,
        /// The path given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A parsed KurrentDB store configuration: the client's settings plus Caseflow's options.
#[derive(Clone)]
pub struct KurrentDbConfig {
    settings: ClientSettings,
    redacted: String,
    namespace: String,
    stream_prefixes: Vec<String>,
    /// How many times a failed read or append RPC is re-sent after a transport error or a
    /// leader change before the error is returned (default 5).
    pub operation_retries: u32,
    /// How many times in a row a subscription re-subscribes after a transport error or a
    /// leader change before it yields an error (default 20).
    pub subscription_retries: u32,
    /// First delay between retries; doubled after each failure up to `retry_delay_max`.
    pub retry_delay_initial: Duration,
    /// Longest delay between retries.
    pub retry_delay_max: Duration,
    /// Whether reads that serve `read_stream`, `read_all`, `stream_version`, `head_position`
    /// and `verify_*` must be served by the leader (default true: read-your-writes across
    /// engine instances). The reads an append makes always go to the leader.
    pub reads_require_leader: bool,
}

impl fmt::Debug for KurrentDbConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the client settings: they hold the password.
        f.debug_struct("KurrentDbConfig")
            .field("connection", &self.redacted)
            .field("namespace", &self.namespace)
            .field("stream_prefixes", &self.stream_prefixes)
            .field("operation_retries", &self.operation_retries)
            .field("subscription_retries", &self.subscription_retries)
            .field("retry_delay_initial", &self.retry_delay_initial)
            .field("retry_delay_max", &self.retry_delay_max)
            .field("reads_require_leader", &self.reads_require_leader)
            .finish()
    }
}

impl std::str::FromStr for KurrentDbConfig {
    type Err = ConnectionStringError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KurrentDbConfig::parse(s)
    }
}

impl KurrentDbConfig {
    /// Parses a connection string (see the module documentation for the accepted form).
    pub fn parse(connection: &str) -> Result<Self, ConnectionStringError> {
        let connection = connection.trim();
        if connection.is_empty() {
            return Err(ConnectionStringError::Empty);
        }
        let scheme = match connection.find("://") {
            Some(i) => &connection[..i],
            None => connection,
        };
        if !SUPPORTED_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()) {
            return Err(ConnectionStringError::UnsupportedScheme {
                scheme: scheme.to_owned(),
            });
        }
        let redacted = redact(connection);
        let (client_part, own) = split_own_params(connection)?;
        let settings: ClientSettings =
            client_part
                .parse()
                .map_err(|e: kurrentdb::ClientSettingsParseError| {
                    let reason = match e.error() {
                        Some(url_error) => format!("{} ({url_error})", e.message()),
                        None => e.message().to_owned(),
                    };
                    ConnectionStringError::Invalid {
                        redacted: redacted.clone(),
                        reason: scrub(&reason, connection, &redacted),
                    }
                })?;
        if let Some(ca) = settings.tls_ca_file() {
            check_pem_certificates("tlsCaFile", ca)?;
        }
        if let Some((cert, key)) = settings.user_certificate() {
            check_pem_certificates("userCertFile", cert)?;
            check_pem_private_key("userKeyFile", key)?;
        }
        let mut config = KurrentDbConfig {
            settings,
            redacted,
            namespace: String::new(),
            stream_prefixes: vec!["case-".to_owned()],
            operation_retries: 5,
            subscription_retries: 20,
            retry_delay_initial: Duration::from_millis(100),
            retry_delay_max: Duration::from_secs(5),
            reads_require_leader: true,
        };
        let namespace = own.namespace.unwrap_or_default();
        let prefixes = own
            .stream_prefixes
            .unwrap_or_else(|| config.stream_prefixes.clone());
        config = config.with_namespace_and_prefixes(&namespace, prefixes)?;
        Ok(config)
    }

    /// Replaces the namespace and the stream-id prefixes (validated together, because the
    /// rules are about `namespace + prefix`).
    pub fn with_namespace_and_prefixes(
        mut self,
        namespace: &str,
        stream_prefixes: Vec<String>,
    ) -> Result<Self, ConnectionStringError> {
        validate_namespace(namespace)?;
        if stream_prefixes.is_empty() {
            return Err(ConnectionStringError::InvalidStreamPrefix {
                prefix: String::new(),
                reason: "at least one stream prefix is required (use \"\" with a namespace to \
                         accept every stream id)"
                    .into(),
            });
        }
        for prefix in &stream_prefixes {
            validate_prefix(namespace, prefix)?;
        }
        self.namespace = namespace.to_owned();
        self.stream_prefixes = stream_prefixes;
        Ok(self)
    }

    /// Replaces only the namespace, keeping the prefixes.
    pub fn with_namespace(self, namespace: &str) -> Result<Self, ConnectionStringError> {
        let prefixes = self.stream_prefixes.clone();
        self.with_namespace_and_prefixes(namespace, prefixes)
    }

    /// The client settings (hosts, TLS, credentials) to connect with.
    pub fn client_settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// The connection string with its password replaced by `***` (safe to log).
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// The namespace prepended to every stream name.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The accepted stream-id prefixes (without the namespace).
    pub fn stream_prefixes(&self) -> &[String] {
        &self.stream_prefixes
    }

    /// Whether the client connects over TLS.
    pub fn is_tls(&self) -> bool {
        self.settings.is_secure_mode_enabled()
    }

    /// The gossip seeds or the single node, as `host:port`.
    pub fn hosts(&self) -> Vec<String> {
        self.settings
            .hosts()
            .iter()
            .map(|e| format!("{}:{}", e.host, e.port))
            .collect()
    }

    /// Whether the cluster is found by DNS discovery (`+discover`).
    pub fn uses_dns_discovery(&self) -> bool {
        self.settings.is_dns_discovery_enabled()
    }

    /// The KurrentDB stream name of a store stream id.
    pub fn stream_name(&self, stream_id: &str) -> String {
        format!("{}{}", self.namespace, stream_id)
    }

    /// The store stream id of a KurrentDB stream name, if the name belongs to this store's
    /// data streams (right namespace, accepted prefix, not a ledger stream).
    pub fn stream_id_of<'a>(&self, stream_name: &'a str) -> Option<&'a str> {
        let id = stream_name.strip_prefix(self.namespace.as_str())?;
        self.accepts_stream_id(id).then_some(id)
    }

    /// Whether a stream id is one this store writes (and so one the `$all` filter sees).
    pub fn accepts_stream_id(&self, stream_id: &str) -> bool {
        self.stream_prefixes
            .iter()
            .any(|p| stream_id.starts_with(p.as_str()))
    }

    /// The server-side `$all` filter prefixes: `namespace + prefix` for every prefix.
    pub fn filter_prefixes(&self) -> Vec<String> {
        self.stream_prefixes
            .iter()
            .map(|p| format!("{}{}", self.namespace, p))
            .collect()
    }

    /// The name of the ledger stream of a command id.
    pub fn ledger_stream_name(&self, command_id: uuid::Uuid) -> String {
        format!("{LEDGER_STREAM_PREFIX}{}{}", self.namespace, command_id)
    }
}

fn validate_namespace(namespace: &str) -> Result<(), ConnectionStringError> {
    let bad = |reason: &str| {
        Err(ConnectionStringError::InvalidNamespace {
            namespace: namespace.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if namespace.len() > NAMESPACE_LEN_MAX {
        return bad("longer than 64 bytes");
    }
    if namespace.chars().any(char::is_control) {
        return bad("contains control characters");
    }
    if namespace.starts_with('$') {
        return bad("starts with '$', which KurrentDB reserves for system streams");
    }
    Ok(())
}

fn validate_prefix(namespace: &str, prefix: &str) -> Result<(), ConnectionStringError> {
    let bad = |reason: String| {
        Err(ConnectionStringError::InvalidStreamPrefix {
            prefix: prefix.to_owned(),
            reason,
        })
    };
    if prefix.chars().any(char::is_control) || prefix.contains(',') {
        return bad("contains control characters or a comma".into());
    }
    let full = format!("{namespace}{prefix}");
    if full.is_empty() {
        return bad(
            "an empty prefix without a namespace would make the $all filter match every \
             stream, system streams included"
                .into(),
        );
    }
    if full.starts_with('$') {
        return bad("namespace + prefix starts with '$' (system streams)".into());
    }
    if LEDGER_STREAM_PREFIX.starts_with(full.as_str()) || full.starts_with(LEDGER_STREAM_PREFIX) {
        return bad(format!(
            "namespace + prefix {full:?} overlaps the ledger streams {LEDGER_STREAM_PREFIX:?}"
        ));
    }
    Ok(())
}

#[derive(Default)]
struct OwnParams {
    namespace: Option<String>,
    stream_prefixes: Option<Vec<String>>,
}

/// Removes Caseflow's own query parameters from the connection string and returns them.
fn split_own_params(connection: &str) -> Result<(String, OwnParams), ConnectionStringError> {
    let mut own = OwnParams::default();
    let Some((base, query)) = connection.split_once('?') else {
        return Ok((connection.to_owned(), own));
    };
    let mut kept: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value);
        if name.eq_ignore_ascii_case(NAMESPACE_PARAM) {
            own.namespace = Some(value);
        } else if name.eq_ignore_ascii_case(STREAM_PREFIXES_PARAM) {
            own.stream_prefixes = Some(value.split(',').map(str::to_owned).collect());
        } else {
            kept.push(pair);
        }
    }
    let client_part = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((client_part, own))
}

/// Decodes `%XX` escapes (and `+` as space is deliberately not applied: stream names may
/// contain `+`). Invalid escapes are kept as written.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Replaces the password of `scheme://user:password@hosts...` by `***`.
pub fn redact(connection: &str) -> String {
    let Some(scheme_end) = connection.find("://") else {
        return connection.to_owned();
    };
    let rest = &connection[scheme_end + 3..];
    // The authority ends at the first '/', '?' or end; userinfo ends at the last '@' in it.
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return connection.to_owned();
    };
    let userinfo = &authority[..at];
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    format!(
        "{}://{}:***@{}",
        &connection[..scheme_end],
        user,
        &rest[at + 1..]
    )
}

/// Removes any copy of the raw connection string (which holds the password) from a message.
fn scrub(message: &str, raw: &str, redacted: &str) -> String {
    let mut out = message.replace(raw, redacted);
    // The client may quote the string after rewriting ',' to '/' for gossip seeds.
    out = out.replace(&raw.replace(',', "/"), redacted);
    if let Some(password) = password_of(raw) {
        if !password.is_empty() {
            out = out.replace(password, "***");
        }
    }
    out
}

fn password_of(connection: &str) -> Option<&str> {
    let rest = &connection[connection.find("://")? + 3..];
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    userinfo.split_once(':').map(|(_, p)| p)
}

fn check_pem_certificates(option: &'static str, path: &str) -> Result<(), ConnectionStringError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let fail = |reason: String| ConnectionStringError::TlsFile {
        option,
        path: path.to_owned(),
        reason,
    };
    let mut count = 0usize;
    for item in CertificateDer::pem_file_iter(path).map_err(|e| fail(e.to_string()))? {
        item.map_err(|e| fail(e.to_string()))?;
        count += 1;
    }
    if count == 0 {
        return Err(fail("no PEM certificate in the file".into()));
    }
    Ok(())
}

fn check_pem_private_key(option: &'static str, path: &str) -> Result<(), ConnectionStringError> {
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;
    PrivateKeyDer::from_pem_file(path).map_err(|e| ConnectionStringError::TlsFile {
        option,
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(())
}
