//! Reporter protection end to end: contacts sealed at rest, need-to-know reveals recorded
//! before anything is shown, erasure by key destruction that leaves the log verifiable, key
//! rotation, and the key store's failure modes (missing, truncated, foreign, wrong master).

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use caseflow::contacts::KeyError;
use caseflow::domain::*;
use caseflow::store::{EventStore, SqliteOptions};
use caseflow::{Engine, EngineConfig, EngineError, ManualClock, MasterKey, SeededIds, StoreConfig};
use chrono::Duration;
use common::*;

const NAME: &str = "王某";
const PHONE: &str = "13800000000";

/// A leader and a case officer of the first room of the case's zone (who may reveal before
/// routing).
fn zone_room(engine: &Engine, case: &Case) -> UnitId {
    engine
        .district()
        .org
        .zone(&case.zone)
        .and_then(|z| z.rooms.first().cloned())
        .expect("the zone has a room")
}

/// The leader of the unit that needs to know: the lead once routed, else a zone room.
async fn need_to_know(engine: &Engine, id: CaseId) -> Actor {
    let case = engine
        .case_state(id)
        .await
        .expect("case")
        .case()
        .cloned()
        .expect("case");
    match case.lead_unit() {
        Some(lead) => leader(lead.as_str()),
        None => leader(zone_room(engine, &case).as_str()),
    }
}

async fn stream_version(engine: &Engine, id: CaseId) -> u64 {
    engine.case_state(id).await.expect("case").version()
}

fn payloads(records: &[caseflow::store::RecordedEvent]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(&r.payload).into_owned())
        .collect()
}

