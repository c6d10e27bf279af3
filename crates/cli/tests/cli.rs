//! The `caseflow` binary on a small demo database: every verb, both output formats, and the
//! errors for bad arguments, a missing file and a file that is not a Caseflow store.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use assert_cmd::Command;

struct Demo {
    _dir: tempfile::TempDir,
    db: PathBuf,
    stdout: String,
}

/// One small demo database shared by the tests of this binary (made once).
fn demo() -> &'static Demo {
    static DEMO: OnceLock<Demo> = OnceLock::new();
    DEMO.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("demo.db");
        let out = caseflow()
            .args(["demo", "--months", "1", "--cases-per-day", "3", "--db"])
            .arg(&db)
            .output()
            .expect("demo runs");
        assert!(
            out.status.success(),
            "demo failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Demo {
            _dir: dir,
            db,
            stdout: String::from_utf8(out.stdout).expect("utf-8"),
        }
    })
}

fn caseflow() -> Command {
    Command::cargo_bin("caseflow").expect("the binary is built")
}

fn run_ok(args: &[&str], db: &Path) -> String {
    let out = caseflow()
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{args:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Runs and expects exit code 2 with a one-sentence error and no panic.
fn run_err(args: &[&str]) -> String {
    let out = caseflow().args(args).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    stderr
}

fn first_case_id(db: &Path) -> String {
    let json = run_ok(&["todo", "--unit", "room-1", "--json"], db);
    let v: serde_json::Value = serde_json::from_str(&json).expect("todo JSON");
    let stats: serde_json::Value =
        serde_json::from_str(&run_ok(&["stats", "--json"], db)).expect("stats JSON");
    assert!(stats["cases"].as_u64().unwrap_or(0) > 0);
    v["items"][0]["case_id"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| {
            // room-1 may have nothing to do; fall back to the audit of everything.
            let report = run_ok(
                &[
                    "audit",
                    "--from",
                    "2026-01-01",
                    "--to",
                    "2027-01-01",
                    "--format",
                    "json",
                ],
                db,
            );
            let r: serde_json::Value = serde_json::from_str(&report).expect("audit JSON");
            r["cases"][0]["case_id"]
                .as_str()
                .expect("a case")
                .to_owned()
        })
}

#[test]
fn demo_prints_four_to_do_lists_and_the_headline_statistics() {
    let d = demo();
    let lists = d.stdout.matches("待办清单 ").count();
    assert_eq!(lists, 4, "one list per level:\n{}", d.stdout);
    for level_name in ["纪检监察室", "纪检监察组"] {
        assert!(
            d.stdout.contains(level_name),
            "no {level_name} list:\n{}",
            d.stdout
        );
    }
    assert!(d.stdout.contains("处理处分人数"), "{}", d.stdout);
    // The demo is a simulator run on the engine: a refused command fails it, so there is no
    // "refused" count any more; the headline names the log's digest instead.
    assert!(
        d.stdout.contains("urgings by the deadline watcher"),
        "{}",
        d.stdout
    );
    assert!(d.stdout.contains("log SHA-256 "), "{}", d.stdout);
    assert!(
        d.stdout.contains("the end of the simulated period"),
        "{}",
        d.stdout
    );
}

#[test]
fn todo_prints_a_table_and_json() {
    let d = demo();
    let table = run_ok(&["todo", "--unit", "loc-chaoyang"], &d.db);
    assert!(table.starts_with("待办清单 朝阳街道纪工委 · "), "{table}");
    assert!(
        table.contains("+08:00"),
        "the time shows its offset: {table}"
    );
    let english = run_ok(&["todo", "--unit", "loc-chaoyang", "--lang", "en"], &d.db);
    assert!(
        english.starts_with("To-do list of 朝阳街道纪工委 · "),
        "{english}"
    );
    let json = run_ok(
        &[
            "todo",
            "--unit",
            "loc-chaoyang",
            "--json",
            "--now",
            "2026-03-20T09:00:00+08:00",
        ],
        &d.db,
    );
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(
        v["list"],
        serde_json::json!({"scope": "unit", "id": "loc-chaoyang"})
    );
    assert_eq!(v["now"], "2026-03-20T09:00:00+08:00");
    assert!(v["items"].is_array());
    let err = run_err(&[
        "todo",
        "--unit",
        "room-99",
        "--db",
        d.db.to_str().expect("utf-8 path"),
    ]);
    assert!(
        err.starts_with("error: the district has no unit room-99"),
        "{err}"
    );
    let err = run_err(&[
        "todo",
        "--unit",
        "dept-finance",
        "--db",
        d.db.to_str().expect("utf-8 path"),
    ]);
    assert!(err.contains("dept-finance is a department"), "{err}");
}

#[test]
fn todo_lists_departments_zones_and_levels_and_says_when_nothing_waits() {
    let d = demo();
    for owner in [
        ["--department", "dept-finance"],
        ["--zone", "zone-1"],
        ["--level", "village"],
    ] {
        let json = run_ok(&["todo", owner[0], owner[1], "--json"], &d.db);
        let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        assert!(v["items"].is_array(), "{owner:?}: {json}");
    }
    let zone = run_ok(&["todo", "--zone", "zone-1", "--lang", "en"], &d.db);
    assert!(zone.starts_with("To-do list of "), "{zone}");
    // A list with nothing on it says so instead of drawing an empty frame.
    let far_future = run_ok(&["todo", "--unit", "vil-zhaoqiao", "--lang", "en"], &d.db);
    if far_future.contains("0 item(s)") {
        assert!(
            far_future.contains("Nothing waits on this list."),
            "{far_future}"
        );
        assert!(!far_future.contains('┌'), "{far_future}");
    }
}

#[test]
fn todo_json_carries_whole_titles() {
    let d = demo();
    let json = run_ok(&["todo", "--level", "room", "--json"], &d.db);
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let items = v["items"].as_array().expect("items");
    assert!(!items.is_empty(), "the demo leaves work for the rooms");
    for item in items {
        let id = item["case_id"].as_str().expect("case id");
        let case = run_ok(&["case", id, "--json"], &d.db);
        let c: serde_json::Value = serde_json::from_str(&case).expect("case JSON");
        assert_eq!(
            item["title"], c["state"]["case"]["summary"],
            "the to-do item's title is the whole summary"
        );
    }
}

#[test]
fn case_shows_state_and_timeline_now_as_of_a_version_and_a_time() {
    let d = demo();
    let id = first_case_id(&d.db);
    let table = run_ok(&["case", &id], &d.db);
    assert!(table.contains("CaseReported"), "{table}");
    let v1: serde_json::Value =
        serde_json::from_str(&run_ok(&["case", &id, "--version", "1", "--json"], &d.db))
            .expect("JSON");
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["stage"], "intake");
    assert_eq!(v1["timeline"].as_array().map(Vec::len), Some(1));
    assert!(
        v1["state"]["case"].get("reporter").is_none(),
        "the contact never leaves the engine"
    );
    let at: serde_json::Value = serde_json::from_str(&run_ok(
        &["case", &id, "--as-of", "2027-01-01", "--json"],
        &d.db,
    ))
    .expect("JSON");
    assert_eq!(at["version"], at["latest_version"]);
    let err = run_err(&["case", "not-a-uuid", "--db", d.db.to_str().expect("path")]);
    assert!(err.contains("is neither a case id"), "{err}");
    let err = run_err(&[
        "case",
        &id,
        "--version",
        "999",
        "--db",
        d.db.to_str().expect("path"),
    ]);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn verify_passes_on_the_demo_and_fails_with_exit_1_on_a_changed_byte() {
    let d = demo();
    let report = run_ok(&["verify"], &d.db);
    assert!(report.contains("all holds"), "{report}");
    // A copy with one byte changed in a stored payload.
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("copy.db");
    // Copy the store with its WAL (if the last writer left one) and change the payload text
    // wherever it is stored: "(rubbish" -> "(Rubbish".
    let needle = "(rubbish not collected on time)".as_bytes();
    let mut changed = 0;
    for suffix in ["", "-wal"] {
        let mut from = d.db.clone().into_os_string();
        from.push(suffix);
        let Ok(mut bytes) = std::fs::read(&from) else {
            continue;
        };
        let mut at = 0;
        while let Some(i) = bytes[at..].windows(needle.len()).position(|w| w == needle) {
            bytes[at + i + 1] = b'R';
            at += i + needle.len();
            changed += 1;
        }
        let mut to = copy.clone().into_os_string();
        to.push(suffix);
        std::fs::write(&to, bytes).expect("write copy");
    }
    assert!(changed > 0, "the payload text is in the store");
    let out = caseflow()
        .args(["verify", "--db"])
        .arg(&copy)
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("BROKEN") && stdout.contains("Broken hash chains"),
        "{stdout}"
    );
}

#[test]
fn export_writes_xes_and_ocel2_that_parse_back() {
    let d = demo();
    let dir = tempfile::tempdir().expect("temp dir");
    let xes = dir.path().join("demo.xes");
    let ocel = dir.path().join("demo.json");
    let said = run_ok(
        &[
            "export",
            "--format",
            "xes",
            "--out",
            xes.to_str().expect("path"),
        ],
        &d.db,
    );
    assert!(said.starts_with("wrote"), "{said}");
    let text = std::fs::read_to_string(&xes).expect("xes written");
    let mut reader = quick_xml::Reader::from_str(&text);
    let mut traces = 0;
    loop {
        match reader.read_event().expect("well-formed XML") {
            quick_xml::events::Event::Start(e) if e.name().as_ref() == "trace" => traces += 1,
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert!(said.contains(&format!("({traces} cases")), "{said}");
    run_ok(
        &[
            "export",
            "--format",
            "ocel2",
            "--out",
            ocel.to_str().expect("path"),
        ],
        &d.db,
    );
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&ocel).expect("ocel written")).expect("JSON");
    assert!(v["events"].as_array().map_or(0, Vec::len) > 0);
    let err = run_err(&[
        "export",
        "--format",
        "csv",
        "--out",
        "x",
        "--db",
        d.db.to_str().expect("path"),
    ]);
    assert!(err.contains("csv"), "{err}");
}

/// A private copy of the demo store (its read models are rebuilt from the log on first use).
fn private_copy(dir: &Path) -> PathBuf {
    let d = demo();
    let copy = dir.join("private.db");
    for suffix in ["", "-wal"] {
        let mut from = d.db.clone().into_os_string();
        from.push(suffix);
        let mut to = copy.clone().into_os_string();
        to.push(suffix);
        if Path::new(&from).exists() {
            std::fs::copy(&from, &to).expect("copy");
        }
    }
    copy
}

#[test]
fn stats_rebuild_and_audit_work_on_the_demo() {
    let d = demo();
    let stats = run_ok(&["stats"], &d.db);
    assert!(stats.contains("满意度"), "{stats}");
    let stats = run_ok(&["stats", "--lang", "en"], &d.db);
    assert!(stats.contains("satisfaction"), "{stats}");
    // Rebuild a private copy, so no other test's process holds its read models meanwhile.
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = private_copy(dir.path());
    let rebuilt = run_ok(&["rebuild"], &copy);
    assert!(rebuilt.starts_with("rebuilt every read model"), "{rebuilt}");
    assert!(run_ok(&["verify"], &copy).contains("all holds"));
    let id = first_case_id(&d.db);
    let md = run_ok(&["audit", "--case", &id], &d.db);
    assert!(md.starts_with("# Audit report: case"), "{md}");
    assert!(md.contains("### Stages") && md.contains("| hash |"));
    let json = run_ok(
        &[
            "audit",
            "--from",
            "2026-03-02",
            "--to",
            "2026-03-09",
            "--format",
            "json",
        ],
        &d.db,
    );
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert!(v["cases"].as_array().map_or(0, Vec::len) > 0);
    let err = run_err(&["audit", "--db", d.db.to_str().expect("path")]);
    assert!(err.contains("--case") || err.contains("required"), "{err}");
}

#[test]
fn bad_arguments_missing_files_and_foreign_files_are_one_clear_error() {
    let err = run_err(&[
        "todo",
        "--unit",
        "room-1",
        "--db",
        "/nonexistent/caseflow.db",
    ]);
    assert!(
        err.starts_with("error: no Caseflow database at /nonexistent/caseflow.db"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one sentence: {err}");
    let dir = tempfile::tempdir().expect("temp dir");
    let foreign = dir.path().join("notes.db");
    std::fs::write(
        &foreign,
        "these are not the events you are looking for\n".repeat(200),
    )
    .expect("write");
    let err = run_err(&["stats", "--db", foreign.to_str().expect("path")]);
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one sentence: {err}");
    run_err(&["frobnicate"]);
    run_err(&["todo", "--unit", "room-1"]);
    let err = run_err(&[
        "todo",
        "--unit",
        "room-1",
        "--now",
        "yesterday",
        "--db",
        demo().db.to_str().expect("path"),
    ]);
    assert!(err.contains("is not a time"), "{err}");
    let err = run_err(&[
        "demo",
        "--months",
        "0",
        "--db",
        dir.path().join("x.db").to_str().expect("path"),
    ]);
    assert!(err.contains("months"), "{err}");
}

#[cfg(not(feature = "kurrentdb"))]
#[test]
fn a_kurrentdb_url_without_the_feature_is_a_clear_error() {
    let err = run_err(&["stats", "--store", "kurrentdb://localhost:2113?tls=false"]);
    assert!(
        err.contains("`kurrentdb` backend") && err.contains("--features kurrentdb"),
        "{err}"
    );
    let err = run_err(&["stats", "--store", "http://localhost"]);
    assert!(err.contains("unsupported store URL scheme `http`"), "{err}");
}

#[test]
fn simulate_calibrate_fits_the_demo_store_and_shows_the_log_beside_the_simulation() {
    let d = demo();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("fitted.toml");
    let text = run_ok(
        &[
            "simulate",
            "--calibrate",
            "--replications",
            "3",
            "--out",
            out.to_str().expect("utf-8 path"),
        ],
        &d.db,
    );
    assert!(text.contains("Kolmogorov-Smirnov"), "{text}");
    assert!(
        text.contains("| KPI | log | simulated (95% CI) |"),
        "{text}"
    );
    // The scenario names the sample district written beside it, and runs.
    assert!(dir.path().join("fitted.district.toml").is_file());
    let runs = caseflow()
        .args(["simulate", "--model-only", "--no-html", "--scenario"])
        .arg(&out)
        .output()
        .expect("runs");
    assert!(
        runs.status.success(),
        "{}",
        String::from_utf8_lossy(&runs.stderr)
    );
    let err = run_err(&["simulate", "--calibrate", "--out", "x.toml"]);
    assert!(err.contains("--db"), "{err}");
}

/// `caseflow user` keeps users beside the store, refuses a unit the district does not have
/// and a short password, prints a token once; `serve --check-config` opens everything and
/// says what it would serve, and refuses a bad setting by its name.
#[test]
fn users_tokens_and_serve_check_config() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = private_copy(dir.path());
    let db_arg = db.to_str().expect("path");
    let add = |args: &[&str], password: &str| {
        caseflow()
            .args(["user", "add"])
            .args(args)
            .args(["--password-stdin", "--db", db_arg])
            .write_stdin(format!("{password}\n"))
            .output()
            .expect("runs")
    };
    let ok = add(
        &["li.room1", "--unit", "room-1", "--role", "leader"],
        "correct horse battery",
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let no_unit = add(
        &["x.nowhere", "--unit", "room-99", "--role", "leader"],
        "correct horse battery",
    );
    assert_eq!(no_unit.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_unit.stderr).contains("room-99"));
    let short = add(&["y.short", "--auditor"], "short");
    assert_eq!(short.status.code(), Some(2));
    let listed = run_ok(&["user", "list"], &db);
    assert!(listed.contains("li.room1"), "{listed}");
    assert!(!listed.contains("x.nowhere") && !listed.contains("y.short"));
    let token = run_ok(&["user", "token", "li.room1"], &db);
    assert!(token.trim().starts_with("cf_"), "{token}");
    let tokens = run_ok(&["user", "tokens"], &db);
    assert!(
        !tokens.contains(token.trim()),
        "the token list never shows a token"
    );
    assert!(users_file(&db).exists());

    let check = run_ok(&["serve", "--check-config"], &db);
    assert!(check.contains("configuration ok"), "{check}");
    assert!(check.contains("(1 users)"), "{check}");
    let bad = caseflow()
        .args(["serve", "--check-config", "--db", db_arg])
        .env("CASEFLOW_DURABILITY", "sometimes")
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("CASEFLOW_DURABILITY"), "{stderr}");
    let missing = run_err(&["serve", "--check-config", "--db", "/nonexistent/cases.db"]);
    assert!(missing.contains("does not exist"), "{missing}");
}

fn users_file(db: &Path) -> PathBuf {
    db.with_file_name(format!(
        "{}.users.db",
        db.file_stem().and_then(|s| s.to_str()).expect("stem")
    ))
}

/// `caseflow serve` writes JSON lines: one per request in a span with its request id, one per
/// command with its command id (the Idempotency-Key); SIGTERM ends it cleanly.
#[test]
fn serve_logs_json_lines_with_request_and_command_ids_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = tempfile::tempdir().expect("temp dir");
    let db = private_copy(dir.path());
    let db_arg = db.to_str().expect("path");
    let added = caseflow()
        .args(["user", "add", "desk", "--unit", "loc-zhongshan", "--role"])
        .args(["case_officer", "--password-stdin", "--db", db_arg])
        .write_stdin("correct horse battery\n")
        .output()
        .expect("runs");
    assert!(added.status.success());
    let token = run_ok(&["user", "token", "desk"], &db).trim().to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut server = std::process::Command::new(assert_cmd::cargo::cargo_bin("caseflow"))
        .args([
            "serve",
            "--db",
            db_arg,
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("CASEFLOW_WATCHER_INTERVAL_SECONDS", "0")
        .env("CASEFLOW_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve starts");
    let mut log = BufReader::new(server.stderr.take().expect("stderr"));
    let mut lines = Vec::new();
    // The server logs `serving` once it is ready; until then nothing is sent.
    loop {
        let mut line = String::new();
        assert!(
            log.read_line(&mut line).expect("reads") > 0,
            "serve exited: {lines:?}"
        );
        let serving = line.contains("\"serving\"");
        lines.push(line);
        if serving {
            break;
        }
    }
    let key = uuid::Uuid::new_v4();
    let body = r#"{"channel":"hotline","kind":"complaint","summary":"日志测试：路灯不亮","locality":"loc-zhongshan","village":"vil-renmin","subject":"物业公司","focus_area":"living_environment","reporter":{"type":"anonymous"}}"#;
    let mut http = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
    write!(
        http,
        "POST /api/v1/cases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nIdempotency-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("writes");
    let mut response = String::new();
    http.read_to_string(&mut response).expect("reads");
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    let term = std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(term.success());
    let status = server.wait().expect("serve ends");
    assert!(status.success(), "serve after SIGTERM: {status:?}");
    let mut rest = String::new();
    log.read_to_string(&mut rest).expect("reads the rest");
    lines.extend(rest.lines().map(str::to_owned));
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let command = events
        .iter()
        .find(|e| e["message"] == "command executed")
        .expect("a command line");
    assert_eq!(command["command_id"], key.to_string());
    assert_eq!(command["command"], "ReportCase");
    let request_id = command["span"]["request_id"]
        .as_str()
        .expect("a request id");
    assert!(uuid::Uuid::parse_str(request_id).is_ok(), "{command}");
    let request = events
        .iter()
        .find(|e| {
            e["message"] == "finished processing request" && e["span"]["request_id"] == request_id
        })
        .expect("the request's line");
    assert_eq!(request["status"], 201);
    assert_eq!(request["span"]["path"], "/api/v1/cases");
    assert!(
        !lines.iter().any(|l| l.contains(&token)),
        "the token is never logged"
    );
}
