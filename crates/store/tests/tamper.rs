//! Tampering with a closed SQLite store from outside (plain SQL on the file, as an operator
//! with `sqlite3` could), one test per attack. Each attack is tried twice: as is, and by a
//! thorough attacker who also re-hashes the stream chains and rebuilds the whole Merkle tree
//! with this crate's own code. Without an anchor the chains and the tree must see every
//! attack of the first kind; with an anchor taken before the change, every attack of both
//! kinds must be detected (no stored data can forge the anchor's signed root).

use std::path::{Path, PathBuf};

use caseflow_store::hash::{HashInput, record_hash};
use caseflow_store::tree::{Frontier, LogVerification, TreeHead, anchor_findings, record_leaf};
use caseflow_store::{
    EventStore, ExpectedVersion, GENESIS_HASH, Metadata, SqliteOptions, SqliteStore,
    contract::request,
};
use rusqlite::{Connection, params};
use uuid::Uuid;

/// Streams in the log, in append order (interleaved on purpose): positions
/// a1..a2 = 1..2, b1..b3 = 3..5, a3..a4 = 6..7, c1..c3 = 8..10, a5 = 11, d1..d2 = 12..13.
const APPENDS: &[(&str, u64)] = &[
    ("case-a", 2),
    ("case-b", 3),
    ("case-a", 2),
    ("case-c", 3),
    ("case-a", 1),
    ("case-d", 2),
];

/// Builds the store, closes it and returns its path and the head an auditor kept.
async fn build(dir: &Path) -> (PathBuf, TreeHead) {
    let (path, head) = build_log(dir, APPENDS).await;
    assert_eq!(head.tree_size, 13);
    (path, head)
}

/// Builds a store of the given appends, closes it and returns its path and head.
async fn build_log(dir: &Path, appends: &[(&str, u64)]) -> (PathBuf, TreeHead) {
    let path = dir.join("store.db");
    let store = SqliteStore::open(&path, SqliteOptions::normal()).unwrap();
    for (i, (stream, n)) in appends.iter().enumerate() {
        let mut req = request(stream, ExpectedVersion::Any, *n);
        req.command_id = Some(Uuid::from_u128(0xC0DE_0000 + i as u128));
        for e in &mut req.events {
            e.metadata.command_id = req.command_id;
        }
        store.append(req).await.unwrap();
    }
    let head = store.tree_head().await.unwrap();
    drop(store);
    (path, head)
}

/// What the auditor sees.
#[derive(Debug)]
struct Seen {
    chains_hold: bool,
    tree_holds: bool,
    anchor_findings: Vec<String>,
}

/// What `verify` reads (`verify_log`, one pass of the log), after checking that it says
/// exactly what the two walks it replaces say.
async fn look(path: &Path, anchor: &TreeHead) -> Seen {
    let store = SqliteStore::open_read_only(path).unwrap();
    let prefix = Some(anchor.tree_size);
    let checked = store.verify_log(prefix).await;
    let walks = LogVerification::in_two_walks(&store, prefix).await;
    assert_same(&checked.chains, &walks.chains);
    assert_same(&checked.tree, &walks.tree);
    let chains = checked.chains.unwrap();
    let tree = checked.tree.unwrap();
    let anchor_findings = anchor_findings(&store, anchor, &tree).await;
    Seen {
        chains_hold: chains.is_intact(),
        tree_holds: tree.is_intact(),
        anchor_findings,
    }
}

/// The one-pass result and the two walks' agree, findings and errors alike.
fn assert_same<T: PartialEq + std::fmt::Debug>(
    one_pass: &Result<T, caseflow_store::StoreError>,
    walks: &Result<T, caseflow_store::StoreError>,
) {
    match (one_pass, walks) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "one pass and the two walks disagree"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("one pass gave {one_pass:?}, the two walks {walks:?}"),
    }
}

fn stream_key(conn: &Connection, stream: &str) -> i64 {
    conn.query_row(
        "SELECT stream_key FROM streams WHERE stream_id = ?1",
        [stream],
        |r| r.get(0),
    )
    .unwrap()
}

