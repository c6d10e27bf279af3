//! `caseflow simulate`: seeded virtual-time runs of a scenario on the real engine, with KPIs as
//! tables, JSON, CSV time series and a self-contained HTML report; replications with 95%
//! confidence intervals; and `--compare` of two scenarios with common random numbers.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use caseflow_sim::district::DistrictChoice;
use caseflow_sim::engine::{EngineOptions, StoreChoice, run_on_engine};
use caseflow_sim::replicate::{comparison_of, from_runs};
use caseflow_sim::{Scenario, SimError, Summary, report};
use clap::Args;

use crate::CliError;

/// Arguments of `caseflow simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Scenario file (TOML; see docs/simulation.md). With --calibrate: optional, the base
    /// whose staffing, working hours and seed the calibrated scenario keeps.
    #[arg(long, value_name = "PATH", required_unless_present = "calibrate")]
    pub scenario: Option<PathBuf>,
    /// Fit a scenario to the history of the store given with --db (arrivals, branches,
    /// service times), write it to --out and print the fits and a side-by-side validation.
    #[arg(long, requires = "db", requires = "out", conflicts_with_all = ["compare", "model_only", "csv"])]
    pub calibrate: bool,
    /// With --calibrate: the start of the window (`YYYY-MM-DD[THH:MM]` district time, or
    /// RFC 3339; default: the first report).
    #[arg(long, value_name = "TIME", requires = "calibrate")]
    pub from: Option<String>,
    /// With --calibrate: the end of the window (default: the last event).
    #[arg(long, value_name = "TIME", requires = "calibrate")]
    pub to: Option<String>,
    /// With --calibrate: where to write the calibrated scenario.
    #[arg(long, value_name = "PATH", requires = "calibrate")]
    pub out: Option<PathBuf>,
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
    /// With --calibrate: the store to read.
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// With --db: the master key file sealing the simulated reporters' contacts (default:
    /// the CASEFLOW_MASTER_KEY or CASEFLOW_MASTER_KEY_FILE variable; required with --db).
    #[arg(long, value_name = "PATH", requires = "db")]
    pub master_key_file: Option<PathBuf>,
    /// District file to run on instead of the scenario's `simulation.district` (the scenario
    /// must then not generate its own organisation).
    #[arg(long, value_name = "PATH")]
    pub district: Option<PathBuf>,
    /// Run the workflow model alone, without the engine (no event log is kept: fast, and
    /// the way to run province scale in bounded memory). Same steps, same KPIs.
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
    /// Write the HTML report here (default: `<scenario name>.report.html`, or
    /// `<A>-vs-<B>.report.html` with --compare).
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
    /// Do not write the HTML report.
    #[arg(long, conflicts_with = "html")]
    pub no_html: bool,
}

/// A simulation error as the CLI reports it: a scenario or option the caller must fix is a
/// usage error; everything else keeps its own words (a model or engine failure).
pub(crate) fn sim_error(e: SimError) -> CliError {
    match e {
        SimError::Engine(e) => CliError::Engine(e),
        e if e.is_caller_error() => CliError::Usage(e.to_string()),
        e => CliError::Simulation(e.to_string()),
    }
}

pub(crate) fn write_file(path: &Path, text: &str) -> Result<(), CliError> {
    std::fs::write(path, text).map_err(|source| CliError::Io {
        what: format!("cannot write {}", path.display()),
        source,
    })
}

pub(crate) fn load(path: &Path) -> Result<Scenario, CliError> {
    let s = Scenario::from_path(path).map_err(|e| CliError::Usage(e.to_string()))?;
    for note in &s.notes {
        eprintln!("note: {}: {note}", path.display());
    }
    Ok(s)
}

async fn one_run(
    scenario: &Scenario,
    seed: u64,
    args: &SimulateArgs,
    store: StoreChoice,
) -> Result<Summary, SimError> {
    if args.model_only {
        return caseflow_sim::run_once(scenario, seed);
    }
    let options = EngineOptions {
        store,
        district: match &args.district {
            Some(path) => DistrictChoice::File(path.clone()),
            None => DistrictChoice::Scenario,
        },
        deadline_watcher: true,
        master_key: crate::protect::master_key_of(args.master_key_file.as_deref()).map_err(
            |e| SimError::Option {
                option: "--master-key-file".into(),
                reason: e.to_string(),
            },
        )?,
    };
    let run = run_on_engine(scenario, seed, &options).await?;
    eprintln!(
        "seed {seed}: {} commands executed, {} events in the log, {} urgings by the deadline watcher",
        run.commands,
        run.summary.engine_events.unwrap_or(0),
        run.urgings
    );
    Ok(run.summary)
}

