//! The verbs that work on an existing store.

use std::path::PathBuf;
use std::process::ExitCode;

use caseflow::domain::{CaseId, CaseNumber, DepartmentId, Lang, Level, UnitId, ZoneId};
use caseflow::store::SqliteOptions;
use caseflow::{District, Engine, EngineConfig, ListOwner, StoreConfig};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use clap::{Args, ValueEnum};

use crate::bar::Bar;
use crate::output;
use crate::{CliError, ReportFormat, StoreArgs};

/// Arguments of `todo`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("owner").required(true).args(["unit", "department", "zone", "level"])))]
pub struct TodoArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// A unit's list (e.g. room-1, team-2, loc-zhongshan, vil-wenhuagong).
    #[arg(long, value_name = "ID")]
    unit: Option<String>,
    /// A partner department's list (e.g. dept-finance).
    #[arg(long, value_name = "ID")]
    department: Option<String>,
    /// Every unit of a collaboration zone (e.g. zone-1).
    #[arg(long, value_name = "ID")]
    zone: Option<String>,
    /// Every unit of one level.
    #[arg(long, value_enum)]
    level: Option<LevelArg>,
    /// Judge overdue items at this time (RFC 3339, `YYYY-MM-DD[THH:MM]` in district time;
    /// default: now).
    #[arg(long, value_name = "TIME")]
    now: Option<String>,
    /// The language of the labels (default: the district's, zh-CN for the sample district).
    #[arg(long, value_name = "TAG")]
    lang: Option<String>,
    /// Show at most this many rows in the table (JSON is always whole).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// The four levels, as `--level` takes them.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LevelArg {
    /// Rooms (室).
    Room,
    /// Teams (组).
    Team,
    /// Localities (地).
    Locality,
    /// Village officers (村).
    Village,
}

impl From<LevelArg> for Level {
    fn from(l: LevelArg) -> Level {
        match l {
            LevelArg::Room => Level::Room,
            LevelArg::Team => Level::Team,
            LevelArg::Locality => Level::Locality,
            LevelArg::Village => Level::Village,
        }
    }
}

impl TodoArgs {
    fn owner(&self) -> Option<ListOwner> {
        let text = |s: &Option<String>| s.as_deref().map(str::trim).map(str::to_owned);
        if let Some(u) = text(&self.unit) {
            return Some(ListOwner::Unit(UnitId::new(u)));
        }
        if let Some(d) = text(&self.department) {
            return Some(ListOwner::Department(DepartmentId::new(d)));
        }
        if let Some(z) = text(&self.zone) {
            return Some(ListOwner::Zone(ZoneId::new(z)));
        }
        self.level.map(|l| ListOwner::Level(l.into()))
    }
}

/// The language to print labels in: `--lang`, else the district's.
pub fn language(engine: &Engine, tag: Option<&str>) -> Result<Lang, CliError> {
    match tag {
        None => Ok(engine.district().org.info().language),
        Some(tag) => Lang::parse(tag).ok_or_else(|| {
            CliError::Usage(format!(
                "`{tag}` is not a language this build speaks (zh-CN or en)"
            ))
        }),
    }
}

/// Arguments of `case`.
#[derive(Debug, Args)]
pub struct CaseArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The case: its id (a UUID) or its number (e.g. 2026-0042).
    #[arg(value_name = "CASE")]
    case_id: String,
    /// Show the case as the store recorded it at this time.
    #[arg(long, value_name = "TIME", conflicts_with = "version")]
    as_of: Option<String>,
    /// Show the case after its first N events.
    #[arg(long, value_name = "N")]
    version: Option<u64>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

/// Arguments of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Export formats.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ExportFormat {
    /// XES (IEEE 1849).
    Xes,
    /// OCEL 2.0 JSON.
    Ocel2,
}

/// Arguments of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The format.
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// The output file.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// Arguments of `stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Statistics at this time (RFC 3339 or `YYYY-MM-DD[THH:MM]` in district time; default:
    /// now).
    #[arg(long, value_name = "TIME")]
    now: Option<String>,
    /// The language of the labels (default: the district's).
    #[arg(long, value_name = "TAG")]
    lang: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
}

/// Arguments of `rebuild`.
#[derive(Debug, Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    store: StoreArgs,
}

