//! The verbs that work on an existing store.

use std::path::PathBuf;
use std::process::ExitCode;

use caseflow::domain::{CaseId, CaseNumber, DepartmentId, Lang, Level, UnitId, ZoneId};
use std::sync::Arc;

use caseflow::engine::open_store_for_reading;
use caseflow::store::{EventStore, SqliteOptions};
use caseflow::{
    District, Engine, EngineConfig, ListOwner, ReadModelConfig, StoreConfig, read_model_path,
};
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
    /// Also prove that the log extends this signed head (from `caseflow anchor`).
    #[arg(long, value_name = "PATH")]
    anchor: Option<PathBuf>,
    /// The key the anchor must be signed by (64 hex digits or a `.pub` file).
    #[arg(long, value_name = "KEY", requires = "anchor")]
    pubkey: Option<String>,
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

/// The district the verbs work for: `--district`, else the built-in sample.
fn district(args: &StoreArgs) -> Result<District, CliError> {
    Ok(match &args.district {
        Some(path) => District::from_path(path)?,
        None => District::sample()?,
    })
}

/// Where the store is, refusing a `--db` path with no file (before anything opens it).
fn store_config(args: &StoreArgs) -> Result<StoreConfig, CliError> {
    match (&args.db, &args.store) {
        (Some(path), _) => {
            if !path.is_file() {
                return Err(CliError::Usage(format!(
                    "no Caseflow database at {} (run `caseflow demo --db {}` to make one)",
                    path.display(),
                    path.display()
                )));
            }
            Ok(StoreConfig::Sqlite {
                path: path.clone(),
                options: SqliteOptions {
                    create_if_missing: false,
                    ..SqliteOptions::default()
                },
            })
        }
        (None, Some(url)) => Ok(StoreConfig::Url(url.clone())),
        (None, None) => Err(CliError::Usage("give --db PATH or --store URL".to_owned())),
    }
}

/// Opens the store for reading only (see [`caseflow::engine::open_store_for_reading`]): the
/// store file is never created or changed.
pub async fn open_log(args: &StoreArgs) -> Result<Arc<dyn EventStore>, CliError> {
    Ok(open_store_for_reading(&store_config(args)?).await?)
}

/// Opens the engine for a verb that only reads: the store read-only, the read models from
/// their sidecar file when it can be opened (it is kept up to date there), otherwise in
/// memory — a garbled or unwritable sidecar slows a query down but does not stop it.
pub async fn open(args: &StoreArgs) -> Result<Engine, CliError> {
    let district = district(args)?;
    let store = open_log(args).await?;
    let config = |read_models| {
        EngineConfig::with_store(StoreConfig::Shared(Arc::clone(&store)), district.clone())
            .read_models(read_models)
    };
    if let Some(instance) = &args.instance {
        let read_models = ReadModelConfig::Postgres {
            instance: instance.clone(),
        };
        return Engine::open(config(read_models))
            .await
            .map_err(CliError::from);
    }
    if let Some(db) = &args.db {
        match Engine::open(config(ReadModelConfig::SqliteFile(read_model_path(db)))).await {
            Ok(engine) => return Ok(engine),
            Err(e) => tracing::warn!(
                error = %e,
                "the read-model file cannot be used; folding the log in memory instead"
            ),
        }
    }
    match Engine::open(config(ReadModelConfig::InMemory)).await {
        Ok(engine) => Ok(engine),
        Err(e) => Err(with_log_note(store.as_ref(), e).await),
    }
}

/// An engine that cannot even fold the log in memory usually means a record was changed
/// behind the store's back: the error then says whether the hash chains hold.
async fn with_log_note(store: &dyn EventStore, err: caseflow::EngineError) -> CliError {
    match store.verify_all().await {
        Ok(report) => match report.first_broken {
            Some(b) => CliError::Usage(format!(
                "{err}; the log's hash chains are BROKEN: stream {} at version {}: {} (run `caseflow verify`)",
                b.stream_id, b.version, b.fault
            )),
            None => err.into(),
        },
        Err(check) => CliError::Usage(format!(
            "{err}; the log cannot be checked either: {check} (run `caseflow verify`)"
        )),
    }
}

/// Opens the engine for a verb that writes to the store (`caseflow command`).
pub async fn open_writable(args: &StoreArgs) -> Result<Engine, CliError> {
    let district = district(args)?;
    let master = crate::protect::master_key_of(args.master_key_file.as_deref())?;
    let mut config = EngineConfig::with_store(store_config(args)?, district).master_key_opt(master);
    if let Some(instance) = &args.instance {
        config = config.read_models(ReadModelConfig::Postgres {
            instance: instance.clone(),
        });
    }
    Ok(Engine::open(config).await?)
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
    match show_case(&engine, case_id, &args).await {
        Err(e) => Err(with_chain_note(&engine, case_id, e).await),
        ok => ok,
    }
}

/// An error about a case, with its hash chain's state when the chain is broken: a record
/// that no longer decodes was usually changed behind the store's back.
async fn with_chain_note(engine: &Engine, case_id: CaseId, err: CliError) -> CliError {
    match engine.chain_fault(case_id).await {
        Some(fault) => CliError::Usage(format!(
            "{err}; the case's hash chain is BROKEN {fault} (run `caseflow verify`)"
        )),
        None => err,
    }
}

