//! Several engine *processes* on one PostgreSQL store (feature `postgres`, server in
//! `CASEFLOW_TEST_POSTGRES`): the test binary re-executes itself as three engine processes
//! (instances `desk`, `reports`, `bench`), each with its own read models in PostgreSQL, one
//! key file and one master key file, and drives them over stdin/stdout:
//!
//! 1. commands from every process, to-do lists from every process list every case;
//! 2. past the deadlines, exactly one process is the watcher and urges each missed deadline
//!    once; further passes urge nothing;
//! 3. more cases, then the watcher process is killed (SIGKILL); another process takes the
//!    leadership (the advisory lock goes with the dead process's connection) and urges the
//!    new cases' missed deadlines; in the log, every case is urged exactly once.
//!
//! `harness = false`: without the feature it says that it did not run and why.

#[cfg(not(feature = "postgres"))]
fn main() {
    println!(
        "postgres_engine_processes: NOT RUN. It needs the `postgres` feature and a server: \
         CASEFLOW_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test \
         cargo test -p caseflow --features postgres --test postgres_engine_processes \
         (CI runs it, see .ci/postgres.sh)."
    );
}

#[cfg(feature = "postgres")]
mod common;

#[cfg(feature = "postgres")]
fn main() {
    live::main();
}

#[cfg(feature = "postgres")]
mod live {
    use std::collections::{BTreeMap, BTreeSet};
    use std::io::{BufRead, BufReader, Write};
    use std::path::{Path, PathBuf};
    use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
    use std::sync::Arc;

    use caseflow::domain::*;
    use caseflow::projections::{case_id_of_stream, decode};
    use caseflow::store::postgres::testing::TempSchema;
    use caseflow::{
        Engine, EngineConfig, KeyStoreConfig, ManualClock, MasterKey, ReadModelConfig, RetryPolicy,
        SeededIds, StoreConfig,
    };
    use chrono::{DateTime, Duration, Utc};

    use super::common::{case_id, district, informant, report, run, t0};

    const ROLE_ENV: &str = "CASEFLOW_ENGINE_PROCESS";
    const URL_ENV: &str = "CASEFLOW_ENGINE_PROCESS_URL";
    const DIR_ENV: &str = "CASEFLOW_ENGINE_PROCESS_DIR";
    const SEED_ENV: &str = "CASEFLOW_ENGINE_PROCESS_SEED";
    const INSTANCES: [&str; 3] = ["desk", "reports", "bench"];
    /// How many times the survivors are asked to watch before a takeover counts as failed
    /// (the server notices the dead process's connection within milliseconds).
    const TAKEOVER_ATTEMPTS: usize = 500;