/// Arguments of `audit`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("scope").required(true).args(["case", "from"])))]
pub struct AuditArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Audit one case (its id or its number, e.g. 2026-0042).
    #[arg(long, value_name = "CASE")]
    case: Option<String>,
    /// Start of the time range (inclusive).
    #[arg(long, value_name = "TIME", requires = "to")]
    from: Option<String>,
    /// End of the time range (exclusive).
    #[arg(long, value_name = "TIME", requires = "from")]
    to: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "md")]
    format: ReportFormat,
    /// For a case report: measure the current stage's duration up to this time (RFC 3339 or
    /// `YYYY-MM-DD[THH:MM]` in district time; default: now).
    #[arg(long, value_name = "TIME", conflicts_with = "from")]
    now: Option<String>,
}

/// Opens the engine over an existing store.
pub async fn open(args: &StoreArgs) -> Result<Engine, CliError> {
    let district = match &args.district {
        Some(path) => District::from_path(path)?,
        None => District::sample()?,
    };
    let store = match (&args.db, &args.store) {
        (Some(path), _) => {
            if !path.is_file() {
                return Err(CliError::Usage(format!(
                    "no Caseflow database at {} (run `caseflow demo --db {}` to make one)",
                    path.display(),
                    path.display()
                )));
            }
            StoreConfig::Sqlite {
                path: path.clone(),
                options: SqliteOptions {
                    create_if_missing: false,
                    ..SqliteOptions::default()
                },
            }
        }
        (None, Some(url)) => StoreConfig::Url(url.clone()),
        (None, None) => return Err(CliError::Usage("give --db PATH or --store URL".to_owned())),
    };
    let master = crate::protect::master_key_of(args.master_key_file.as_deref())?;
    Ok(Engine::open(EngineConfig::with_store(store, district).master_key_opt(master)).await?)
}

/// Parses a time: RFC 3339, `YYYY-MM-DDTHH:MM[:SS]` or `YYYY-MM-DD HH:MM` in district time,
/// `YYYY-MM-DD` (midnight, district time), or `now` (the wall clock).
pub fn parse_time(text: &str, offset: FixedOffset) -> Result<DateTime<Utc>, CliError> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("now") {
        return Ok(Utc::now());
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(t, format) {
            if let Some(local) = offset.from_local_datetime(&naive).single() {
                return Ok(local.with_timezone(&Utc));
            }
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        if let Some(local) = date
            .and_hms_opt(0, 0, 0)
            .and_then(|n| offset.from_local_datetime(&n).single())
        {
            return Ok(local.with_timezone(&Utc));
        }
    }
    Err(CliError::Usage(format!(
        "`{text}` is not a time (use RFC 3339 like 2026-03-02T09:00:00+08:00, a date like 2026-03-02, or `now`)"
    )))
}

/// `--now` in district time, or by default the engine's clock (the wall clock): a user who
/// asks what is overdue sees what is overdue now.
fn now_or_clock(engine: &Engine, now: Option<&str>) -> Result<DateTime<Utc>, CliError> {
    match now {
        Some(text) => parse_time(text, engine.district().calendar.utc_offset()),
        None => Ok(engine.now()),
    }
}

use caseflow::EngineError;

/// A case by its id (a UUID) or its human number (`2026-0042`).
pub async fn resolve_case(engine: &Engine, text: &str) -> Result<CaseId, CliError> {
    if let Ok(id) = uuid::Uuid::parse_str(text.trim()) {
        return Ok(CaseId::new(id));
    }
    match text.parse::<CaseNumber>() {
        Ok(number) => Ok(engine.case_by_number(number).await?),
        Err(_) => Err(CliError::Usage(format!(
            "`{text}` is neither a case id (a UUID) nor a case number (like 2026-0042)"
        ))),
    }
}

/// `caseflow todo`.
pub async fn todo(args: TodoArgs) -> Result<ExitCode, CliError> {
    let engine = open(&args.store).await?;
    let owner = args
        .owner()
        .ok_or_else(|| CliError::Usage("give --unit, --department, --zone or --level".into()))?;
    let lang = language(&engine, args.lang.as_deref())?;
    let now = now_or_clock(&engine, args.now.as_deref())?;
    let list = engine.todo_list(owner, now).await?;
    if args.json {
        say!("{}", output::todo_json(&engine, &list, lang));
    } else {
        let limit = args.limit.unwrap_or(usize::MAX);
        say!("{}", output::todo_table(&engine, &list, lang, limit));
    }
    Ok(ExitCode::SUCCESS)
}

