//! Operator safety through the binary: `verify` never writes and never gives up early (the
//! log's section comes first and whole whatever happens to the read models; exit 0/1/2),
//! the read-only verbs leave the store file byte for byte, `case` and `audit` say when a
//! chain is broken, and `caseflow demo` never overwrites a file it did not make.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use sha2::{Digest, Sha256};

fn caseflow() -> Command {
    Command::cargo_bin("caseflow").expect("the binary is built")
}

/// A fresh small demo store in its own directory.
fn demo(dir: &Path) -> PathBuf {
    let db = dir.join("demo.db");
    let out = caseflow()
        .args(["demo", "--months", "1", "--cases-per-day", "2", "--db"])
        .arg(&db)
        .output()
        .expect("demo runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    db
}

/// Every file of a directory with the SHA-256 of its bytes.
fn fingerprint(dir: &Path) -> BTreeMap<PathBuf, String> {
    std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| {
            let path = e.expect("entry").path();
            let bytes = std::fs::read(&path).expect("read");
            (path, sha256(&bytes))
        })
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn run(args: &[&str], db: &Path) -> Output {
    caseflow()
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .expect("runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs SQL on the store file, as anyone with `sqlite3` can.
fn tamper(db: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.execute_batch(sql).expect("tamper");
}

fn stream_at(db: &Path, position: u64) -> String {
    let conn = rusqlite::Connection::open(db).expect("open");
    conn.query_row(
        "SELECT s.stream_id FROM events e JOIN streams s USING (stream_key) WHERE position = ?1",
        [position as i64],
        |r| r.get(0),
    )
    .expect("stream")
}

#[test]
fn verify_changes_no_file_and_creates_none() {
    let dir = tempfile::tempdir().expect("dir");
    let db = demo(dir.path());
    let before = fingerprint(dir.path());
    let out = run(&["verify"], &db);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("all holds"), "{stdout}");
    assert!(stdout.contains("ledger rows checked"), "{stdout}");
    assert_eq!(
        fingerprint(dir.path()),
        before,
        "verify wrote or created a file"
    );
}

#[test]
fn verify_of_a_missing_empty_or_foreign_file_is_exit_2_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let missing = dir.path().join("missing.db");
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").expect("write");
    let foreign = dir.path().join("notes.txt");
    std::fs::write(&foreign, "a text file someone named --db by mistake").expect("write");
    let before = fingerprint(dir.path());
    for (path, says) in [
        (&missing, "no Caseflow database"),
        (&empty, "empty"),
        (&foreign, "not a Caseflow store"),
    ] {
        let out = run(&["verify"], path);
        let (stdout, stderr) = text(&out);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}: {stdout}{stderr}",
            path.display()
        );
        assert!(stderr.contains(says), "{}: {stderr}", path.display());
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    assert_eq!(
        fingerprint(dir.path()),
        before,
        "verify created or changed a file"
    );
}

#[test]
fn verify_of_a_payload_that_no_longer_decodes_reports_the_chain_first_and_exits_1() {
    let dir = tempfile::tempdir().expect("dir");
    let db = demo(dir.path());
    let broken = stream_at(&db, 5);
    // A text literal, as plain sqlite3 writes it: the payload no longer decodes at all.
    tamper(
        &db,
        "UPDATE events SET payload = '{\"garbage\":1}' WHERE position = 5;",
    );
    let before = fingerprint(dir.path());
    let out = run(&["verify"], &db);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let log = stdout
        .find("## The log: BROKEN")
        .expect("the log's section");
    let chain = stdout.find(&broken).expect("the broken case is named");
    let models = stdout
        .find("## Read models")
        .expect("the read models' section");
    assert!(log < chain && chain < models, "{stdout}");
    assert_eq!(fingerprint(dir.path()), before);
}

#[test]
fn verify_with_a_garbled_read_model_file_still_reports_the_whole_log() {
    let dir = tempfile::tempdir().expect("dir");
    let db = demo(dir.path());
    let sidecar = caseflow::read_model_path(&db);
    std::fs::write(&sidecar, vec![0x5a; 8192]).expect("garble the sidecar");
    let before = fingerprint(dir.path());
    let out = run(&["verify"], &db);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("## The log: holds"), "{stdout}");
    assert!(stdout.contains("## Read models: DIFFER"), "{stdout}");
    assert_eq!(fingerprint(dir.path()), before);
}