    pub fn main() {
        match std::env::var(ROLE_ENV) {
            Ok(instance) => child(&instance),
            Err(_) => parent(),
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    }

    fn env(name: &str) -> String {
        std::env::var(name).unwrap_or_else(|_| panic!("the parent sets {name}"))
    }

    fn master_path(dir: &Path) -> PathBuf {
        dir.join("master.key")
    }

    async fn open_engine(instance: &str, clock: &Arc<ManualClock>) -> Engine {
        let dir = PathBuf::from(env(DIR_ENV));
        let seed: u64 = env(SEED_ENV).parse().expect("a seed");
        let config = EngineConfig::with_store(StoreConfig::Url(env(URL_ENV)), district())
            .read_models(ReadModelConfig::Postgres {
                instance: instance.to_owned(),
            })
            .key_store(KeyStoreConfig::SqliteFile(dir.join("keys.db")))
            .master_key(MasterKey::from_file(&master_path(&dir)).expect("the master key file"))
            .clock(clock.clone())
            .ids(Arc::new(SeededIds::new(seed)))
            .retry(RetryPolicy {
                max_attempts: 200,
                base_delay_ms: 1,
                max_delay_ms: 5,
            });
        Engine::open(config)
            .await
            .expect("engine opens on PostgreSQL")
    }

    /// An engine process: answers one line per request line.
    /// `report <n> <time>` → `ok`; `list <time>` → `cases <n,n,…>`;
    /// `due <n>` → `due <time>` (the intake deadline); `watch <time>` → `watcher <urged>` or
    /// `not-watcher`; `urgings` → `urgings <n:count,…>` (each case's urgings, after
    /// checking that no urging or escalation of one missed deadline is in the log twice).
    fn child(instance: &str) {
        runtime().block_on(async {
            let clock = Arc::new(ManualClock::new(t0()));
            let engine = open_engine(instance, &clock).await;
            let mut lease = None;
            let stdout = std::io::stdout();
            println!("ready");
            for line in std::io::stdin().lock().lines() {
                let line = line.expect("a request line");
                let words: Vec<&str> = line.split_whitespace().collect();
                let at =
                    |i: usize| -> DateTime<Utc> { words[i].parse().expect("an RFC 3339 time") };
                let answer = match words.first().copied() {
                    Some("report") => {
                        let n: u128 = words[1].parse().expect("a case number");
                        run(
                            &engine,
                            &clock,
                            at(2),
                            informant("vil-dongyuan"),
                            report(case_id(n)),
                        )
                        .await;
                        "ok".to_owned()
                    }
                    Some("due") => {
                        let n: u128 = words[1].parse().expect("a case number");
                        let state = engine.case_state(case_id(n)).await.expect("the case");
                        let deadline = state
                            .deadline(DeadlineKind::IntakeDecision)
                            .expect("an intake deadline");
                        format!("due {}", deadline.due_at.to_rfc3339())
                    }
                    Some("list") => format!("cases {}", numbers(&listed(&engine, at(1)).await)),
                    Some("watch") => {
                        clock.set(at(1));
                        match engine.watch_if_leader(&mut lease).await.expect("watch") {
                            Some(report) => format!("watcher {}", report.issued.len()),
                            None => "not-watcher".to_owned(),
                        }
                    }
                    Some("urgings") => {
                        let counts = urgings(&engine).await;
                        let text: Vec<String> =
                            counts.iter().map(|(n, c)| format!("{n}:{c}")).collect();
                        format!("urgings {}", text.join(","))
                    }
                    _ => panic!("unknown request {line:?}"),
                };
                let mut out = stdout.lock();
                writeln!(out, "{answer}").expect("answer");
                out.flush().expect("flush");
            }
        });
    }

    /// The case numbers (as `case_id` makes them) of a set of case ids.
    fn number_of(case: CaseId) -> u128 {
        case.as_uuid().as_u128() - case_id(0).as_uuid().as_u128()
    }

    fn numbers(cases: &BTreeSet<CaseId>) -> String {
        let numbers: Vec<String> = cases.iter().map(|c| number_of(*c).to_string()).collect();
        numbers.join(",")
    }

    async fn listed(engine: &Engine, now: DateTime<Utc>) -> BTreeSet<CaseId> {
        let mut cases = BTreeSet::new();
        for level in [Level::Room, Level::Team, Level::Locality, Level::Village] {
            for item in engine.todo_for_level(level, now).await.expect("to-do list") {
                cases.insert(item.case.case_id);
            }
        }
        cases
    }

    /// How often each case (by number) was urged, from the log itself. Panics if one
    /// urging (or escalation) of one missed deadline is in the log twice.
    async fn urgings(engine: &Engine) -> BTreeMap<u128, usize> {
        let records = engine
            .store()
            .read_all(1, usize::MAX)
            .await
            .expect("read the log");
        let mut counts = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for record in &records {
            if let Ok(CaseEvent::CaseUrged(urged)) = decode(record) {
                let case = case_id_of_stream(&record.stream_id).expect("a case stream");
                let key = (case, urged.deadline, urged.missed_due_at, urged.escalated);
                assert!(seen.insert(key), "urged twice: {key:?}");
                *counts.entry(number_of(case)).or_insert(0) += 1;
            }
        }
        counts
    }

    /// One engine process and its pipes.
    struct EngineProcess {
        instance: &'static str,
        child: Child,
        input: ChildStdin,
        output: BufReader<ChildStdout>,
    }

    impl EngineProcess {
        fn start(instance: &'static str, url: &str, dir: &Path, seed: u64) -> EngineProcess {
            let mut child = Command::new(std::env::current_exe().expect("own path"))
                .env(ROLE_ENV, instance)
                .env(URL_ENV, url)
                .env(DIR_ENV, dir)
                .env(SEED_ENV, seed.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn an engine process");
            let input = child.stdin.take().expect("stdin");
            let output = BufReader::new(child.stdout.take().expect("stdout"));
            let mut process = EngineProcess {
                instance,
                child,
                input,
                output,
            };
            assert_eq!(process.read_line(), "ready", "{instance} failed to open");
            process
        }

        fn read_line(&mut self) -> String {
            let mut line = String::new();
            self.output.read_line(&mut line).expect("an answer");
            assert!(!line.is_empty(), "engine process {} died", self.instance);
            line.trim().to_owned()
        }

        fn ask(&mut self, request: &str) -> String {
            writeln!(self.input, "{request}").expect("a request");
            self.input.flush().expect("flush");
            self.read_line()
        }

        fn report(&mut self, case: u128, at: DateTime<Utc>) {
            assert_eq!(
                self.ask(&format!("report {case} {}", at.to_rfc3339())),
                "ok"
            );
        }

        fn list(&mut self, at: DateTime<Utc>) -> BTreeSet<u128> {
            let answer = self.ask(&format!("list {}", at.to_rfc3339()));
            let list = answer.strip_prefix("cases ").unwrap_or("");
            list.split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().expect("a case number"))
                .collect()
        }

        /// `Some(urged)` if this process is the watcher.
        fn watch(&mut self, at: DateTime<Utc>) -> Option<usize> {
            let answer = self.ask(&format!("watch {}", at.to_rfc3339()));
            answer
                .strip_prefix("watcher ")
                .map(|n| n.parse().expect("an urged count"))
        }

        fn due(&mut self, case: u128) -> DateTime<Utc> {
            let answer = self.ask(&format!("due {case}"));
            let time = answer.strip_prefix("due ").expect("a due time");
            time.parse().expect("an RFC 3339 time")
        }

        fn urgings(&mut self) -> BTreeMap<u128, usize> {
            let answer = self.ask("urgings");
            let list = answer.strip_prefix("urgings ").unwrap_or("");
            list.split(',')
                .filter(|s| !s.is_empty())
                .map(|pair| {
                    let (case, count) = pair.split_once(':').expect("case:count");
                    (
                        case.parse().expect("a case number"),
                        count.parse().expect("a count"),
                    )
                })
                .collect()
        }
    }

    /// Asks every process to watch at `at`; the index and urged count of each watcher.
    fn watch_all(processes: &mut [EngineProcess], at: DateTime<Utc>) -> Vec<(usize, usize)> {
        processes
            .iter_mut()
            .enumerate()
            .filter_map(|(i, p)| p.watch(at).map(|urged| (i, urged)))
            .collect()
    }

    fn parent() {
        let schema = TempSchema::new();
        // Read-model schemas are named after the store schema; dropped with the test.
        let _read_models: Vec<TempSchema> = INSTANCES
            .iter()
            .map(|i| TempSchema {
                base_url: schema.base_url.clone(),
                name: format!("{}_rm_{i}", schema.name),
            })
            .collect();
        let dir = tempfile::tempdir().expect("temp dir");
        MasterKey::create_file(&master_path(dir.path())).expect("a master key file");
        let url = schema.url("&poll_ms=50");
        let mut processes: Vec<EngineProcess> = INSTANCES
            .iter()
            .enumerate()
            .map(|(i, name)| EngineProcess::start(name, &url, dir.path(), 10 + i as u64))
            .collect();

        // 1. Commands from every process; every process lists every case.
        let mut first = BTreeSet::new();
        for (i, process) in processes.iter_mut().enumerate() {
            for k in 0..2u128 {
                let case = 100 + 10 * i as u128 + k;
                process.report(case, t0());
                first.insert(case);
            }
        }
        for process in &mut processes {
            assert_eq!(
                process.list(t0()),
                first,
                "{} lists every case",
                process.instance
            );
        }

        // 2. Past every intake deadline: one watcher, each missed deadline urged once.
        let late = processes[0].due(100) + Duration::minutes(5);
        let watchers = watch_all(&mut processes, late);
        assert_eq!(
            watchers.len(),
            1,
            "one watcher among 3 processes: {watchers:?}"
        );
        let (leader, urged) = watchers[0];
        assert_eq!(urged, first.len(), "every missed deadline urged");
        for _ in 0..2 {
            assert_eq!(
                watch_all(&mut processes, late),
                vec![(leader, 0)],
                "the same watcher, nothing urged twice"
            );
        }

        // 3. New cases from every process, then the watcher process is killed.
        let reported = late + Duration::minutes(1);
        let mut second = BTreeSet::new();
        for (i, process) in processes.iter_mut().enumerate() {
            let case = 200 + i as u128;
            process.report(case, reported);
            second.insert(case);
        }
        let mut dead = processes.remove(leader);
        dead.child.kill().expect("SIGKILL the watcher process");
        dead.child.wait().expect("the watcher process is gone");
        let later = processes[0].due(200) + Duration::minutes(5);
        let mut taken_over = None;
        for _ in 0..TAKEOVER_ATTEMPTS {
            let watchers = watch_all(&mut processes, later);
            assert!(watchers.len() <= 1, "never two watchers: {watchers:?}");
            if let Some(&watcher) = watchers.first() {
                taken_over = Some(watcher);
                break;
            }
        }
        let (new_leader, urged) = taken_over.expect("another process takes over the watcher");
        // The new cases' missed deadlines (and any escalation of the first ones now due).
        assert!(
            urged >= second.len(),
            "the new watcher urges the new missed deadlines"
        );
        assert_eq!(
            watch_all(&mut processes, later),
            vec![(new_leader, 0)],
            "nothing urged twice after the takeover"
        );

        // Every case urged, no urging twice, read from the log by every survivor.
        let all: BTreeSet<u128> = first.union(&second).copied().collect();
        for process in &mut processes {
            let counts = process.urgings();
            assert_eq!(counts.keys().copied().collect::<BTreeSet<_>>(), all);
            assert_eq!(
                process.list(later),
                all,
                "{} lists every case",
                process.instance
            );
        }
        for mut process in processes {
            drop(process.input);
            assert!(process.child.wait().expect("exit").success());
        }
        println!(
            "postgres_engine_processes: ok (3 engine processes, one watcher, takeover after SIGKILL)"
        );
    }
}
