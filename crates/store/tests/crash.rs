//! Crash safety: a child process appends continuously and reports every acknowledged
//! append on stdout; the parent SIGKILLs it at random moments, reopens the store and checks
//! that every acknowledged event is there and intact, that no partial append is visible,
//! that positions are gap-free and that the hash chains verify.
//!
//! This test binary has its own `main` (`harness = false`): run with the environment
//! variable `CASEFLOW_CRASH_CHILD=<db path>` it is the child writer, otherwise the parent.
//! `CASEFLOW_CRASH_KILLS` sets the number of kills (default 50), `CASEFLOW_CRASH_SEED` the
//! random seed (default fixed, printed).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use caseflow_store::{
    AppendRequest, EventStore, ExpectedVersion, Metadata, NewEvent, SqliteOptions, SqliteStore,
};
use chrono::{TimeZone, Utc};
use uuid::Uuid;

const CHILD_ENV: &str = "CASEFLOW_CRASH_CHILD";
const RUN_ENV: &str = "CASEFLOW_CRASH_RUN";
const EVENTS_PER_APPEND: u64 = 3;
const WRITER_TASKS: u64 = 6;

fn main() {
    match std::env::var(CHILD_ENV) {
        Ok(path) => child(Path::new(&path)),
        Err(_) => parent(),
    }
}

fn payload(run: u64, task: u64, seq: u64, j: u64) -> Vec<u8> {
    format!("{{\"run\":{run},\"task\":{task},\"seq\":{seq},\"j\":{j}}}").into_bytes()
}

fn event_id(run: u64, task: u64, seq: u64, j: u64) -> Uuid {
    Uuid::from_u64_pair(
        0x0190_0000_0000_7000 | run,
        (task << 48) | (seq << 8) | j | 0x8000_0000_0000_0000,
    )
}

fn command_id(run: u64, task: u64, seq: u64) -> Uuid {
    Uuid::from_u64_pair(
        0x0290_0000_0000_7000 | run,
        (task << 48) | (seq << 8) | 0x8000_0000_0000_0000,
    )
}

/// The child: several tasks append concurrently (so group commit batches them) forever.
fn child(path: &Path) {
    let run: u64 = std::env::var(RUN_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let store =
            Arc::new(SqliteStore::open(path, SqliteOptions::default()).expect("child open"));
        let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
        let mut joins = Vec::new();
        for task in 0..WRITER_TASKS {
            let store = store.clone();
            let out = out.clone();
            joins.push(tokio::spawn(async move {
                let stream = format!("writer-{task}");
                for seq in 0.. {
                    let req = AppendRequest {
                        stream_id: stream.clone(),
                        expected: ExpectedVersion::Any,
                        events: (0..EVENTS_PER_APPEND)
                            .map(|j| NewEvent {
                                event_id: event_id(run, task, seq, j),
                                event_type: "Ticked".into(),
                                schema_version: 1,
                                payload: payload(run, task, seq, j).into(),
                                metadata: Metadata {
                                    actor: format!("task-{task}"),
                                    command_id: Some(command_id(run, task, seq)),
                                    correlation_id: None,
                                    causation_id: None,
                                },
                            })
                            .collect(),
                        recorded_at: Utc.timestamp_opt(1_800_000_000 + seq as i64, 0).unwrap(),
                        command_id: Some(command_id(run, task, seq)),
                    };
                    let o = store.append(req).await.expect("child append");
                    let mut out = out.lock().unwrap();
                    writeln!(
                        out,
                        "ACK {stream} {} {} {run} {task} {seq}",
                        o.first_version, o.first_position
                    )
                    .and_then(|_| out.flush())
                    .expect("stdout");
                }
            }));
        }
        for j in joins {
            j.await.expect("writer task");
        }
    });
}

struct Ack {
    stream: String,
    first_version: u64,
    first_position: u64,
    run: u64,
    task: u64,
    seq: u64,
}

fn parse_ack(line: &str) -> Option<Ack> {
    let mut it = line.strip_prefix("ACK ")?.split(' ');
    Some(Ack {
        stream: it.next()?.to_owned(),
        first_version: it.next()?.parse().ok()?,
        first_position: it.next()?.parse().ok()?,
        run: it.next()?.parse().ok()?,
        task: it.next()?.parse().ok()?,
        seq: it.next()?.parse().ok()?,
    })
}

