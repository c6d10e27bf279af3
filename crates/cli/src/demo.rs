//! `caseflow demo`: the district demo (the README's main job). It runs the shipped demo
//! scenario (`examples/scenarios/demo.toml`, embedded) through the simulator on the real
//! engine into a fresh SQLite store, then prints the to-do lists of the busiest room, team,
//! locality and village officer and the headline statistics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use caseflow::domain::Assignee;
use caseflow::domain::{Level, UnitId};
use caseflow::store::{EventStore, SqliteOptions, SqliteStore};
use caseflow::{Engine, read_model_path};
use caseflow_sim::district::DistrictChoice;
use caseflow_sim::engine::{EngineOptions, EngineRun, StoreChoice, run_on_engine_with_progress};
use caseflow_sim::{Scenario, SimError};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::{CliError, output};

/// The shipped demo scenario, embedded so the demo runs from any directory.
const DEMO_SCENARIO: &str = include_str!("../../../examples/scenarios/demo.toml");

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The SQLite store to create. An existing file is never touched, unless it is a demo
    /// store made by `caseflow demo` and `--force` is given.
    #[arg(long, value_name = "PATH", default_value = "caseflow-demo.db")]
    db: PathBuf,
    /// Replace the demo store at --db (only one `caseflow demo` made, and only when no other
    /// process has it open).
    #[arg(long)]
    force: bool,
    /// The district file (default: the built-in sample district, examples/district.toml).
    #[arg(long, value_name = "PATH")]
    district: Option<PathBuf>,
    /// The scenario to run (default: the shipped demo scenario, examples/scenarios/demo.toml).
    #[arg(long, value_name = "PATH")]
    scenario: Option<PathBuf>,
    /// Months (of 30 days) of cases to simulate.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=24))]
    months: u32,
    /// Mean new cases per working day: scales the scenario's steady channels so that they
    /// bring this many cases in a year of 250 working days (campaign batches unchanged).
    #[arg(long)]
    cases_per_day: Option<f64>,
    /// Seed of the simulation (same seed, same district: the same event log).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Rows shown per to-do list.
    #[arg(long, default_value_t = 8)]
    rows: usize,
    /// The master key file sealing the demo reporters' contacts (default: the
    /// CASEFLOW_MASTER_KEY or CASEFLOW_MASTER_KEY_FILE variable, else `<stem>.master.key`
    /// next to the store, created if missing).
    #[arg(long, value_name = "PATH")]
    master_key_file: Option<PathBuf>,
}

/// The demo's master key: given, from the environment, or the demo's own key file.
fn demo_master_key(args: &DemoArgs) -> Result<(caseflow::MasterKey, Option<PathBuf>), CliError> {
    if let Some(key) = crate::protect::master_key_of(args.master_key_file.as_deref())? {
        return Ok((key, args.master_key_file.clone()));
    }
    let path = caseflow::contacts::demo_master_key_path(&args.db);
    let key = if path.exists() {
        caseflow::MasterKey::from_file(&path)
    } else {
        caseflow::MasterKey::create_file(&path)
    }
    .map_err(|e| CliError::Engine(caseflow::EngineError::Keys(e)))?;
    Ok((key, Some(path)))
}

/// The files a store at `path` may have: itself, its WAL and shared memory, its read-model
/// sidecar and lock (each with theirs), and the demo marker.
fn store_files(path: &Path) -> Vec<PathBuf> {
    let read = read_model_path(path);
    let lock = caseflow::engine::read_model_lock_path(path);
    // The demo's key store goes with its store (its master key file is kept and reused).
    let keys = caseflow::contacts::key_store_path(path);
    let mut files = Vec::new();
    for base in [path.to_path_buf(), read, lock, keys] {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            files.push(with_suffix(&base, suffix));
        }
    }
    files.push(marker_path(path));
    files
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// The marker `caseflow demo` leaves next to a store it made (`caseflow-demo.db.demo`): it
/// names the hash of the store's first record, which no later append can change, so the
/// marker identifies that very store and no other file later put at the same path.
fn marker_path(path: &Path) -> PathBuf {
    with_suffix(path, ".demo")
}

const MARKER_HEAD: &str = "made by caseflow demo; first record hash ";

/// Deletes a demo store and its sidecar files, if present.
fn remove_store(path: &Path) -> Result<(), CliError> {
    for p in store_files(path) {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(CliError::Io {
                    what: format!("cannot remove the old demo file {}", p.display()),
                    source,
                });
            }
        }
    }
    Ok(())
}

