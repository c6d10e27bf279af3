//! The backend contract suite: written once, run against every [`EventStore`] backend.
//!
//! A backend's test file instantiates it with the [`crate::contract_tests!`] macro, giving
//! an async factory that returns a fresh, empty store in a [`Harness`]:
//!
//! ```text
//! async fn fresh() -> caseflow_store::contract::Harness { /* ... */ }
//! caseflow_store::contract_tests!(fresh);
//! ```
//!
//! or calls [`run_all`] from one test. Every check panics (like `assert!`) on a violation.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use crate::error::StoreError;
use crate::hash::{GENESIS_HASH, recompute};
use crate::store::EventStore;
use crate::tree::{
    self, Frontier, TreeFault, TreeHead, leaf_of, verify_consistency, verify_inclusion,
};
use crate::types::{
    AppendOutcome, AppendRequest, ExpectedVersion, LinkFault, Metadata, NewEvent, RecordedEvent,
};

/// Which field of a stored record a tamper hook changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    /// Flip the bits of one payload byte.
    PayloadByte,
    /// Change the event type.
    EventType,
    /// Change the schema version.
    SchemaVersion,
    /// Change the actor.
    Actor,
    /// Move the recorded time by one nanosecond.
    RecordedAt,
    /// Change the event id.
    EventId,
    /// Flip a bit of the stored hash.
    Hash,
    /// Flip a bit of the stored previous hash.
    PrevHash,
}

/// Every tamper kind.
pub const TAMPERS: [Tamper; 8] = [
    Tamper::PayloadByte,
    Tamper::EventType,
    Tamper::SchemaVersion,
    Tamper::Actor,
    Tamper::RecordedAt,
    Tamper::EventId,
    Tamper::Hash,
    Tamper::PrevHash,
];

/// A tamper hook: changes the given field of the record at a global position behind the
/// store's back (for SQLite, through a separate connection to the file).
pub type TamperFn = Box<dyn Fn(u64, Tamper) + Send + Sync>;

/// A fresh, empty store under test.
pub struct Harness {
    /// The store.
    pub store: Arc<dyn EventStore>,
    /// Tamper hook, if the backend allows changing stored bytes (a networked store may not;
    /// the tamper check is then reported as skipped).
    pub tamper: Option<TamperFn>,
    /// Anything that must live as long as the store (e.g. a temporary directory).
    pub guard: Option<Box<dyn Any + Send + Sync>>,
}

/// A deterministic recorded time for tests (with sub-microsecond precision on purpose).
pub fn t(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + seconds, 123_456_789)
        .single()
        .unwrap_or_default()
}

fn id(n: u128) -> Uuid {
    // Ids unique per test process run: a random-ish high half, and `n` below.
    Uuid::from_u128((0x0190_0000_0000_7000_8000_0000_0000_0000u128) ^ n)
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A fresh event id (unique within this process).
pub fn fresh_id() -> Uuid {
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    id(((std::process::id() as u128) << 64) | n as u128)
}

/// A test event with a JSON payload naming `n`.
pub fn event(n: u64) -> NewEvent {
    NewEvent {
        event_id: fresh_id(),
        event_type: "ThingHappened".into(),
        schema_version: 1,
        payload: format!("{{\"n\":{n},\"text\":\"événement {n}\"}}")
            .into_bytes()
            .into(),
        metadata: Metadata {
            actor: "room-1/clerk".into(),
            command_id: None,
            correlation_id: Some(id(7)),
            causation_id: None,
        },
    }
}

/// An append request of `count` test events.
pub fn request(stream: &str, expected: ExpectedVersion, count: u64) -> AppendRequest {
    AppendRequest {
        stream_id: stream.into(),
        expected,
        events: (0..count).map(event).collect(),
        recorded_at: t(count as i64),
        command_id: None,
    }
}

/// Runs every contract check, each on a fresh store from `factory`.
pub async fn run_all<F, Fut>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Harness>,
{
    expected_version_semantics(&factory).await;
    outcomes_report_versions_and_positions(&factory).await;
    racing_writers_on_one_stream_lose_no_update(&factory).await;
    concurrent_conflicts_get_their_own_result(&factory).await;
    reads_return_records_exactly_as_appended(&factory).await;
    read_ranges_are_inclusive_and_bounded(&factory).await;
    subscription_catches_up_then_follows_without_gap_or_duplicate(&factory).await;
    subscription_from_the_middle_starts_there(&factory).await;
    idempotent_command_ids_write_once(&factory).await;
    concurrent_duplicate_commands_write_once(&factory).await;
    invalid_requests_are_rejected_without_writing(&factory).await;
    duplicate_event_ids_are_rejected_without_writing(&factory).await;
    hash_chains_link_and_verify(&factory).await;
    any_changed_field_is_detected_by_verify(&factory).await;
    merkle_tree_covers_the_log_in_position_order(&factory).await;
    merkle_tree_grows_exactly_under_concurrent_appends(&factory).await;
    any_changed_field_is_detected_by_the_tree(&factory).await;
    verify_checks_that_the_ledger_covers_the_log(&factory).await;
}

/// Generates one `#[tokio::test]` per contract check for a backend factory.
#[macro_export]
macro_rules! contract_tests {
    ($factory:path) => {
        $crate::contract_tests!(@tests $factory;
            expected_version_semantics,
            outcomes_report_versions_and_positions,
            racing_writers_on_one_stream_lose_no_update,
            concurrent_conflicts_get_their_own_result,
            reads_return_records_exactly_as_appended,
            read_ranges_are_inclusive_and_bounded,
            subscription_catches_up_then_follows_without_gap_or_duplicate,
            subscription_from_the_middle_starts_there,
            idempotent_command_ids_write_once,
            concurrent_duplicate_commands_write_once,
            invalid_requests_are_rejected_without_writing,
            duplicate_event_ids_are_rejected_without_writing,
            hash_chains_link_and_verify,
            any_changed_field_is_detected_by_verify,
            merkle_tree_covers_the_log_in_position_order,
            merkle_tree_grows_exactly_under_concurrent_appends,
            any_changed_field_is_detected_by_the_tree,
            verify_checks_that_the_ledger_covers_the_log,
        );
    };
    (@tests $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                $crate::contract::$name(&$factory).await;
            }
        )*
    };
}

