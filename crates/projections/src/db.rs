//! The SQLite read-model database: every projection's rows plus one checkpoint per
//! projection, written together in one transaction per batch.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::ProjectionError;

/// The `user_version` this build writes. Bump it (with a migration) when a table changes.
pub const READ_MODEL_FORMAT: i64 = 1;

/// How hard commits push to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: a committed batch survives power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL`: a committed batch survives a process crash; the last batches
    /// may be lost on power loss, which only means they are applied again (the checkpoint
    /// is lost with them), never double-counted.
    Normal,
}

/// A SQLite database holding read models and their checkpoints.
///
/// Separate from the event store file: read models can be dropped and rebuilt at any time
/// without touching the log.
#[derive(Debug)]
pub struct ReadModelDb {
    pub(crate) conn: Connection,
}

impl ReadModelDb {
    /// Opens (creating if needed) a read-model database file.
    pub fn open(path: impl AsRef<Path>, durability: Durability) -> Result<Self, ProjectionError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            match durability {
                Durability::Full => "FULL",
                Durability::Normal => "NORMAL",
            },
        )?;
        Self::init(conn)
    }

    /// A private in-memory database (tests, benchmarks).
    pub fn open_in_memory() -> Result<Self, ProjectionError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, ProjectionError> {
        let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > READ_MODEL_FORMAT {
            return Err(ProjectionError::NewerFormat {
                found,
                supported: READ_MODEL_FORMAT,
            });
        }
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS projection_checkpoints (
                 name TEXT PRIMARY KEY NOT NULL,
                 position INTEGER NOT NULL CHECK (position >= 0)
             );",
        )?;
        if found < READ_MODEL_FORMAT {
            conn.pragma_update(None, "user_version", READ_MODEL_FORMAT)?;
        }
        Ok(Self { conn })
    }

    /// The stored checkpoint of a projection (0 when it has none).
    pub fn checkpoint(&self, name: &str) -> Result<u64, ProjectionError> {
        read_checkpoint(&self.conn, name)
    }

    /// The underlying connection, for ad-hoc SQL over the read-model tables.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

pub(crate) fn read_checkpoint(conn: &Connection, name: &str) -> Result<u64, ProjectionError> {
    let position: Option<i64> = conn
        .query_row(
            "SELECT position FROM projection_checkpoints WHERE name = ?1",
            params![name],
            |r| r.get(0),
        )
        .optional()?;
    match position {
        None => Ok(0),
        Some(p) => u64::try_from(p).map_err(|_| ProjectionError::CorruptReadModel {
            projection: name.to_owned(),
            reason: format!("negative checkpoint {p}"),
        }),
    }
}

pub(crate) fn write_checkpoint(
    conn: &Connection,
    name: &str,
    position: u64,
) -> rusqlite::Result<()> {
    let position = i64::try_from(position).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "INSERT INTO projection_checkpoints (name, position) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET position = excluded.position",
    )?
    .execute(params![name, position])?;
    Ok(())
}

/// Encodes a row value as JSON (the compact stored form of in-memory entries).
pub(crate) fn to_json<T: serde::Serialize>(
    projection: &str,
    value: &T,
) -> Result<String, ProjectionError> {
    serde_json::to_string(value).map_err(|e| ProjectionError::CorruptReadModel {
        projection: projection.to_owned(),
        reason: format!("cannot encode a row: {e}"),
    })
}

/// Decodes a stored JSON row, naming the projection when it does not decode.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    projection: &str,
    text: &str,
) -> Result<T, ProjectionError> {
    serde_json::from_str(text).map_err(|e| ProjectionError::CorruptReadModel {
        projection: projection.to_owned(),
        reason: e.to_string(),
    })
}

/// A read-model table holding one JSON document per case: `(case_id TEXT PRIMARY KEY,
/// <column> TEXT)`.
///
/// Projections whose state is a map from case to a serde value (the to-do entries, the
/// statistics facts, the engine's deadline index) persist it through this one piece, so the
/// create / load / save-the-changed-cases logic and its corruption checks exist once.
#[derive(Debug, Clone, Copy)]
pub struct CaseJsonTable {
    /// The projection's name, used in errors.
    pub projection: &'static str,
    /// The table's name.
    pub table: &'static str,
    /// The name of the JSON column.
    pub column: &'static str,
}