#[tokio::test]
async fn a_named_contact_is_stored_sealed_on_both_backends() {
    for backend in BACKENDS {
        let f = Fixture::new(backend);
        let engine = f.open().await;
        run(
            &engine,
            &f.clock,
            t0(),
            informant("vil-dongyuan"),
            report(case_id(1)),
        )
        .await;
        let records = engine.store().read_all(1, 100).await.expect("log");
        assert_eq!(records[0].event_type, "CaseReported");
        assert_eq!(records[0].schema_version, 2);
        for payload in payloads(&records) {
            assert!(
                !payload.contains(NAME) && !payload.contains(PHONE),
                "{backend:?}: {payload}"
            );
            assert!(
                payload.contains(r#""type":"sealed""#),
                "{backend:?}: {payload}"
            );
        }
        let state = engine.case_state(case_id(1)).await.expect("case");
        assert!(matches!(
            state.case().map(|c| &c.reporter),
            Some(Reporter::Sealed(_))
        ));
    }
}

#[tokio::test]
async fn an_allowed_actor_reveals_and_exactly_one_event_records_it() {
    for backend in BACKENDS {
        let f = Fixture::new(backend);
        let engine = f.open().await;
        let id = case_id(1);
        run(
            &engine,
            &f.clock,
            t0(),
            informant("vil-dongyuan"),
            report(id),
        )
        .await;
        let case = engine
            .case_state(id)
            .await
            .expect("case")
            .case()
            .cloned()
            .expect("case");
        let room = zone_room(&engine, &case);
        let before = stream_version(&engine, id).await;

        let contact = engine
            .reveal_reporter_contact(id, officer(room.as_str()), "call back about the report")
            .await
            .expect("a zone room's officer may reveal before routing");
        assert_eq!(
            (contact.expose_name(), contact.expose_phone()),
            (NAME, PHONE)
        );
        assert_eq!(stream_version(&engine, id).await, before + 1);
        let records = engine.store().read_all(1, 100).await.expect("log");
        let last = records.last().expect("an event");
        assert_eq!(last.event_type, "ReporterContactRevealed");
        let text = String::from_utf8_lossy(&last.payload);
        assert!(text.contains("call back about the report"));
        assert!(!text.contains(PHONE) && !text.contains(NAME));

        // The village officer who registered it may not: a typed refusal, nothing written.
        let refused = engine
            .reveal_reporter_contact(id, informant("vil-dongyuan"), "curious")
            .await
            .expect_err("a village officer may not reveal");
        assert!(matches!(
            refused,
            EngineError::Rejected {
                source: DomainError::NotAuthorized { .. },
                ..
            }
        ));
        assert_eq!(stream_version(&engine, id).await, before + 1, "{backend:?}");
    }
}

#[tokio::test]
async fn after_routing_only_the_lead_unit_may_reveal() {
    let f = Fixture::new(Backend::Memory);
    let engine = f.open().await;
    let id = case_id(1);
    let t = walk_to_plan(&engine, &f.clock, id, t0()).await;
    f.clock.set(t + Duration::hours(1));
    let case = engine
        .case_state(id)
        .await
        .expect("case")
        .case()
        .cloned()
        .expect("case");
    let lead = case.lead_unit().cloned().expect("routed");
    let room = zone_room(&engine, &case);
    let before = stream_version(&engine, id).await;
    if room != lead {
        let refused = engine
            .reveal_reporter_contact(id, leader(room.as_str()), "reading")
            .await
            .expect_err("the zone room no longer needs to know");
        assert!(matches!(refused, EngineError::Rejected { .. }), "{refused}");
        assert_eq!(stream_version(&engine, id).await, before);
    }
    let contact = engine
        .reveal_reporter_contact(id, leader(lead.as_str()), "verification call")
        .await
        .expect("the lead unit's leader may");
    assert_eq!(contact.expose_phone(), PHONE);
}

/// A SQLite fixture's files (store, WAL, read models, keys) copied aside, as a backup is.
fn copy_files(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    for entry in std::fs::read_dir(from).expect("dir") {
        let entry = entry.expect("entry");
        if !entry.path().is_file() {
            continue;
        }
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

fn sqlite_config(path: &Path, master: Option<MasterKey>, clock: Arc<ManualClock>) -> EngineConfig {
    sqlite_config_seeded(path, master, clock, 11)
}

fn sqlite_config_seeded(
    path: &Path,
    master: Option<MasterKey>,
    clock: Arc<ManualClock>,
    seed: u64,
) -> EngineConfig {
    EngineConfig::with_store(
        StoreConfig::Sqlite {
            path: path.to_path_buf(),
            options: SqliteOptions::default(),
        },
        district(),
    )
    .master_key_opt(master)
    .clock(clock)
    .ids(Arc::new(SeededIds::new(seed)))
}

#[tokio::test]
async fn erasure_destroys_every_contact_of_the_reporter_and_the_workflow_goes_on() {
    let f = Fixture::new(Backend::Sqlite);
    let engine = f.open().await;
    let (first, second) = (case_id(1), case_id(2));
    let t = walk_to_plan(&engine, &f.clock, first, t0()).await;
    // The same reporter (handle 7, as `report` gives) reports a second matter.
    run(
        &engine,
        &f.clock,
        t,
        informant("vil-dongyuan"),
        report(second),
    )
    .await;
    engine.flush_keys().await.expect("flush");
    drop(engine);
    let backup = f.dir.path().join("backup-before-erasure");
    copy_files(f.dir.path(), &backup);

    let engine = f.open().await;
    let t = t + Duration::hours(1);
    f.clock.set(t);
    let outcome = engine
        .erase_reporter_contact(
            first,
            leader("room-1"),
            "the reporter withdrew",
            "PIPL art. 47",
        )
        .await
        .expect("a room's leader may erase");
    assert_eq!(outcome.events.len(), 1);
    for id in [first, second] {
        let state = engine.case_state(id).await.expect("case");
        let erased = state.case().and_then(|c| c.contact_erased.clone());
        let erased = erased.expect("both of the reporter's cases record the erasure");
        assert_eq!(erased.by, leader("room-1"));
        let before = stream_version(&engine, id).await;
        let refused = engine
            .reveal_reporter_contact(id, need_to_know(&engine, id).await, "after erasure")
            .await
            .expect_err("an erased contact cannot be revealed");
        assert!(
            matches!(
                refused,
                EngineError::Rejected {
                    source: DomainError::ReporterContactErased { .. },
                    ..
                }
            ),
            "{refused}"
        );
        assert!(refused.to_string().contains("erased"), "{refused}");
        assert_eq!(stream_version(&engine, id).await, before);
    }

    let verified = engine.verify().await.expect("verify runs");
    assert!(verified.is_ok(), "{}", verified.to_markdown());
    walk_to_close(&engine, &f.clock, first, t).await;
    assert_eq!(
        engine.case_state(first).await.expect("case").stage(),
        Stage::Closed
    );
    drop(engine);

    // A backup of the events from before the erasure, with the old master key and the live
    // key store: the key is gone, so the contact cannot be read.
    let clock = Arc::new(ManualClock::new(t + Duration::days(2)));
    let old = Engine::open(
        sqlite_config(&backup.join("cases.db"), Some(f.master.clone()), clock).key_store(
            caseflow::KeyStoreConfig::SqliteFile(f.dir.path().join("cases.keys.db")),
        ),
    )
    .await
    .expect("the backup opens");
    let actor = need_to_know(&old, second).await;
    let refused = old
        .reveal_reporter_contact(second, actor, "from a backup")
        .await
        .expect_err("the destroyed key opens nothing");
    assert!(
        matches!(refused, EngineError::ContactErased { .. }),
        "{refused}"
    );
    // And no byte of the key store still holds the destroyed key's wrapping: the batch that
    // held the reporter's key (as the backup taken before the erasure has it) was rewritten
    // under a fresh nonce, so no 16-byte run of its old wrapping is left in the file or WAL.
    let before: Vec<Vec<u8>> = {
        let conn = rusqlite::Connection::open(backup.join("cases.keys.db")).expect("backup keys");
        let mut select = conn
            .prepare("SELECT wrapped FROM key_batches")
            .expect("batches");
        select
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    assert!(!before.is_empty(), "the backup holds the reporter's batch");
    let keys_file = f.dir.path().join("cases.keys.db");
    let mut now = std::fs::read(&keys_file).expect("keys file");
    now.extend(std::fs::read(keys_file.with_extension("db-wal")).unwrap_or_default());
    for wrapping in &before {
        let left = wrapping
            .chunks_exact(16)
            .filter(|run| now.windows(16).any(|w| w == *run))
            .count();
        assert_eq!(
            left, 0,
            "runs of the old batch wrapping left in the key store"
        );
    }
}

#[tokio::test]
async fn an_anonymous_report_has_nothing_to_reveal() {
    let f = Fixture::new(Backend::Memory);
    let engine = f.open().await;
    let id = case_id(1);
    let mut command = report(id);
    if let Command::ReportCase(r) = &mut command {
        r.reporter = Reporter::Anonymous;
    }
    run(&engine, &f.clock, t0(), informant("vil-dongyuan"), command).await;
    let case = engine
        .case_state(id)
        .await
        .expect("case")
        .case()
        .cloned()
        .expect("case");
    let refused = engine
        .reveal_reporter_contact(id, leader(zone_room(&engine, &case).as_str()), "why not")
        .await
        .expect_err("anonymous");
    assert!(matches!(
        refused,
        EngineError::Rejected {
            source: DomainError::NoReporterContact,
            ..
        }
    ));
}

fn key_error(e: &EngineError) -> &KeyError {
    match e {
        EngineError::Keys(k) => k,
        other => panic!("expected a key error, got {other}"),
    }
}

async fn store_with_one_named_report(dir: &Path, master: &MasterKey) -> PathBuf {
    store_seeded(dir, master, 11).await
}

async fn store_seeded(dir: &Path, master: &MasterKey, seed: u64) -> PathBuf {
    let path = dir.join("cases.db");
    let clock = Arc::new(ManualClock::new(t0()));
    let config = sqlite_config_seeded(&path, Some(master.clone()), clock.clone(), seed);
    let engine = Engine::open(config).await.expect("opens");
    run(
        &engine,
        &clock,
        t0(),
        informant("vil-dongyuan"),
        report(case_id(1)),
    )
    .await;
    path
}

async fn reveal_on(
    path: &Path,
    master: Option<MasterKey>,
) -> Result<ProtectedContact, EngineError> {
    let clock = Arc::new(ManualClock::new(t0() + Duration::hours(1)));
    let engine = Engine::open(sqlite_config(path, master, clock))
        .await
        .expect("a store opens without its key store: keys are needed only for contacts");
    let actor = need_to_know(&engine, case_id(1)).await;
    engine
        .reveal_reporter_contact(case_id(1), actor, "call back")
        .await
}

#[tokio::test]
async fn a_missing_master_key_is_a_clear_error_and_anonymous_work_goes_on() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("cases.db");
    let clock = Arc::new(ManualClock::new(t0()));
    let engine = Engine::open(sqlite_config(&path, None, clock))
        .await
        .expect("opens");
    let named = engine
        .execute(caseflow::CommandEnvelope::new(
            engine.new_id(),
            informant("vil-dongyuan"),
            t0(),
            report(case_id(1)),
        ))
        .await
        .expect_err("a named report needs the master key");
    assert!(matches!(key_error(&named), KeyError::MasterKeyMissing));
    assert!(named.to_string().contains("master-key new"), "{named}");
    assert_eq!(engine.store().head_position().await.expect("head"), 0);
    let mut anonymous = report(case_id(2));
    if let Command::ReportCase(r) = &mut anonymous {
        r.reporter = Reporter::Anonymous;
    }
    engine
        .execute(caseflow::CommandEnvelope::new(
            engine.new_id(),
            informant("vil-dongyuan"),
            t0(),
            anonymous,
        ))
        .await
        .expect("anonymous reports need no key");
}

#[tokio::test]
async fn a_wrong_master_key_is_named_as_such() {
    let dir = tempfile::tempdir().expect("dir");
    let master = MasterKey::generate();
    let path = store_with_one_named_report(dir.path(), &master).await;
    let wrong = reveal_on(&path, Some(MasterKey::generate()))
        .await
        .expect_err("wrong key");
    assert!(
        matches!(key_error(&wrong), KeyError::WrongMasterKey { .. }),
        "{wrong}"
    );
    assert!(wrong.to_string().contains("cases.keys.db"));
    assert_eq!(
        reveal_on(&path, Some(master))
            .await
            .expect("right key")
            .expose_phone(),
        PHONE
    );
}

#[tokio::test]
async fn a_missing_key_store_is_an_error_naming_it_and_is_never_recreated() {
    let dir = tempfile::tempdir().expect("dir");
    let master = MasterKey::generate();
    let path = store_with_one_named_report(dir.path(), &master).await;
    let keys = dir.path().join("cases.keys.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", keys.display()));
    }
    let missing = reveal_on(&path, Some(master)).await.expect_err("missing");
    assert!(
        matches!(key_error(&missing), KeyError::KeyStoreMissing { .. }),
        "{missing}"
    );
    assert!(missing.to_string().contains(&keys.display().to_string()));
    assert!(
        !keys.exists(),
        "a lost key store is never silently recreated"
    );
}

#[tokio::test]
async fn a_truncated_key_store_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("dir");
    let master = MasterKey::generate();
    let path = store_with_one_named_report(dir.path(), &master).await;
    let keys = dir.path().join("cases.keys.db");
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", keys.display()));
    }
    let bytes = std::fs::read(&keys).expect("keys");
    std::fs::write(&keys, &bytes[..bytes.len().min(1000)]).expect("truncate");
    let broken = reveal_on(&path, Some(master)).await.expect_err("truncated");
    assert!(
        matches!(key_error(&broken), KeyError::KeyStoreUnreadable { .. }),
        "{broken}"
    );
    assert!(broken.to_string().contains("cases.keys.db"));
}

