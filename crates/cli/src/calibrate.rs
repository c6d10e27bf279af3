//! `caseflow simulate --calibrate --db STORE --out scenario.toml`: a scenario fitted to a
//! store's history, written out with its fits, and validated by simulating it over the same
//! window beside the log's own KPIs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use caseflow::SAMPLE_DISTRICT_TOML;
use caseflow_sim::calibrate::{
    CalibrateOptions, calibrate, read_log, report_text, scenario_toml, validate,
};
use caseflow_sim::district::DistrictChoice;

use crate::commands::{open, parse_time};
use crate::simulate::{SimulateArgs, load, sim_error, write_file};
use crate::{CliError, StoreArgs};

/// Replications of the validation when `--replications` is not given.
const VALIDATION_REPLICATIONS: usize = 5;

/// Runs the calibration.
pub async fn run(args: &SimulateArgs) -> Result<ExitCode, CliError> {
    let (Some(db), Some(out)) = (&args.db, &args.out) else {
        return Err(CliError::Usage(
            "--calibrate reads --db STORE and writes --out scenario.toml".into(),
        ));
    };
    let engine = open(&StoreArgs {
        db: Some(db.clone()),
        store: None,
        district: args.district.clone(),
        instance: None,
        master_key_file: None,
    })
    .await?;
    let district = engine.district().clone();
    let offset = chrono::FixedOffset::east_opt(district.calendar.utc_offset_minutes * 60)
        .ok_or_else(|| CliError::Usage("the district's UTC offset is out of range".into()))?;
    let from = args
        .from
        .as_deref()
        .map(|t| parse_time(t, offset))
        .transpose()?;
    let to = args
        .to
        .as_deref()
        .map(|t| parse_time(t, offset))
        .transpose()?;
    let base = args.scenario.as_deref().map(load).transpose()?;
    let (district_file, district_text, write_beside) = district_for(out, args.district.as_deref())?;
    let name = out
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("calibrated")
        .to_owned();
    let seed = args
        .seed
        .unwrap_or_else(|| base.as_ref().map_or(1, |b| b.simulation.seed));
    let options = CalibrateOptions {
        name,
        from,
        to,
        base,
        district_file: Some(district_file.clone()),
    };
    let started = std::time::Instant::now();
    let events = read_log(&engine).await.map_err(sim_error)?;
    let cal = calibrate(events, &district, &options).map_err(sim_error)?;
    let fitted = started.elapsed();
    let reps = args.replications.unwrap_or(VALIDATION_REPLICATIONS).max(2);
    let choice = DistrictChoice::Text {
        name: district_file.display().to_string(),
        text: district_text,
    };
    let validation = validate(&cal, &choice, seed, reps).map_err(sim_error)?;
    if let Some(beside) = &write_beside {
        write_file(beside, SAMPLE_DISTRICT_TOML)?;
        eprintln!(
            "the store uses the built-in sample district: written to {} for the scenario",
            beside.display()
        );
    }
    write_file(out, &scenario_toml(&cal).map_err(sim_error)?)?;
    if args.json {
        let json = serde_json::json!({
            "scenario": out,
            "events": cal.events,
            "cases": cal.cases,
            "arrivals": cal.arrivals,
            "seasonality": cal.seasonality,
            "branches": cal.branches,
            "durations": cal.durations,
            "log": cal.log,
            "validation": validation,
            "notes": cal.notes,
        });
        say!(
            "{}",
            serde_json::to_string_pretty(&json).map_err(|e| CliError::Usage(e.to_string()))?
        );
    } else {
        say!("{}", report_text(&cal, Some(&validation)));
    }
    eprintln!(
        "calibrated scenario written to {} ({} events read and fitted in {:.1} s)",
        out.display(),
        cal.events,
        fitted.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// The district file the calibrated scenario names, its text, and where to write it: the
/// store's `--district` (by absolute path), or the built-in sample district, to be written
/// beside the scenario as `<name>.district.toml` once the calibration has succeeded.
fn district_for(
    out: &Path,
    district: Option<&Path>,
) -> Result<(PathBuf, String, Option<PathBuf>), CliError> {
    if let Some(path) = district {
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let text = std::fs::read_to_string(&abs).map_err(|source| CliError::Io {
            what: format!("cannot read the district file {}", abs.display()),
            source,
        })?;
        return Ok((abs, text, None));
    }
    let stem = out
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("calibrated");
    let beside = out.with_file_name(format!("{stem}.district.toml"));
    let name = PathBuf::from(beside.file_name().unwrap_or_default());
    Ok((name, SAMPLE_DISTRICT_TOML.to_owned(), Some(beside)))
}
