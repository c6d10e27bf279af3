//! The backend contract suite on the SQLite store (synchronous=NORMAL to keep CI quick;
//! FULL differs only in the fsync, which the crash test covers).

use std::sync::Arc;

use caseflow_store::contract::{Harness, Tamper};
use caseflow_store::{EventStore, SqliteOptions, SqliteStore};

async fn fresh() -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path, SqliteOptions::normal()).expect("open");
    Harness {
        store: Arc::new(store) as Arc<dyn EventStore>,
        tamper: Some(Box::new(move |position, tamper| {
            // A separate connection changes the file behind the store's back.
            let conn = rusqlite::Connection::open(&path).expect("open raw");
            let sql = match tamper {
                Tamper::PayloadByte => {
                    "UPDATE events SET payload = CAST(replace(CAST(payload AS TEXT), '\"n\"', '\"N\"') AS BLOB) WHERE position = ?1"
                }
                Tamper::EventType => {
                    "UPDATE events SET event_type = event_type || 'X' WHERE position = ?1"
                }
                Tamper::SchemaVersion => {
                    "UPDATE events SET schema_version = schema_version + 1 WHERE position = ?1"
                }
                Tamper::Actor => "UPDATE events SET actor = actor || '!' WHERE position = ?1",
                Tamper::RecordedAt => {
                    "UPDATE events SET recorded_at_ns = recorded_at_ns + 1 WHERE position = ?1"
                }
                Tamper::EventId => {
                    "UPDATE events SET event_id = randomblob(16) WHERE position = ?1"
                }
                Tamper::Hash => "UPDATE events SET hash = zeroblob(32) WHERE position = ?1",
                Tamper::PrevHash => {
                    "UPDATE events SET prev_hash = randomblob(32) WHERE position = ?1"
                }
            };
            let n = conn.execute(sql, [position as i64]).expect("tamper");
            assert_eq!(n, 1, "no record at position {position}");
        })),
        guard: Some(Box::new(dir)),
    }
}

caseflow_store::contract_tests!(fresh);