/// SplitMix64: a tiny deterministic generator for kill moments.
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn parent() {
    let kills: u64 = std::env::var("CASEFLOW_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("CASEFLOW_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_CA5E);
    println!("crash test: {kills} kills, seed {seed}");
    let mut rng = SplitMix(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("crash.db");
    let exe = std::env::current_exe().expect("current exe");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut acked: Vec<Ack> = Vec::new();
    let mut total_acks_seen = 0u64;
    for run in 0..kills {
        // Kill after a random number of acknowledgements; 0 kills during open (and, on the
        // first run, during the creation of the file).
        let kill_after = match rng.next() % 10 {
            0 => 0,
            1..=6 => rng.next() % 30,
            _ => rng.next() % 200,
        };
        let mut child = Command::new(&exe)
            .env(CHILD_ENV, &path)
            .env(RUN_ENV, run.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut got = 0;
        while got < kill_after {
            match lines.next() {
                Some(Ok(line)) => {
                    let ack = parse_ack(&line).unwrap_or_else(|| panic!("bad child line {line:?}"));
                    acked.push(ack);
                    got += 1;
                }
                _ => {
                    let status = child.wait().unwrap();
                    let mut err = String::new();
                    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).ok();
                    panic!("child exited on its own ({status}) in run {run}: {err}");
                }
            }
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        // Lines already written before the kill are acknowledged appends too.
        for line in lines.map_while(Result::ok) {
            if let Some(ack) = parse_ack(&line) {
                acked.push(ack);
            }
        }
        total_acks_seen = acked.len() as u64;
        rt.block_on(check(&path, &acked, run));
    }
    println!("crash test passed: {kills} kills, {total_acks_seen} acknowledged appends all intact");
}

async fn check(path: &Path, acked: &[Ack], run: u64) {
    if !path.exists() {
        assert!(acked.is_empty(), "acknowledged appends but no file");
        return;
    }
    let store = SqliteStore::open(path, SqliteOptions::default())
        .unwrap_or_else(|e| panic!("reopen after kill {run} failed: {e}"));
    let report = store.verify_all().await.expect("verify");
    assert!(
        report.is_intact(),
        "after kill {run}: {:?}",
        report.first_broken
    );
    // The Merkle tree is committed with the records: never a leaf more or less.
    let tree = caseflow_store::tree::verify_tree(&store)
        .await
        .expect("verify tree");
    assert!(tree.is_intact(), "after kill {run}: {:?}", tree.first_fault);
    // Positions gap-free, every stream a whole number of appends, appends not torn.
    let log = store.read_all(1, usize::MAX).await.unwrap();
    let head = store.head_position().await.unwrap();
    assert_eq!(
        log.len() as u64,
        head,
        "after kill {run}: positions are not gap-free"
    );
    let mut versions: BTreeMap<&str, u64> = BTreeMap::new();
    for (i, e) in log.iter().enumerate() {
        assert_eq!(e.position, i as u64 + 1);
        let v = versions.entry(&e.stream_id).or_default();
        *v += 1;
        assert_eq!(e.version, *v);
    }
    for (stream, v) in &versions {
        assert_eq!(
            v % EVENTS_PER_APPEND,
            0,
            "after kill {run}: partial append on {stream} (version {v})"
        );
    }
    for e in &log {
        let body: serde_json::Value = serde_json::from_slice(&e.payload).expect("payload is JSON");
        let j = (e.version - 1) % EVENTS_PER_APPEND;
        assert_eq!(
            body["j"].as_u64(),
            Some(j),
            "after kill {run}: events of an append out of place"
        );
    }
    // Every acknowledged append is there, intact, where the acknowledgement said.
    for ack in acked {
        let got = store
            .read_stream(&ack.stream, ack.first_version, EVENTS_PER_APPEND as usize)
            .await
            .unwrap();
        assert_eq!(
            got.len() as u64,
            EVENTS_PER_APPEND,
            "after kill {run}: acknowledged append lost"
        );
        for (j, e) in got.iter().enumerate() {
            let j = j as u64;
            assert_eq!(e.position, ack.first_position + j);
            assert_eq!(e.event_id, event_id(ack.run, ack.task, ack.seq, j));
            assert_eq!(e.payload, payload(ack.run, ack.task, ack.seq, j));
        }
        let ledger = store
            .command_outcome(command_id(ack.run, ack.task, ack.seq))
            .await
            .unwrap();
        assert_eq!(
            ledger.map(|o| o.first_position),
            Some(ack.first_position),
            "ledger entry lost"
        );
    }
}
