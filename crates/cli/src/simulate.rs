//! `caseflow simulate`: seeded virtual-time runs of a scenario on the real engine, with KPIs as
//! tables, JSON, CSV time series and a self-contained HTML report; replications with 95%
//! confidence intervals; and `--compare` of two scenarios with common random numbers.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use caseflow_sim::engine::{EngineOptions, StoreChoice, run_on_engine};
use caseflow_sim::replicate::{comparison_of, from_runs};
use caseflow_sim::{Scenario, SimError, Summary, report};
use clap::Args;

/// Arguments of `caseflow simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Scenario file (TOML; see docs/simulation.md).
    #[arg(long, value_name = "PATH")]
    pub scenario: PathBuf,
    /// A second scenario to compare against the first (same seeds: common random numbers).
    #[arg(long, value_name = "PATH")]
    pub compare: Option<PathBuf>,
    /// Master seed (default: the scenario's `simulation.seed`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Independent replications with seeds seed, seed+1, ... (default 1; 10 with --compare).
    #[arg(long, value_name = "N")]
    pub replications: Option<usize>,
    /// Write the engine's events to this SQLite file (must not exist) instead of memory; the
    /// other verbs (todo, case, verify, export, audit) can open it afterwards. One run only.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// District file (default: the scenario's `simulation.district`, else the sample district).
    #[arg(long, value_name = "PATH")]
    pub district: Option<PathBuf>,
    /// Run the workflow model alone, without the engine (no event log is kept: fast, and
    /// the way to run province scale in bounded memory).
    #[arg(long, conflicts_with = "db")]
    pub model_only: bool,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also print the per-unit table.
    #[arg(long)]
    pub units: bool,
    /// Write the backlog time series (CSV) of the (first) run here.
    #[arg(long, value_name = "PATH")]
    pub csv: Option<PathBuf>,
    /// Write the HTML report here (default: `<scenario name>.report.html`).
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
    /// Do not write the HTML report.
    #[arg(long, conflicts_with = "html")]
    pub no_html: bool,
}

fn usage(e: impl std::fmt::Display) -> crate::CliError {
    crate::CliError::Usage(e.to_string())
}

fn write_file(path: &Path, text: &str) -> Result<(), crate::CliError> {
    std::fs::write(path, text).map_err(|source| crate::CliError::Io {
        what: format!("cannot write {}", path.display()),
        source,
    })
}

async fn one_run(
    scenario: &Scenario,
    seed: u64,
    args: &SimulateArgs,
    store: StoreChoice,
) -> Result<Summary, SimError> {
    if args.model_only {
        return Ok(caseflow_sim::run_once(scenario, seed));
    }
    let options = EngineOptions {
        store,
        district: args.district.clone(),
        deadline_watcher: true,
    };
    let run = run_on_engine(scenario, seed, &options).await?;
    let summary = run.summary;
    eprintln!(
        "seed {seed}: {} commands executed, {} events in the log, {} urgings by the deadline watcher",
        run.commands,
        summary.engine_events.unwrap_or(0),
        run.urgings
    );
    Ok(summary)
}

async fn runs(
    scenario: &Scenario,
    seed: u64,
    n: usize,
    args: &SimulateArgs,
) -> Result<Vec<Summary>, SimError> {
    let mut out = Vec::with_capacity(n);
    for r in 0..n {
        let store = match (&args.db, r) {
            (Some(path), 0) => StoreChoice::Sqlite(path.clone()),
            _ => StoreChoice::Memory,
        };
        out.push(one_run(scenario, seed.wrapping_add(r as u64), args, store).await?);
    }
    Ok(out)
}

/// Runs `caseflow simulate` (async).
pub async fn run_async(args: SimulateArgs) -> Result<ExitCode, crate::CliError> {
    let a = Scenario::from_path(&args.scenario).map_err(usage)?;
    let b = match &args.compare {
        Some(path) => Some(Scenario::from_path(path).map_err(usage)?),
        None => None,
    };
    let n = args
        .replications
        .unwrap_or(if b.is_some() { 10 } else { 1 });
    if n == 0 {
        return Err(usage("--replications must be at least 1"));
    }
    if args.db.is_some() && (n > 1 || b.is_some()) {
        return Err(usage(
            "--db writes one run: use it without --replications > 1 and without --compare",
        ));
    }
    let seed = args.seed.unwrap_or(a.simulation.seed);
    let seeds: Vec<u64> = (0..n as u64).map(|r| seed.wrapping_add(r)).collect();
    let runs_a = runs(&a, seed, n, &args).await.map_err(usage)?;
    let first = runs_a[0].clone();
    if let Some(b) = &b {
        let runs_b = runs(b, seed, n, &args).await.map_err(usage)?;
        let cmp = comparison_of(
            from_runs(&a.simulation.name, seeds.clone(), runs_a),
            from_runs(&b.simulation.name, seeds, runs_b.clone()),
        );
        if args.json {
            println!("{}", serde_json::to_string_pretty(&cmp).map_err(usage)?);
        } else {
            print!("{}", report::comparison_text(&cmp));
        }
        if !args.no_html {
            let path = args
                .html
                .clone()
                .unwrap_or_else(|| PathBuf::from(format!("{}.report.html", b.simulation.name)));
            write_file(&path, &report::html(&runs_b[0]))?;
            eprintln!(
                "HTML report of {} (seed {seed}) written to {}",
                b.simulation.name,
                path.display()
            );
        }
    } else if n > 1 {
        let reps = from_runs(&a.simulation.name, seeds, runs_a);
        if args.json {
            println!("{}", serde_json::to_string_pretty(&reps).map_err(usage)?);
        } else {
            print!("{}", report::replications_text(&reps));
        }
    } else if args.json {
        println!("{}", serde_json::to_string_pretty(&first).map_err(usage)?);
    } else {
        print!("{}", report::text(&first, args.units));
    }
    if let Some(path) = &args.csv {
        write_file(path, &report::backlog_csv(&first))?;
        eprintln!("backlog time series written to {}", path.display());
    }
    if b.is_none() && !args.no_html {
        let path = args
            .html
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.report.html", a.simulation.name)));
        write_file(&path, &report::html(&first))?;
        eprintln!("HTML report written to {}", path.display());
    }
    if let Some(db) = &args.db {
        eprintln!(
            "events written to {} (open it with `caseflow todo|case|verify|export|audit --db`)",
            db.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