async fn ok(store: &dyn EventStore, req: AppendRequest) -> AppendOutcome {
    match store.append(req).await {
        Ok(o) => o,
        Err(e) => panic!("append failed: {e}"),
    }
}

async fn all(store: &dyn EventStore) -> Vec<RecordedEvent> {
    store.read_all(1, usize::MAX).await.expect("read_all")
}

fn assert_conflict(result: Result<AppendOutcome, StoreError>, exp: ExpectedVersion, actual_v: u64) {
    match result {
        Err(StoreError::VersionConflict {
            expected, actual, ..
        }) => {
            assert_eq!(expected, exp, "conflict reports the expected version");
            assert_eq!(actual, actual_v, "conflict reports the actual version");
        }
        other => panic!("expected a version conflict ({exp} vs {actual_v}), got {other:?}"),
    }
}

/// Any / NoStream / Exact(n) accept and reject exactly as documented.
pub async fn expected_version_semantics<F: Fn() -> Fut, Fut: Future<Output = Harness>>(f: &F) {
    let h = f().await;
    let s = &*h.store;
    assert_eq!(s.stream_version("a").await.unwrap(), None);
    assert_conflict(
        s.append(request("a", ExpectedVersion::Exact(3), 1)).await,
        ExpectedVersion::Exact(3),
        0,
    );
    let o = ok(s, request("a", ExpectedVersion::NoStream, 1)).await;
    assert_eq!((o.first_version, o.last_version), (1, 1));
    assert_conflict(
        s.append(request("a", ExpectedVersion::NoStream, 1)).await,
        ExpectedVersion::NoStream,
        1,
    );
    assert_conflict(
        s.append(request("a", ExpectedVersion::Exact(0), 1)).await,
        ExpectedVersion::Exact(0),
        1,
    );
    assert_conflict(
        s.append(request("a", ExpectedVersion::Exact(2), 1)).await,
        ExpectedVersion::Exact(2),
        1,
    );
    let o = ok(s, request("a", ExpectedVersion::Exact(1), 2)).await;
    assert_eq!((o.first_version, o.last_version), (2, 3));
    let o = ok(s, request("a", ExpectedVersion::Any, 1)).await;
    assert_eq!(o.last_version, 4);
    let o = ok(s, request("b", ExpectedVersion::Exact(0), 1)).await;
    assert_eq!(o.first_version, 1);
    let o = ok(s, request("c", ExpectedVersion::Any, 1)).await;
    assert_eq!(o.first_version, 1);
    assert_eq!(s.stream_version("a").await.unwrap(), Some(4));
    assert_eq!(s.stream_version("b").await.unwrap(), Some(1));
    // Conflicts wrote nothing.
    assert_eq!(s.head_position().await.unwrap(), 6);
    assert_eq!(all(s).await.len(), 6);
}

/// Outcomes carry the versions and gap-free global positions written.
pub async fn outcomes_report_versions_and_positions<
    F: Fn() -> Fut,
    Fut: Future<Output = Harness>,