#[tokio::test]
async fn another_stores_key_store_is_refused() {
    let master = MasterKey::generate();
    let (a, b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let path = store_with_one_named_report(a.path(), &master).await;
    // Another store (other ids, so another first event), with the same master key.
    store_seeded(b.path(), &master, 12).await;
    let keys = a.path().join("cases.keys.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", keys.display()));
    }
    std::fs::copy(b.path().join("cases.keys.db"), &keys).expect("swap in b's key store");
    let foreign = reveal_on(&path, Some(master)).await.expect_err("foreign");
    assert!(
        matches!(key_error(&foreign), KeyError::ForeignKeyStore { .. }),
        "{foreign}"
    );
}

#[tokio::test]
async fn rotation_rewraps_every_key_and_the_old_master_key_opens_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let old = MasterKey::generate();
    let path = store_with_one_named_report(dir.path(), &old).await;
    let new = MasterKey::generate();
    {
        let clock = Arc::new(ManualClock::new(t0()));
        let engine = Engine::open(sqlite_config(&path, Some(old.clone()), clock))
            .await
            .expect("opens");
        let rewrapped = engine.rotate_master_key(&new).await.expect("rotates");
        assert!(rewrapped >= 1, "at least the reporter's key ({rewrapped})");
    }
    let refused = reveal_on(&path, Some(old)).await.expect_err("old key");
    assert!(matches!(
        key_error(&refused),
        KeyError::WrongMasterKey { .. }
    ));
    assert_eq!(
        reveal_on(&path, Some(new))
            .await
            .expect("new key")
            .expose_name(),
        NAME
    );
}

