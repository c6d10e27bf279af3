//! Reporter protection verbs: `master-key new|rotate`, `reveal`, `erase-contact`. None
//! prints a contact unless the reveal was recorded and allowed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use caseflow::MasterKey;
use caseflow::contacts::KeyError;
use clap::{Args, Subcommand};

use crate::act::parse_actor;
use crate::commands::{open_writable, resolve_case};
use crate::{CliError, StoreArgs};

/// The master key named by `--master-key-file`, else by the environment, else none.
pub fn master_key_of(file: Option<&Path>) -> Result<Option<MasterKey>, CliError> {
    let key = match file {
        Some(path) => Some(MasterKey::from_file(path)),
        None => MasterKey::from_env().transpose(),
    };
    key.transpose().map_err(key_error)
}

fn key_error(e: KeyError) -> CliError {
    CliError::Engine(caseflow::EngineError::Keys(e))
}

/// Arguments of `master-key`.
#[derive(Debug, Args)]
pub struct MasterKeyArgs {
    #[command(subcommand)]
    action: MasterKeyAction,
}

#[derive(Debug, Subcommand)]
enum MasterKeyAction {
    /// Write a new random master key to a file (owner-only; never overwrites).
    New {
        /// The key file to create.
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
    /// Rewrap every reporter data key of a store under a new master key (the log is not
    /// touched). The current key comes from --master-key-file or the environment.
    Rotate {
        #[command(flatten)]
        store: StoreArgs,
        /// The new master key file (created, with a new random key, if it does not exist).
        #[arg(long, value_name = "PATH")]
        new_key_file: PathBuf,
    },
}

/// `caseflow master-key`.
pub async fn master_key(args: MasterKeyArgs) -> Result<ExitCode, CliError> {
    match args.action {
        MasterKeyAction::New { out } => {
            let key = MasterKey::create_file(&out).map_err(key_error)?;
            say!(
                "Wrote a new master key to {} (fingerprint {}). Keep it apart from the store and its backups.",
                out.display(),
                key.fingerprint()
            );
        }
        MasterKeyAction::Rotate {
            store,
            new_key_file,
        } => {
            let engine = open_writable(&store).await?;
            let new = if new_key_file.exists() {
                MasterKey::from_file(&new_key_file)
            } else {
                MasterKey::create_file(&new_key_file)
            }
            .map_err(key_error)?;
            let count = engine.rotate_master_key(&new).await?;
            say!(
                "Rewrapped {count} data keys under the master key in {} (fingerprint {}); the old key no longer opens the key store.",
                new_key_file.display(),
                new.fingerprint()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `reveal`.
#[derive(Debug, Args)]
pub struct RevealArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The case: its id or its number (e.g. 2026-0042).
    #[arg(value_name = "CASE")]
    case_id: String,
    /// Who asks (`unit/role`, e.g. room-1/case_officer).
    #[arg(long)]
    actor: String,
    /// Why they need the contact (recorded in the case's history).
    #[arg(long)]
    reason: String,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// `caseflow reveal`.
pub async fn reveal(args: RevealArgs) -> Result<ExitCode, CliError> {
    let actor = parse_actor(&args.actor)?;
    let engine = open_writable(&args.store).await?;
    let case_id = resolve_case(&engine, &args.case_id).await?;
    let contact = engine
        .reveal_reporter_contact(case_id, actor.clone(), args.reason.clone())
        .await?;
    if args.json {
        say!(
            "{}",
            serde_json::json!({
                "case_id": case_id,
                "revealed_to": actor.to_string(),
                "name": contact.expose_name(),
                "phone": contact.expose_phone(),
            })
        );
    } else {
        say!(
            "Reporter of case {case_id} (this reveal by {actor} is recorded in the case's history):\n  name:  {}\n  phone: {}",
            contact.expose_name(),
            contact.expose_phone()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `erase-contact`.
#[derive(Debug, Args)]
pub struct EraseArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The case: its id or its number.
    #[arg(value_name = "CASE")]
    case_id: String,
    /// Who decides (`unit/role`; a room's leader).
    #[arg(long)]
    actor: String,
    /// Why.
    #[arg(long)]
    reason: String,
    /// The legal basis of the erasure.
    #[arg(long)]
    legal_basis: String,
}

/// `caseflow erase-contact`.
pub async fn erase(args: EraseArgs) -> Result<ExitCode, CliError> {
    let actor = parse_actor(&args.actor)?;
    let engine = open_writable(&args.store).await?;
    let case_id = resolve_case(&engine, &args.case_id).await?;
    let reporter = engine
        .case_state(case_id)
        .await?
        .case()
        .map(|c| c.reporter_handle)
        .ok_or(caseflow::EngineError::CaseNotFound(case_id))?;
    engine
        .erase_reporter_contact(case_id, actor, args.reason, args.legal_basis)
        .await?;
    let cases = engine.reporter_cases(reporter).await?;
    say!(
        "Erased the contact of reporter {reporter}: its data key is destroyed; {} case(s) record the erasure.",
        cases.len()
    );
    Ok(ExitCode::SUCCESS)
}
