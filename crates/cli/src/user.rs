//! `caseflow user`: the server's users, their passwords and API tokens. It writes the users
//! database beside the store (`<stem>.users.db`), never the event log; the first admin is
//! made here, by whoever may write that file.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use caseflow::District;
use caseflow::domain::Actor;
use caseflow_server::config::users_path_for;
use caseflow_server::users::{Access, NewUser, UserError, UserStore, parse_role};
use chrono::Utc;
use clap::{Args, Subcommand};

use crate::CliError;

/// Where the users are.
#[derive(Debug, Args, Clone)]
pub struct UsersFile {
    /// The store the users belong to (its users database is `<stem>.users.db` beside it).
    #[arg(long, value_name = "PATH", required_unless_present = "users")]
    db: Option<PathBuf>,
    /// The users database itself.
    #[arg(long, value_name = "PATH")]
    users: Option<PathBuf>,
    /// The district file the units are checked against (default: the sample district).
    #[arg(long, value_name = "PATH")]
    district: Option<PathBuf>,
}

/// Arguments of `user`.
#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    verb: UserVerb,
}

#[derive(Debug, Subcommand)]
enum UserVerb {
    /// Create a user: staff of a unit in a role, an auditor or an admin.
    Add(AddArgs),
    /// List the users.
    List {
        #[command(flatten)]
        file: UsersFile,
    },
    /// Set a user's password (read from the first line of standard input).
    Passwd {
        #[command(flatten)]
        file: UsersFile,
        /// The user.
        name: String,
    },
    /// Disable a user (their sessions end; their tokens stop working).
    Disable {
        #[command(flatten)]
        file: UsersFile,
        /// The user.
        name: String,
    },
    /// Enable a disabled user again.
    Enable {
        #[command(flatten)]
        file: UsersFile,
        /// The user.
        name: String,
    },
    /// Make an API token for a user; it is printed once and stored only as its hash.
    Token {
        #[command(flatten)]
        file: UsersFile,
        /// The user.
        name: String,
        /// What the token is for.
        #[arg(long, default_value = "api")]
        label: String,
        /// Days until it expires (default: never).
        #[arg(long)]
        days: Option<u32>,
    },
    /// List the tokens (of one user, or of all).
    Tokens {
        #[command(flatten)]
        file: UsersFile,
        /// The user.
        name: Option<String>,
    },
    /// Revoke a token by its id.
    Revoke {
        #[command(flatten)]
        file: UsersFile,
        /// The token's id (see `user tokens`).
        id: i64,
    },
}

/// Arguments of `user add`.
#[derive(Debug, Args)]
struct AddArgs {
    #[command(flatten)]
    file: UsersFile,
    /// The sign-in name (a-z, 0-9, '.', '_', '-').
    name: String,
    /// The name shown in the workbench (default: the sign-in name).
    #[arg(long)]
    display_name: Option<String>,
    /// The unit the user acts for (with --role).
    #[arg(long, requires = "role", conflicts_with_all = ["auditor", "admin"])]
    unit: Option<String>,
    /// The role: leader, case_officer or information_officer.
    #[arg(long, requires = "unit")]
    role: Option<String>,
    /// An auditor: reads everything but reporters' contacts, issues nothing.
    #[arg(long, conflicts_with = "admin")]
    auditor: bool,
    /// An admin: verify and metrics; reads no case data.
    #[arg(long)]
    admin: bool,
    /// Read the password from the first line of standard input.
    #[arg(long, conflicts_with = "no_password")]
    password_stdin: bool,
    /// No password: the user signs in only with tokens (a service such as an Open311 app).
    #[arg(long)]
    no_password: bool,
}

fn open(file: &UsersFile) -> Result<(UserStore, District), CliError> {
    let path = match (&file.users, &file.db) {
        (Some(u), _) => u.clone(),
        (None, Some(db)) => users_path_for(db),
        (None, None) => return Err(CliError::Usage("give --db or --users".to_owned())),
    };
    let district = match &file.district {
        Some(p) => District::from_path(p)?,
        None => District::sample()?,
    };
    let store = UserStore::open(&path).map_err(|e| users_error(&e))?;
    Ok((store, district))
}

