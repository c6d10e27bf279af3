//! Golden fixtures: stored records of every schema version of a sample event type, as
//! JSON (`tests/fixtures/records-schema-v*.json`) and as a format-1 SQLite store file
//! (`tests/fixtures/store-format-1.sqlite`). They pin the hash definition, the file format
//! and the upcasting path; they must keep reading forever.
//!
//! Regenerate (only when deliberately changing a format) with
//! `CASEFLOW_REGENERATE_FIXTURES=1 cargo test -p caseflow-store --test fixtures`.

use std::path::{Path, PathBuf};

use caseflow_store::hash::recompute;
use caseflow_store::{
    AppendRequest, EventStore, ExpectedVersion, FnUpcaster, Metadata, NewEvent, RecordedEvent,
    SqliteOptions, SqliteStore, StoreError, UpcasterChain,
};
use chrono::{TimeZone, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The current shape of the sample type `NoteAdded` (schema version 3).
#[derive(Debug, Deserialize, PartialEq)]
struct NoteAdded {
    body: String,
    author: String,
    tags: Vec<String>,
}

/// v1 `{text}` -> v2 `{text, author}` -> v3 `{body, author, tags}`.
fn chain() -> UpcasterChain {
    UpcasterChain::new()
        .with_type("NoteAdded", 3)
        .with_type("NoteRemoved", 1)
        .with_upcaster(FnUpcaster::new("NoteAdded", 1, |mut v| {
            v.as_object_mut()
                .ok_or("not an object")?
                .insert("author".into(), json!("unknown"));
            Ok(v)
        }))
        .with_upcaster(FnUpcaster::new("NoteAdded", 2, |mut v| {
            let o = v.as_object_mut().ok_or("not an object")?;
            let text = o.remove("text").ok_or("missing text")?;
            o.insert("body".into(), text);
            o.insert("tags".into(), json!([]));
            Ok(v)
        }))
}

fn sample_requests() -> Vec<(u32, AppendRequest)> {
    let payloads: [(u32, &str, serde_json::Value); 3] = [
        (1, "NoteAdded", json!({"text": "first note"})),
        (
            2,
            "NoteAdded",
            json!({"text": "second note", "author": "room-1"}),
        ),
        (
            3,
            "NoteAdded",
            json!({"body": "third note", "author": "team-2", "tags": ["urgent"]}),
        ),
    ];
    payloads
        .into_iter()
        .enumerate()
        .map(|(i, (schema, ty, payload))| {
            let n = i as u64;
            let events = vec![
                NewEvent {
                    event_id: Uuid::from_u64_pair(0x0190_0000_0000_7000 + n, 0x8000_0000_0000_0001),
                    event_type: ty.into(),
                    schema_version: schema,
                    payload: serde_json::to_vec(&payload).unwrap().into(),
                    metadata: Metadata {
                        actor: format!("room-{n}/clerk"),
                        command_id: Some(Uuid::from_u64_pair(
                            0x0290_0000_0000_7000 + n,
                            0x8000_0000_0000_0002,
                        )),
                        correlation_id: Some(Uuid::from_u64_pair(
                            0x0390_0000_0000_7000,
                            0x8000_0000_0000_0003,
                        )),
                        causation_id: None,
                    },
                },
                NewEvent {
                    event_id: Uuid::from_u64_pair(0x0190_0000_0000_7000 + n, 0x8000_0000_0000_0004),
                    event_type: "NoteRemoved".into(),
                    schema_version: 1,
                    payload: serde_json::to_vec(&json!({"reason": format!("superseded {n}")}))
                        .unwrap()
                        .into(),
                    metadata: Metadata {
                        actor: "system".into(),
                        ..Metadata::default()
                    },
                },
            ];
            let req = AppendRequest {
                stream_id: format!("note-{schema}"),
                expected: ExpectedVersion::NoStream,
                events,
                recorded_at: Utc
                    .timestamp_opt(1_767_225_600 + 86_400 * n as i64, 250_000_001)
                    .unwrap(),
                command_id: Some(Uuid::from_u64_pair(
                    0x0290_0000_0000_7000 + n,
                    0x8000_0000_0000_0002,
                )),
            };
            (schema, req)
        })
        .collect()
}

async fn regenerate() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.sqlite");
    let store = SqliteStore::open(&db, SqliteOptions::default()).unwrap();
    for (schema, req) in sample_requests() {
        let stream = req.stream_id.clone();
        store.append(req).await.unwrap();
        let records = store.read_stream(&stream, 1, 100).await.unwrap();
        let text = serde_json::to_string_pretty(&records).unwrap() + "\n";
        std::fs::write(
            fixtures().join(format!("records-schema-v{schema}.json")),
            text,
        )
        .unwrap();
    }
    drop(store);
    std::fs::copy(&db, fixtures().join("store-format-1.sqlite")).unwrap();
}

