//! `caseflow demo`: the district demo (the README's main job).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use caseflow::demo::{DemoConfig, run_demo};
use caseflow::domain::Assignee;
use caseflow::domain::{Level, UnitId};
use caseflow::store::SqliteOptions;
use caseflow::{
    District, Engine, EngineConfig, ManualClock, SeededIds, StoreConfig, read_model_path,
};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::{CliError, output};

/// Arguments of `demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The SQLite store to (re)create.
    #[arg(long, value_name = "PATH", default_value = "caseflow-demo.db")]
    db: PathBuf,
    /// The district file (default: the built-in sample district, examples/district.toml).
    #[arg(long, value_name = "PATH")]
    district: Option<PathBuf>,
    /// Months of cases to generate.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=24))]
    months: u32,
    /// Mean new cases per working day.
    #[arg(long, default_value_t = 6.0)]
    cases_per_day: f64,
    /// Seed of the generator (same seed, same district: the same event log).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Rows shown per to-do list.
    #[arg(long, default_value_t = 8)]
    rows: usize,
}

/// Deletes a store and its sidecar files, if present.
fn remove_store(path: &Path) -> Result<(), CliError> {
    let read = read_model_path(path);
    let lock = caseflow::engine::read_model_lock_path(path);
    for base in [path.to_path_buf(), read, lock] {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = base.clone().into_os_string();
            p.push(suffix);
            let p = PathBuf::from(p);
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
    }
    Ok(())
}

/// Runs the demo.
pub async fn run(args: DemoArgs) -> Result<ExitCode, CliError> {
    if !(args.cases_per_day > 0.0 && args.cases_per_day <= 200.0) {
        return Err(CliError::Usage(
            "--cases-per-day must be above 0 and at most 200".to_owned(),
        ));
    }
    let district = match &args.district {
        Some(path) => District::from_path(path)?,
        None => District::sample()?,
    };
    if args.db.is_dir() {
        return Err(CliError::Usage(format!(
            "{} is a directory, not a database file",
            args.db.display()
        )));
    }
    remove_store(&args.db)?;
    let config = DemoConfig {
        cases_per_day: args.cases_per_day,
        ..DemoConfig::months(args.months, args.seed)
    };
    let clock = Arc::new(ManualClock::new(config.start));
    let engine = Engine::open(
        EngineConfig::with_store(
            StoreConfig::Sqlite {
                path: args.db.clone(),
                // The demo can be regenerated at will, so it trades power-loss durability
                // for speed (a crash still loses nothing acknowledged).
                options: SqliteOptions::normal(),
            },
            district,
        )
        .clock(clock.clone())
        .ids(Arc::new(SeededIds::new(args.seed))),
    )
    .await?;
    let bar = ProgressBar::new(u64::from(config.days));
    bar.set_style(
        ProgressStyle::with_template("{spinner} simulating {pos}/{len} days [{bar:40}] {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let started = std::time::Instant::now();
    let summary = run_demo(&engine, &clock, &config, |day, _| {
        bar.set_position(u64::from(day))
    })
    .await?;
    bar.finish_and_clear();
    let now = config.end();
    engine.refresh().await?;
    let head = engine
        .store()
        .head_position()
        .await
        .map_err(caseflow::EngineError::from)?;
    say!(
        "Demo district: {} — {} cases, {} commands, {} events, {} urgings by the deadline watcher, {} refused commands; {} days simulated in {:.1?}.",
        engine.district().org.info().name,
        summary.cases,
        summary.commands,
        head,
        summary.urgings,
        summary.refused,
        config.days,
        started.elapsed()
    );
    for sample in &summary.refusal_samples {
        say!("  refused: {sample}");
    }
    say!(
        "Store: {} (read models: {})\n",
        args.db.display(),
        read_model_path(&args.db).display()
    );
    for level in [Level::Room, Level::Team, Level::Locality, Level::Village] {
        let items = engine.todo_for_level(level, now).await?;
        let mut counts: BTreeMap<UnitId, usize> = BTreeMap::new();
        for item in &items {
            if let Assignee::Unit(u) = &*item.assignee {
                *counts.entry(u.clone()).or_default() += 1;
            }
        }
        // Show the busiest unit of the level (ties: the first id).
        let Some((unit, _)) = counts.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))) else {
            say!("No {level} has anything to do.\n");
            continue;
        };
        let list = engine
            .todo_list(caseflow::ListOwner::Unit(unit.clone()), now)
            .await?;
        let lang = engine.district().org.info().language;
        say!("{}\n", output::todo_table(&engine, &list, lang, args.rows));
    }
    let stats = engine.stats(now).await?;
    let lang = engine.district().org.info().language;
    say!("{}", output::stats_tables(&engine, &stats, lang));
    say!(
        "\nNext: caseflow todo --db {db} --unit room-1 | caseflow stats --db {db} | caseflow verify --db {db} | caseflow export --db {db} --format xes --out demo.xes",
        db = args.db.display()
    );
    Ok(ExitCode::SUCCESS)
}
