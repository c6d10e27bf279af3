//! The log checks of `caseflow verify` on one SQLite store, for callgrind and wall time:
//! `cargo run --release -p caseflow-store --example verify_profile -- MODE N PATH`.
//!
//! Builds PATH once if it does not exist (N records: 20-event streams interleaved 64 at a
//! time, 5 events per append with its own command id, as the `tree_1m` bench lays its log
//! out), then opens it read-only and runs MODE once:
//! - `one-pass`: `EventStore::verify_log`, what `caseflow verify` runs;
//! - `two-walks`: `verify_all` then `verify_tree_with_prefix`, what it ran before;
//! - `build`: nothing (only build the store).

use std::time::Instant;

use caseflow_store::tree::{LogVerification, TreeReport};
use caseflow_store::{
    AppendRequest, EventStore, ExpectedVersion, Metadata, NewEvent, SqliteOptions, SqliteStore,
    VerifyReport,
};
use chrono::{TimeZone, Utc};
use uuid::Uuid;

const STREAM_LEN: u64 = 20;
const INTERLEAVE: u64 = 64;
const PER_APPEND: u64 = 5;

fn event(n: u64, command_id: Uuid) -> NewEvent {
    NewEvent {
        event_id: Uuid::from_u64_pair(0x0190_0000_0000_7000, 0x8000_0000_0000_0000 | n),
        event_type: "CaseReported".into(),
        schema_version: 1,
        payload: format!(
            "{{\"case_id\":\"0190a3b4-5c6d-7e8f-9a0b-{n:012x}\",\"channel\":\"hotline\",\
             \"kind\":\"complaint\",\"category\":\"land-use\",\"locality\":\"loc-zhongshan\",\
             \"village\":\"vil-wenhuagong\",\"due_at\":\"2026-03-01T09:00:00Z\",\"n\":{n}}}"
        )
        .into_bytes()
        .into(),
        metadata: Metadata {
            actor: "room-1/clerk".into(),
            command_id: Some(command_id),
            correlation_id: Some(Uuid::from_u64_pair(1, n)),
            causation_id: None,
        },
    }
}

/// One round: 64 streams of 20 events, appended 5 at a time, the streams of a round
/// committing together.
async fn round(store: &SqliteStore, round: u64, first: u64, records: u64) -> u64 {
    let mut n = first;
    for chunk in 0..STREAM_LEN / PER_APPEND {
        let mut appends = Vec::new();
        for s in 0..INTERLEAVE {
            if n >= records {
                break;
            }
            let command_id = Uuid::from_u64_pair(7, n);
            let events = (0..PER_APPEND).map(|i| event(n + i, command_id)).collect();
            n += PER_APPEND;
            appends.push(store.append(AppendRequest {
                stream_id: format!("case-{round}-{s}"),
                expected: ExpectedVersion::Exact(chunk * PER_APPEND),
                events,
                recorded_at: Utc.timestamp_opt(1_800_000_000, 0).unwrap(),
                command_id: Some(command_id),
            }));
        }
        for r in futures::future::join_all(appends).await {
            r.expect("append");
        }
    }
    n
}

async fn build(path: &std::path::Path, records: u64) {
    let store = SqliteStore::open(path, SqliteOptions::normal()).expect("open");
    let (mut n, mut r) = (0, 0);
    while n < records {
        n = round(&store, r, n, records).await;
        r += 1;
    }
}

fn summary(
    chains: &Result<VerifyReport, caseflow_store::StoreError>,
    tree: &Result<TreeReport, caseflow_store::StoreError>,
) -> String {
    match (chains, tree) {
        (Ok(c), Ok(t)) => format!(
            "{} events, {} streams, {} ledger rows, {} leaves; intact {}",
            c.events_checked,
            c.streams_checked,
            c.ledger_rows_checked,
            t.leaves_checked,
            c.is_intact() && t.is_intact()
        ),
        (c, t) => format!("chains {:?}, tree {:?}", c.as_ref().err(), t.as_ref().err()),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "one-pass".to_owned());
    let records: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let path = std::path::PathBuf::from(
        args.next()
            .unwrap_or_else(|| "/tmp/verify-profile.db".to_owned()),
    );
    if !path.exists() {
        let t = Instant::now();
        build(&path, records).await;
        eprintln!("built {records} records in {:.1?}", t.elapsed());
    }
    let store = SqliteStore::open_read_only(&path).expect("open read-only");
    let t = Instant::now();
    let checked = match mode.as_str() {
        "one-pass" => store.verify_log(None).await,
        "two-walks" => LogVerification::in_two_walks(&store, None).await,
        "build" => return,
        other => panic!("unknown mode {other}: one-pass, two-walks or build"),
    };
    let took = t.elapsed();
    let head = store.head_position().await.expect("head");
    println!(
        "{mode}: {} in {took:.2?} = {:.0} events/s",
        summary(&checked.chains, &checked.tree),
        head as f64 / took.as_secs_f64()
    );
}
