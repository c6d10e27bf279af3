//! The auditor's verbs: `keygen`, `anchor`, `prove` and `verify-proof`, and the anchor
//! arguments of `verify`. Formats: docs/design.md, "The Merkle log".

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use caseflow::EngineError;
use caseflow::store::tree::{Evidence, KeyPair, PublicKey, SignedTreeHead};
use clap::Args;

use crate::commands::{open, resolve_case};
use crate::{CliError, StoreArgs};

/// Arguments of `keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the secret key (64 hex digits, readable by its owner only); the public
    /// key goes to the same path with `.pub` added.
    #[arg(long, value_name = "KEYFILE")]
    out: PathBuf,
    /// Replace existing key files (the old key can then no longer sign; heads it signed
    /// still verify with its public key).
    #[arg(long)]
    force: bool,
}

/// Arguments of `anchor`.
#[derive(Debug, Args)]
pub struct AnchorArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The secret key file made by `caseflow keygen`.
    #[arg(long, value_name = "KEYFILE")]
    key: PathBuf,
    /// Write the signed head here (default: print it).
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
}

/// Arguments of `prove`.
#[derive(Debug, Args)]
pub struct ProveArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The case: its id (a UUID) or its number (e.g. 2026-0042).
    #[arg(long = "case", value_name = "CASE")]
    case_id: String,
    /// Prove only the case's first N events.
    #[arg(long, value_name = "N")]
    version: Option<u64>,
    /// The signed head the proofs are made against (from `caseflow anchor`).
    #[arg(long, value_name = "PATH")]
    anchor: PathBuf,
    /// The key the head must be signed by (64 hex digits or a `.pub` file).
    #[arg(long, value_name = "KEY")]
    pubkey: Option<String>,
    /// Where to write the evidence.
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
}

/// Arguments of `verify-proof`.
#[derive(Debug, Args)]
pub struct VerifyProofArgs {
    /// The evidence file made by `caseflow prove`.
    #[arg(value_name = "PROOF")]
    proof: PathBuf,
    /// The signed head the evidence was made against.
    #[arg(long, value_name = "PATH")]
    anchor: PathBuf,
    /// The key the head must be signed by (64 hex digits or a `.pub` file). Without it only
    /// the head's own key is checked, which proves nothing about who signed it.
    #[arg(long, value_name = "KEY")]
    pubkey: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

fn read_text(path: &Path, what: &str) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| CliError::Io {
        what: format!("cannot read {what} {}", path.display()),
        source,
    })
}

fn write_text(path: &Path, text: &str, what: &str) -> Result<(), CliError> {
    std::fs::write(path, text).map_err(|source| CliError::Io {
        what: format!("cannot write {what} {}", path.display()),
        source,
    })
}

/// Reads a signed head file: one head (from `caseflow anchor`), or the last line of a file
/// of heads the engine published (`FileHeadSink`, one JSON head per line).
pub fn load_head(path: &Path) -> Result<SignedTreeHead, CliError> {
    let text = read_text(path, "the anchor")?;
    SignedTreeHead::from_json(&text)
        .or_else(
            |whole| match text.lines().rev().find(|l| !l.trim().is_empty()) {
                Some(last) if last.len() < text.trim_end().len() => SignedTreeHead::from_json(last),
                _ => Err(whole),
            },
        )
        .map_err(|e| CliError::Engine(EngineError::Anchor(e)))
}

/// A public key given as 64 hex digits or as the path of a file holding them.
pub fn parse_pubkey(text: &str) -> Result<PublicKey, CliError> {
    let path = Path::new(text);
    let hex = if path.is_file() {
        read_text(path, "the public key")?
    } else {
        text.to_owned()
    };
    PublicKey::from_hex(&hex).map_err(|e| CliError::Engine(EngineError::Anchor(e)))
}

