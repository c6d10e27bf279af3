//! Who may use the server: users with a unit and a role, their API tokens and their
//! sign-in sessions, in a SQLite file of their own (`<store stem>.users.db`), never in the
//! event log (users change and would otherwise leak into every export and audit).
//!
//! - Passwords are stored as argon2id hashes (PHC strings with their salt and parameters).
//! - API tokens (`cf_` + 64 hex digits, 256 random bits) and session ids are shown once and
//!   stored as their SHA-256: they are random, so a fast hash suffices, and a stolen file
//!   holds nothing that signs in.
//! - Nothing here reads a clock: callers pass `now`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use caseflow::domain::{Actor, Organisation, Role, UnitId};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The schema version this code writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

/// Shortest password accepted.
pub const PASSWORD_CHARS_MIN: usize = 10;

/// What a user may do on the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Access {
    /// A person acting for a unit in a domain role: issues the commands the domain allows
    /// that actor and reads what the query rules give that unit.
    Staff {
        /// The unit and role.
        actor: Actor,
    },
    /// Reads everything (every list, case, audit, export, verify) except reporters'
    /// contacts, and issues no command.
    Auditor,
    /// Operates the server: verify, metrics, users. Reads no case data, issues no command.
    Admin,
}

impl Access {
    /// The acting unit and role, for staff.
    pub fn actor(&self) -> Option<&Actor> {
        match self {
            Access::Staff { actor } => Some(actor),
            _ => None,
        }
    }

    fn columns(&self) -> (&'static str, Option<String>, Option<String>) {
        match self {
            Access::Staff { actor } => (
                "staff",
                Some(actor.unit.to_string()),
                Some(actor.role.to_string()),
            ),
            Access::Auditor => ("auditor", None, None),
            Access::Admin => ("admin", None, None),
        }
    }

    fn from_columns(kind: &str, unit: Option<String>, role: Option<String>) -> Option<Access> {
        match kind {
            "auditor" => Some(Access::Auditor),
            "admin" => Some(Access::Admin),
            "staff" => Some(Access::Staff {
                actor: Actor::new(UnitId::from(unit?), parse_role(&role?)?),
            }),
            _ => None,
        }
    }
}

/// Parses a domain role name as the CLI and the database write it (`leader`, `case_officer`,
/// `information_officer`). The deadline watcher is not a person and cannot be a user.
pub fn parse_role(name: &str) -> Option<Role> {
    match name {
        "leader" => Some(Role::Leader),
        "case_officer" => Some(Role::CaseOfficer),
        "information_officer" => Some(Role::InformationOfficer),
        _ => None,
    }
}

/// A user as the server sees it (never with a password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// Sign-in name.
    pub username: String,
    /// Name shown in the workbench.
    pub display_name: String,
    /// What the user may do.
    pub access: Access,
    /// A disabled user cannot sign in and their tokens and sessions stop working.
    pub disabled: bool,
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Sign-in name (a-z, 0-9, '.', '_', '-'; 2 to 64 characters).
    pub username: String,
    /// Name shown in the workbench.
    pub display_name: String,
    /// What the user may do.
    pub access: Access,
    /// The password; `None` for a service user that signs in only with tokens.
    pub password: Option<String>,
}

/// An API token's record (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// Row id (to revoke it).
    pub id: i64,
    /// The user's sign-in name.
    pub username: String,
    /// What it is for.
    pub label: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// A signed-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The user.
    pub user: User,
    /// The form token every unsafe request of this session must carry.
    pub csrf: String,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