fn position_of(conn: &Connection, stream: &str, version: u64) -> i64 {
    conn.query_row(
        "SELECT position FROM events WHERE stream_key = ?1 AND version = ?2",
        params![stream_key(conn, stream), version as i64],
        |r| r.get(0),
    )
    .unwrap()
}

fn opt_uuid(bytes: Option<Vec<u8>>) -> Option<Uuid> {
    bytes.map(|b| Uuid::from_slice(&b).unwrap())
}

/// The attacker's cover-up of a stream: re-hash its chain from its fields (with its current
/// id and versions). Format 3 keeps no head row: a stream's head is its last record.
fn rehash_stream(conn: &Connection, stream: &str) {
    let key = stream_key(conn, stream);
    let mut rows = conn
        .prepare(
            "SELECT position, version, event_id, recorded_at_ns, event_type, schema_version, \
             payload, actor, command_id, correlation_id, causation_id \
             FROM events WHERE stream_key = ?1 ORDER BY version",
        )
        .unwrap();
    type Row = (
        i64,
        i64,
        Vec<u8>,
        i64,
        String,
        u32,
        Vec<u8>,
        String,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
    );
    let records: Vec<Row> = rows
        .query_map([key], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut prev = GENESIS_HASH;
    for (position, version, event_id, ns, ty, schema, payload, actor, cmd, corr, cause) in &records
    {
        let metadata = Metadata {
            actor: actor.clone(),
            command_id: opt_uuid(cmd.clone()),
            correlation_id: opt_uuid(corr.clone()),
            causation_id: opt_uuid(cause.clone()),
        };
        let hash = record_hash(
            &prev,
            &HashInput {
                stream_id: stream,
                version: *version as u64,
                event_id: Uuid::from_slice(event_id).unwrap(),
                recorded_at_ns: *ns,
                event_type: ty,
                schema_version: *schema,
                payload,
                metadata: (&metadata).into(),
            },
        );
        conn.execute(
            "UPDATE events SET prev_hash = ?2, hash = ?3 WHERE position = ?1",
            params![position, &prev[..], &hash[..]],
        )
        .unwrap();
        prev = hash;
    }
}

/// The attacker's cover-up of the tree: throw it away and build it again from the records
/// as they now are.
fn rebuild_tree(conn: &Connection) {
    conn.execute_batch("DELETE FROM tree; DELETE FROM tree_runs;")
        .unwrap();
    let rows: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT position, hash FROM events ORDER BY position")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut frontier = Frontier::new();
    for (position, hash) in rows {
        let hash: [u8; 32] = hash.try_into().unwrap();
        // One row per leaf of the open run: the leaf, then every node it completes; a
        // closed run of 64 keeps only the nodes from level 6 up (format 4).
        let (leaf, mut nodes) = (frontier.size() as i64, Vec::new());
        frontier.push(record_leaf(position as u64, &hash), |_, h| {
            nodes.extend_from_slice(&h)
        });
        if leaf % 64 == 63 {
            conn.execute(
                "INSERT INTO tree_runs (run, nodes) VALUES (?1, ?2)",
                params![leaf / 64, &nodes[32 * 6..]],
            )
            .unwrap();
            conn.execute("DELETE FROM tree WHERE leaf >= ?1", [leaf - 63])
                .unwrap();
        } else {
            conn.execute(
                "INSERT INTO tree (leaf, nodes) VALUES (?1, ?2)",
                params![leaf, nodes],
            )
            .unwrap();
        }
    }
}

/// Closes the gap left by deleted positions: every later record moves down.
fn renumber_positions(conn: &Connection) {
    let positions: Vec<i64> = conn
        .prepare("SELECT position FROM events ORDER BY position")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (i, p) in positions.iter().enumerate() {
        conn.execute(
            "UPDATE events SET position = ?2 WHERE position = ?1",
            params![p, -(i as i64 + 1)],
        )
        .unwrap();
    }
    conn.execute("UPDATE events SET position = -position", [])
        .unwrap();
}

fn swap_positions(conn: &Connection, p: i64, q: i64) {
    conn.execute("UPDATE events SET position = -1 WHERE position = ?1", [p])
        .unwrap();
    conn.execute(
        "UPDATE events SET position = ?1 WHERE position = ?2",
        [p, q],
    )
    .unwrap();
    conn.execute("UPDATE events SET position = ?1 WHERE position = -1", [q])
        .unwrap();
}

/// Runs one attack both ways and checks what each auditor sees. `cover_up` is what a
/// thorough attacker does after the attack (re-hash chains); the tree is then rebuilt too.
/// After a cover-up the stored data alone may or may not show the attack (the ledger's
/// positions often still do); the anchor always must.
async fn attack(name: &str, tamper: impl Fn(&Connection), cover_up: impl Fn(&Connection)) {
    for thorough in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (path, anchor) = build(dir.path()).await;
        {
            let conn = Connection::open(&path).unwrap();
            tamper(&conn);
            if thorough {
                cover_up(&conn);
                rebuild_tree(&conn);
            }
        }
        let seen = look(&path, &anchor).await;
        let without_anchor = !seen.chains_hold || !seen.tree_holds;
        if !thorough {
            assert!(without_anchor, "{name} passed without an anchor: {seen:?}");
        }
        assert!(
            !seen.anchor_findings.is_empty(),
            "{name} (thorough: {thorough}) passed the anchor check: {seen:?}"
        );
    }
}

