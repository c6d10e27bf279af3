//! Audit and export end to end: verify detects a changed byte in the SQLite file, audit
//! reports name who did what, and the XES / OCEL 2.0 exports parse back with counts that
//! match the store.

mod common;

use std::collections::{BTreeSet, HashSet};

use caseflow::domain::*;
use chrono::{Duration, FixedOffset};
use common::*;
use quick_xml::Reader;
use quick_xml::events::Event;

#[tokio::test]
async fn verify_detects_a_changed_byte_in_the_sqlite_file_and_names_the_case() {
    let fx = Fixture::new(Backend::Sqlite);
    let engine = fx.open().await;
    let tampered = case_id(20);
    let intact = case_id(21);
    walk_to_plan(&engine, &fx.clock, tampered, t0()).await;
    run(
        &engine,
        &fx.clock,
        t0() + Duration::hours(9),
        informant("vil-wenhuagong"),
        {
            let mut c = report(intact);
            if let Command::ReportCase(r) = &mut c {
                r.summary = "another matter".into();
                r.locality = UnitId::new("loc-zhongshan");
                r.village = Some(UnitId::new("vil-wenhuagong"));
            }
            c
        },
    )
    .await;
    let before = engine.verify().await.expect("verify");
    assert!(before.is_ok(), "{}", before.to_markdown());
    drop(engine);
    // Change one byte of the stored payload, behind the store's back: "lamp" -> "lamq".
    let mut changed = 0;
    for path in [fx.db_path(), fx.dir.path().join("cases.db-wal")] {
        let Ok(mut bytes) = std::fs::read(&path) else {
            continue;
        };
        // Every copy of the text: the file may also hold stale copies in free pages (page
        // splits leave them), and changing only one of those would change nothing stored.
        let needle = b"lamp-broken-marker";
        let at: Vec<usize> = bytes
            .windows(needle.len())
            .enumerate()
            .filter(|(_, w)| w == needle)
            .map(|(i, _)| i)
            .collect();
        for i in &at {
            bytes[i + 3] = b'q';
        }
        if !at.is_empty() {
            std::fs::write(&path, bytes).expect("write back");
            changed += 1;
        }
    }
    assert!(changed > 0, "the payload text is in the file");
    let engine = fx.open().await;
    let outcome = engine
        .verify()
        .await
        .expect("verify runs on a damaged store");
    assert!(!outcome.is_ok());
    let broken: Vec<_> = outcome
        .broken_cases
        .iter()
        .filter_map(|b| b.case_id)
        .collect();
    assert_eq!(broken, vec![tampered], "{}", outcome.to_markdown());
    assert!(outcome.to_markdown().contains(&tampered.to_string()));
}

#[tokio::test]
async fn verify_names_a_read_model_changed_behind_the_engine_s_back() {
    let fx = Fixture::new(Backend::Sqlite);
    let engine = fx.open().await;
    walk_to_plan(&engine, &fx.clock, case_id(22), t0()).await;
    engine.refresh().await.expect("refresh");
    drop(engine);
    let read_db = caseflow::read_model_path(&fx.db_path());
    let conn = rusqlite::Connection::open(&read_db).expect("open read models");
    let n = conn
        .execute("DELETE FROM engine_deadlines", [])
        .expect("delete rows");
    assert!(n > 0);
    drop(conn);
    let engine = fx.open().await;
    let outcome = engine.verify().await.expect("verify");
    assert!(outcome.broken_cases.is_empty());
    let names: Vec<_> = outcome
        .divergent_read_models
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(names, vec!["engine_deadlines"], "{}", outcome.to_markdown());
}

