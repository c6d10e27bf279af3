//! Live PostgreSQL load and crash tests, several processes on one schema:
//!
//! 1. **No skip**: 4 writer processes × 16 concurrent tasks append for a bounded time while
//!    a subscriber in a fifth process follows the global log. Every acknowledged event must
//!    be delivered exactly once, in position order, with no position missing.
//! 2. **Kill -9**: a writer process (16 tasks, command ids) is SIGKILLed at random moments,
//!    at least 50 times; afterwards every acknowledged event is at its acknowledged position
//!    and the whole store verifies.
//!
//! This binary has its own `main` (`harness = false`). Without the `postgres` feature it
//! says that it did not run and why; with it, it needs `CASEFLOW_TEST_POSTGRES` and fails
//! loudly without it. `CASEFLOW_PG_LOAD_SECS` (default 8) bounds the no-skip run,
//! `CASEFLOW_PG_KILLS` (default 50) sets the kills, `CASEFLOW_PG_SEED` the random seed.

#[cfg(not(feature = "postgres"))]
fn main() {
    println!(
        "postgres_load: NOT RUN. The PostgreSQL load and kill -9 tests need the `postgres` \
         feature and a server: CASEFLOW_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test \
         cargo test -p caseflow-store --features postgres (CI runs them, see .ci/run)."
    );
}

#[cfg(feature = "postgres")]
fn main() {
    live::main();
}

