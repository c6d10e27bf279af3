//! `caseflow serve`: the HTTP API, Open311 intake and web workbench over a store.

use std::path::PathBuf;
use std::process::ExitCode;

use caseflow_server::config::{LogFormat, ServerConfig};
use caseflow_server::{Server, open_engine, open_users};
use clap::Args;

use crate::CliError;

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The configuration file (TOML); `CASEFLOW_*` environment variables override it and
    /// these flags override both. See docs/server.md.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The SQLite store file.
    #[arg(long, value_name = "PATH")]
    db: Option<PathBuf>,
    /// The district file (default: the built-in sample district).
    #[arg(long, value_name = "PATH")]
    district: Option<PathBuf>,
    /// The users database (default: `<store stem>.users.db` beside the store).
    #[arg(long, value_name = "PATH")]
    users: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Load and check the configuration, the district, the store and the users database,
    /// print what would be served, and exit without serving.
    #[arg(long)]
    check_config: bool,
}

fn load(args: &ServeArgs) -> Result<ServerConfig, CliError> {
    let mut config = ServerConfig::load(args.config.as_deref(), std::env::vars())
        .map_err(|e| CliError::Usage(e.to_string()))?;
    if let Some(db) = &args.db {
        config.store = Some(db.clone());
    }
    if let Some(d) = &args.district {
        config.district = Some(d.clone());
    }
    if let Some(u) = &args.users {
        config.users = Some(u.clone());
    }
    if let Some(l) = args.listen {
        config.listen = l;
    }
    config
        .validate()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(config)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CASEFLOW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Runs `serve`.
pub async fn run(args: ServeArgs) -> Result<ExitCode, CliError> {
    let config = load(&args)?;
    if args.check_config {
        return check(config).await;
    }
    init_logging(config.log_format);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| CliError::Io {
            what: format!("cannot listen on {}", config.listen),
            source,
        })?;
    let server = Server::open(config)
        .await
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let users = server.app().users.list().map(|u| u.len()).unwrap_or(0);
    if users == 0 {
        tracing::warn!(
            "no users yet: create the first with `caseflow user add NAME --admin --db STORE --password-stdin`"
        );
    }
    server
        .serve(listener, shutdown_signal())
        .await
        .map_err(|e| CliError::Usage(e.to_string()))?;
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

async fn check(config: ServerConfig) -> Result<ExitCode, CliError> {
    let store = config.store_path().to_path_buf();
    if !store.exists() {
        return Err(CliError::Usage(format!(
            "the store {} does not exist (run `caseflow demo` or give --db)",
            store.display()
        )));
    }
    let engine = open_engine(&config)
        .await
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let users = open_users(&config).map_err(|e| CliError::Usage(e.to_string()))?;
    let count = users
        .list()
        .map_err(|e| CliError::Usage(e.to_string()))?
        .len();
    let district = engine.district();
    say!("configuration ok");
    say!("  listen          {}", config.listen);
    say!(
        "  store           {} ({:?})",
        store.display(),
        config.durability
    );
    say!(
        "  district        {} ({} units)",
        district.org.info().name,
        district.org.units().count()
    );
    say!(
        "  users           {} ({count} users)",
        config.users_path().display()
    );
    say!("  sessions        {} hours", config.session_hours);
    say!(
        "  limits          body {} B, timeout {} s, {} req/min (burst {})",
        config.body_limit_bytes,
        config.request_timeout_seconds,
        config.rate_limit_per_minute,
        config.rate_limit_burst
    );
    say!(
        "  watcher         {}",
        if config.watcher_interval_seconds == 0 {
            "off".to_owned()
        } else {
            format!("every {} s", config.watcher_interval_seconds)
        }
    );
    say!(
        "  open311 channel {}",
        caseflow::domain::Channel::as_str(config.open311.channel)
    );
    Ok(ExitCode::SUCCESS)
}
