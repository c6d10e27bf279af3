//! `caseflow`: the command-line tool over the Caseflow engine.
//!
//! Every verb opens a store (`--db PATH` for SQLite, or `--store URL`), does one thing and
//! prints a table (or JSON with `--json`). Errors are one sentence on stderr and exit code 2;
//! `verify` exits 1 when something is broken.

/// Prints a line to stdout, ignoring a closed pipe (`caseflow stats | head` must not panic).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod act;
mod anchor;
mod bar;
mod calibrate;
mod commands;
mod demo;
mod output;
mod protect;
mod serve;
mod simulate;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use caseflow::EngineError;
use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

/// An error the CLI reports as one sentence.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments (caller).
    #[error("{0}")]
    Usage(String),
    /// The engine failed.
    #[error("{0}")]
    Engine(#[from] EngineError),
    /// A simulation failed for a reason that is neither the scenario nor the engine (the
    /// model and the domain disagree): a bug to report, with the case and step named.
    #[error("simulation failed: {0}")]
    Simulation(String),
    /// A file could not be written or read.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

#[derive(Debug, Parser)]
#[command(
    name = "caseflow",
    version,
    about = "Event-sourced case workflow for grassroots supervision: demo, to-do lists, audit, export."
)]
struct Cli {
    #[command(subcommand)]
    verb: Verb,
}

/// Where the events are.
#[derive(Debug, Args, Clone)]
#[command(group(ArgGroup::new("target").required(true).args(["db", "store"])))]
pub struct StoreArgs {
    /// The SQLite store file.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// A store URL: postgres://user@host/db?schema=district_0042 (needs the `postgres`
    /// feature; see docs/deployment.md) or kurrentdb://localhost:2113?tls=false (needs the
    /// `kurrentdb` feature).
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// With a postgres:// store: this engine instance's name, which names its read-model
    /// schema (`<schema>_rm_<instance>`). Give each long-running instance its own.
    #[arg(long, value_name = "NAME", requires = "store")]
    pub instance: Option<String>,
    /// The district file (default: the built-in sample district).
    #[arg(long, value_name = "PATH")]
    pub district: Option<PathBuf>,
    /// The master key file that unlocks reporters' contacts (default: the
    /// CASEFLOW_MASTER_KEY or CASEFLOW_MASTER_KEY_FILE variable). Only storing, revealing
    /// or erasing a named reporter's contact needs it.
    #[arg(long, value_name = "PATH")]
    pub master_key_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Run the district demo: a few months of cases through every stage into a fresh SQLite
    /// store, then the to-do lists of one room, team, locality and village officer, and the
    /// headline statistics.
    Demo(demo::DemoArgs),
    /// The to-do list of one unit.
    Todo(commands::TodoArgs),
    /// One case: its state and timeline (now, as of a time, or as of a version).
    Case(commands::CaseArgs),
    /// Check every hash chain, the Merkle tree (and, with --anchor, that the log extends a
    /// signed head) and compare every read model with a rebuild (exit 1 if broken).
    Verify(commands::VerifyArgs),
    /// Make an Ed25519 key pair for signing tree heads.
    Keygen(anchor::KeygenArgs),
    /// Sign the log's current tree head (size, root, time) for an auditor to keep.
    Anchor(anchor::AnchorArgs),
    /// Write inclusion proofs of one case's events against a signed head.
    Prove(anchor::ProveArgs),
    /// Check a case's inclusion proofs offline against a signed head and key (exit 1 if not).
    VerifyProof(anchor::VerifyProofArgs),
    /// Export the log for process mining (XES or OCEL 2.0 JSON).
    Export(commands::ExportArgs),
    /// Headline statistics.
    Stats(commands::StatsArgs),
    /// Drop and rebuild every read model from the log.
    Rebuild(commands::RebuildArgs),
    /// Audit report of one case or of a time range (Markdown or JSON).
    Audit(commands::AuditArgs),
    /// Run a workflow simulation scenario.
    Simulate(simulate::SimulateArgs),
    /// What may happen on a case now: the legal commands, who may issue each, drafts.
    Next(act::NextArgs),
    /// Issue one command (JSON on stdin or --file) as an actor, with a command id for retries.
    Command(act::CommandArgs),
    /// Serve the HTTP API, Open311 intake and the web workbench over a store.
    Serve(serve::ServeArgs),
    /// Manage the server's users and API tokens.
    User(user::UserArgs),
    /// Create a master key file, or rotate a store's key store to a new master key.
    MasterKey(protect::MasterKeyArgs),
    /// Read a reporter's contact as an actor who needs to know, with the reason (recorded in
    /// the case's history before anything is shown).
    Reveal(protect::RevealArgs),
    /// Erase a reporter's contact (every case of theirs): their data key is destroyed.
    EraseContact(protect::EraseArgs),
}

/// Output format of `audit`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ReportFormat {
    /// Markdown.
    Md,
    /// JSON.
    Json,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with success; real errors are clap's one-line
            // message plus usage, exit code 2.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // `serve` sets up its own (JSON) logs.
    let logs_here = !matches!(cli.verb, Verb::Serve(_));
    let _ = logs_here.then(|| {
        tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("CASEFLOW_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_writer(std::io::stderr)
            .try_init()
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match cli.verb {
            Verb::Demo(args) => demo::run(args).await,
            Verb::Todo(args) => commands::todo(args).await,
            Verb::Case(args) => commands::case(args).await,
            Verb::Verify(args) => commands::verify(args).await,
            Verb::Keygen(args) => anchor::keygen(args),
            Verb::Anchor(args) => anchor::anchor(args).await,
            Verb::Prove(args) => anchor::prove(args).await,
            Verb::VerifyProof(args) => anchor::verify_proof(args),
            Verb::Export(args) => commands::export(args).await,
            Verb::Stats(args) => commands::stats(args).await,
            Verb::Rebuild(args) => commands::rebuild(args).await,
            Verb::Audit(args) => commands::audit(args).await,
            Verb::Simulate(args) => simulate::run_async(args).await,
            Verb::Next(args) => act::next(args).await,
            Verb::Command(args) => act::command(args).await,
            Verb::Serve(args) => serve::run(args).await,
            Verb::User(args) => user::run(args),
            Verb::MasterKey(args) => protect::master_key(args).await,
            Verb::Reveal(args) => protect::reveal(args).await,
            Verb::EraseContact(args) => protect::erase(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