/// Why the file at `path` is not a demo store `caseflow demo` may replace, or `None` when
/// it is one: a Caseflow store whose first record is the one its marker names, that no
/// other process has open.
async fn not_replaceable(path: &Path) -> Option<String> {
    let marker = match std::fs::read_to_string(marker_path(path)) {
        Ok(text) => text,
        Err(_) => {
            return Some("it was not made by `caseflow demo` (no demo marker next to it)".into());
        }
    };
    let store = match SqliteStore::open_read_only(path) {
        Ok(store) => store,
        Err(e) => return Some(format!("it is not a demo store ({e})")),
    };
    let first = match store.read_all(1, 1).await {
        Ok(records) => records.first().map(|r| hex_of(&r.hash)),
        Err(e) => return Some(format!("it cannot be read ({e})")),
    };
    drop(store);
    if first.map(|h| format!("{MARKER_HEAD}{h}\n")) != Some(marker) {
        return Some("its demo marker names another store (the file was replaced since)".into());
    }
    match SqliteStore::is_open_elsewhere(path) {
        Ok(false) => None,
        Ok(true) => Some("another process has it open".into()),
        Err(e) => Some(format!(
            "whether another process has it open cannot be told ({e})"
        )),
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes room for a fresh demo store at `path`: nothing may be there, or, with `--force`, a
/// demo store this command made that nobody has open.
async fn prepare_store(path: &Path, force: bool) -> Result<(), CliError> {
    if path.is_dir() {
        return Err(CliError::Usage(format!(
            "{} is a directory, not a database file",
            path.display()
        )));
    }
    let present: Vec<PathBuf> = store_files(path)
        .into_iter()
        .filter(|p| p.exists())
        .collect();
    if present.is_empty() {
        return Ok(());
    }
    if !path.exists() {
        return Err(CliError::Usage(format!(
            "{} is not there but {} is: remove what is left of that store yourself, or choose another --db",
            path.display(),
            present[0].display()
        )));
    }
    if !force {
        return Err(CliError::Usage(format!(
            "{} already exists and `caseflow demo` never overwrites a file; give --force to replace a demo store it made, or choose another --db",
            path.display()
        )));
    }
    if let Some(reason) = not_replaceable(path).await {
        return Err(CliError::Usage(format!(
            "{} is left alone: {reason}",
            path.display()
        )));
    }
    remove_store(path)
}

/// Leaves the marker that lets a later `caseflow demo --force` replace this store.
async fn write_marker(engine: &Engine, path: &Path) -> Result<(), CliError> {
    let first = engine
        .store()
        .read_all(1, 1)
        .await
        .map_err(caseflow::EngineError::from)?;
    let Some(first) = first.first() else {
        return Ok(());
    };
    let marker = marker_path(path);
    std::fs::write(&marker, format!("{MARKER_HEAD}{}\n", hex_of(&first.hash))).map_err(|source| {
        CliError::Io {
            what: format!("cannot write the demo marker {}", marker.display()),
            source,
        }
    })
}

/// The demo's scenario with the command line's changes, and the district it runs on.
fn demo_scenario(args: &DemoArgs) -> Result<(Scenario, DistrictChoice), CliError> {
    let usage = |e: caseflow_sim::ScenarioError| CliError::Usage(e.to_string());
    let (mut scenario, district) = match &args.scenario {
        Some(path) => (
            Scenario::from_path(path).map_err(usage)?,
            DistrictChoice::Scenario,
        ),
        None => (
            Scenario::from_toml_str(DEMO_SCENARIO).map_err(usage)?,
            DistrictChoice::Text {
                name: "the built-in sample district".into(),
                text: caseflow::SAMPLE_DISTRICT_TOML.into(),
            },
        ),
    };
    let district = match &args.district {
        Some(path) => DistrictChoice::File(path.clone()),
        None => district,
    };
    scenario.simulation.horizon_days = args.months * 30;
    scenario.simulation.warmup_days = 0;
    if let Some(per_day) = args.cases_per_day {
        if !(per_day > 0.0 && per_day <= 200.0) {
            return Err(CliError::Usage(
                "--cases-per-day must be above 0 and at most 200".to_owned(),
            ));
        }
        scale_channels(&mut scenario, per_day * 250.0);
    }
    scenario.validate().map_err(usage)?;
    Ok((scenario, district))
}

/// Scales the steady (per-year) channels so that together they bring `per_year` cases.
fn scale_channels(scenario: &mut Scenario, per_year: f64) {
    let total: f64 = scenario
        .arrivals
        .channel
        .iter()
        .filter_map(|c| c.per_year)
        .sum();
    if total > 0.0 {
        for ch in &mut scenario.arrivals.channel {
            ch.per_year = ch.per_year.map(|r| r * per_year / total);
        }
    }
}

/// Runs the demo.
pub async fn run(args: DemoArgs) -> Result<ExitCode, CliError> {
    let (scenario, district) = demo_scenario(&args)?;
    prepare_store(&args.db, args.force).await?;
    let (master_key, master_key_file) = demo_master_key(&args)?;
    let days = scenario.simulation.horizon_days;
    let bar = ProgressBar::new(u64::from(days));
    bar.set_style(
        ProgressStyle::with_template("{spinner} simulating {pos}/{len} days [{bar:40}] {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let options = EngineOptions {
        store: StoreChoice::Sqlite {
            path: args.db.clone(),
            // The demo can be regenerated at will, so it trades power-loss durability for
            // speed (a crash still loses nothing acknowledged).
            options: SqliteOptions::normal(),
        },
        district,
        deadline_watcher: true,
        master_key: Some(master_key),
    };
    let started = std::time::Instant::now();
    let mut progress = |day: u32, _: u32| bar.set_position(u64::from(day));
    let run = run_on_engine_with_progress(&scenario, args.seed, &options, &mut progress)
        .await
        .map_err(|e| match e {
            SimError::Engine(e) => CliError::Engine(e),
            e if e.is_caller_error() => CliError::Usage(e.to_string()),
            e => CliError::Simulation(e.to_string()),
        })?;
    bar.finish_and_clear();
    write_marker(&run.engine, &args.db).await?;
    print_headline(&run, days, started.elapsed(), &args.db);
    if let Some(path) = &master_key_file {
        say!(
            "Reporters' contacts are sealed; their keys are in {}, unlocked by the master key in {} (give it with --master-key-file to reveal or erase a contact).\n",
            caseflow::contacts::key_store_path(&args.db).display(),
            path.display()
        );
    }
    let engine = &run.engine;
    let now = engine.now();
    say!(
        "Lists and statistics as at {}, the end of the simulated period (`caseflow todo` and `stats` judge at the current time unless given --now {}).\n",
        output::district_time(&engine.district().calendar, now),
        engine.district().calendar.to_local(now).to_rfc3339()
    );
    print_lists(engine, args.rows).await?;
    let stats = engine.stats(now).await?;
    let lang = engine.district().org.info().language;
    say!("{}", output::stats_tables(engine, &stats, lang));
    say!(
        "\nNext: caseflow todo --db {db} --unit room-1 | caseflow stats --db {db} | caseflow verify --db {db} | caseflow export --db {db} --format xes --out demo.xes",
        db = args.db.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn print_headline(run: &EngineRun, days: u32, elapsed: std::time::Duration, db: &Path) {
    let s = &run.summary;
    say!(
        "Demo district: {} — {} cases, {} commands, {} events, {} urgings by the deadline watcher; {} days simulated in {:.1?} (seed {}, log SHA-256 {}).",
        run.engine.district().org.info().name,
        s.cases.arrived,
        run.commands,
        s.engine_events.unwrap_or(0),
        run.urgings,
        days,
        elapsed,
        s.seed,
        s.digest.as_deref().unwrap_or("-")
    );
    say!(
        "Store: {} (read models: {})\n",
        db.display(),
        read_model_path(db).display()
    );
}

/// The to-do list of the busiest unit of each level (ties: the first id).
async fn print_lists(engine: &Engine, rows: usize) -> Result<(), CliError> {
    let now = engine.now();
    for level in [Level::Room, Level::Team, Level::Locality, Level::Village] {
        let items = engine.todo_for_level(level, now).await?;
        let mut counts: BTreeMap<UnitId, usize> = BTreeMap::new();
        for item in &items {
            if let Assignee::Unit(u) = &*item.assignee {
                *counts.entry(u.clone()).or_default() += 1;
            }
        }
        let Some((unit, _)) = counts.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))) else {
            say!("No {level} has anything to do.\n");
            continue;
        };
        let list = engine
            .todo_list(caseflow::ListOwner::Unit(unit.clone()), now)
            .await?;
        let lang = engine.district().org.info().language;
        say!("{}\n", output::todo_table(engine, &list, lang, rows));
    }
    Ok(())
}