>(
    f: &F,
) {
    let h = f().await;
    let s = &*h.store;
    assert_eq!(s.head_position().await.unwrap(), 0);
    let a = ok(s, request("x", ExpectedVersion::NoStream, 3)).await;
    assert_eq!(
        a,
        AppendOutcome {
            first_version: 1,
            last_version: 3,
            first_position: 1,
            last_position: 3,
            deduplicated: false
        }
    );
    let b = ok(s, request("y", ExpectedVersion::NoStream, 2)).await;
    assert_eq!((b.first_position, b.last_position), (4, 5));
    let c = ok(s, request("x", ExpectedVersion::Exact(3), 1)).await;
    assert_eq!((c.first_version, c.first_position), (4, 6));
    assert_eq!(s.head_position().await.unwrap(), 6);
    let log = all(s).await;
    let positions: Vec<u64> = log.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=6).collect::<Vec<_>>());
    let xs: Vec<(u64, u64)> = log
        .iter()
        .filter(|e| e.stream_id == "x")
        .map(|e| (e.version, e.position))
        .collect();
    assert_eq!(xs, vec![(1, 1), (2, 2), (3, 3), (4, 6)]);
}

/// Many tasks race optimistic appends on one stream: each version is written exactly once
/// and every task's successes are all there (no lost update).
pub async fn racing_writers_on_one_stream_lose_no_update<
    F: Fn() -> Fut,
    Fut: Future<Output = Harness>,