fn nothing(_: &Connection) {}

#[tokio::test]
async fn untouched_store_holds_with_and_without_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let (path, anchor) = build(dir.path()).await;
    let seen = look(&path, &anchor).await;
    assert!(
        seen.chains_hold && seen.tree_holds && seen.anchor_findings.is_empty(),
        "{seen:?}"
    );
    // Appending after the anchor still extends it.
    let store = SqliteStore::open(&path, SqliteOptions::normal()).unwrap();
    store
        .append(request("case-e", ExpectedVersion::NoStream, 3))
        .await
        .unwrap();
    drop(store);
    let seen = look(&path, &anchor).await;
    assert!(
        seen.chains_hold && seen.tree_holds && seen.anchor_findings.is_empty(),
        "{seen:?}"
    );
}

#[tokio::test]
async fn payload_byte_changed() {
    attack(
        "payload byte changed",
        |c| {
            c.execute("UPDATE events SET payload = CAST(replace(CAST(payload AS TEXT), '\"n\":1', '\"n\":7') AS BLOB) WHERE position = 4", [])
                .unwrap();
        },
        |c| rehash_stream(c, "case-b"),
    )
    .await;
}

#[tokio::test]
async fn metadata_changed() {
    attack(
        "actor changed",
        |c| {
            c.execute(
                "UPDATE events SET actor = 'room-2/leader' WHERE position = 9",
                [],
            )
            .unwrap();
        },
        |c| rehash_stream(c, "case-c"),
    )
    .await;
}

#[tokio::test]
async fn recorded_time_changed() {
    attack(
        "recorded time changed",
        |c| {
            c.execute("UPDATE events SET recorded_at_ns = recorded_at_ns - 86400000000000 WHERE position = 6", [])
                .unwrap();
        },
        |c| rehash_stream(c, "case-a"),
    )
    .await;
}

#[tokio::test]
async fn event_type_changed() {
    attack(
        "event type changed",
        |c| {
            c.execute(
                "UPDATE events SET event_type = 'CaseClosed' WHERE position = 2",
                [],
            )
            .unwrap();
        },
        |c| rehash_stream(c, "case-a"),
    )
    .await;
}