async fn show_case(
    engine: &Engine,
    case_id: CaseId,
    args: &CaseArgs,
) -> Result<ExitCode, CliError> {
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
    let now = now_or_clock(engine, None)?;
    let report = engine.audit_case(case_id, now).await?;
    if args.json {
        say!("{}", output::case_json(&snapshot, &report));
    } else {
        say!("{}", output::case_tables(&snapshot, &report, offset));
    }
    Ok(ExitCode::SUCCESS)
}

/// `caseflow verify`: the log first (chains, ledger), printed before the read models are
/// even opened, then the read models compared with a rebuild. Exit 0 when all holds, 1 when
/// something is altered or divergent, 2 only when the store cannot be read at all. Nothing
/// is written: the store is opened read-only and the read models are compared on a copy.
pub async fn verify(args: VerifyArgs) -> Result<ExitCode, CliError> {
    let anchor = args
        .anchor
        .as_deref()
        .map(crate::anchor::load_head)
        .transpose()?;
    let trusted = args
        .pubkey
        .as_deref()
        .map(crate::anchor::parse_pubkey)
        .transpose()?;
    let store = open_log(&args.store).await?;
    // The two sections run side by side (the log check reads on a blocking thread, the
    // rebuild in its own tasks): neither waits for or can change the other, and the log's
    // section is still printed as soon as it is complete.
    let read_models = tokio::spawn(compare_read_models(args.store.clone(), Arc::clone(&store)));
    let mut outcome = caseflow::audit::verify_log(
        store.as_ref(),
        anchor.as_ref().map(|a| (a, trusted.as_ref())),
    )
    .await?;
    if !args.json {
        say!("{}", outcome.log_markdown());
    }
    match read_models.await {
        Ok(section) => outcome.take_read_models(section),
        Err(e) => {
            outcome.read_models_checked = true;
            outcome
                .read_model_errors
                .push(format!("the read-model comparison failed: {e}"));
        }
    }
    if args.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&outcome).unwrap_or_default()
        );
    } else {
        say!("{}", outcome.read_models_markdown());
    }
    Ok(if outcome.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The second section of `verify`, as an outcome of its own. The persisted read models (the
/// sidecar of a `--db` store) are copied to a temporary directory and brought up to date
/// there, so verifying never writes next to the store, and compared with a rebuild; without
/// a sidecar, the log is folded once into fresh read models (which checks that every record
/// decodes and folds: a second rebuild would fold the same log into the same models). Every
/// failure is recorded in the outcome, never returned.
async fn compare_read_models(
    args: StoreArgs,
    store: Arc<dyn EventStore>,
) -> caseflow::audit::VerifyOutcome {
    let mut outcome = caseflow::audit::VerifyOutcome {
        read_models_checked: true,
        ..Default::default()
    };
    fold_and_compare(&args, store, &mut outcome).await;
    outcome
}

async fn fold_and_compare(
    args: &StoreArgs,
    store: Arc<dyn EventStore>,
    outcome: &mut caseflow::audit::VerifyOutcome,
) {
    let district = match district(args) {
        Ok(d) => d,
        Err(e) => {
            outcome
                .read_model_errors
                .push(format!("the district cannot be loaded: {e}"));
            return;
        }
    };
    let scratch = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => {
            outcome
                .read_model_errors
                .push(format!("no temporary directory for the comparison: {e}"));
            return;
        }
    };
    let read_models = match args.db.as_deref().map(read_model_path) {
        Some(sidecar) if sidecar.is_file() => {
            match copy_with_wal(&sidecar, &scratch.path().join("read-models.db")) {
                Ok(copy) => Some(ReadModelConfig::SqliteFile(copy)),
                Err(e) => {
                    outcome.read_model_errors.push(format!(
                        "the read-model file {} cannot be read: {e}",
                        sidecar.display()
                    ));
                    return;
                }
            }
        }
        _ => None,
    };
    let sidecar = read_models.is_some();
    let config = EngineConfig::with_store(StoreConfig::Shared(store), district)
        .read_models(read_models.unwrap_or(ReadModelConfig::InMemory));
    match Engine::open(config).await {
        Ok(engine) if sidecar => engine.verify_read_models(outcome).await,
        Ok(engine) => {
            engine.verify_rebuilt_read_models(outcome).await;
            // `verify` exits once the report is printed: freeing the rebuilt in-memory models
            // (maps of every case, hundreds of MB at a million events) took 0.4 s of CPU on
            // the critical path for nothing the OS does not do at exit. The store it shares
            // is then not closed before exit either: `verify` opened it for reading only, so
            // nothing is left unwritten.
            std::mem::forget(engine);
        }
        Err(e) => outcome.read_model_errors.push(format!(
            "the read models cannot be opened or caught up: {e}"
        )),
    }
}

/// Copies a SQLite file and its WAL (if any) to `to`; returns `to`.
fn copy_with_wal(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<PathBuf> {
    std::fs::copy(from, to)?;
    let with = |p: &std::path::Path, suffix: &str| {
        let mut s = p.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    let wal = with(from, "-wal");
    if wal.is_file() {
        std::fs::copy(&wal, with(to, "-wal"))?;
    }
    Ok(to.to_path_buf())
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
            let case_id = resolve_case(&engine, case).await?;
            match engine.audit_case(case_id, now).await {
                Ok(report) => report,
                Err(e) => return Err(with_chain_note(&engine, case_id, e.into()).await),
            }
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