#[tokio::test]
async fn a_schema_v1_clear_contact_is_still_revealed_under_the_rule() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("cases.db");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-v1/cases.db");
    std::fs::copy(fixture, &path).expect("copy the fixture");
    // Case 3 of the fixture: a named reporter's report still at intake, in clear (v1).
    let clock = Arc::new(ManualClock::new(t0() + Duration::days(30)));
    let engine = Engine::open(sqlite_config(&path, Some(MasterKey::generate()), clock))
        .await
        .expect("the schema-1 store opens");
    let case = engine
        .case_state(case_id(3))
        .await
        .expect("case")
        .case()
        .cloned()
        .expect("case");
    assert!(matches!(case.reporter, Reporter::Named(_)));
    let contact = engine
        .reveal_reporter_contact(
            case_id(3),
            leader(zone_room(&engine, &case).as_str()),
            "call back",
        )
        .await
        .expect("reveals");
    assert!(!contact.expose_phone().is_empty());
    assert!(engine.verify().await.expect("verify").is_ok());
}

/// An anchor (a signed tree head kept outside the system) taken before an erasure still
/// verifies afterwards: the erasure appends events and destroys a key, and rewrites nothing
/// that is hashed. The log still extends the anchor (consistency proof), `verify` with the
/// anchor holds, and a copy of the events from before the erasure, with the old master key,
/// opens nothing.
#[tokio::test]
async fn an_anchor_taken_before_an_erasure_still_verifies_and_old_copies_stay_shut() {
    for backend in BACKENDS {
        let f = Fixture::new(backend);
        let engine = f.open().await;
        let (first, second) = (case_id(1), case_id(2));
        let t = walk_to_plan(&engine, &f.clock, first, t0()).await;
        run(
            &engine,
            &f.clock,
            t,
            informant("vil-dongyuan"),
            report(second),
        )
        .await;
        engine.flush_keys().await.expect("flush");
        let signer = caseflow::store::tree::KeyPair::from_seed([9u8; 32]);
        let anchor = engine.sign_head(&signer).await.expect("sign a head");
        assert!(anchor.tree_size > 0);
        drop(engine);
        let backup = f.dir.path().join("events-before-erasure");
        if backend == Backend::Sqlite {
            std::fs::create_dir_all(&backup).expect("dir");
            // The events only (the log and its WAL), as a backup of the log would hold them.
            for name in ["cases.db", "cases.db-wal"] {
                let from = f.dir.path().join(name);
                if from.exists() {
                    std::fs::copy(&from, backup.join(name)).expect("copy");
                }
            }
        }

        let engine = f.open().await;
        f.clock.set(t + Duration::hours(1));
        engine
            .erase_reporter_contact(first, leader("room-1"), "withdrawn", "PIPL art. 47")
            .await
            .expect("erase");
        let check = engine
            .check_anchor(&anchor, Some(&signer.public()))
            .await
            .expect("the anchor can be checked");
        assert!(check.holds(), "{backend:?}: {:?}", check.findings);
        let verified = engine
            .verify_with_anchor(Some((&anchor, Some(&signer.public()))))
            .await
            .expect("verify runs");
        assert!(verified.is_ok(), "{backend:?}: {}", verified.to_markdown());
        assert!(
            verified.anchor.as_ref().is_some_and(|a| a.holds()),
            "{backend:?}: the anchor from before the erasure holds"
        );
        drop(engine);
        if backend == Backend::Memory {
            continue;
        }

        // The copy of the events, the old master key, and the key store as it is now: the
        // copy's sealed contacts name a key that is gone.
        let clock = Arc::new(ManualClock::new(t + Duration::days(1)));
        let old = Engine::open(
            sqlite_config(&backup.join("cases.db"), Some(f.master.clone()), clock).key_store(
                caseflow::KeyStoreConfig::SqliteFile(f.dir.path().join("cases.keys.db")),
            ),
        )
        .await
        .expect("the copy opens");
        for id in [first, second] {
            let actor = need_to_know(&old, id).await;
            let refused = old
                .reveal_reporter_contact(id, actor, "from a copy of the events")
                .await
                .expect_err("the destroyed key opens nothing");
            assert!(
                matches!(refused, EngineError::ContactErased { .. }),
                "{refused}"
            );
        }
        let copy_verified = old.verify().await.expect("verify the copy");
        assert!(copy_verified.is_ok(), "{}", copy_verified.to_markdown());
        // And without the live key store, the copy and the old master key have no key at
        // all: a new key store is never made for a log with sealed contacts.
        drop(old);
        let clock = Arc::new(ManualClock::new(t + Duration::days(1)));
        let bare = Engine::open(sqlite_config(
            &backup.join("cases.db"),
            Some(f.master.clone()),
            clock,
        ))
        .await
        .expect("the copy opens");
        let actor = need_to_know(&bare, second).await;
        let refused = bare
            .reveal_reporter_contact(second, actor, "from a bare copy")
            .await
            .expect_err("no key store");
        assert!(
            matches!(key_error(&refused), KeyError::KeyStoreMissing { .. }),
            "{refused}"
        );
    }
}