/// `caseflow keygen`.
pub fn keygen(args: KeygenArgs) -> Result<ExitCode, CliError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| CliError::Io {
        what: "cannot read the operating system's random generator".to_owned(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let key = KeyPair::from_seed(seed);
    let public_path = PathBuf::from(format!("{}.pub", args.out.display()));
    write_secret(&args.out, &key.secret_hex(), args.force)?;
    let public = key.public().to_hex();
    if !args.force && public_path.exists() {
        return Err(CliError::Usage(format!(
            "{} exists; pass --force to replace it",
            public_path.display()
        )));
    }
    write_text(&public_path, &format!("{public}\n"), "the public key")?;
    say!(
        "secret key: {} (keep it off the audited machine's backups)\npublic key: {} ({public})",
        args.out.display(),
        public_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes the secret key readable by its owner only, never over an existing file unless
/// `force`.
fn write_secret(path: &Path, hex: &str, force: bool) -> Result<(), CliError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let io = |source| CliError::Io {
        what: format!(
            "cannot create the secret key {}{}",
            path.display(),
            if force {
                ""
            } else {
                " (pass --force to replace an existing key)"
            }
        ),
        source,
    };
    let mut file = options.open(path).map_err(io)?;
    file.write_all(format!("{hex}\n").as_bytes()).map_err(io)?;
    Ok(())
}

/// `caseflow anchor`.
pub async fn anchor(args: AnchorArgs) -> Result<ExitCode, CliError> {
    let key = KeyPair::from_hex(&read_text(&args.key, "the secret key")?)
        .map_err(|e| CliError::Engine(EngineError::Anchor(e)))?;
    let engine = open(&args.store).await?;
    let head = engine.sign_head(&key).await?;
    let json = head.to_json();
    match &args.out {
        Some(path) => {
            write_text(path, &format!("{json}\n"), "the signed head")?;
            say!(
                "signed head of {} records, root {}, at {}: {}",
                head.tree_size,
                head.root_hash,
                head.timestamp,
                path.display()
            );
        }
        None => say!("{json}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `caseflow prove`.
pub async fn prove(args: ProveArgs) -> Result<ExitCode, CliError> {
    let head = load_head(&args.anchor)?;
    let trusted = args.pubkey.as_deref().map(parse_pubkey).transpose()?;
    let engine = open(&args.store).await?;
    let case_id = resolve_case(&engine, &args.case_id).await?;
    let evidence = engine
        .prove_case(case_id, args.version, &head, trusted.as_ref())
        .await?;
    if evidence.entries.is_empty() {
        return Err(CliError::Usage(format!(
            "case {case_id} has no event inside the anchored log of {} records (anchor a newer head)",
            head.tree_size
        )));
    }
    write_text(
        &args.out,
        &format!("{}\n", evidence.to_json()),
        "the evidence",
    )?;
    say!(
        "{} events of case {case_id} proved against the signed head of {} records: {}",
        evidence.entries.len(),
        head.tree_size,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `caseflow verify-proof`: offline, with nothing but the two files and the key.
pub fn verify_proof(args: VerifyProofArgs) -> Result<ExitCode, CliError> {
    let head = load_head(&args.anchor)?;
    let trusted = args.pubkey.as_deref().map(parse_pubkey).transpose()?;
    let evidence = Evidence::from_json(&read_text(&args.proof, "the evidence")?)
        .map_err(|e| CliError::Usage(format!("{}: {e}", args.proof.display())))?;
    let result = head
        .verify(trusted.as_ref())
        .map_err(|e| e.to_string())
        .and_then(|checked| evidence.check(&checked).map_err(|e| e.to_string()));
    if args.json {
        say!(
            "{}",
            serde_json::json!({
                "holds": result.is_ok(),
                "stream_id": evidence.stream_id,
                "events": result.as_ref().ok(),
                "tree_size": head.tree_size,
                "signed_at": head.timestamp,
                "public_key": head.public_key,
                "key_trusted": trusted.is_some(),
                "error": result.as_ref().err(),
            })
        );
    } else {
        match &result {
            Ok(n) => say!(
                "holds: {n} events of {} (versions 1..={n}) are in the log of {} records signed at {} by {}{}",
                evidence.stream_id,
                head.tree_size,
                head.timestamp,
                head.public_key,
                if trusted.is_some() {
                    ""
                } else {
                    " (no --pubkey: only the head's own key was checked)"
                }
            ),
            Err(e) => say!("DOES NOT HOLD: {e}"),
        }
    }
    Ok(if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
