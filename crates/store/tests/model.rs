//! proptest: random sequences of appends and reads on a backend match a reference model
//! (a `BTreeMap` of streams plus a list for the global log and a map for the ledger).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use caseflow_store::contract::{fresh_id, request};
use caseflow_store::{
    AppendOutcome, EventStore, ExpectedVersion, MemoryStore, SqliteOptions, SqliteStore, StoreError,
};
use proptest::prelude::*;
use uuid::Uuid;

#[derive(Debug, Clone)]
enum Expect {
    Any,
    NoStream,
    Exact(u64),
    /// Exact with the stream's current version (usually succeeds).
    Current,
}

#[derive(Debug, Clone)]
enum Op {
    Append {
        stream: u8,
        expect: Expect,
        count: u8,
        command: Option<u8>,
    },
    ReadStream {
        stream: u8,
        from: u64,
        max: usize,
    },
    ReadAll {
        from: u64,
        max: usize,
    },
    Version {
        stream: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let expect = prop_oneof![
        Just(Expect::Any),
        Just(Expect::NoStream),
        (0u64..6).prop_map(Expect::Exact),
        Just(Expect::Current),
    ];
    prop_oneof![
        4 => (0u8..4, expect, 1u8..4, proptest::option::of(0u8..6))
            .prop_map(|(stream, expect, count, command)| Op::Append { stream, expect, count, command }),
        2 => (0u8..5, 0u64..8, 0usize..6).prop_map(|(stream, from, max)| Op::ReadStream { stream, from, max }),
        2 => (0u64..25, 0usize..8).prop_map(|(from, max)| Op::ReadAll { from, max }),
        1 => (0u8..5).prop_map(|stream| Op::Version { stream }),
    ]
}

#[derive(Default)]
struct Model {
    /// Stream -> payloads in version order.
    streams: BTreeMap<String, Vec<Vec<u8>>>,
    /// Global log: (stream, version, payload).
    log: Vec<(String, u64, Vec<u8>)>,
    ledger: HashMap<Uuid, (String, AppendOutcome)>,
}

async fn run(store: Arc<dyn EventStore>, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut model = Model::default();
    let commands: Vec<Uuid> = (0..6).map(|_| fresh_id()).collect();
    for op in ops {
        match op {
            Op::Append {
                stream,
                expect,
                count,
                command,
            } => {
                let name = format!("s{stream}");
                let current = model.streams.get(&name).map_or(0, |v| v.len() as u64);
                let expected = match expect {
                    Expect::Any => ExpectedVersion::Any,
                    Expect::NoStream => ExpectedVersion::NoStream,
                    Expect::Exact(v) => ExpectedVersion::Exact(v),
                    Expect::Current => ExpectedVersion::Exact(current),
                };
                let mut req = request(&name, expected, u64::from(count));
                req.command_id = command.map(|c| commands[c as usize]);
                let got = store.append(req.clone()).await;
                // The model's answer.
                let want: Result<AppendOutcome, &str> = match req
                    .command_id
                    .and_then(|c| model.ledger.get(&c))
                {
                    Some((s, o)) if *s == name => Ok(AppendOutcome {
                        deduplicated: true,
                        ..*o
                    }),
                    Some(_) => Err("reused"),
                    None if !expected.admits(current) => Err("conflict"),
                    None => {
                        let first_position = model.log.len() as u64 + 1;
                        let entry = model.streams.entry(name.clone()).or_default();
                        for e in &req.events {
                            entry.push(e.payload.to_vec());
                            model
                                .log
                                .push((name.clone(), entry.len() as u64, e.payload.to_vec()));
                        }
                        let o = AppendOutcome {
                            first_version: current + 1,
                            last_version: current + u64::from(count),
                            first_position,
                            last_position: model.log.len() as u64,
                            deduplicated: false,
                        };
                        if let Some(c) = req.command_id {
                            model.ledger.insert(c, (name.clone(), o));
                        }
                        Ok(o)
                    }
                };
                match (&got, want) {
                    (Ok(g), Ok(w)) => prop_assert_eq!(*g, w),
                    (Err(StoreError::VersionConflict { actual, .. }), Err("conflict")) => {
                        prop_assert_eq!(*actual, current)
                    }
                    (Err(StoreError::CommandIdReused { .. }), Err("reused")) => {}
                    (g, w) => prop_assert!(false, "store {:?} vs model {:?}", g, w),
                }
            }
            Op::ReadStream { stream, from, max } => {
                let name = format!("s{stream}");
                let got = store.read_stream(&name, from, max).await.unwrap();
                let all = model.streams.get(&name).cloned().unwrap_or_default();
                let start = from.max(1) as usize - 1;
                let want: Vec<(u64, Vec<u8>)> = all
                    .into_iter()
                    .enumerate()
                    .skip(start)
                    .take(max)
                    .map(|(i, p)| (i as u64 + 1, p))
                    .collect();
                let got: Vec<(u64, Vec<u8>)> =
                    got.into_iter().map(|e| (e.version, e.payload)).collect();
                prop_assert_eq!(got, want);
            }
            Op::ReadAll { from, max } => {
                let got = store.read_all(from, max).await.unwrap();
                let start = from.max(1) as usize - 1;
                let want: Vec<(u64, String, u64, Vec<u8>)> = model
                    .log
                    .iter()
                    .enumerate()
                    .skip(start)
                    .take(max)
                    .map(|(i, (s, v, p))| (i as u64 + 1, s.clone(), *v, p.clone()))
                    .collect();
                let got: Vec<(u64, String, u64, Vec<u8>)> = got
                    .into_iter()
                    .map(|e| (e.position, e.stream_id, e.version, e.payload))
                    .collect();
                prop_assert_eq!(got, want);
            }
            Op::Version { stream } => {
                let name = format!("s{stream}");
                let got = store.stream_version(&name).await.unwrap();
                prop_assert_eq!(got, model.streams.get(&name).map(|v| v.len() as u64));
            }
        }
    }
    prop_assert_eq!(store.head_position().await.unwrap(), model.log.len() as u64);
    prop_assert!(store.verify_all().await.unwrap().is_intact());
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn memory_store_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        runtime().block_on(run(Arc::new(MemoryStore::new()), ops))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_store_matches_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("m.db"), SqliteOptions::normal()).unwrap();
        runtime().block_on(run(Arc::new(store), ops))?;
    }
}