/// What can go wrong with the users database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserError {
    /// Caller: the name is taken.
    #[error("user `{0}` already exists")]
    UsernameTaken(String),
    /// Caller: no such user.
    #[error("no user `{0}`")]
    UnknownUser(String),
    /// Caller: the name has characters other than a-z, 0-9, '.', '_', '-' or a bad length.
    #[error("invalid user name `{0}`: use 2 to 64 of a-z, 0-9, '.', '_', '-'")]
    InvalidUsername(String),
    /// Caller: the unit is not in the district.
    #[error("unknown unit `{0}`")]
    UnknownUnit(String),
    /// Caller: the role does not exist at the unit's level.
    #[error(
        "role {role} does not exist at unit `{unit}` (villages have information officers; rooms, teams and localities leaders and case officers)"
    )]
    RoleNotValid {
        /// The unit.
        unit: String,
        /// The role.
        role: Role,
    },
    /// Caller: the password is too short.
    #[error("the password must have at least {PASSWORD_CHARS_MIN} characters")]
    WeakPassword,
    /// Caller: no such token.
    #[error("no token {0}")]
    UnknownToken(i64),
    /// Fatal: the file was written by a newer version of Caseflow.
    #[error("{path} has users schema {found}; this build understands up to {SCHEMA_VERSION}")]
    NewerFormat {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: i64,
    },
    /// Retry when the database is busy, fatal otherwise: SQLite failed.
    #[error("users database: {0}")]
    Db(#[from] rusqlite::Error),
    /// Fatal: the password hasher failed (it never should with valid parameters).
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// The users database.
pub struct UserStore {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for UserStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserStore").finish_non_exhaustive()
    }
}

/// Random bytes from the operating system as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The OS random source failing is not recoverable; an all-zero token would be worse.
    if getrandom::fill(&mut buf).is_err() {
        panic!("the operating system's random source failed");
    }
    hex::encode(buf)
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    unit TEXT,
    role TEXT,
    password_hash TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    token_hash TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    csrf TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
";

const USER_COLUMNS: &str = "users.id, users.username, users.display_name, users.kind, users.unit, users.role, users.disabled";

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<User>> {
    let kind: String = row.get(3)?;
    let access = Access::from_columns(&kind, row.get(4)?, row.get(5)?);
    Ok(access.map(|access| User {
        id: row.get(0).unwrap_or_default(),
        username: row.get(1).unwrap_or_default(),
        display_name: row.get(2).unwrap_or_default(),
        access,
        disabled: row.get::<_, i64>(6).unwrap_or(1) != 0,
    }))
}

impl UserStore {
    /// Opens (or creates) the users database at `path`.
    pub fn open(path: &Path) -> Result<UserStore, UserError> {
        let conn = Connection::open(path)?;
        Self::init(conn, path)
    }

    /// A users database in memory (tests).
    pub fn in_memory() -> Result<UserStore, UserError> {
        Self::init(Connection::open_in_memory()?, Path::new(":memory:"))
    }