#[tokio::test]
async fn a_log_folded_into_fresh_in_memory_read_models_checks_them_without_a_second_rebuild() {
    // Given a store with a case, reopened with in-memory read models (folded from the log)
    let fx = Fixture::new(Backend::Sqlite);
    let engine = fx.open().await;
    walk_to_plan(&engine, &fx.clock, case_id(24), t0()).await;
    drop(engine);
    let engine =
        caseflow::Engine::open(fx.config().read_models(caseflow::ReadModelConfig::InMemory))
            .await
            .expect("open with in-memory read models");
    // When the read models are checked as rebuilt
    let mut outcome = caseflow::audit::VerifyOutcome::default();
    engine.verify_rebuilt_read_models(&mut outcome).await;
    // Then they were checked and hold, as a comparison with a second rebuild says, and the
    // report says that nothing stored was compared
    assert!(outcome.read_models_checked);
    assert!(outcome.read_models_hold(), "{}", outcome.to_markdown());
    let section = outcome.read_models_markdown();
    assert!(section.contains("none stored to compare"), "{section}");
    assert!(!section.contains("each equals a rebuild"), "{section}");
    let mut compared = caseflow::audit::VerifyOutcome::default();
    engine.verify_read_models(&mut compared).await;
    assert_eq!(outcome.read_models_hold(), compared.read_models_hold());
}