/// `caseflow case`.
pub async fn case(args: CaseArgs) -> Result<ExitCode, CliError> {
    let engine = open(&args.store).await?;
    let case_id = resolve_case(&engine, &args.case_id).await?;
    let offset = engine.district().calendar.utc_offset();
    let snapshot = match (&args.as_of, args.version) {
        (Some(t), _) => {
            engine
                .state_as_of_time(case_id, parse_time(t, offset)?)
                .await?
        }
        (None, Some(v)) => engine.state_as_of_version(case_id, v).await?,
        (None, None) => {
            let latest = engine
                .store()
                .stream_version(&caseflow::projections::case_stream_id(case_id))
                .await
                .map_err(EngineError::from)?;
            match latest {
                Some(v) => engine.state_as_of_version(case_id, v).await?,
                None => return Err(EngineError::CaseNotFound(case_id).into()),
            }
        }
    };
    let now = now_or_clock(&engine, None)?;
    let report = engine.audit_case(case_id, now).await?;
    if args.json {
        say!("{}", output::case_json(&snapshot, &report));
    } else {
        say!("{}", output::case_tables(&snapshot, &report, offset));
    }
    Ok(ExitCode::SUCCESS)
}

/// `caseflow verify`.
pub async fn verify(args: VerifyArgs) -> Result<ExitCode, CliError> {
    let engine = open(&args.store).await?;
    let outcome = engine.verify().await?;
    if args.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&outcome).unwrap_or_default()
        );
    } else {
        say!("{}", outcome.to_markdown());
    }
    Ok(if outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `caseflow export`.
pub async fn export(args: ExportArgs) -> Result<ExitCode, CliError> {
    let engine = open(&args.store).await?;
    let file = std::fs::File::create(&args.out).map_err(|source| CliError::Io {
        what: format!("cannot create {}", args.out.display()),
        source,
    })?;
    let writer = std::io::BufWriter::new(file);
    let bar = Bar::new("exporting", false);
    let summary = match args.format {
        ExportFormat::Xes => engine.export_xes_with(writer, &bar).await?,
        ExportFormat::Ocel2 => engine.export_ocel2_with(writer, &bar).await?,
    };
    bar.finish();
    say!(
        "wrote {} ({} cases, {} events{})",
        args.out.display(),
        summary.cases,
        summary.events,
        if summary.objects > 0 {
            format!(", {} objects", summary.objects)
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `caseflow stats`.
pub async fn stats(args: StatsArgs) -> Result<ExitCode, CliError> {
    let engine = open(&args.store).await?;
    let now = now_or_clock(&engine, args.now.as_deref())?;
    let report = engine.stats(now).await?;
    if args.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        let lang = language(&engine, args.lang.as_deref())?;
        say!("{}", output::stats_tables(&engine, &report, lang));
    }
    Ok(ExitCode::SUCCESS)
}

/// `caseflow rebuild`.
pub async fn rebuild(args: RebuildArgs) -> Result<ExitCode, CliError> {
    let engine = open(&args.store).await?;
    let started = std::time::Instant::now();
    let bar = Bar::new("rebuilding", false);
    let n = engine.rebuild_with(&bar).await?;
    bar.finish();
    say!(
        "rebuilt every read model from {n} events in {:.2?}",
        started.elapsed()
    );
    Ok(ExitCode::SUCCESS)
}

/// `caseflow audit`.
pub async fn audit(args: AuditArgs) -> Result<ExitCode, CliError> {
    let engine = open(&args.store).await?;
    let offset = engine.district().calendar.utc_offset();
    let report = match (&args.case, &args.from, &args.to) {
        (Some(case), _, _) => {
            let now = now_or_clock(&engine, args.now.as_deref())?;
            engine
                .audit_case(resolve_case(&engine, case).await?, now)
                .await?
        }
        (None, Some(from), Some(to)) => {
            let (from, to) = (parse_time(from, offset)?, parse_time(to, offset)?);
            if from >= to {
                return Err(CliError::Usage("--from must be before --to".to_owned()));
            }
            let bar = Bar::new("auditing", args.format == ReportFormat::Json);
            let report = engine.audit_range_with(from, to, &bar).await?;
            bar.finish();
            report
        }
        _ => {
            return Err(CliError::Usage(
                "give --case ID, or --from TIME and --to TIME".to_owned(),
            ));
        }
    };
    match args.format {
        ReportFormat::Md => say!("{}", report.to_markdown(offset)),
        ReportFormat::Json => say!("{}", report.to_json()),
    }
    Ok(ExitCode::SUCCESS)
}