fn load(schema: u32) -> Vec<RecordedEvent> {
    let path = fixtures().join(format!("records-schema-v{schema}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn golden_records_of_every_schema_version_still_read() {
    if std::env::var_os("CASEFLOW_REGENERATE_FIXTURES").is_some() {
        regenerate().await;
    }
    let chain = chain();
    let expected = [
        NoteAdded {
            body: "first note".into(),
            author: "unknown".into(),
            tags: vec![],
        },
        NoteAdded {
            body: "second note".into(),
            author: "room-1".into(),
            tags: vec![],
        },
        NoteAdded {
            body: "third note".into(),
            author: "team-2".into(),
            tags: vec!["urgent".into()],
        },
    ];
    for (schema, want) in (1..=3).zip(expected) {
        let records = load(schema);
        assert_eq!(records.len(), 2);
        // The hash definition has not changed: stored hashes recompute and link.
        assert_eq!(records[0].prev_hash, [0u8; 32]);
        assert_eq!(records[1].prev_hash, records[0].hash);
        for r in &records {
            assert_eq!(
                recompute(r),
                r.hash,
                "hash of {} v{} changed",
                r.stream_id,
                r.version
            );
        }
        assert_eq!(records[0].schema_version, schema);
        let note: NoteAdded = chain.decode(&records[0]).unwrap();
        assert_eq!(note, want);
        let removed = chain.upcast_record(&records[1]).unwrap();
        assert_eq!(
            removed.payload["reason"],
            json!(format!("superseded {}", schema - 1))
        );
    }
}

#[tokio::test]
async fn golden_sqlite_file_of_format_1_still_opens_reads_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("store.sqlite");
    std::fs::copy(fixtures().join("store-format-1.sqlite"), &copy).unwrap();
    let store = SqliteStore::open(&copy, SqliteOptions::default()).unwrap();
    assert!(store.verify_all().await.unwrap().is_intact());
    let log = store.read_all(1, 100).await.unwrap();
    let mut from_json = Vec::new();
    for schema in 1..=3 {
        from_json.extend(load(schema));
    }
    assert_eq!(
        log, from_json,
        "the SQLite fixture and the JSON fixtures agree"
    );
    // The ledger survived too.
    let (_, req) = sample_requests().remove(0);
    let again = store.append(req).await.unwrap();
    assert!(again.deduplicated);
    // Opening migrated it to format 2, building the Merkle tree of its records (and on to
    // format 3, which keeps the same tree one row per leaf).
    let tree = caseflow_store::tree::verify_tree(&store).await.unwrap();
    assert!(tree.is_intact(), "{:?}", tree.first_fault);
    assert_eq!(tree.computed, store.tree_head().await.unwrap());
    assert_eq!(tree.leaves_checked, log.len() as u64);
}

/// `tests/fixtures/store-format-2.sqlite`: the format-1 fixture after format 2's migration
/// (the Merkle tree as one `tree_nodes` row per node), as every store of that release was.
/// Read-only it is read in place (a read-only open never migrates); opened for writing it
/// moves to format 3 with the same tree.
#[tokio::test]
async fn golden_sqlite_file_of_format_2_reads_in_place_and_migrates_with_its_tree() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("store.sqlite");
    std::fs::copy(fixtures().join("store-format-2.sqlite"), &copy).unwrap();
    let mut from_json = Vec::new();
    for schema in 1..=3 {
        from_json.extend(load(schema));
    }
    let read_only = SqliteStore::open_read_only(&copy).unwrap();
    assert!(read_only.verify_all().await.unwrap().is_intact());
    assert_eq!(read_only.read_all(1, 100).await.unwrap(), from_json);
    let tree = caseflow_store::tree::verify_tree(&read_only).await.unwrap();
    assert!(tree.is_intact(), "{:?}", tree.first_fault);
    let head_before = read_only.tree_head().await.unwrap();
    let proof = read_only.inclusion_proof(3, 6).await.unwrap();
    drop(read_only);

    let store = SqliteStore::open(&copy, SqliteOptions::default()).unwrap();
    assert_eq!(store.tree_head().await.unwrap(), head_before);
    assert_eq!(store.inclusion_proof(3, 6).await.unwrap(), proof);
    let tree = caseflow_store::tree::verify_tree(&store).await.unwrap();
    assert!(tree.is_intact(), "{:?}", tree.first_fault);
    assert!(store.verify_all().await.unwrap().is_intact());
    assert_eq!(store.read_all(1, 100).await.unwrap(), from_json);
    let (_, req) = sample_requests().remove(0);
    assert!(store.append(req).await.unwrap().deduplicated);
    let next = AppendRequest {
        stream_id: "after-migration".into(),
        expected: ExpectedVersion::NoStream,
        events: vec![NewEvent {
            event_id: Uuid::from_u64_pair(0x0390_0000_0000_7000, 0x8000_0000_0000_0001),
            event_type: "NoteRemoved".into(),
            schema_version: 1,
            payload: br#"{"reason":"after"}"#.to_vec().into(),
            metadata: Metadata::default(),
        }],
        recorded_at: Utc.timestamp_opt(1_800_000_100, 0).unwrap(),
        command_id: None,
    };
    store.append(next).await.unwrap();
    let tree = caseflow_store::tree::verify_tree(&store).await.unwrap();
    assert!(tree.is_intact(), "{:?}", tree.first_fault);
    assert_eq!(tree.leaves_checked, 7);
    let extends = store.consistency_proof(6, 7).await.unwrap();
    let now = store.tree_head().await.unwrap();
    caseflow_store::tree::verify_consistency(&extends, &head_before.root_hash, &now.root_hash)
        .unwrap();
}