    fn init(conn: Connection, path: &Path) -> Result<UserStore, UserError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(UserError::NewerFormat {
                path: path.to_path_buf(),
                found,
            });
        }
        conn.execute_batch(SCHEMA)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(UserStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (every change is
        // one statement or transaction), so a poisoned lock is still usable.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Creates a user after checking the name, the unit and role against the district and
    /// the password's length.
    pub fn add(
        &self,
        new: &NewUser,
        org: &Organisation,
        now: DateTime<Utc>,
    ) -> Result<User, UserError> {
        check_username(&new.username)?;
        if let Access::Staff { actor } = &new.access {
            check_actor(actor, org)?;
        }
        let hash = new.password.as_deref().map(hash_password).transpose()?;
        let (kind, unit, role) = new.access.columns();
        let conn = self.conn();
        let inserted = conn.execute(
            "INSERT INTO users (username, display_name, kind, unit, role, password_hash, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![new.username, new.display_name, kind, unit, role, hash, time_text(now)],
        );
        match inserted {
            Ok(_) => Ok(User {
                id: conn.last_insert_rowid(),
                username: new.username.clone(),
                display_name: new.display_name.clone(),
                access: new.access.clone(),
                disabled: false,
            }),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Err(UserError::UsernameTaken(new.username.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Every user, by name.
    pub fn list(&self) -> Result<Vec<User>, UserError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY username"
        ))?;
        let rows = stmt.query_map([], user_from_row)?;
        let mut users = Vec::new();
        for row in rows {
            users.extend(row?);
        }
        Ok(users)
    }

    /// One user by name.
    pub fn find(&self, username: &str) -> Result<Option<User>, UserError> {
        let conn = self.conn();
        let user = conn
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?1"),
                [username],
                user_from_row,
            )
            .optional()?;
        Ok(user.flatten())
    }

    fn require(&self, username: &str) -> Result<User, UserError> {
        self.find(username)?
            .ok_or_else(|| UserError::UnknownUser(username.to_owned()))
    }

    /// Sets a new password.
    pub fn set_password(&self, username: &str, password: &str) -> Result<(), UserError> {
        let user = self.require(username)?;
        let hash = hash_password(password)?;
        self.conn().execute(
            "UPDATE users SET password_hash = ?1 WHERE id = ?2",
            params![hash, user.id],
        )?;
        Ok(())
    }

    /// Disables (or enables) a user; disabling also ends their sessions.
    pub fn set_disabled(&self, username: &str, disabled: bool) -> Result<(), UserError> {
        let user = self.require(username)?;
        let conn = self.conn();
        conn.execute(
            "UPDATE users SET disabled = ?1 WHERE id = ?2",
            params![i64::from(disabled), user.id],
        )?;
        if disabled {
            conn.execute("DELETE FROM sessions WHERE user_id = ?1", [user.id])?;
        }
        Ok(())
    }

    /// The user whose password this is, if the name exists, is enabled and the password
    /// matches. Slow on purpose (argon2); call it off the async threads.
    pub fn check_password(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<User>, UserError> {
        let row: Option<(Option<User>, Option<String>)> = {
            let conn = self.conn();
            conn.query_row(
                &format!(
                    "SELECT {USER_COLUMNS}, users.password_hash FROM users WHERE username = ?1"
                ),
                [username],
                |row| Ok((user_from_row(row)?, row.get(7)?)),
            )
            .optional()?
        };
        let (user, hash) = match row {
            Some((Some(user), Some(hash))) if !user.disabled => (Some(user), hash),
            // Spend the same time on an unknown name as on a wrong password.
            _ => (None, dummy_hash().to_owned()),
        };
        let matches = PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        Ok(user.filter(|_| matches))
    }

    /// Makes an API token for a user; returns the token (shown once) and its record.
    pub fn create_token(
        &self,
        username: &str,
        label: &str,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(String, TokenInfo), UserError> {
        let user = self.require(username)?;
        let token = format!("cf_{}", random_hex(32));
        let conn = self.conn();
        conn.execute(
            "INSERT INTO tokens (user_id, token_hash, label, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![user.id, sha256_hex(&token), label, time_text(now), expires_at.map(time_text)],
        )?;
        let info = TokenInfo {
            id: conn.last_insert_rowid(),
            username: user.username,
            label: label.to_owned(),
            created_at: now,
            expires_at,
            revoked: false,
        };
        Ok((token, info))
    }

    /// Revokes a token by id.
    pub fn revoke_token(&self, id: i64) -> Result<(), UserError> {
        let changed = self
            .conn()
            .execute("UPDATE tokens SET revoked = 1 WHERE id = ?1", [id])?;
        if changed == 0 {
            return Err(UserError::UnknownToken(id));
        }
        Ok(())
    }

    /// Every token's record (of one user, or of all).
    pub fn tokens(&self, username: Option<&str>) -> Result<Vec<TokenInfo>, UserError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT tokens.id, users.username, tokens.label, tokens.created_at, tokens.expires_at, tokens.revoked
             FROM tokens JOIN users ON users.id = tokens.user_id
             WHERE ?1 IS NULL OR users.username = ?1 ORDER BY tokens.id",
        )?;
        let rows = stmt.query_map([username], |row| {
            Ok(TokenInfo {
                id: row.get(0)?,
                username: row.get(1)?,
                label: row.get(2)?,
                created_at: parse_time(&row.get::<_, String>(3)?),
                expires_at: row.get::<_, Option<String>>(4)?.as_deref().map(parse_time),
                revoked: row.get::<_, i64>(5)? != 0,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The enabled user a live, unrevoked token belongs to, with the token's id.
    pub fn user_for_token(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(User, i64)>, UserError> {
        let conn = self.conn();
        let found = conn
            .query_row(
                &format!(
                    "SELECT {USER_COLUMNS}, tokens.id, tokens.expires_at FROM tokens
                     JOIN users ON users.id = tokens.user_id
                     WHERE tokens.token_hash = ?1 AND tokens.revoked = 0"
                ),
                [sha256_hex(token)],
                |row| {
                    Ok((
                        user_from_row(row)?,
                        row.get::<_, i64>(7)?,
                        row.get::<_, Option<String>>(8)?,
                    ))
                },
            )
            .optional()?;
        Ok(match found {
            Some((Some(user), id, expires)) if !user.disabled => {
                let live = expires.as_deref().map(parse_time).is_none_or(|e| e > now);
                live.then_some((user, id))
            }
            _ => None,
        })
    }

    /// Starts a session for a user; returns the session id (the cookie, shown once) and the
    /// session.
    pub fn create_session(
        &self,
        user: &User,
        now: DateTime<Utc>,
        lifetime: Duration,
    ) -> Result<(String, Session), UserError> {
        let id = random_hex(32);
        let csrf = random_hex(16);
        let expires_at = now + lifetime;
        let conn = self.conn();
        conn.execute(
            "DELETE FROM sessions WHERE expires_at <= ?1",
            [time_text(now)],
        )?;
        conn.execute(
            "INSERT INTO sessions (id_hash, user_id, csrf, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![sha256_hex(&id), user.id, csrf, time_text(expires_at)],
        )?;
        Ok((
            id,
            Session {
                user: user.clone(),
                csrf,
                expires_at,
            },
        ))
    }

    /// The live session with this id, if its user is enabled.
    pub fn session(&self, id: &str, now: DateTime<Utc>) -> Result<Option<Session>, UserError> {
        let conn = self.conn();
        let found = conn
            .query_row(
                &format!(
                    "SELECT {USER_COLUMNS}, sessions.csrf, sessions.expires_at FROM sessions
                     JOIN users ON users.id = sessions.user_id WHERE sessions.id_hash = ?1"
                ),
                [sha256_hex(id)],
                |row| {
                    Ok((
                        user_from_row(row)?,
                        row.get::<_, String>(7)?,
                        row.get::<_, String>(8)?,
                    ))
                },
            )
            .optional()?;
        Ok(match found {
            Some((Some(user), csrf, expires)) if !user.disabled => {
                let expires_at = parse_time(&expires);
                (expires_at > now).then_some(Session {
                    user,
                    csrf,
                    expires_at,
                })
            }
            _ => None,
        })
    }

    /// Ends a session (signing out).
    pub fn end_session(&self, id: &str) -> Result<(), UserError> {
        self.conn()
            .execute("DELETE FROM sessions WHERE id_hash = ?1", [sha256_hex(id)])?;
        Ok(())
    }
}

/// An argon2id hash of a random string, verified against when the user does not exist so an
/// unknown name costs the same time as a wrong password.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&random_hex(16)).unwrap_or_default())
}

fn hash_password(password: &str) -> Result<String, UserError> {
    if password.chars().count() < PASSWORD_CHARS_MIN {
        return Err(UserError::WeakPassword);
    }
    let salt = SaltString::encode_b64(random_hex(16).as_bytes())
        .map_err(|e| UserError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UserError::Hash(e.to_string()))
}

fn check_username(name: &str) -> Result<(), UserError> {
    let ok = (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(UserError::InvalidUsername(name.to_owned()))
    }
}

fn check_actor(actor: &Actor, org: &Organisation) -> Result<(), UserError> {
    let unit = org
        .unit(&actor.unit)
        .ok_or_else(|| UserError::UnknownUnit(actor.unit.to_string()))?;
    if actor.role == Role::Watcher || !actor.role.valid_at(unit.level) {
        return Err(UserError::RoleNotValid {
            unit: actor.unit.to_string(),
            role: actor.role,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use caseflow::District;

    fn staff(unit: &str, role: Role) -> Access {
        Access::Staff {
            actor: Actor::new(unit, role),
        }
    }

    fn new_user(name: &str, access: Access) -> NewUser {
        NewUser {
            username: name.to_owned(),
            display_name: name.to_owned(),
            access,
            password: Some("correct horse battery".to_owned()),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-05-01T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_password_is_stored_as_an_argon2id_hash_and_only_the_right_one_signs_in() {
        let district = District::sample().unwrap();
        let store = UserStore::in_memory().unwrap();
        store
            .add(
                &new_user("li.room1", staff("room-1", Role::Leader)),
                &district.org,
                now(),
            )
            .unwrap();
        let hash: String = store
            .conn()
            .query_row("SELECT password_hash FROM users", [], |r| r.get(0))
            .unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(
            store
                .check_password("li.room1", "correct horse battery")
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .check_password("li.room1", "wrong horse battery")
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .check_password("nobody", "correct horse battery")
                .unwrap()
                .is_none()
        );
        store.set_disabled("li.room1", true).unwrap();
        assert!(
            store
                .check_password("li.room1", "correct horse battery")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn units_roles_names_and_passwords_are_checked_when_a_user_is_added() {
        let org = District::sample().unwrap().org;
        let store = UserStore::in_memory().unwrap();
        let err = |u: NewUser| store.add(&u, &org, now()).unwrap_err();
        assert!(matches!(
            err(new_user("a", Access::Auditor)),
            UserError::InvalidUsername(_)
        ));
        assert!(matches!(
            err(new_user("x.y", staff("room-99", Role::Leader))),
            UserError::UnknownUnit(_)
        ));
        assert!(matches!(
            err(new_user("x.y", staff("room-1", Role::InformationOfficer))),
            UserError::RoleNotValid { .. }
        ));
        assert!(matches!(
            err(new_user("x.y", staff("room-1", Role::Watcher))),
            UserError::RoleNotValid { .. }
        ));
        let mut short = new_user("x.y", Access::Auditor);
        short.password = Some("short".to_owned());
        assert!(matches!(err(short), UserError::WeakPassword));
        store
            .add(&new_user("x.y", Access::Auditor), &org, now())
            .unwrap();
        assert!(matches!(
            err(new_user("x.y", Access::Admin)),
            UserError::UsernameTaken(_)
        ));
    }

    #[test]
    fn tokens_are_stored_hashed_and_stop_working_when_revoked_expired_or_the_user_is_disabled() {
        let org = District::sample().unwrap().org;
        let store = UserStore::in_memory().unwrap();
        store
            .add(
                &new_user("svc.open311", staff("room-1", Role::CaseOfficer)),
                &org,
                now(),
            )
            .unwrap();
        let (token, info) = store
            .create_token("svc.open311", "app", None, now())
            .unwrap();
        let stored: String = store
            .conn()
            .query_row("SELECT token_hash FROM tokens", [], |r| r.get(0))
            .unwrap();
        assert!(!stored.contains(&token[3..]));
        assert_eq!(
            store.user_for_token(&token, now()).unwrap().unwrap().1,
            info.id
        );
        assert!(store.user_for_token("cf_00", now()).unwrap().is_none());
        store.revoke_token(info.id).unwrap();
        assert!(store.user_for_token(&token, now()).unwrap().is_none());
        let (short, _) = store
            .create_token(
                "svc.open311",
                "short",
                Some(now() + Duration::hours(1)),
                now(),
            )
            .unwrap();
        assert!(store.user_for_token(&short, now()).unwrap().is_some());
        assert!(
            store
                .user_for_token(&short, now() + Duration::hours(2))
                .unwrap()
                .is_none()
        );
        store.set_disabled("svc.open311", true).unwrap();
        assert!(store.user_for_token(&short, now()).unwrap().is_none());
    }

    #[test]
    fn sessions_expire_end_on_sign_out_and_carry_their_own_csrf_token() {
        let org = District::sample().unwrap().org;
        let store = UserStore::in_memory().unwrap();
        let user = store
            .add(
                &new_user("wang.v", staff("vil-dongyuan", Role::InformationOfficer)),
                &org,
                now(),
            )
            .unwrap();
        let (id, session) = store
            .create_session(&user, now(), Duration::hours(8))
            .unwrap();
        let (other, other_session) = store
            .create_session(&user, now(), Duration::hours(8))
            .unwrap();
        assert_ne!(session.csrf, other_session.csrf);
        assert_eq!(
            store.session(&id, now()).unwrap().unwrap().csrf,
            session.csrf
        );
        assert!(
            store
                .session(&id, now() + Duration::hours(9))
                .unwrap()
                .is_none()
        );
        store.end_session(&id).unwrap();
        assert!(store.session(&id, now()).unwrap().is_none());
        assert!(store.session(&other, now()).unwrap().is_some());
    }
}
