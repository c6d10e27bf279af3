//! The backend contract suite, live on PostgreSQL (feature `postgres`; the server named by
//! `CASEFLOW_TEST_POSTGRES`, which CI sets). Every test gets a schema of its own, dropped
//! afterwards, so the tests run in parallel and never see each other's rows.
#![cfg(feature = "postgres")]

use std::sync::Arc;

use caseflow_store::EventStore;
use caseflow_store::contract::{Harness, Tamper};
use caseflow_store::postgres::PostgresStore;
use caseflow_store::postgres::testing::TempSchema;

async fn fresh() -> Harness {
    let schema = Arc::new(TempSchema::new());
    let store = PostgresStore::connect_str(&schema.url(""))
        .await
        .expect("connect to the test server");
    let tamper_schema = Arc::clone(&schema);
    Harness {
        store: Arc::new(store) as Arc<dyn EventStore>,
        tamper: Some(Box::new(move |position, tamper| {
            // A separate connection changes the rows behind the store's back.
            let s = &tamper_schema.name;
            let set = match tamper {
                Tamper::PayloadByte => {
                    "payload = convert_to(replace(convert_from(payload, 'UTF8'), '\"n\"', '\"N\"'), 'UTF8')"
                }
                Tamper::EventType => "event_type = event_type || 'X'",
                Tamper::SchemaVersion => "schema_version = schema_version + 1",
                Tamper::Actor => "actor = actor || '!'",
                Tamper::RecordedAt => "recorded_at_ns = recorded_at_ns + 1",
                Tamper::EventId => "event_id = gen_random_uuid()",
                Tamper::Hash => "hash = decode(repeat('00', 32), 'hex')",
                Tamper::PrevHash => "prev_hash = sha256(prev_hash)",
            };
            let n = tamper_schema
                .execute_blocking(&format!(
                    "UPDATE {s}.events SET {set} WHERE position = {position}"
                ))
                .expect("tamper");
            assert_eq!(n, 1, "no record at position {position}");
        })),
        guard: Some(Box::new(schema)),
    }
}

caseflow_store::contract_tests!(fresh);