impl CaseJsonTable {
    /// Creates the table if it does not exist.
    pub fn create(&self, conn: &Connection) -> rusqlite::Result<()> {
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {} (
                 case_id TEXT PRIMARY KEY NOT NULL,
                 {} TEXT NOT NULL
             ) WITHOUT ROWID;",
            self.table, self.column
        ))
    }

    /// Deletes every row (before a rebuild).
    pub fn delete_all(&self, conn: &Connection) -> rusqlite::Result<()> {
        conn.execute(&format!("DELETE FROM {}", self.table), [])
            .map(|_| ())
    }

    /// Reads every row and hands each decoded document to `each`. A row whose case id or
    /// document does not decode is a `CorruptReadModel` error naming the projection.
    pub fn load<T: serde::de::DeserializeOwned>(
        &self,
        conn: &Connection,
        mut each: impl FnMut(caseflow_domain::CaseId, T) -> Result<(), ProjectionError>,
    ) -> Result<(), ProjectionError> {
        let mut stmt = conn.prepare(&format!(
            "SELECT case_id, {} FROM {}",
            self.column, self.table
        ))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let text: String = row.get(1)?;
            let case_id = uuid::Uuid::parse_str(&id)
                .map(caseflow_domain::CaseId::new)
                .map_err(|e| ProjectionError::CorruptReadModel {
                    projection: self.projection.to_owned(),
                    reason: format!("case id {id:?}: {e}"),
                })?;
            each(case_id, from_json(self.projection, &text)?)?;
        }
        Ok(())
    }

    /// Writes the rows of the cases changed since the last save (nothing when change tracking
    /// is off). The change set is kept until the rows are written, so a failed save loses
    /// nothing.
    pub fn save_changed<'a, T: serde::Serialize + 'a>(
        &self,
        conn: &Connection,
        changed: &mut ChangedCases,
        current: impl Fn(&caseflow_domain::CaseId) -> Option<&'a T>,
    ) -> Result<(), ProjectionError> {
        let Some(set) = changed.0.take() else {
            return Ok(());
        };
        let result = self.save(conn, &set, current);
        changed.0 = Some(if result.is_ok() {
            crate::fast_hash::HashSet::default()
        } else {
            set
        });
        result
    }

    /// Writes the rows of the `changed` cases: the document `current` returns, or no row when
    /// it returns `None` (the case left the read model).
    pub fn save<'a, 'c, T: serde::Serialize + 'a>(
        &self,
        conn: &Connection,
        changed: impl IntoIterator<Item = &'c caseflow_domain::CaseId>,
        current: impl Fn(&caseflow_domain::CaseId) -> Option<&'a T>,
    ) -> Result<(), ProjectionError> {
        let mut upsert = conn.prepare_cached(&format!(
            "INSERT INTO {table} (case_id, {column}) VALUES (?1, ?2)
             ON CONFLICT(case_id) DO UPDATE SET {column} = excluded.{column}",
            table = self.table,
            column = self.column
        ))?;
        let mut delete =
            conn.prepare_cached(&format!("DELETE FROM {} WHERE case_id = ?1", self.table))?;
        for case_id in changed {
            let id = case_id.to_string();
            match current(case_id) {
                Some(doc) => upsert.execute(params![id, to_json(self.projection, doc)?])?,
                None => delete.execute(params![id])?,
            };
        }
        Ok(())
    }
}

/// The cases a projection changed since its last save. Kept only while a SQLite runner
/// tracks changes, so the in-memory variant never pays for it.
#[derive(Debug, Default, Clone)]
pub struct ChangedCases(Option<crate::fast_hash::HashSet<caseflow_domain::CaseId>>);

impl ChangedCases {
    /// Starts (with an empty set) or stops tracking.
    pub fn track(&mut self, on: bool) {
        self.0 = on.then(crate::fast_hash::HashSet::default);
    }

    /// Notes that `case_id` changed (a no-op while not tracking).
    pub fn mark(&mut self, case_id: caseflow_domain::CaseId) {
        if let Some(set) = &mut self.0 {
            set.insert(case_id);
        }
    }

    /// Forgets the changes (after a rebuild, a load, or a discarded batch), still tracking
    /// if tracking was on.
    pub fn clear(&mut self) {
        if let Some(set) = &mut self.0 {
            set.clear();
        }
    }
}