#[tokio::test]
async fn middle_event_deleted() {
    attack(
        "middle event deleted",
        |c| {
            let p = position_of(c, "case-a", 3);
            c.execute("DELETE FROM events WHERE position = ?1", [p])
                .unwrap();
        },
        |c| {
            // Versions after the hole move down, chains are re-hashed, positions closed up.
            let key = stream_key(c, "case-a");
            c.execute(
                "UPDATE events SET version = version - 1 WHERE stream_key = ?1 AND version > 3",
                [key],
            )
            .unwrap();
            rehash_stream(c, "case-a");
            renumber_positions(c);
        },
    )
    .await;
}

#[tokio::test]
async fn tail_truncated_with_head_fixed() {
    attack(
        "tail truncated with the stream head fixed",
        |c| {
            c.execute("DELETE FROM events WHERE position = 13", [])
                .unwrap();
            rehash_stream(c, "case-d");
        },
        nothing,
    )
    .await;
}

#[tokio::test]
async fn whole_case_deleted() {
    attack(
        "whole case deleted (events, ledger rows, stream row)",
        |c| {
            let key = stream_key(c, "case-b");
            c.execute("DELETE FROM events WHERE stream_key = ?1", [key])
                .unwrap();
            c.execute("DELETE FROM commands WHERE stream_key = ?1", [key])
                .unwrap();
            c.execute("DELETE FROM streams WHERE stream_key = ?1", [key])
                .unwrap();
        },
        renumber_positions,
    )
    .await;
}

#[tokio::test]
async fn positions_swapped_within_a_stream() {
    attack(
        "positions swapped within a stream",
        |c| swap_positions(c, 1, 2),
        nothing,
    )
    .await;
}

#[tokio::test]
async fn positions_swapped_across_streams() {
    attack(
        "positions swapped across streams",
        |c| swap_positions(c, 7, 8),
        nothing,
    )
    .await;
}

#[tokio::test]
async fn stream_renamed() {
    attack(
        "stream renamed",
        |c| {
            c.execute(
                "UPDATE streams SET stream_id = 'case-z' WHERE stream_id = 'case-c'",
                [],
            )
            .unwrap();
        },
        |c| rehash_stream(c, "case-z"),
    )
    .await;
}

#[tokio::test]
async fn last_event_rewritten_with_recomputed_hashes() {
    attack(
        "last event of a stream rewritten, its hash and the head recomputed",
        |c| {
            c.execute(
                "UPDATE events SET payload = CAST('{\"n\":42}' AS BLOB) WHERE position = 10",
                [],
            )
            .unwrap();
            rehash_stream(c, "case-c");
        },
        nothing,
    )
    .await;
}

#[tokio::test]
async fn middle_event_rewritten_with_the_tail_rehashed() {
    attack(
        "middle event rewritten, the rest of its stream re-hashed",
        |c| {
            c.execute(
                "UPDATE events SET payload = CAST('{\"n\":42}' AS BLOB) WHERE position = 6",
                [],
            )
            .unwrap();
            rehash_stream(c, "case-a");
        },
        nothing,
    )
    .await;
}