>(
    f: &F,
) {
    let h = f().await;
    let tasks = 12u64;
    let per_task = 8u64;
    let mut joins = Vec::new();
    for task in 0..tasks {
        let s = h.store.clone();
        joins.push(tokio::spawn(async move {
            let mut written = Vec::new();
            let mut conflicts = 0u64;
            while (written.len() as u64) < per_task {
                let v = s.stream_version("race").await.unwrap().unwrap_or(0);
                let mut req = request("race", ExpectedVersion::Exact(v), 1);
                req.events[0].payload = format!("{{\"task\":{task},\"i\":{}}}", written.len())
                    .into_bytes()
                    .into();
                match s.append(req).await {
                    Ok(o) => {
                        assert_eq!(
                            o.first_version,
                            v + 1,
                            "append lands right after the expected version"
                        );
                        written.push(o.first_version);
                    }
                    Err(StoreError::VersionConflict { actual, .. }) => {
                        assert!(actual > v, "a conflict means someone else wrote");
                        conflicts += 1;
                    }
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
            (task, written, conflicts)
        }));
    }
    let mut versions = BTreeSet::new();
    for j in joins {
        let (_, written, _) = j.await.unwrap();
        for v in written {
            assert!(versions.insert(v), "version {v} acknowledged twice");
        }
    }
    let n = tasks * per_task;
    assert_eq!(versions, (1..=n).collect::<BTreeSet<_>>());
    let stream = h.store.read_stream("race", 1, usize::MAX).await.unwrap();
    assert_eq!(stream.len() as u64, n);
    for (i, e) in stream.iter().enumerate() {
        assert_eq!(e.version, i as u64 + 1);
    }
    let mut per_task_count = BTreeMap::new();
    for e in &stream {
        let v: serde_json::Value = serde_json::from_slice(&e.payload).unwrap();
        *per_task_count
            .entry(v["task"].as_u64().unwrap())
            .or_insert(0u64) += 1;
    }
    assert!(
        per_task_count.values().all(|&c| c == per_task),
        "{per_task_count:?}"
    );
    assert!(h.store.verify_all().await.unwrap().is_intact());
}

/// Concurrent appends that conflict get their own conflict while the others succeed, as if
/// each had committed alone (this is what group commit must preserve).
pub async fn concurrent_conflicts_get_their_own_result<
    F: Fn() -> Fut,
    Fut: Future<Output = Harness>,
>(
    f: &F,
) {
    let h = f().await;
    let streams = 16;
    let contenders = 4;
    let mut joins = Vec::new();
    for s in 0..streams {
        for c in 0..contenders {
            let store = h.store.clone();
            joins.push(tokio::spawn(async move {
                let r = store
                    .append(request(
                        &format!("s-{s}"),
                        ExpectedVersion::NoStream,
                        1 + c % 2,
                    ))
                    .await;
                (s, r)
            }));
        }
    }
    let mut winners = BTreeMap::new();
    for j in joins {
        let (s, r) = j.await.unwrap();
        match r {
            Ok(o) => {
                assert!(
                    winners.insert(s, o).is_none(),
                    "two winners on stream s-{s}"
                );
            }
            Err(StoreError::VersionConflict {
                expected, actual, ..
            }) => {
                assert_eq!(expected, ExpectedVersion::NoStream);
                assert!(actual >= 1);
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(winners.len(), streams as usize);
    for (s, o) in winners {
        assert_eq!(
            h.store.stream_version(&format!("s-{s}")).await.unwrap(),
            Some(o.last_version)
        );
    }
    let log = all(&*h.store).await;
    assert_eq!(log.len() as u64, h.store.head_position().await.unwrap());
    assert!(h.store.verify_all().await.unwrap().is_intact());
}

/// Every field reads back exactly as appended (including sub-microsecond times and UTF-8).
pub async fn reads_return_records_exactly_as_appended<
    F: Fn() -> Fut,
    Fut: Future<Output = Harness>,
>(
    f: &F,
) {
    let h = f().await;
    let s = &*h.store;
    let mut req = request("case-ü/1", ExpectedVersion::NoStream, 3);
    req.command_id = Some(fresh_id());
    req.events[1].metadata = Metadata {
        actor: "team-2/leader".into(),
        command_id: req.command_id,
        correlation_id: Some(fresh_id()),
        causation_id: Some(fresh_id()),
    };
    req.events[2].schema_version = 7;
    req.events[2].event_type = "OtherThingHappened".into();
    req.events[2].payload = b"[1, 2.5, null, \"\\u0000\"]".to_vec().into();
    let sent = req.clone();
    ok(s, req).await;
    let got = s.read_stream("case-ü/1", 1, 100).await.unwrap();
    assert_eq!(got.len(), 3);
    for (i, (g, e)) in got.iter().zip(&sent.events).enumerate() {
        assert_eq!(g.event_id, e.event_id);
        assert_eq!(g.stream_id, "case-ü/1");
        assert_eq!(g.version, i as u64 + 1);
        assert_eq!(g.position, i as u64 + 1);
        assert_eq!(g.recorded_at, sent.recorded_at);
        assert_eq!(g.event_type, e.event_type);
        assert_eq!(g.schema_version, e.schema_version);
        assert_eq!(g.payload, e.payload.as_bytes());
        assert_eq!(g.metadata, e.metadata);
    }
    assert_eq!(all(s).await, got, "read_all and read_stream agree");
}

/// `read_stream` and `read_all` ranges are inclusive of their start and bounded by count.
pub async fn read_ranges_are_inclusive_and_bounded<
    F: Fn() -> Fut,
    Fut: Future<Output = Harness>,
>(
    f: &F,
) {
    let h = f().await;
    let s = &*h.store;
    for i in 0..10u64 {
        ok(s, request("r", ExpectedVersion::Any, 1)).await;
        ok(s, request(&format!("o-{}", i % 3), ExpectedVersion::Any, 1)).await;
    }
    let versions = |v: Vec<RecordedEvent>| v.iter().map(|e| e.version).collect::<Vec<_>>();
    assert_eq!(
        versions(s.read_stream("r", 1, 3).await.unwrap()),
        vec![1, 2, 3]
    );
    assert_eq!(
        versions(s.read_stream("r", 0, 2).await.unwrap()),
        vec![1, 2]
    );
    assert_eq!(
        versions(s.read_stream("r", 9, 100).await.unwrap()),
        vec![9, 10]
    );
    assert!(s.read_stream("r", 11, 100).await.unwrap().is_empty());
    assert!(s.read_stream("r", 3, 0).await.unwrap().is_empty());
    assert!(s.read_stream("nope", 1, 100).await.unwrap().is_empty());
    let positions = |v: Vec<RecordedEvent>| v.iter().map(|e| e.position).collect::<Vec<_>>();
    assert_eq!(positions(s.read_all(0, 3).await.unwrap()), vec![1, 2, 3]);
    assert_eq!(positions(s.read_all(5, 3).await.unwrap()), vec![5, 6, 7]);
    assert_eq!(positions(s.read_all(19, 100).await.unwrap()), vec![19, 20]);
    assert!(s.read_all(21, 100).await.unwrap().is_empty());
    // Paging through the log in batches sees every record once.
    let mut from = 1;
    let mut seen = Vec::new();
    loop {
        let batch = s.read_all(from, 7).await.unwrap();
        let Some(last) = batch.last() else { break };
        from = last.position + 1;
        seen.extend(batch.iter().map(|e| e.position));
    }
    assert_eq!(seen, (1..=20).collect::<Vec<_>>());
}

const DEADLINE: Duration = Duration::from_secs(60);

/// A subscription started before and during concurrent appends delivers every position
/// exactly once and in order.
pub async fn subscription_catches_up_then_follows_without_gap_or_duplicate<
    F: Fn() -> Fut,
    Fut: Future<Output = Harness>,
>(
    f: &F,
) {
    let h = f().await;
    // Some history first, so the subscription has to catch up.
    for i in 0..20u64 {
        ok(
            &*h.store,
            request(&format!("pre-{}", i % 4), ExpectedVersion::Any, 1 + i % 3),
        )
        .await;
    }
    let history = h.store.head_position().await.unwrap();
    let mut early = h.store.subscribe(1).await.unwrap();
    let writers = 8u64;
    let per_writer = 40u64;
    let mut joins = Vec::new();
    for w in 0..writers {
        let s = h.store.clone();
        joins.push(tokio::spawn(async move {
            let mut n = 0;
            for i in 0..per_writer {
                let count = 1 + (w + i) % 3;
                n += count;
                s.append(request(
                    &format!("live-{}", (w + i) % 5),
                    ExpectedVersion::Any,
                    count,
                ))
                .await
                .unwrap();
            }
            n
        }));
    }
    // A second subscriber joins while the writers are running.
    let mut late = h.store.subscribe(1).await.unwrap();
    let mut written = 0;
    for j in joins {
        written += j.await.unwrap();
    }
    let expected_total = history + written;
    for sub in [&mut early, &mut late] {
        let mut next = 1;
        while next <= expected_total {
            let e = tokio::time::timeout(DEADLINE, sub.next())
                .await
                .expect("subscription stalled")
                .expect("subscription ended")
                .expect("subscription failed");
            assert_eq!(
                e.position, next,
                "subscription skipped or repeated a position"
            );
            next += 1;
        }
    }
    assert_eq!(h.store.head_position().await.unwrap(), expected_total);
    // Nothing more is delivered until something more is appended.
    ok(&*h.store, request("after", ExpectedVersion::NoStream, 1)).await;
    let e = tokio::time::timeout(DEADLINE, early.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(e.position, expected_total + 1);
    assert_eq!(e.stream_id, "after");
}

/// `subscribe(from)` starts at `from` (inclusive) and then follows.
pub async fn subscription_from_the_middle_starts_there<
    F: Fn() -> Fut,
    Fut: Future<Output = Harness>,
>(
    f: &F,
) {
    let h = f().await;
    for _ in 0..10 {
        ok(&*h.store, request("m", ExpectedVersion::Any, 1)).await;
    }
    let mut sub = h.store.subscribe(7).await.unwrap();
    for p in 7..=10 {
        let e = tokio::time::timeout(DEADLINE, sub.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(e.position, p);
    }
    let s = h.store.clone();
    let writer = tokio::spawn(async move {
        for _ in 0..5 {
            s.append(request("m", ExpectedVersion::Any, 1))
                .await
                .unwrap();
        }
    });
    for p in 11..=15 {
        let e = tokio::time::timeout(DEADLINE, sub.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!((e.position, e.version), (p, p));
    }
    writer.await.unwrap();
    let mut beyond = h.store.subscribe(16).await.unwrap();
    ok(&*h.store, request("m", ExpectedVersion::Any, 1)).await;
    let e = tokio::time::timeout(DEADLINE, beyond.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(e.position, 16);
}

/// A command id already in the ledger returns the original outcome and writes nothing,
/// even when the retried request's expected version is now stale.
pub async fn idempotent_command_ids_write_once<F: Fn() -> Fut, Fut: Future<Output = Harness>>(
    f: &F,
) {
    let h = f().await;
    let s = &*h.store;
    let cmd = fresh_id();
    let mut req = request("i", ExpectedVersion::NoStream, 2);
    req.command_id = Some(cmd);
    let first = ok(s, req.clone()).await;
    assert!(!first.deduplicated);
    ok(s, request("other", ExpectedVersion::Any, 1)).await;
    let again = ok(s, req.clone()).await;
    assert!(again.deduplicated);
    assert_eq!(
        AppendOutcome {
            deduplicated: false,
            ..again
        },
        first
    );
    // A retry with different event ids (a re-decided command) is still deduplicated.
    let mut retry = request("i", ExpectedVersion::NoStream, 5);
    retry.command_id = Some(cmd);
    let third = ok(s, retry).await;
    assert!(third.deduplicated);
    assert_eq!(third.last_version, 2);
    assert_eq!(s.stream_version("i").await.unwrap(), Some(2));
    assert_eq!(s.head_position().await.unwrap(), 3);
    assert_eq!(
        s.command_outcome(cmd)
            .await
            .unwrap()
            .map(|o| o.last_position),
        Some(2)
    );
    assert_eq!(s.command_outcome(fresh_id()).await.unwrap(), None);
    // The same command id on another stream is a caller error.
    let mut elsewhere = request("j", ExpectedVersion::Any, 1);
    elsewhere.command_id = Some(cmd);
    assert!(matches!(
        s.append(elsewhere).await,
        Err(StoreError::CommandIdReused { .. })
    ));
    assert_eq!(s.head_position().await.unwrap(), 3);
}

/// Concurrent appends with the same command id write exactly once; all see one outcome.
pub async fn concurrent_duplicate_commands_write_once<
    F: Fn() -> Fut,
    Fut: Future<Output = Harness>,
>(
    f: &F,
) {
    let h = f().await;
    let cmd = fresh_id();
    let mut joins = Vec::new();
    for _ in 0..16 {
        let s = h.store.clone();
        joins.push(tokio::spawn(async move {
            let mut req = request("dup", ExpectedVersion::Any, 1);
            req.command_id = Some(cmd);
            s.append(req).await.unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for j in joins {
        outcomes.push(j.await.unwrap());
    }
    assert_eq!(outcomes.iter().filter(|o| !o.deduplicated).count(), 1);
    let firsts: BTreeSet<u64> = outcomes.iter().map(|o| o.first_position).collect();
    assert_eq!(firsts.len(), 1);
    assert_eq!(h.store.stream_version("dup").await.unwrap(), Some(1));
}

/// Malformed requests are caller errors and write nothing.
pub async fn invalid_requests_are_rejected_without_writing<
    F: Fn() -> Fut,
    Fut: Future<Output = Harness>,
>(
    f: &F,
) {
    let h = f().await;
    let s = &*h.store;
    let mut bad = Vec::new();
    bad.push(request("", ExpectedVersion::Any, 1));
    bad.push(request("a\nb", ExpectedVersion::Any, 1));
    bad.push(request("empty", ExpectedVersion::Any, 0));
    let mut r = request("p", ExpectedVersion::Any, 2);
    r.events[1].payload = b"{not json".to_vec().into();
    bad.push(r);
    let mut r = request("p", ExpectedVersion::Any, 1);
    r.events[0].schema_version = 0;
    bad.push(r);
    let mut r = request("p", ExpectedVersion::Any, 1);
    r.events[0].event_type = String::new();
    bad.push(r);
    let mut r = request("p", ExpectedVersion::Any, 1);
    r.events[0].event_id = Uuid::nil();
    bad.push(r);
    let mut r = request("p", ExpectedVersion::Any, 2);
    r.events[1].event_id = r.events[0].event_id;
    bad.push(r);
    let mut r = request("p", ExpectedVersion::Any, 1);
    r.recorded_at = DateTime::<Utc>::MAX_UTC;
    bad.push(r);
    for req in bad {
        let res = s.append(req.clone()).await;
        assert!(
            matches!(res, Err(StoreError::InvalidRequest { .. })),
            "{req:?} gave {res:?}"
        );
    }
    assert_eq!(s.head_position().await.unwrap(), 0);
    assert!(all(s).await.is_empty());
    assert!(s.read_stream("", 1, 1).await.is_err());
}

/// An event id that is already stored is rejected; the store keeps working.
pub async fn duplicate_event_ids_are_rejected_without_writing<
    F: Fn() -> Fut,
    Fut: Future<Output = Harness>,
>(
    f: &F,
) {
    let h = f().await;
    let s = &*h.store;
    let first = request("d", ExpectedVersion::NoStream, 2);
    let taken = first.events[1].event_id;
    ok(s, first).await;
    let mut again = request("e", ExpectedVersion::NoStream, 3);
    again.events[2].event_id = taken;
    match s.append(again).await {
        Err(StoreError::DuplicateEventId { event_id }) => assert_eq!(event_id, taken),
        other => panic!("expected DuplicateEventId, got {other:?}"),
    }
    assert_eq!(
        s.stream_version("e").await.unwrap(),
        None,
        "no partial append"
    );
    assert_eq!(s.head_position().await.unwrap(), 2);
    let o = ok(s, request("e", ExpectedVersion::NoStream, 1)).await;
    assert_eq!(
        o.first_position, 3,
        "positions stay gap-free after a rejected append"
    );
    assert!(s.verify_all().await.unwrap().is_intact());
}

/// Hashes link each record to the previous one of its stream and verify end to end.
pub async fn hash_chains_link_and_verify<F: Fn() -> Fut, Fut: Future<Output = Harness>>(f: &F) {
    let h = f().await;
    let s = &*h.store;
    assert!(s.verify_all().await.unwrap().is_intact());
    for i in 0..12u64 {
        ok(
            s,
            request(&format!("h-{}", i % 3), ExpectedVersion::Any, 1 + i % 2),
        )
        .await;
    }
    let log = all(s).await;
    let mut last: BTreeMap<&str, [u8; 32]> = BTreeMap::new();
    for e in &log {
        let prev = last
            .get(e.stream_id.as_str())
            .copied()
            .unwrap_or(GENESIS_HASH);
        assert_eq!(
            e.prev_hash, prev,
            "prev_hash links to the previous record of the stream"
        );
        assert_eq!(recompute(e), e.hash, "hash covers the record");
        last.insert(&e.stream_id, e.hash);
    }
    let report = s.verify_all().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.streams_checked, 3);
    assert_eq!(report.events_checked, log.len() as u64);
    let one = s.verify_stream("h-1").await.unwrap();
    assert!(one.is_intact());
    assert_eq!(one.streams_checked, 1);
    assert_eq!(
        one.events_checked,
        log.iter().filter(|e| e.stream_id == "h-1").count() as u64
    );
    let none = s.verify_stream("missing").await.unwrap();
    assert_eq!(none.streams_checked, 0);
}

/// Changing any hashed field of a stored record is reported as the first broken link, at
/// exactly that stream and version.
pub async fn any_changed_field_is_detected_by_verify<
    F: Fn() -> Fut,
    Fut: Future<Output = Harness>,
>(
    f: &F,
) {
    for tamper in TAMPERS {
        let h = f().await;
        let Some(hook) = &h.tamper else {
            eprintln!("tamper check skipped: this backend has no tamper hook");
            return;
        };
        let s = &*h.store;
        ok(s, request("v", ExpectedVersion::NoStream, 3)).await;
        ok(s, request("w", ExpectedVersion::NoStream, 2)).await;
        ok(s, request("v", ExpectedVersion::Exact(3), 3)).await;
        // Position 5 is "w" version 2; position 7 is "v" version 5.
        hook(7, tamper);
        let report = s.verify_all().await.unwrap();
        let broken = report
            .first_broken
            .unwrap_or_else(|| panic!("{tamper:?} went undetected"));
        assert_eq!(
            (broken.stream_id.as_str(), broken.version),
            ("v", 5),
            "{tamper:?}"
        );
        match tamper {
            Tamper::PrevHash => assert!(matches!(broken.fault, LinkFault::PrevHashMismatch { .. })),
            _ => assert!(
                matches!(broken.fault, LinkFault::HashMismatch { .. }),
                "{tamper:?}: {:?}",
                broken.fault
            ),
        }
        let one = s.verify_stream("v").await.unwrap();
        assert_eq!(one.first_broken.map(|b| b.version), Some(5));
        assert!(s.verify_stream("w").await.unwrap().is_intact());
    }
}

/// The tree every backend must hold: the leaves of `records` (recomputed from their fields),
/// in position order, hashed as RFC 9162 says. Returns the root of every prefix.
fn prefix_roots(records: &[RecordedEvent]) -> Vec<tree::Hash> {
    let mut frontier = Frontier::new();
    let mut roots = vec![frontier.root()];
    for e in records {
        frontier.push(leaf_of(e), |_, _| {});
        roots.push(frontier.root());
    }
    roots
}

/// Checks the stored tree against the records: every prefix head, every inclusion proof at
/// the head, and consistency proofs from every smaller size.
async fn assert_tree_matches_records(s: &dyn EventStore) {
    let records = all(s).await;
    let roots = prefix_roots(&records);
    let n = records.len() as u64;
    let head = s.tree_head().await.expect("tree head");
    assert_eq!(
        head,
        TreeHead {
            tree_size: n,
            root_hash: roots[n as usize]
        },
        "tree head"
    );
    for size in 0..=n {
        let at = s.tree_head_at(size).await.expect("past head");
        assert_eq!(at.root_hash, roots[size as usize], "root at size {size}");
        let proof = s
            .consistency_proof(size, n)
            .await
            .expect("consistency proof");
        verify_consistency(&proof, &roots[size as usize], &head.root_hash)
            .unwrap_or_else(|e| panic!("consistency {size} -> {n}: {e}"));
    }
    for e in &records {
        let proof = s
            .inclusion_proof(e.position, n)
            .await
            .expect("inclusion proof");
        verify_inclusion(&proof, &leaf_of(e), &head.root_hash)
            .unwrap_or_else(|err| panic!("inclusion of position {}: {err}", e.position));
    }
    let report = tree::verify_tree(s).await.expect("verify tree");
    assert!(report.is_intact(), "{:?}", report.first_fault);
    assert_eq!(report.computed, head);
    assert_verify_log_agrees(s).await;
}

/// [`EventStore::verify_log`] says exactly what `verify_all` and `verify_tree` say (a
/// backend may check both in one read of the log).
async fn assert_verify_log_agrees(s: &dyn EventStore) {
    fn same<T: PartialEq + std::fmt::Debug>(
        what: &str,
        once: &Result<T, StoreError>,
        walk: &Result<T, StoreError>,
    ) {
        match (once, walk) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{what}: verify_log and its walk disagree"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{what}"),
            _ => panic!("{what}: verify_log gave {once:?}, its walk {walk:?}"),
        }
    }
    let once = s.verify_log(None).await;
    same("chains", &once.chains, &s.verify_all().await);
    same("tree", &once.tree, &tree::verify_tree(s).await);
}

/// The log is one RFC 9162 Merkle tree: heads, inclusion and consistency proofs come from
/// the stored nodes and agree with the records; sizes beyond the log are caller errors.
pub async fn merkle_tree_covers_the_log_in_position_order<
    F: Fn() -> Fut,
    Fut: Future<Output = Harness>,
>(
    f: &F,
) {
    let h = f().await;
    let s = &*h.store;
    assert_tree_matches_records(s).await;
    ok(s, request("a", ExpectedVersion::NoStream, 3)).await;
    ok(s, request("b", ExpectedVersion::NoStream, 1)).await;
    assert_tree_matches_records(s).await;
    ok(s, request("a", ExpectedVersion::Exact(3), 5)).await;
    ok(s, request("c", ExpectedVersion::NoStream, 4)).await;
    assert_tree_matches_records(s).await;
    let tree_head = s.tree_head().await.unwrap();
    let evidence = tree::Evidence::build(s, "a", None, &tree_head)
        .await
        .unwrap();
    assert_eq!(evidence.check(&tree_head), Ok(8), "evidence of stream a");
    let older = s.tree_head_at(5).await.unwrap();
    let early = tree::Evidence::build(s, "a", Some(2), &older)
        .await
        .unwrap();
    assert_eq!(
        early.check(&older),
        Ok(2),
        "evidence up to version 2 at size 5"
    );
    assert!(
        early.check(&tree_head).is_err(),
        "evidence checked against another head"
    );
    let mut forged = evidence.clone();
    forged.entries[4].record.payload = br#"{"n":999}"#.to_vec();
    assert!(forged.check(&tree_head).is_err(), "a changed record");
    let mut forged = evidence.clone();
    forged.entries[4].proof.path[0][0] ^= 1;
    assert!(forged.check(&tree_head).is_err(), "a changed proof");
    let mut wrong = tree_head;
    wrong.root_hash[0] ^= 1;
    assert!(tree::Evidence::build(s, "a", None, &wrong).await.is_err());
    let head = s.head_position().await.unwrap();
    for result in [
        s.tree_head_at(head + 1).await.map(|_| ()),
        s.inclusion_proof(head + 1, head + 1).await.map(|_| ()),
        s.inclusion_proof(0, head).await.map(|_| ()),
        s.consistency_proof(2, head + 1).await.map(|_| ()),
        s.consistency_proof(3, 2).await.map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(StoreError::InvalidRequest { .. })),
            "{result:?}"
        );
    }
}

/// Concurrent appends (grouped into one commit by batching backends), with some refused in
/// the middle of a batch, leave exactly the tree of the committed records.
pub async fn merkle_tree_grows_exactly_under_concurrent_appends<
    F: Fn() -> Fut,
    Fut: Future<Output = Harness>,
>(
    f: &F,
) {
    let h = f().await;
    let s = h.store.clone();
    let taken = event(1);
    ok(
        &*s,
        AppendRequest {
            events: vec![taken.clone()],
            ..request("taken", ExpectedVersion::NoStream, 1)
        },
    )
    .await;
    let mut tasks = Vec::new();
    for w in 0..16u64 {
        let s = s.clone();
        let taken = taken.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..8u64 {
                let stream = format!("w{w}");
                let mut req = request(&stream, ExpectedVersion::Any, 1 + (i % 3));
                if i == 4 {
                    // Refused inside a batch (duplicate event id): must leave no leaf.
                    req.events.push(taken.clone());
                    assert!(s.append(req).await.is_err());
                } else {
                    s.append(req).await.expect("append");
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer task");
    }
    assert_tree_matches_records(&*s).await;
}

/// Changing any field of a stored record changes its leaf, which the tree check reports at
/// that position (a changed stored hash alone leaves the recomputed leaf as it was; the
/// chain walk reports that one).
pub async fn any_changed_field_is_detected_by_the_tree<
    F: Fn() -> Fut,
    Fut: Future<Output = Harness>,
>(
    f: &F,
) {
    for tamper in TAMPERS {
        let h = f().await;
        let Some(hook) = &h.tamper else {
            eprintln!("tree tamper check skipped: this backend has no tamper hook");
            return;
        };
        let s = &*h.store;
        ok(s, request("v", ExpectedVersion::NoStream, 3)).await;
        ok(s, request("w", ExpectedVersion::NoStream, 2)).await;
        ok(s, request("v", ExpectedVersion::Exact(3), 3)).await;
        let before = s.tree_head().await.unwrap();
        hook(7, tamper);
        assert_verify_log_agrees(s).await;
        let report = tree::verify_tree(s).await.unwrap();
        if tamper == Tamper::Hash {
            assert!(report.is_intact(), "{:?}", report.first_fault);
            continue;
        }
        match report.first_fault {
            Some(TreeFault::LeafMismatch { position, .. }) => assert_eq!(position, 7, "{tamper:?}"),
            other => panic!("{tamper:?}: expected a leaf mismatch at 7, got {other:?}"),
        }
        assert_ne!(report.computed.root_hash, before.root_hash, "{tamper:?}");
    }
}

/// `verify_all` checks every ledger row against the log: commands whose events carry their
/// command id (as the engine writes them), commands whose events carry none, appends without
/// a command id and deduplicated retries all verify, with every row counted.
pub async fn verify_checks_that_the_ledger_covers_the_log<
    F: Fn() -> Fut,
    Fut: Future<Output = Harness>,
>(
    f: &F,
) {
    let h = f().await;
    let s = &*h.store;
    for i in 0..6u64 {
        let cmd = fresh_id();
        let mut req = request(&format!("l-{}", i % 2), ExpectedVersion::Any, 1 + i % 3);
        req.command_id = Some(cmd);
        if i % 2 == 0 {
            for e in &mut req.events {
                e.metadata.command_id = Some(cmd);
            }
        }
        ok(s, req.clone()).await;
        assert!(ok(s, req).await.deduplicated);
        ok(s, request("no-command", ExpectedVersion::Any, 1)).await;
    }
    let report = s.verify_all().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.ledger_rows_checked, 6);
    assert!(report.ledger.is_empty());
}
