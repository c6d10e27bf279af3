//! The auditor's verbs end to end: keygen, anchor, verify --anchor, prove, verify-proof, on
//! a demo store, then on a copy where a whole case was deleted with plain SQL.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn caseflow() -> Command {
    Command::cargo_bin("caseflow").expect("the binary is built")
}

/// Runs the binary; returns (exit code, stdout, stderr).
fn run(args: &[&str]) -> (i32, String, String) {
    let out = caseflow().args(args).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn demo(dir: &Path) -> PathBuf {
    let db = dir.join("demo.db");
    let (code, _, err) = run(&[
        "demo",
        "--months",
        "1",
        "--cases-per-day",
        "3",
        "--db",
        s(&db),
    ]);
    assert_eq!(code, 0, "demo: {err}");
    db
}

/// The case with the most events.
fn busiest_case(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).expect("open");
    let stream: String = conn
        .query_row(
            "SELECT s.stream_id FROM streams s JOIN events e ON e.stream_key = s.stream_key \
             GROUP BY s.stream_key ORDER BY max(e.version) DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .expect("a case");
    stream.trim_start_matches("case-").to_owned()
}

/// Deletes a whole case the way an operator with sqlite3 could: events, ledger rows and
/// the stream row.
fn delete_case(db: &Path, case: &str) {
    let conn = rusqlite::Connection::open(db).expect("open");
    let key: i64 = conn
        .query_row(
            "SELECT stream_key FROM streams WHERE stream_id = ?1",
            [format!("case-{case}")],
            |r| r.get(0),
        )
        .expect("the case's stream");
    for table in ["events", "commands", "streams"] {
        conn.execute(&format!("DELETE FROM {table} WHERE stream_key = ?1"), [key])
            .expect("delete");
    }
}

#[test]
fn an_anchor_proves_the_log_extends_it_and_catches_a_deleted_case() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = demo(dir.path());
    let key = dir.path().join("auditor.key");
    let public = dir.path().join("auditor.key.pub");
    let head = dir.path().join("head.json");

    let (code, out, err) = run(&["keygen", "--out", s(&key)]);
    assert_eq!(code, 0, "keygen: {err}");
    assert!(out.contains("public key"), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the secret key is readable by others: {mode:o}"
        );
    }
    let (code, _, err) = run(&["keygen", "--out", s(&key)]);
    assert_eq!(code, 2, "a second keygen must not overwrite the key");
    assert!(err.contains("--force"), "{err}");

    let (code, out, err) = run(&[
        "anchor",
        "--db",
        s(&db),
        "--key",
        s(&key),
        "--out",
        s(&head),
    ]);
    assert_eq!(code, 0, "anchor: {err}");
    assert!(out.contains("signed head of"), "{out}");

    let (code, out, err) = run(&[
        "verify",
        "--db",
        s(&db),
        "--anchor",
        s(&head),
        "--pubkey",
        s(&public),
    ]);
    assert_eq!(
        code, 0,
        "verify --anchor on the untouched store: {out}{err}"
    );
    assert!(out.contains("consistency proven"), "{out}");

    let other = dir.path().join("other.key");
    run(&["keygen", "--out", s(&other)]);
    let (code, _, err) = run(&[
        "verify",
        "--db",
        s(&db),
        "--anchor",
        s(&head),
        "--pubkey",
        &format!("{}.pub", s(&other)),
    ]);
    assert_eq!(code, 2, "an anchor signed by another key cannot be used");
    assert!(err.contains("not by the trusted key"), "{err}");

    let tampered = dir.path().join("tampered.db");
    std::fs::copy(&db, &tampered).expect("copy");
    delete_case(&tampered, &busiest_case(&db));
    let (code, out, _) = run(&[
        "verify",
        "--db",
        s(&tampered),
        "--anchor",
        s(&head),
        "--pubkey",
        s(&public),
    ]);
    assert_eq!(code, 1, "a deleted case must fail verify --anchor: {out}");
    assert!(out.contains("## Anchor"), "{out}");
    assert!(!out.contains("consistency proven"), "{out}");
}

#[test]
fn a_case_proof_checks_offline_and_fails_when_changed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = demo(dir.path());
    let key = dir.path().join("k");
    let public = dir.path().join("k.pub");
    let head = dir.path().join("head.json");
    let proof = dir.path().join("proof.json");
    run(&["keygen", "--out", s(&key)]);
    let (code, _, err) = run(&[
        "anchor",
        "--db",
        s(&db),
        "--key",
        s(&key),
        "--out",
        s(&head),
    ]);
    assert_eq!(code, 0, "{err}");
    let case = busiest_case(&db);
    let (code, out, err) = run(&[
        "prove",
        "--db",
        s(&db),
        "--case",
        &case,
        "--anchor",
        s(&head),
        "--pubkey",
        s(&public),
        "--out",
        s(&proof),
    ]);
    assert_eq!(code, 0, "prove: {err}");
    assert!(out.contains("events of case"), "{out}");

    // Offline: the database is gone.
    std::fs::remove_file(&db).expect("remove the store");
    let (code, out, err) = run(&[
        "verify-proof",
        s(&proof),
        "--anchor",
        s(&head),
        "--pubkey",
        s(&public),
    ]);
    assert_eq!(code, 0, "verify-proof: {out}{err}");
    assert!(out.starts_with("holds:"), "{out}");

    let text = std::fs::read_to_string(&proof).expect("proof");
    let changed = text.replacen("\"actor\": \"", "\"actor\": \"x", 1);
    assert_ne!(changed, text);
    std::fs::write(&proof, changed).expect("write");
    let (code, out, _) = run(&[
        "verify-proof",
        s(&proof),
        "--anchor",
        s(&head),
        "--pubkey",
        s(&public),
    ]);
    assert_eq!(code, 1, "a changed record must not verify: {out}");
    assert!(out.contains("DOES NOT HOLD"), "{out}");

    std::fs::write(&proof, &text).expect("write");
    let head_text = std::fs::read_to_string(&head).expect("head");
    let grown = head_text.replacen("\"tree_size\": ", "\"tree_size\": 1", 1);
    std::fs::write(&head, grown).expect("write");
    let (code, out, _) = run(&[
        "verify-proof",
        s(&proof),
        "--anchor",
        s(&head),
        "--pubkey",
        s(&public),
    ]);
    assert_eq!(code, 1, "an edited head must not verify: {out}");
    assert!(out.contains("signature"), "{out}");
}
