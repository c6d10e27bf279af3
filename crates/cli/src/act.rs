//! Acting from the command line: `caseflow next` lists what may happen on a case now (and who
//! may do it), `caseflow command` issues one command, with a command id for safe retries.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use caseflow::domain::{
    Actor, Command, Label, NextContext, Role, UnitId, command_options, next_commands,
};
use caseflow::{CommandEnvelope, EngineError};
use clap::Args;
use serde_json::json;
use uuid::Uuid;

use crate::commands::{language, open, open_writable, parse_time, resolve_case};
use crate::{CliError, StoreArgs};

/// Arguments of `next`.
#[derive(Debug, Args)]
pub struct NextArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The case: its id (a UUID) or its number (e.g. 2026-0042).
    #[arg(value_name = "CASE")]
    case_id: String,
    /// Only the commands this actor may issue (`unit/role`, e.g. `room-1/leader`).
    #[arg(long, value_name = "UNIT/ROLE")]
    actor: Option<String>,
    /// At this time (default: now).
    #[arg(long, value_name = "TIME")]
    now: Option<String>,
    /// The language of the labels (default: the district's).
    #[arg(long, value_name = "TAG")]
    lang: Option<String>,
}

/// Arguments of `command`.
#[derive(Debug, Args)]
pub struct CommandArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Who issues it (`unit/role`, e.g. `room-1/leader`).
    #[arg(long, value_name = "UNIT/ROLE")]
    actor: String,
    /// The command id. Resend the same id to retry safely: a command already executed is
    /// answered with its first result and writes nothing. Default: a new id (printed).
    #[arg(long, value_name = "UUID")]
    command_id: Option<String>,
    /// When it is issued (default: now).
    #[arg(long, value_name = "TIME")]
    issued_at: Option<String>,
    /// The command as JSON (`{"type":"AcceptCase","case_id":"..."}`, e.g. a draft printed by
    /// `caseflow next`); `-` or nothing reads it from standard input.
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
}

/// Parses `unit/role`.
pub fn parse_actor(text: &str) -> Result<Actor, CliError> {
    let usage = || {
        CliError::Usage(format!(
            "`{text}` is not an actor (use unit/role, e.g. room-1/leader, loc-zhongshan/case_officer, vil-dongyuan/information_officer)"
        ))
    };
    let (unit, role) = text.trim().split_once('/').ok_or_else(usage)?;
    let role: Role =
        serde_json::from_value(serde_json::Value::String(role.to_owned())).map_err(|_| usage())?;
    if unit.is_empty() {
        return Err(usage());
    }
    Ok(Actor::new(UnitId::new(unit), role))
}

/// `caseflow next`: the commands legal on a case now, with their issuers, the duties they
/// discharge, and a draft to edit and send with `caseflow command`.
pub async fn next(args: NextArgs) -> Result<ExitCode, CliError> {
    let engine = open(&args.store).await?;
    let case_id = resolve_case(&engine, &args.case_id).await?;
    let lang = language(&engine, args.lang.as_deref())?;
    let actor = args.actor.as_deref().map(parse_actor).transpose()?;
    let d = engine.district();
    let now = match &args.now {
        Some(t) => parse_time(t, d.calendar.utc_offset())?,
        None => engine.now(),
    };
    let state = engine.case_state(case_id).await?;
    let ctx = NextContext::new(&d.org, &d.calendar, &d.policies, now);
    let listed: Vec<_> = next_commands(&state, &ctx)
        .into_iter()
        .filter(|n| actor.as_ref().is_none_or(|a| n.may_issue(a)))
        .map(|n| {
            json!({
                "command": n.kind,
                "label": n.kind.label(lang),
                "discharges": n.discharges,
                "issuers": n.issuers.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "draft": n.draft,
                "options": command_options(&state, n.kind, &ctx),
            })
        })
        .collect();
    say!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "case_id": case_id,
            "stage": state.stage(),
            "stage_label": state.stage().label(lang),
            "now": d.calendar.to_local(now),
            "next": listed,
        }))
        .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

fn read_command(file: Option<&PathBuf>) -> Result<Command, CliError> {
    let mut text = String::new();
    let what = match file {
        Some(path) if path.as_os_str() != "-" => {
            text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
                what: format!("cannot read {}", path.display()),
                source,
            })?;
            path.display().to_string()
        }
        _ => {
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| CliError::Io {
                    what: "cannot read the command from standard input".to_owned(),
                    source,
                })?;
            "standard input".to_owned()
        }
    };
    serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("the command in {what} is not a command: {e}")))
}

/// The exit code of a command the engine did not execute: 3 when the request was wrong (fix it
/// before sending again), 4 when the same command may succeed if sent again with the same id,
/// 2 otherwise (an operator must act).
fn exit_code_of(e: &EngineError) -> ExitCode {
    if e.is_caller_error() {
        ExitCode::from(3)
    } else if e.is_retryable() {
        ExitCode::from(4)
    } else {
        ExitCode::from(2)
    }
}

fn class_of(e: &EngineError) -> &'static str {
    if e.is_caller_error() {
        "caller"
    } else if e.is_retryable() {
        "retry"
    } else {
        "fatal"
    }
}

/// `caseflow command`: executes one command and prints its outcome (or its typed error) as
/// JSON on standard output.
pub async fn command(args: CommandArgs) -> Result<ExitCode, CliError> {
    let engine = open_writable(&args.store).await?;
    let actor = parse_actor(&args.actor)?;
    let command = read_command(args.file.as_ref())?;
    let command_id = match &args.command_id {
        Some(text) => Uuid::parse_str(text.trim())
            .map_err(|_| CliError::Usage(format!("`{text}` is not a command id (a UUID)")))?,
        None => engine.new_id(),
    };
    let issued_at = match &args.issued_at {
        Some(t) => parse_time(t, engine.district().calendar.utc_offset())?,
        None => engine.now(),
    };
    let envelope = CommandEnvelope::new(command_id, actor, issued_at, command);
    match engine.execute(envelope).await {
        Ok(outcome) => {
            let events: Vec<&str> = outcome.events.iter().map(|e| e.event_type()).collect();
            say!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "command_id": outcome.command_id,
                    "case_id": outcome.case_id,
                    "events": events,
                    "version": outcome.last_version,
                    "replayed": outcome.replayed,
                }))
                .unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            say!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "command_id": command_id,
                    "error": class_of(&e),
                    "message": e.to_string(),
                    "resend_with_same_id": e.is_retryable(),
                }))
                .unwrap_or_default()
            );
            eprintln!("error ({}): {e}", class_of(&e));
            Ok(exit_code_of(&e))
        }
    }
}