#[cfg(feature = "postgres")]
mod live {
    use std::collections::{HashMap, HashSet};
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Child, Command, Stdio};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use caseflow_store::postgres::PostgresStore;
    use caseflow_store::postgres::testing::TempSchema;
    use caseflow_store::tree::verify_tree;
    use caseflow_store::{AppendRequest, EventStore, ExpectedVersion, Metadata, NewEvent};
    use chrono::{TimeZone, Utc};
    use uuid::Uuid;

    const ROLE_ENV: &str = "CASEFLOW_PG_LOAD_ROLE";
    const URL_ENV: &str = "CASEFLOW_PG_LOAD_URL";
    const WRITER_PROCESSES: u64 = 4;
    const TASKS_PER_PROCESS: u64 = 16;
    const END_TYPE: &str = "LoadEnded";

    pub fn main() {
        match std::env::var(ROLE_ENV).as_deref() {
            Ok("writer") => writer(false),
            Ok("crash-writer") => writer(true),
            Ok("subscriber") => subscriber(),
            _ => parent(),
        }
    }

    fn env_u64(name: &str, default: u64) -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    }

    fn child_url() -> String {
        std::env::var(URL_ENV).expect("the parent passes the store URL")
    }

    /// A writer process: `TASKS_PER_PROCESS` tasks append one event at a time until the
    /// deadline (or for ever, when it is to be killed), printing `ack <event id> <position>`
    /// for every acknowledged append.
    fn writer(until_killed: bool) {
        let id = env_u64("CASEFLOW_PG_LOAD_ID", 0);
        let seconds = env_u64("CASEFLOW_PG_LOAD_SECS", 8);
        runtime().block_on(async move {
            let store = Arc::new(
                PostgresStore::connect_str(&child_url())
                    .await
                    .expect("open"),
            );
            let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let mut tasks = Vec::new();
            for task in 0..TASKS_PER_PROCESS {
                let store = Arc::clone(&store);
                let out = Arc::clone(&out);
                tasks.push(tokio::spawn(async move {
                    let mut seq = 0u64;
                    while until_killed || Instant::now() < deadline {
                        seq += 1;
                        let request = one_event(id, task, seq);
                        let event_id = request.events[0].event_id;
                        match store.append(request).await {
                            Ok(outcome) => {
                                let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
                                let _ = writeln!(out, "ack {event_id} {}", outcome.first_position);
                                let _ = out.flush();
                            }
                            Err(err) if err.is_retryable() => {}
                            Err(err) => panic!("append failed: {err}"),
                        }
                    }
                }));
            }
            for task in tasks {
                task.await.expect("writer task");
            }
        });
    }

    fn one_event(process: u64, task: u64, seq: u64) -> AppendRequest {
        let event_id = Uuid::from_u64_pair(
            0x0190_0000_0000_7000 | (process << 16) | task,
            0x8000_0000_0000_0000 | seq,
        );
        AppendRequest {
            stream_id: format!("load-{process}-{task}-{}", seq % 4),
            expected: ExpectedVersion::Any,
            events: vec![NewEvent {
                event_id,
                event_type: "LoadTick".into(),
                schema_version: 1,
                payload: format!("{{\"p\":{process},\"t\":{task},\"s\":{seq}}}")
                    .into_bytes()
                    .into(),
                metadata: Metadata {
                    actor: format!("load/{process}"),
                    command_id: Some(Uuid::from_u64_pair(
                        0x0290_0000_0000_7000 | (process << 16) | task,
                        0x8000_0000_0000_0000 | seq,
                    )),
                    ..Metadata::default()
                },
            }],
            recorded_at: Utc.timestamp_opt(1_767_225_600 + seq as i64, 0).unwrap(),
            command_id: Some(Uuid::from_u64_pair(
                0x0290_0000_0000_7000 | (process << 16) | task,
                0x8000_0000_0000_0000 | seq,
            )),
        }
    }

    /// The subscriber process: follows the log from position 1 and prints
    /// `got <event id> <position>` for each record until the end marker arrives. It fails at
    /// once if a position is out of order or missing.
    fn subscriber() {
        runtime().block_on(async {
            let store = PostgresStore::connect_str(&child_url())
                .await
                .expect("open");
            let mut subscription = store.subscribe(1).await.expect("subscribe");
            let mut out = std::io::BufWriter::new(std::io::stdout());
            println!("ready");
            let mut expected = 1u64;
            while let Some(record) = subscription.next().await {
                let record = record.expect("subscription error");
                assert_eq!(
                    record.position, expected,
                    "positions are delivered in order"
                );
                expected += 1;
                if record.event_type == END_TYPE {
                    break;
                }
                writeln!(out, "got {} {}", record.event_id, record.position).expect("stdout");
            }
            out.flush().expect("stdout");
        });
    }

    fn spawn(role: &str, url: &str, extra: &[(&str, String)]) -> Child {
        let mut command = Command::new(std::env::current_exe().expect("own path"));
        command
            .env(ROLE_ENV, role)
            .env(URL_ENV, url)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in extra {
            command.env(key, value);
        }
        command.spawn().expect("spawn child")
    }

    fn parent() {
        let schema = TempSchema::new();
        let url = schema.url("&poll_ms=200");
        let rt = runtime();
        let store = rt.block_on(async {
            PostgresStore::connect_str(&url)
                .await
                .expect("open the test store")
        });
        no_skip(&rt, &store, &url);
        drop(store);
        let crash_schema = TempSchema::new();
        kill_nine(&rt, &crash_schema.url("&poll_ms=200"));
        let restart_schema = TempSchema::new();
        server_restart(
            &rt,
            &restart_schema.url("&poll_ms=100&connect_timeout_ms=2000"),
        );
        println!("postgres_load: all checks passed");
    }

    fn no_skip(rt: &tokio::runtime::Runtime, store: &PostgresStore, url: &str) {
        let seconds = env_u64("CASEFLOW_PG_LOAD_SECS", 8);
        let mut subscriber = spawn("subscriber", url, &[]);
        // Wait until the subscriber is following before the writers start.
        let stdout = subscriber.stdout.take().expect("piped");
        let mut reader = BufReader::new(stdout);
        let mut first = String::new();
        reader.read_line(&mut first).expect("subscriber says ready");
        assert_eq!(first.trim(), "ready", "subscriber started");
        let started = Instant::now();
        let mut writers: Vec<Child> = (0..WRITER_PROCESSES)
            .map(|id| {
                spawn(
                    "writer",
                    url,
                    &[
                        ("CASEFLOW_PG_LOAD_ID", id.to_string()),
                        ("CASEFLOW_PG_LOAD_SECS", seconds.to_string()),
                    ],
                )
            })
            .collect();
        let readers: Vec<_> = writers
            .iter_mut()
            .map(|w| {
                let stdout = w.stdout.take().expect("piped");
                std::thread::spawn(move || {
                    BufReader::new(stdout)
                        .lines()
                        .map_while(Result::ok)
                        .filter_map(|line| {
                            let mut parts = line.split(' ');
                            (parts.next()? == "ack").then_some(())?;
                            Some((
                                parts.next()?.parse::<Uuid>().ok()?,
                                parts.next()?.parse::<u64>().ok()?,
                            ))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut acked = Vec::new();
        for (writer, reader) in writers.iter_mut().zip(readers) {
            acked.extend(reader.join().expect("ack reader"));
            assert!(writer.wait().expect("writer").success(), "a writer failed");
        }
        let elapsed = started.elapsed();
        // The end marker: the subscriber stops when it arrives.
        rt.block_on(async {
            store
                .append(AppendRequest {
                    stream_id: "load-end".into(),
                    expected: ExpectedVersion::NoStream,
                    events: vec![NewEvent {
                        event_id: Uuid::from_u64_pair(0x0390_0000_0000_7000, 0x8000_0000_0000_0001),
                        event_type: END_TYPE.into(),
                        schema_version: 1,
                        payload: b"{}".to_vec().into(),
                        metadata: Metadata::default(),
                    }],
                    recorded_at: Utc.timestamp_opt(1_767_225_600, 0).unwrap(),
                    command_id: None,
                })
                .await
                .expect("end marker")
        });
        let delivered: Vec<(Uuid, u64)> = reader
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| {
                let mut parts = line.split(' ');
                (parts.next()? == "got").then_some(())?;
                Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
            })
            .collect();
        assert!(
            subscriber.wait().expect("subscriber").success(),
            "the subscriber failed"
        );
        let head = rt.block_on(store.head_position()).expect("head");
        check_delivery(&acked, &delivered, head);
        let report = rt.block_on(store.verify_all()).expect("verify");
        assert!(report.is_intact(), "verify: {report:?}");
        let tree = rt.block_on(verify_tree(store)).expect("verify the tree");
        assert!(
            tree.first_fault.is_none(),
            "the Merkle tree covers the log: {tree:?}"
        );
        assert_eq!(tree.leaves_checked, head, "one leaf per record");
        println!(
            "no-skip: {} processes x {} writers, {} acknowledged events in {:.1} s ({:.0} events/s), \
             all {} delivered exactly once in position order",
            WRITER_PROCESSES,
            TASKS_PER_PROCESS,
            acked.len(),
            elapsed.as_secs_f64(),
            acked.len() as f64 / elapsed.as_secs_f64(),
            delivered.len()
        );
    }

    fn check_delivery(acked: &[(Uuid, u64)], delivered: &[(Uuid, u64)], head: u64) {
        assert!(!acked.is_empty(), "the writers acknowledged nothing");
        for (i, (_, position)) in delivered.iter().enumerate() {
            assert_eq!(
                *position,
                i as u64 + 1,
                "delivered positions are 1, 2, 3, ..."
            );
        }
        // Everything but the end marker was delivered.
        assert_eq!(
            delivered.len() as u64 + 1,
            head,
            "every committed record was delivered"
        );
        let at: HashMap<Uuid, u64> = delivered.iter().copied().collect();
        assert_eq!(at.len(), delivered.len(), "no record was delivered twice");
        for (id, position) in acked {
            assert_eq!(
                at.get(id),
                Some(position),
                "acknowledged event {id} at {position} was delivered there"
            );
        }
    }

    /// A tiny deterministic generator for kill delays (no dependency for one number).
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self, below: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % below.max(1)
        }
    }

    fn kill_nine(rt: &tokio::runtime::Runtime, url: &str) {
        let kills = env_u64("CASEFLOW_PG_KILLS", 50);
        let seed = env_u64("CASEFLOW_PG_SEED", 0x5eed_cafe);
        println!("kill -9: {kills} kills, seed {seed:#x}");
        let mut random = XorShift(seed | 1);
        let mut acked: Vec<(Uuid, u64)> = Vec::new();
        for round in 0..kills {
            let mut child = spawn(
                "crash-writer",
                url,
                &[("CASEFLOW_PG_LOAD_ID", (round % 1000).to_string())],
            );
            let stdout = child.stdout.take().expect("piped");
            let (tx, rx) = std::sync::mpsc::channel();
            let reader = std::thread::spawn(move || {
                let mut pairs = Vec::new();
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    let mut parts = line.split(' ');
                    if parts.next() != Some("ack") {
                        continue;
                    }
                    if let (Some(Ok(id)), Some(Ok(pos))) = (
                        parts.next().map(str::parse::<Uuid>),
                        parts.next().map(str::parse::<u64>),
                    ) {
                        if pairs.is_empty() {
                            let _ = tx.send(());
                        }
                        pairs.push((id, pos));
                    }
                }
                pairs
            });
            // Kill at a random moment once it is writing.
            rx.recv_timeout(Duration::from_secs(30))
                .expect("the crash writer acknowledged an append");
            std::thread::sleep(Duration::from_millis(random.next(300)));
            child.kill().expect("SIGKILL");
            let _ = child.wait();
            acked.extend(reader.join().expect("reader"));
        }
        rt.block_on(async {
            let store = PostgresStore::connect_str(url).await.expect("reopen");
            let all = store.read_all(1, usize::MAX).await.expect("read");
            let at: HashMap<Uuid, u64> = all.iter().map(|e| (e.event_id, e.position)).collect();
            let positions: HashSet<u64> = all.iter().map(|e| e.position).collect();
            assert_eq!(positions.len(), all.len(), "positions are unique");
            for (i, e) in all.iter().enumerate() {
                assert_eq!(e.position, i as u64 + 1, "positions are gap-free");
            }
            for (id, position) in &acked {
                assert_eq!(
                    at.get(id),
                    Some(position),
                    "acknowledged {id} survived at {position}"
                );
            }
            let report = store.verify_all().await.expect("verify");
            assert!(report.is_intact(), "verify after kills: {report:?}");
            let tree = verify_tree(&store).await.expect("verify the tree");
            assert!(tree.first_fault.is_none(), "the tree after kills: {tree:?}");
            println!(
                "kill -9: {kills} kills, {} acknowledged appends all present, {} records, \
                 verify (chains, ledger, Merkle tree) intact over {} streams",
                acked.len(),
                all.len(),
                report.streams_checked
            );
        });
    }

    /// The server restarts under 16 writers and a subscriber: every append ends with a
    /// retryable error or succeeds (retried with its command id until it does, never written
    /// twice), nothing acknowledged is lost, the pool reconnects, the subscription goes on
    /// without a gap or a duplicate.
    fn server_restart(rt: &tokio::runtime::Runtime, url: &str) {
        let Ok(restart) = std::env::var("CASEFLOW_PG_RESTART_CMD") else {
            println!(
                "server restart: NOT RUN (set CASEFLOW_PG_RESTART_CMD to a command that \
                 restarts the server, e.g. `pg_ctlcluster --skip-systemctl-redirect 15 main \
                 restart`; CI sets it)"
            );
            return;
        };
        rt.block_on(async {
            let store = Arc::new(PostgresStore::connect_str(url).await.expect("open"));
            let mut subscription = store.subscribe(1).await.expect("subscribe");
            let (last_tx, mut last_rx) = tokio::sync::watch::channel(u64::MAX);
            let follower = tokio::spawn(async move {
                let mut delivered = Vec::new();
                // Follows until it has the head the parent names once the writers stopped;
                // a change of that target wakes it even when it is caught up.
                while delivered.len() as u64 != *last_rx.borrow_and_update() {
                    tokio::select! {
                        changed = last_rx.changed() => changed.expect("parent alive"),
                        next = tokio::time::timeout(Duration::from_secs(60), subscription.next()) => {
                            match next {
                                Ok(Some(Ok(record))) => {
                                    delivered.push((record.event_id, record.position))
                                }
                                Ok(Some(Err(err))) => panic!("the subscription failed: {err}"),
                                Ok(None) => panic!("the subscription ended"),
                                Err(_) => panic!("the subscription stalled after {}", delivered.len()),
                            }
                        }
                    }
                }
                delivered
            });
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let restarted = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let mut tasks = Vec::new();
            for task in 0..TASKS_PER_PROCESS {
                let (store, stop, restarted) = (store.clone(), stop.clone(), restarted.clone());
                tasks.push(tokio::spawn(async move {
                    let mut acked = Vec::new();
                    let (mut retries, mut after_restart) = (0u64, 0u64);
                    let mut seq = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        seq += 1;
                        let request = one_event(900, task, seq);
                        let event_id = request.events[0].event_id;
                        loop {
                            match store.append(request.clone()).await {
                                Ok(outcome) => {
                                    acked.push((event_id, outcome.first_position));
                                    if restarted.load(std::sync::atomic::Ordering::Relaxed) {
                                        after_restart += 1;
                                    }
                                    break;
                                }
                                Err(err) if err.is_retryable() => {
                                    retries += 1;
                                    tokio::time::sleep(Duration::from_millis(50)).await;
                                }
                                Err(err) => panic!("not retryable during a restart: {err}"),
                            }
                        }
                    }
                    (acked, retries, after_restart)
                }));
            }
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let status = tokio::task::spawn_blocking(move || {
                Command::new("sh").arg("-c").arg(&restart).status()
            })
            .await
            .expect("restart task")
            .expect("run the restart command");
            assert!(status.success(), "the restart command failed: {status}");
            restarted.store(true, std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(3)).await;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let (mut acked, mut retries, mut after) = (Vec::new(), 0, 0);
            for task in tasks {
                let (a, r, n) = task.await.expect("writer task");
                acked.extend(a);
                retries += r;
                after += n;
            }
            assert!(
                after > 0,
                "appends succeed again after the restart (the pool reconnected)"
            );
            let head = store.head_position().await.expect("head");
            last_tx.send(head).expect("follower alive");
            let delivered = follower.await.expect("follower");
            check_delivery_all(&acked, &delivered, head);
            let report = store.verify_all().await.expect("verify");
            assert!(report.is_intact(), "verify after the restart: {report:?}");
            let tree = verify_tree(store.as_ref()).await.expect("verify the tree");
            assert!(
                tree.first_fault.is_none(),
                "the tree after the restart: {tree:?}"
            );
            println!(
                "server restart: {} appends acknowledged ({after} after the restart, {retries} \
                 retryable errors retried with their command ids), none lost or doubled, the \
                 subscription delivered all {head} records in order",
                acked.len()
            );
        });
    }

    /// Like [`check_delivery`], for a log without an end marker.
    fn check_delivery_all(acked: &[(Uuid, u64)], delivered: &[(Uuid, u64)], head: u64) {
        for (i, (_, position)) in delivered.iter().enumerate() {
            assert_eq!(
                *position,
                i as u64 + 1,
                "delivered positions are 1, 2, 3, ..."
            );
        }
        assert_eq!(
            delivered.len() as u64,
            head,
            "every committed record was delivered"
        );
        let at: HashMap<Uuid, u64> = delivered.iter().copied().collect();
        assert_eq!(at.len(), delivered.len(), "no record was delivered twice");
        assert_eq!(
            acked.len(),
            delivered.len(),
            "every record is one acknowledged append"
        );
        for (id, position) in acked {
            assert_eq!(
                at.get(id),
                Some(position),
                "acknowledged {id} delivered at {position}"
            );
        }
    }
}
