//! The PostgreSQL key store (feature `postgres`, server in `CASEFLOW_TEST_POSTGRES`): the
//! key-store contract run live, and engines on a `postgres://` store keeping reporters' keys
//! in the database: a contact sealed by one instance is revealed by another, an erasure by
//! one reaches the others at once, a rotation by one stops another's old master key, and the
//! key tables are never silently recreated, nor accepted with the wrong master key.
#![cfg(feature = "postgres")]

mod common;

use std::sync::Arc;

use caseflow::contacts::contract::key_store_contract;
use caseflow::contacts::{KeyError, PostgresKeyStore};
use caseflow::domain::*;
use caseflow::store::postgres::PostgresStore;
use caseflow::store::postgres::testing::TempSchema;
use caseflow::{
    CommandEnvelope, Engine, EngineConfig, EngineError, ManualClock, MasterKey, SeededIds,
    StoreConfig,
};
use common::{case_id, district, informant, report, run, t0};

async fn engine(schema: &TempSchema, master: &MasterKey, seed: u64) -> Engine {
    Engine::open(
        EngineConfig::with_store(StoreConfig::Url(schema.url("")), district())
            .read_models(caseflow::ReadModelConfig::InMemory)
            .master_key(master.clone())
            .clock(Arc::new(ManualClock::new(t0())))
            .ids(Arc::new(SeededIds::new(seed))),
    )
    .await
    .expect("engine opens on PostgreSQL")
}

/// An officer of the first room of the case's zone: may reveal before routing.
async fn zone_officer(engine: &Engine, id: CaseId) -> Actor {
    let state = engine.case_state(id).await.expect("case");
    let case = state.case().expect("case");
    let room = engine
        .district()
        .org
        .zone(&case.zone)
        .and_then(|z| z.rooms.first().cloned())
        .expect("the zone has a room");
    common::officer(room.as_str())
}