/// The thorough attacker's cover-up of any edit: versions made 1, 2, ... again in every
/// stream, every chain re-hashed, empty streams dropped, positions closed up, and the whole
/// tree rebuilt.
fn cover_up_everything(conn: &Connection) {
    let streams: Vec<(i64, String)> = conn
        .prepare("SELECT stream_key, stream_id FROM streams")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (key, id) in streams {
        let versions: Vec<i64> = conn
            .prepare("SELECT version FROM events WHERE stream_key = ?1 ORDER BY version")
            .unwrap()
            .query_map([key], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        if versions.is_empty() {
            conn.execute("DELETE FROM streams WHERE stream_key = ?1", [key])
                .unwrap();
            continue;
        }
        for (i, v) in versions.iter().enumerate() {
            conn.execute(
                "UPDATE events SET version = ?3 WHERE stream_key = ?1 AND version = ?2",
                params![key, v, -(i as i64 + 1)],
            )
            .unwrap();
        }
        conn.execute(
            "UPDATE events SET version = -version WHERE stream_key = ?1",
            [key],
        )
        .unwrap();
        rehash_stream(conn, &id);
    }
    renumber_positions(conn);
    rebuild_tree(conn);
}

/// One random edit of a log of `size` records (indexes are taken modulo the size).
#[derive(Debug, Clone)]
enum Edit {
    Payload(u64),
    Actor(u64),
    RecordedAt(u64),
    EventType(u64),
    EventId(u64),
    Delete(u64),
    Swap(u64, u64),
    RenameStream(u64),
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    let i = 0..1000u64;
    prop_oneof![
        i.clone().prop_map(Edit::Payload),
        i.clone().prop_map(Edit::Actor),
        i.clone().prop_map(Edit::RecordedAt),
        i.clone().prop_map(Edit::EventType),
        i.clone().prop_map(Edit::EventId),
        i.clone().prop_map(Edit::Delete),
        (i.clone(), i.clone()).prop_map(|(a, b)| Edit::Swap(a, b)),
        i.prop_map(Edit::RenameStream),
    ]
}

/// Applies the edit; false when it changes nothing (a swap of a record with itself).
fn apply(conn: &Connection, edit: &Edit, size: u64) -> bool {
    let at = |i: u64| (i % size + 1) as i64;
    let exec = |sql: &str, p: i64| {
        conn.execute(sql, [p]).unwrap();
    };
    match *edit {
        Edit::Payload(i) => exec(
            "UPDATE events SET payload = CAST('{\"edited\":true}' AS BLOB) WHERE position = ?1",
            at(i),
        ),
        Edit::Actor(i) => exec(
            "UPDATE events SET actor = actor || '!' WHERE position = ?1",
            at(i),
        ),
        Edit::RecordedAt(i) => exec(
            "UPDATE events SET recorded_at_ns = recorded_at_ns + 1 WHERE position = ?1",
            at(i),
        ),
        Edit::EventType(i) => exec(
            "UPDATE events SET event_type = event_type || 'X' WHERE position = ?1",
            at(i),
        ),
        Edit::EventId(i) => exec(
            "UPDATE events SET event_id = randomblob(16) WHERE position = ?1",
            at(i),
        ),
        Edit::Delete(i) => exec("DELETE FROM events WHERE position = ?1", at(i)),
        Edit::Swap(a, b) => {
            if at(a) == at(b) {
                return false;
            }
            swap_positions(conn, at(a), at(b));
        }
        Edit::RenameStream(i) => exec(
            "UPDATE streams SET stream_id = stream_id || '-renamed' WHERE stream_key = \
             (SELECT stream_key FROM events WHERE position = ?1)",
            at(i),
        ),
    }
    true
}

use proptest::prelude::*;

const STREAMS: [&str; 4] = ["case-p", "case-q", "case-r", "case-s"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// Random logs, one random edit after an anchor was taken, with or without the
    /// thorough cover-up: the anchor check always fails. With no edit, everything holds.
    #[test]
    fn any_single_edit_after_an_anchor_is_detected(
        appends in proptest::collection::vec((0..4usize, 1..4u64), 1..8),
        edit in proptest::option::of(edit_strategy()),
        thorough in any::<bool>(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let appends: Vec<(&str, u64)> = appends.iter().map(|&(s, n)| (STREAMS[s], n)).collect();
            let (path, anchor) = build_log(dir.path(), &appends).await;
            let edited = {
                let conn = Connection::open(&path).unwrap();
                let edited = edit.as_ref().is_some_and(|e| apply(&conn, e, anchor.tree_size));
                if edited && thorough {
                    cover_up_everything(&conn);
                }
                edited
            };
            let seen = look(&path, &anchor).await;
            if edited {
                assert!(!seen.anchor_findings.is_empty(), "{edit:?} (thorough: {thorough}) passed: {seen:?}");
                if !thorough {
                    assert!(!seen.chains_hold || !seen.tree_holds, "{edit:?} passed without an anchor: {seen:?}");
                }
            } else {
                assert!(seen.chains_hold && seen.tree_holds && seen.anchor_findings.is_empty(), "{seen:?}");
            }
        });
    }
}