#[test]
fn verify_names_a_deleted_ledger_row_and_exits_1() {
    let dir = tempfile::tempdir().expect("dir");
    let db = demo(dir.path());
    tamper(&db, "DELETE FROM commands WHERE first_position = 7;");
    let out = run(&["verify", "--json"], &db);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(
        report["ledger"][0]["kind"], "events_without_row",
        "{report:#}"
    );
    assert_eq!(report["ledger"][0]["first_position"], 7);
    assert!(report["broken_cases"].as_array().is_some_and(Vec::is_empty));
}

#[test]
fn case_and_audit_of_a_case_with_a_broken_chain_say_so() {
    let dir = tempfile::tempdir().expect("dir");
    let db = demo(dir.path());
    let stream = stream_at(&db, 5);
    let case = stream.trim_start_matches("case-").to_owned();
    tamper(
        &db,
        "UPDATE events SET actor = 'room-9/clerk' WHERE position = 5;",
    );
    let (stdout, _) = text(&run(&["case", &case], &db));
    assert!(stdout.contains("BROKEN at version"), "{stdout}");
    let (stdout, _) = text(&run(&["audit", "--case", &case], &db));
    assert!(stdout.contains("Hash chain BROKEN"), "{stdout}");
    let (stdout, _) = text(&run(&["case", &case, "--json"], &db));
    let value: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert!(value["chain_broken"].as_str().is_some(), "{value:#}");
}

#[test]
fn read_only_verbs_never_change_the_store_file() {
    let dir = tempfile::tempdir().expect("dir");
    let db = demo(dir.path());
    let store_digest = |db: &Path| sha256(&std::fs::read(db).expect("read"));
    let before = store_digest(&db);
    let out_file = dir.path().join("out.xes");
    let out_arg = out_file.to_str().expect("path");
    let case = stream_at(&db, 1).trim_start_matches("case-").to_owned();
    for args in [
        vec!["todo", "--unit", "room-1"],
        vec!["stats"],
        vec!["case", &case],
        vec!["audit", "--case", &case],
        vec!["export", "--format", "xes", "--out", out_arg],
        vec!["verify"],
    ] {
        let out = run(&args, &db);
        assert!(out.status.success(), "{args:?}: {}", text(&out).1);
        assert_eq!(store_digest(&db), before, "{args:?} changed the store file");
        for suffix in ["-wal", "-shm"] {
            let mut companion = db.as_os_str().to_owned();
            companion.push(suffix);
            assert!(
                !PathBuf::from(companion).exists(),
                "{args:?} left a {suffix} file"
            );
        }
    }
}

#[test]
fn demo_never_overwrites_a_file_it_did_not_make() {
    let dir = tempfile::tempdir().expect("dir");
    let notes = dir.path().join("notes.db");
    std::fs::write(&notes, "someone's notes").expect("write");
    let other = dir.path().join("other.db");
    tamper(
        &other,
        "CREATE TABLE accounts (id INTEGER); INSERT INTO accounts VALUES (1);",
    );
    let before = fingerprint(dir.path());
    for path in [&notes, &other] {
        for force in [false, true] {
            let mut cmd = caseflow();
            cmd.args(["demo", "--months", "1", "--db"]).arg(path);
            if force {
                cmd.arg("--force");
            }
            let out = cmd.output().expect("runs");
            assert_eq!(out.status.code(), Some(2), "{}", path.display());
        }
    }
    assert_eq!(
        fingerprint(dir.path()),
        before,
        "demo touched a file it did not make"
    );
}

#[test]
fn demo_replaces_its_own_store_only_with_force_and_not_while_it_is_open() {
    let dir = tempfile::tempdir().expect("dir");
    let db = demo(dir.path());
    let before = fingerprint(dir.path());
    let again = || {
        let mut cmd = caseflow();
        cmd.args(["demo", "--months", "1", "--cases-per-day", "2", "--db"])
            .arg(&db);
        cmd
    };
    let out = again().output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("--force"), "{}", text(&out).1);
    assert_eq!(fingerprint(dir.path()), before);
    // Open in another connection (a live engine, a sqlite3 shell): left alone.
    let holder = rusqlite::Connection::open(&db).expect("open");
    holder
        .query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
        .expect("read");
    let out = again().arg("--force").output().expect("runs");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out).1);
    assert!(
        text(&out).1.contains("another process has it open"),
        "{}",
        text(&out).1
    );
    drop(holder);
    // A copy of the store elsewhere is not the demo's own store.
    let copy = dir.path().join("copy.db");
    std::fs::copy(&db, &copy).expect("copy");
    let out = caseflow()
        .args(["demo", "--months", "1", "--force", "--db"])
        .arg(&copy)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    // Its own, closed, with --force: replaced.
    let out = again().arg("--force").output().expect("runs");
    assert!(out.status.success(), "{}", text(&out).1);
}