#[test]
fn unknown_types_and_versions_are_typed_errors() {
    let chain = chain();
    let mut r = load(1).remove(0);
    r.event_type = "NoteExploded".into();
    assert!(matches!(
        chain.upcast_record(&r),
        Err(StoreError::UnknownEventType { .. })
    ));
    let mut r = load(3).remove(0);
    r.schema_version = 4;
    assert!(matches!(
        chain.upcast_record(&r),
        Err(StoreError::UnknownSchemaVersion {
            schema_version: 4,
            ..
        })
    ));
    let mut r = load(1).remove(0);
    r.payload = b"[1,2]".to_vec();
    assert!(matches!(
        chain.upcast_record(&r),
        Err(StoreError::Decode { .. })
    ));
    let mut r = load(1).remove(0);
    r.payload = b"{not json".to_vec();
    assert!(matches!(
        chain.decode::<NoteAdded>(&r),
        Err(StoreError::Decode { .. })
    ));
    // A version newer than the current one is unknown, not a panic.
    let mut r = load(2).remove(1);
    r.schema_version = 2;
    assert!(matches!(
        chain.upcast_record(&r),
        Err(StoreError::UnknownSchemaVersion { .. })
    ));
}

/// An upcaster may rename a type on the way (here `NoteCreated` v1 became `NoteAdded` v2);
/// a chain that loops is an error, not a hang.
#[test]
fn renaming_upcasters_reach_the_current_type_and_cycles_are_errors() {
    struct Rename {
        from: &'static str,
        to: &'static str,
        version: u32,
    }
    impl caseflow_store::Upcaster for Rename {
        fn event_type(&self) -> &str {
            self.from
        }
        fn source_version(&self) -> u32 {
            self.version
        }
        fn upcast(
            &self,
            mut payload: serde_json::Value,
        ) -> Result<(Option<String>, serde_json::Value), String> {
            payload
                .as_object_mut()
                .ok_or("not an object")?
                .insert("author".into(), json!("legacy"));
            Ok((Some(self.to.into()), payload))
        }
    }
    let chain = chain().with_upcaster(Rename {
        from: "NoteCreated",
        to: "NoteAdded",
        version: 1,
    });
    let up = chain
        .upcast("NoteCreated", 1, json!({"text": "old"}))
        .unwrap();
    assert_eq!(
        (up.event_type.as_str(), up.schema_version),
        ("NoteAdded", 3)
    );
    assert_eq!(
        up.payload,
        json!({"body": "old", "author": "legacy", "tags": []})
    );

    // A -> B -> A -> ... never reaches a current type.
    let looping = UpcasterChain::new()
        .with_upcaster(Rename {
            from: "A",
            to: "B",
            version: 1,
        })
        .with_upcaster(Rename {
            from: "B",
            to: "A",
            version: 2,
        });
    let err = looping.upcast("A", 1, json!({})).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::UnknownEventType { .. } | StoreError::Decode { .. }
        ),
        "{err:?}"
    );
}

/// `tests/fixtures/store-format-3.sqlite`: 140 records of seven cases walked through the
/// engine's 20 commands by `benches/workload.rs` at format 3 (one `tree` row per leaf; every
/// correlation id stored in full), so two complete runs of 64 leaves and 12 more.
fn format_3_copy(dir: &Path) -> PathBuf {
    let copy = dir.join("store.sqlite");
    std::fs::copy(fixtures().join("store-format-3.sqlite"), &copy).unwrap();
    copy
}