fn users_error(e: &UserError) -> CliError {
    CliError::Usage(e.to_string())
}

fn read_password() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|source| CliError::Io {
            what: "cannot read the password from standard input".to_owned(),
            source,
        })?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

fn access_of(args: &AddArgs) -> Result<Access, CliError> {
    match (&args.unit, &args.role, args.auditor, args.admin) {
        (Some(unit), Some(role), false, false) => {
            let role = parse_role(role).ok_or_else(|| {
                CliError::Usage(format!(
                    "unknown role `{role}` (leader, case_officer or information_officer)"
                ))
            })?;
            Ok(Access::Staff {
                actor: Actor::new(unit.as_str(), role),
            })
        }
        (None, None, true, false) => Ok(Access::Auditor),
        (None, None, false, true) => Ok(Access::Admin),
        _ => Err(CliError::Usage(
            "give --unit and --role, or --auditor, or --admin".to_owned(),
        )),
    }
}

/// Runs `user`.
pub fn run(args: UserArgs) -> Result<ExitCode, CliError> {
    let now = Utc::now();
    match args.verb {
        UserVerb::Add(add) => {
            let (store, district) = open(&add.file)?;
            let password = match (add.password_stdin, add.no_password) {
                (true, _) => Some(read_password()?),
                (false, true) => None,
                (false, false) => {
                    return Err(CliError::Usage(
                        "give --password-stdin or --no-password".to_owned(),
                    ));
                }
            };
            let new = NewUser {
                username: add.name.clone(),
                display_name: add.display_name.clone().unwrap_or_else(|| add.name.clone()),
                access: access_of(&add)?,
                password,
            };
            let user = store
                .add(&new, &district.org, now)
                .map_err(|e| users_error(&e))?;
            say!(
                "created user {} ({})",
                user.username,
                describe(&user.access)
            );
        }
        UserVerb::List { file } => {
            let (store, _) = open(&file)?;
            for u in store.list().map_err(|e| users_error(&e))? {
                say!(
                    "{}\t{}\t{}{}",
                    u.username,
                    u.display_name,
                    describe(&u.access),
                    if u.disabled { "\tdisabled" } else { "" }
                );
            }
        }
        UserVerb::Passwd { file, name } => {
            let (store, _) = open(&file)?;
            store
                .set_password(&name, &read_password()?)
                .map_err(|e| users_error(&e))?;
            say!("password of {name} set");
        }
        UserVerb::Disable { file, name } => {
            let (store, _) = open(&file)?;
            store
                .set_disabled(&name, true)
                .map_err(|e| users_error(&e))?;
            say!("{name} disabled");
        }
        UserVerb::Enable { file, name } => {
            let (store, _) = open(&file)?;
            store
                .set_disabled(&name, false)
                .map_err(|e| users_error(&e))?;
            say!("{name} enabled");
        }
        UserVerb::Token {
            file,
            name,
            label,
            days,
        } => {
            let (store, _) = open(&file)?;
            let expires = days.map(|d| now + chrono::Duration::days(i64::from(d)));
            let (token, info) = store
                .create_token(&name, &label, expires, now)
                .map_err(|e| users_error(&e))?;
            eprintln!(
                "token {} for {} ({}); it is shown only now:",
                info.id, info.username, info.label
            );
            say!("{token}");
        }
        UserVerb::Tokens { file, name } => {
            let (store, _) = open(&file)?;
            for t in store.tokens(name.as_deref()).map_err(|e| users_error(&e))? {
                let state = if t.revoked {
                    "revoked".to_owned()
                } else {
                    t.expires_at
                        .map_or_else(|| "no expiry".to_owned(), |e| format!("expires {e}"))
                };
                say!("{}\t{}\t{}\t{}", t.id, t.username, t.label, state);
            }
        }
        UserVerb::Revoke { file, id } => {
            let (store, _) = open(&file)?;
            store.revoke_token(id).map_err(|e| users_error(&e))?;
            say!("token {id} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(access: &Access) -> String {
    match access {
        Access::Staff { actor } => format!("{actor}"),
        Access::Auditor => "auditor".to_owned(),
        Access::Admin => "admin".to_owned(),
    }
}