async fn runs(
    scenario: &Scenario,
    seed: u64,
    n: usize,
    args: &SimulateArgs,
) -> Result<Vec<Summary>, CliError> {
    let mut out = Vec::with_capacity(n);
    for r in 0..n {
        let store = match (&args.db, r) {
            (Some(path), 0) => StoreChoice::sqlite(path),
            _ => StoreChoice::Memory,
        };
        let summary = one_run(scenario, seed.wrapping_add(r as u64), args, store)
            .await
            .map_err(sim_error)?;
        out.push(summary);
    }
    Ok(out)
}

fn json(value: &impl serde::Serialize) -> Result<String, CliError> {
    serde_json::to_string_pretty(value).map_err(|e| CliError::Usage(e.to_string()))
}

/// Runs `caseflow simulate` (async).
pub async fn run_async(args: SimulateArgs) -> Result<ExitCode, CliError> {
    if args.calibrate {
        return crate::calibrate::run(&args).await;
    }
    let Some(scenario) = &args.scenario else {
        return Err(CliError::Usage("give --scenario PATH".into()));
    };
    let a = load(scenario)?;
    let b = match &args.compare {
        Some(path) => Some(load(path)?),
        None => None,
    };
    let n = args
        .replications
        .unwrap_or(if b.is_some() { 10 } else { 1 });
    if n == 0 {
        return Err(CliError::Usage("--replications must be at least 1".into()));
    }
    if args.db.is_some() && (n > 1 || b.is_some()) {
        return Err(CliError::Usage(
            "--db writes one run: use it without --replications > 1 and without --compare".into(),
        ));
    }
    let seed = args.seed.unwrap_or(a.simulation.seed);
    let seeds: Vec<u64> = (0..n as u64).map(|r| seed.wrapping_add(r)).collect();
    let runs_a = runs(&a, seed, n, &args).await?;
    let first = runs_a[0].clone();
    match &b {
        Some(b) => {
            let runs_b = runs(b, seed, n, &args).await?;
            let cmp = comparison_of(
                from_runs(&a.simulation.name, seeds.clone(), runs_a),
                from_runs(&b.simulation.name, seeds, runs_b),
            );
            if args.json {
                say!("{}", json(&cmp)?);
            } else {
                say!("{}", report::comparison_text(&cmp));
            }
            let default = format!("{}-vs-{}.report.html", a.simulation.name, b.simulation.name);
            write_report(&args, &default, &report::comparison_html(&cmp))?;
        }
        None if n > 1 => {
            let reps = from_runs(&a.simulation.name, seeds, runs_a);
            if args.json {
                say!("{}", json(&reps)?);
            } else {
                say!("{}", report::replications_text(&reps));
            }
            let default = format!("{}.report.html", a.simulation.name);
            write_report(&args, &default, &report::html(&first))?;
        }
        None => {
            if args.json {
                say!("{}", json(&first)?);
            } else {
                say!("{}", report::text(&first, args.units));
            }
            let default = format!("{}.report.html", a.simulation.name);
            write_report(&args, &default, &report::html(&first))?;
        }
    }
    if let Some(path) = &args.csv {
        write_file(path, &report::backlog_csv(&first))?;
        eprintln!("backlog time series written to {}", path.display());
    }
    if let Some(db) = &args.db {
        eprintln!(
            "events written to {} (open it with `caseflow todo|case|verify|export|audit --db`)",
            db.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn write_report(args: &SimulateArgs, default: &str, html: &str) -> Result<(), CliError> {
    if args.no_html {
        return Ok(());
    }
    let path = args.html.clone().unwrap_or_else(|| PathBuf::from(default));
    write_file(&path, html)?;
    eprintln!("HTML report written to {}", path.display());
    Ok(())
}