/// What a tree looks like from outside: its head, proofs inside closed and open runs, a
/// consistency proof from an older size.
async fn tree_evidence(store: &SqliteStore) -> Vec<String> {
    let head = store.tree_head().await.unwrap();
    let mut seen = vec![format!("{head:?}")];
    for position in [1, 5, 64, 65, 100, 129, 140] {
        let proof = store
            .inclusion_proof(position, head.tree_size)
            .await
            .unwrap();
        seen.push(format!("{proof:?}"));
    }
    let consistency = store.consistency_proof(37, head.tree_size).await.unwrap();
    seen.push(format!("{consistency:?}"));
    seen
}

fn intact(checked: &caseflow_store::tree::LogVerification) -> bool {
    let chains = checked.chains.as_ref().is_ok_and(|r| r.is_intact());
    chains && checked.tree.as_ref().is_ok_and(|t| t.is_intact())
}

#[tokio::test]
async fn golden_sqlite_file_of_format_3_reads_in_place_migrates_and_extends() {
    // Given the format-3 file, read in place (a read-only open never migrates)
    let dir = tempfile::tempdir().unwrap();
    let copy = format_3_copy(dir.path());
    let read_only = SqliteStore::open_read_only(&copy).unwrap();
    assert!(intact(&read_only.verify_log(None).await));
    let log = read_only.read_all(1, 1000).await.unwrap();
    assert_eq!(log.len(), 140);
    assert!(
        log.iter()
            .all(|e| e.metadata.correlation_id == e.metadata.command_id)
    );
    let before = tree_evidence(&read_only).await;
    drop(read_only);

    // When it is opened for writing (migrated to format 4: its two complete runs closed)
    let store = SqliteStore::open(&copy, SqliteOptions::default()).unwrap();
    // Then the records, the tree, its proofs and the ledger are what they were
    assert_eq!(store.read_all(1, 1000).await.unwrap(), log);
    assert_eq!(tree_evidence(&store).await, before);
    let checked = store.verify_log(Some(37)).await;
    assert!(intact(&checked), "{checked:?}");
    let first = &log[0];
    let again = AppendRequest {
        stream_id: first.stream_id.clone(),
        expected: ExpectedVersion::Any,
        events: vec![NewEvent {
            event_id: Uuid::from_u64_pair(0x0390_0000_0000_7000, 0x8000_0000_0000_0fff),
            event_type: "NoteAdded".into(),
            schema_version: 1,
            payload: br#"{"again":true}"#.to_vec().into(),
            metadata: first.metadata.clone(),
        }],
        recorded_at: first.recorded_at,
        command_id: first.metadata.command_id,
    };
    assert!(store.append(again).await.unwrap().deduplicated);
    let old_head = store.tree_head().await.unwrap();

    // And it extends past two more runs, with correlation ids stored once
    for i in 0..130u64 {
        let command = Uuid::from_u64_pair(0x0390_0000_0000_7000, 0x8000_0000_0000_1000 + i);
        store
            .append(AppendRequest {
                stream_id: format!("after-migration-{}", i % 3),
                expected: ExpectedVersion::Any,
                events: vec![NewEvent {
                    event_id: Uuid::from_u64_pair(0x0390_0000_0000_7000, 0x8000_0000_0000_2000 + i),
                    event_type: "NoteAdded".into(),
                    schema_version: 1,
                    payload: format!(r#"{{"n":{i}}}"#).into_bytes().into(),
                    metadata: Metadata {
                        actor: "after".into(),
                        command_id: Some(command),
                        correlation_id: Some(command),
                        causation_id: None,
                    },
                }],
                recorded_at: Utc.timestamp_opt(1_800_000_100, 0).unwrap(),
                command_id: Some(command),
            })
            .await
            .unwrap();
    }
    let checked = store.verify_log(Some(140)).await;
    assert!(intact(&checked), "{checked:?}");
    assert_eq!(checked.tree.unwrap().leaves_checked, 270);
    let after = store.read_all(141, 1000).await.unwrap();
    assert!(
        after
            .iter()
            .all(|e| e.metadata.correlation_id == e.metadata.command_id)
    );
    let now = store.tree_head().await.unwrap();
    let extends = store.consistency_proof(140, 270).await.unwrap();
    caseflow_store::tree::verify_consistency(&extends, &old_head.root_hash, &now.root_hash)
        .unwrap();
    let proof = store.inclusion_proof(100, 270).await.unwrap();
    caseflow_store::tree::verify_inclusion(
        &proof,
        &caseflow_store::tree::leaf_of(&log[99]),
        &now.root_hash,
    )
    .unwrap();
    drop(store);
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let layout: (i64, i64, i64) = conn
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version), \
             (SELECT count(*) FROM tree_runs), (SELECT count(*) FROM tree)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(layout, (4, 4, 270 - 4 * 64));
}