/// A log of 150 records: two closed runs of 64 leaves (format 4 keeps only the nodes above
/// them, recomputing what lies below from the records) and 22 leaves of an open run.
const LONG_APPENDS: &[(&str, u64)] = &[
    ("case-a", 40),
    ("case-b", 50),
    ("case-a", 30),
    ("case-c", 30),
];

/// What the auditor of the long log sees: whether the stored data alone shows the attack
/// and whether the anchor does. A tree check that cannot run (a closed run's record gone)
/// is a finding in itself; the one pass and the two walks must still agree.
async fn look_long(path: &Path, anchor: &TreeHead) -> (bool, bool) {
    let store = SqliteStore::open_read_only(path).unwrap();
    let prefix = Some(anchor.tree_size);
    let checked = store.verify_log(prefix).await;
    let walks = LogVerification::in_two_walks(&store, prefix).await;
    assert_same(&checked.chains, &walks.chains);
    assert_same(&checked.tree, &walks.tree);
    let chains_hold = checked.chains.as_ref().is_ok_and(|c| c.is_intact());
    match checked.tree {
        Ok(tree) => {
            let findings = anchor_findings(&store, anchor, &tree).await;
            (!chains_hold || !tree.is_intact(), !findings.is_empty())
        }
        Err(_) => (true, true),
    }
}

/// [`attack`] on the long log.
async fn attack_long(name: &str, tamper: impl Fn(&Connection), cover_up: impl Fn(&Connection)) {
    for thorough in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (path, anchor) = build_log(dir.path(), LONG_APPENDS).await;
        assert_eq!(anchor.tree_size, 150);
        {
            let conn = Connection::open(&path).unwrap();
            tamper(&conn);
            if thorough {
                cover_up(&conn);
                rebuild_tree(&conn);
            }
        }
        let (without_anchor, with_anchor) = look_long(&path, &anchor).await;
        if !thorough {
            assert!(without_anchor, "{name} passed without an anchor");
        }
        assert!(
            with_anchor,
            "{name} (thorough: {thorough}) passed the anchor check"
        );
    }
}

#[tokio::test]
async fn long_log_untouched_holds_and_rebuilding_its_tree_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, anchor) = build_log(dir.path(), LONG_APPENDS).await;
    assert_eq!(look_long(&path, &anchor).await, (false, false));
    rebuild_tree(&Connection::open(&path).unwrap());
    assert_eq!(look_long(&path, &anchor).await, (false, false));
}

#[tokio::test]
async fn record_in_a_closed_run_rewritten_with_its_stream_rehashed() {
    attack_long(
        "record of a closed run rewritten, its stream re-hashed",
        |c| {
            c.execute(
                "UPDATE events SET payload = CAST('{\"n\":42}' AS BLOB) WHERE position = 10",
                [],
            )
            .unwrap();
            rehash_stream(c, "case-a");
        },
        nothing,
    )
    .await;
}

#[tokio::test]
async fn tail_truncated_into_a_closed_run() {
    attack_long(
        "the last 31 records removed, into the second closed run",
        |c| {
            c.execute("DELETE FROM events WHERE position > 119", [])
                .unwrap();
        },
        nothing,
    )
    .await;
}

#[tokio::test]
async fn record_of_a_closed_run_deleted() {
    attack_long(
        "a record of the first closed run deleted",
        |c| {
            c.execute("DELETE FROM events WHERE position = 30", [])
                .unwrap();
        },
        cover_up_everything,
    )
    .await;
}

#[tokio::test]
async fn closed_run_root_changed() {
    // Given the long log, when the stored root of its second closed run is zeroed
    let dir = tempfile::tempdir().unwrap();
    let (path, anchor) = build_log(dir.path(), LONG_APPENDS).await;
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE tree_runs SET nodes = zeroblob(length(nodes)) WHERE run = 1",
            [],
        )
        .unwrap();
    // Then the tree no longer holds (the records still give the anchored root)
    assert_eq!(look_long(&path, &anchor).await, (true, false));
}