fn key_error(e: &EngineError) -> &KeyError {
    match e {
        EngineError::Keys(k) => k,
        other => panic!("expected a key error, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_key_store_keeps_the_contract() {
    let schema = TempSchema::new();
    let store = PostgresStore::connect_str(&schema.url(""))
        .await
        .expect("store");
    let keys = PostgresKeyStore::create(
        store.clone(),
        MasterKey::generate(),
        Arc::new(SeededIds::new(3)),
    )
    .await
    .expect("key tables");
    let rotated = MasterKey::generate();
    key_store_contract(&keys, &rotated).await;
    drop(keys);
    // The keys outlive the process's handle; the old master key no longer opens them.
    PostgresKeyStore::open(store.clone(), rotated, Arc::new(SeededIds::new(4)))
        .await
        .expect("reopens with the rotated master key");
    let refused = PostgresKeyStore::open(store, MasterKey::generate(), Arc::new(SeededIds::new(5)))
        .await
        .expect_err("another master key is refused");
    assert!(
        matches!(refused, KeyError::WrongMasterKey { .. }),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_the_key_tables_for_reveals_erasure_and_rotation() {
    let schema = TempSchema::new();
    let master = MasterKey::generate();
    let desk = engine(&schema, &master, 1).await;
    let bench = engine(&schema, &master, 2).await;
    let first = case_id(1);
    let clock = ManualClock::new(t0());
    run(
        &desk,
        &clock,
        t0(),
        informant("vil-dongyuan"),
        report(first),
    )
    .await;
    desk.flush_keys().await.expect("flush");

    // Sealed by one instance, revealed by another: the key is in the database.
    let contact = bench
        .reveal_reporter_contact(first, zone_officer(&bench, first).await, "call back")
        .await
        .expect("another instance reveals");
    assert_eq!(contact.expose_phone(), "13800000000");

    // Erased through one instance: the other cannot open it either, even from its memory.
    bench
        .erase_reporter_contact(first, common::leader("room-1"), "withdrawn", "PIPL art. 47")
        .await
        .expect("erase");
    let state = desk.case_state(first).await.expect("case");
    assert!(
        state
            .case()
            .and_then(|c| c.contact_erased.as_ref())
            .is_some()
    );
    // The same reporter reports again through the first instance: a new, live key (the
    // destroyed one it still remembers is never reused), so the new contact is readable.
    let second = case_id(2);
    run(
        &desk,
        &clock,
        t0(),
        informant("vil-dongyuan"),
        report(second),
    )
    .await;
    let contact = bench
        .reveal_reporter_contact(second, zone_officer(&bench, second).await, "new report")
        .await
        .expect("the new report's contact opens");
    assert_eq!(contact.expose_name(), "王某");
    let verified = bench.verify().await.expect("verify runs");
    assert!(verified.is_ok(), "{}", verified.to_markdown());

    // Rotation through one instance: the other, still holding the old master key, is told
    // so when it next needs a new key instead of wrapping one the store cannot open.
    let rotated = MasterKey::generate();
    assert!(bench.rotate_master_key(&rotated).await.expect("rotate") >= 2);
    let mut refused = None;
    for n in 10..300u128 {
        let mut command = report(case_id(n));
        if let Command::ReportCase(r) = &mut command {
            r.reporter_handle = ReporterHandle(uuid::Uuid::from_u128(1000 + n));
        }
        let envelope =
            CommandEnvelope::new(desk.new_id(), informant("vil-dongyuan"), t0(), command);
        if let Err(e) = desk.execute(envelope).await {
            refused = Some(e);
            break;
        }
    }
    let refused = refused.expect("an instance with the old master key is stopped");
    assert!(
        matches!(key_error(&refused), KeyError::WrongMasterKey { .. }),
        "{refused}"
    );
    let fresh = engine(&schema, &rotated, 3).await;
    fresh
        .reveal_reporter_contact(second, zone_officer(&fresh, second).await, "after rotation")
        .await
        .expect("the rotated master key opens the keys");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_key_tables_are_an_error_naming_them_and_are_never_recreated() {
    let schema = TempSchema::new();
    let master = MasterKey::generate();
    let desk = engine(&schema, &master, 1).await;
    let clock = ManualClock::new(t0());
    run(
        &desk,
        &clock,
        t0(),
        informant("vil-dongyuan"),
        report(case_id(1)),
    )
    .await;
    drop(desk);
    schema
        .execute_blocking(&format!(
            "DROP TABLE {0}.reporter_keys, {0}.reporter_key_meta",
            schema.name
        ))
        .expect("drop the key tables");
    for _ in 0..2 {
        let engine = engine(&schema, &master, 2).await;
        let refused = engine
            .reveal_reporter_contact(case_id(1), zone_officer(&engine, case_id(1)).await, "x")
            .await
            .expect_err("no key tables");
        assert!(
            matches!(key_error(&refused), KeyError::KeyStoreMissing { .. }),
            "{refused}"
        );
        assert!(refused.to_string().contains(&schema.name), "{refused}");
    }
    let exists = schema
        .execute_blocking(&format!(
            "SELECT 1 FROM pg_tables WHERE schemaname = '{}' AND tablename = 'reporter_keys'",
            schema.name
        ))
        .expect("query");
    assert_eq!(exists, 0, "the key tables were recreated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_master_key_is_named_as_such() {
    let schema = TempSchema::new();
    let desk = engine(&schema, &MasterKey::generate(), 1).await;
    let clock = ManualClock::new(t0());
    run(
        &desk,
        &clock,
        t0(),
        informant("vil-dongyuan"),
        report(case_id(1)),
    )
    .await;
    let other = engine(&schema, &MasterKey::generate(), 2).await;
    let refused = other
        .reveal_reporter_contact(case_id(1), zone_officer(&other, case_id(1)).await, "x")
        .await
        .expect_err("wrong master key");
    assert!(
        matches!(key_error(&refused), KeyError::WrongMasterKey { .. }),
        "{refused}"
    );
}