#[tokio::test]
async fn audit_reports_say_who_did_what_when_stage_by_stage() {
    let fx = Fixture::new(Backend::Memory);
    let engine = fx.open().await;
    let id = case_id(23);
    let last = walk_to_plan(&engine, &fx.clock, id, t0()).await;
    let report = engine
        .audit_case(id, last + Duration::days(1))
        .await
        .expect("audit");
    let case = &report.cases[0];
    assert_eq!(case.events.len(), 7);
    assert_eq!(case.events[0].event_type, "CaseReported");
    assert!(case.events[0].actor.contains("vil-dongyuan"));
    assert_eq!(
        case.events
            .iter()
            .map(|e| e.hash.len())
            .collect::<BTreeSet<_>>(),
        BTreeSet::from([64])
    );
    let stages: Vec<Stage> = case.stages.iter().map(|s| s.stage).collect();
    assert_eq!(
        stages,
        vec![
            Stage::Intake,
            Stage::Classification,
            Stage::Handling,
            Stage::Rectification
        ]
    );
    assert_eq!(
        case.stages[0].duration_seconds, 3600,
        "reported, then accepted an hour later"
    );
    let md = report.to_markdown(FixedOffset::east_opt(8 * 3600).expect("offset"));
    assert!(
        md.contains("CaseRouted") && md.contains(&case.events[6].hash),
        "{md}"
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("valid JSON");
    assert_eq!(json["cases"][0]["events"].as_array().map(Vec::len), Some(7));
    // A range report holds only the events recorded inside the range.
    let range = engine
        .audit_range(t0() + Duration::minutes(30), t0() + Duration::minutes(150))
        .await
        .expect("range");
    assert_eq!(range.cases.len(), 1);
    assert_eq!(
        range.cases[0]
            .events
            .iter()
            .map(|e| e.version)
            .collect::<Vec<_>>(),
        vec![2, 3]
    );
}

async fn workload_engine() -> (Fixture, caseflow::Engine) {
    let fx = Fixture::new(Backend::Memory);
    let engine = fx.open().await;
    common::workload::walked_workload(&engine, &fx.clock, t0(), 25, 3).await;
    (fx, engine)
}

#[tokio::test]
async fn the_xes_export_parses_back_with_every_required_attribute_and_matching_counts() {
    let (_fx, engine) = workload_engine().await;
    let mut out = Vec::new();
    let summary = engine.export_xes(&mut out).await.expect("export");
    let text = String::from_utf8(out).expect("utf-8");
    let mut reader = Reader::from_str(&text);
    let (mut traces, mut events) = (0u64, 0u64);
    let mut in_event = false;
    let mut keys: HashSet<String> = HashSet::new();
    let mut trace_keys: HashSet<String> = HashSet::new();
    let mut depth_trace = false;
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) if e.name().as_ref() == "trace" => {
                traces += 1;
                depth_trace = true;
                trace_keys.clear();
            }
            Event::End(e) if e.name().as_ref() == "trace" => {
                for k in ["concept:name", "channel", "kind", "focus_area", "locality"] {
                    assert!(trace_keys.contains(k), "trace attribute {k} missing");
                }
                depth_trace = false;
            }
            Event::Start(e) if e.name().as_ref() == "event" => {
                events += 1;
                in_event = true;
                keys.clear();
            }
            Event::End(e) if e.name().as_ref() == "event" => {
                for k in [
                    "concept:name",
                    "time:timestamp",
                    "lifecycle:transition",
                    "org:resource",
                ] {
                    assert!(keys.contains(k), "event attribute {k} missing");
                }
                in_event = false;
            }
            Event::Empty(e) => {
                let mut key = String::new();
                let mut value = String::new();
                for a in e.attributes() {
                    let a = a.expect("attribute");
                    let v = a
                        .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                        .expect("value")
                        .into_owned();
                    if a.key.as_ref() == "key" {
                        key = v;
                    } else if a.key.as_ref() == "value" {
                        value = v;
                    }
                }
                if in_event {
                    if key == "time:timestamp" {
                        assert!(
                            chrono::DateTime::parse_from_rfc3339(&value).is_ok()
                                && value.ends_with("+08:00"),
                            "timestamp with offset: {value}"
                        );
                    }
                    keys.insert(key);
                } else if depth_trace {
                    trace_keys.insert(key);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let head = engine.store().head_position().await.expect("head");
    let cases = engine.case_ids().await.expect("cases").len() as u64;
    assert_eq!((traces, events), (cases, head));
    assert_eq!((summary.cases, summary.events), (cases, head));
    assert!(text.contains("xes.version=\"1849-2016\""));
}

#[tokio::test]
async fn the_ocel2_export_parses_back_with_declared_types_and_resolvable_relations() {
    let (_fx, engine) = workload_engine().await;
    let mut out = Vec::new();
    let summary = engine.export_ocel2(&mut out).await.expect("export");
    let doc: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
    for key in ["objectTypes", "eventTypes", "objects", "events"] {
        assert!(doc[key].is_array(), "{key} missing");
    }
    let object_types: BTreeSet<&str> = doc["objectTypes"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for t in ["case", "unit", "village", "rectification plan", "reporter"] {
        assert!(
            object_types.contains(t),
            "object type {t} missing: {object_types:?}"
        );
    }
    let event_types: BTreeSet<&str> = doc["eventTypes"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    let objects = doc["objects"].as_array().expect("objects");
    let ids: HashSet<&str> = objects.iter().filter_map(|o| o["id"].as_str()).collect();
    assert_eq!(ids.len(), objects.len(), "object ids are unique");
    for o in objects {
        assert!(object_types.contains(o["type"].as_str().expect("type")));
        for r in o["relationships"].as_array().expect("relationships") {
            assert!(
                ids.contains(r["objectId"].as_str().expect("objectId")),
                "dangling O2O {r}"
            );
        }
    }
    let events = doc["events"].as_array().expect("events");
    for e in events {
        for key in ["id", "type", "time", "attributes", "relationships"] {
            assert!(!e[key].is_null(), "event field {key} missing");
        }
        assert!(event_types.contains(e["type"].as_str().expect("type")));
        chrono::DateTime::parse_from_rfc3339(e["time"].as_str().expect("time"))
            .expect("RFC 3339 time");
        let rels = e["relationships"].as_array().expect("relationships");
        assert!(rels.iter().any(|r| r["qualifier"] == "case"));
        for r in rels {
            assert!(
                ids.contains(r["objectId"].as_str().expect("objectId")),
                "dangling E2O {r}"
            );
            assert!(!r["qualifier"].as_str().unwrap_or_default().is_empty());
        }
    }
    let head = engine.store().head_position().await.expect("head");
    let cases = engine.case_ids().await.expect("cases").len();
    assert_eq!(events.len() as u64, head);
    assert_eq!(
        objects.iter().filter(|o| o["type"] == "case").count(),
        cases
    );
    assert_eq!(summary.events, head);
    // The reporter appears only as an opaque handle.
    let text = String::from_utf8(out).expect("utf-8");
    assert!(!text.contains("138-0000-0000") && !text.contains("13800000000"));
}
