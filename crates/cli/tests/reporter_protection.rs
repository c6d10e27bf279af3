//! The `caseflow` binary keeps reporters' contacts sealed: after `demo`, every file the engine
//! wrote (store, WAL, read models, key store, exports, audit reports) is free of the demo
//! reporters' name and phone; `reveal` shows a contact only to an actor who needs to know and
//! records it; `erase-contact` destroys it; `master-key new|rotate` manage the master key.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// The contact the simulator gives every named demo reporter.
const NAME: &str = "居民 (resident)";
const PHONE: &str = "138-0000-0000";

fn caseflow() -> Command {
    Command::cargo_bin("caseflow").expect("the binary is built")
}

fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn err(cmd: &mut Command) -> String {
    let out = cmd.output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Cases on room-1's list before routing (room-1 is then one of the zone's rooms).
fn unrouted_cases(db: &Path, key: &Path) -> Vec<String> {
    let json = ok(caseflow()
        .args(["todo", "--unit", "room-1", "--json", "--db"])
        .arg(db)
        .arg("--master-key-file")
        .arg(key));
    let v: serde_json::Value = serde_json::from_str(&json).expect("todo JSON");
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| matches!(i["stage"].as_str(), Some("intake" | "classification")))
        .filter_map(|i| i["case_id"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn no_file_the_demo_writes_holds_a_contact_and_reveal_and_erasure_work_from_the_cli() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("demo.db");
    ok(caseflow()
        .args(["demo", "--months", "1", "--cases-per-day", "3", "--db"])
        .arg(&db));
    let key = dir.path().join("demo.master.key");
    assert!(key.is_file(), "the demo made its master key file");
    assert!(dir.path().join("demo.keys.db").is_file());
    let xes = dir.path().join("demo.xes");
    let ocel = dir.path().join("demo.ocel.json");
    ok(caseflow()
        .args(["export", "--format", "xes", "--out"])
        .arg(&xes)
        .arg("--db")
        .arg(&db));
    ok(caseflow()
        .args(["export", "--format", "ocel2", "--out"])
        .arg(&ocel)
        .arg("--db")
        .arg(&db));
    for format in ["md", "json"] {
        let report = ok(caseflow()
            .args([
                "audit",
                "--from",
                "2026-01-01",
                "--to",
                "2027-01-01",
                "--format",
                format,
            ])
            .arg("--db")
            .arg(&db));
        std::fs::write(dir.path().join(format!("audit.{format}")), report).expect("write");
    }

    // The demo reveals and erases one contact (below); the files are checked after that.
    let cases = unrouted_cases(&db, &key);
    assert!(!cases.is_empty(), "the demo leaves cases at intake");
    let mut revealed = None;
    for case in &cases {
        let out = caseflow()
            .args([
                "reveal",
                case,
                "--actor",
                "room-1/case_officer",
                "--reason",
                "call back",
            ])
            .arg("--db")
            .arg(&db)
            .arg("--master-key-file")
            .arg(&key)
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            assert!(stdout.contains(PHONE) && stdout.contains(NAME), "{stdout}");
            revealed = Some(case.clone());
            break;
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stdout.contains(PHONE),
            "a refused reveal printed the contact"
        );
        assert!(stderr.contains("anonymous"), "{stderr}");
    }
    let case = revealed.expect("some demo report at intake is by a named reporter");

    // Without the master key: one clear sentence, no contact.
    let stderr = err(caseflow()
        .args([
            "reveal",
            &case,
            "--actor",
            "room-1/case_officer",
            "--reason",
            "again",
        ])
        .arg("--db")
        .arg(&db)
        .env_remove("CASEFLOW_MASTER_KEY")
        .env_remove("CASEFLOW_MASTER_KEY_FILE"));
    assert!(stderr.contains("no master key"), "{stderr}");
    // A village officer may not.
    let stderr = err(caseflow()
        .args([
            "reveal",
            &case,
            "--actor",
            "vil-dongyuan/information_officer",
            "--reason",
            "x",
        ])
        .arg("--db")
        .arg(&db)
        .arg("--master-key-file")
        .arg(&key));
    assert!(stderr.contains("may not"), "{stderr}");

    ok(caseflow()
        .args(["erase-contact", &case, "--actor", "room-1/leader"])
        .args([
            "--reason",
            "the reporter withdrew",
            "--legal-basis",
            "PIPL art. 47",
        ])
        .arg("--db")
        .arg(&db)
        .arg("--master-key-file")
        .arg(&key));
    let stderr = err(caseflow()
        .args([
            "reveal",
            &case,
            "--actor",
            "room-1/case_officer",
            "--reason",
            "after",
        ])
        .arg("--db")
        .arg(&db)
        .arg("--master-key-file")
        .arg(&key));
    assert!(stderr.contains("erased"), "{stderr}");
    let verify = ok(caseflow().arg("verify").arg("--db").arg(&db));
    assert!(!verify.is_empty());

    // Rotation: the new key opens the key store, the old one no longer does.
    let new_key = dir.path().join("rotated.master.key");
    ok(caseflow()
        .args(["master-key", "rotate", "--new-key-file"])
        .arg(&new_key)
        .arg("--db")
        .arg(&db)
        .arg("--master-key-file")
        .arg(&key));
    let stderr = err(caseflow()
        .args(["erase-contact", &cases[0], "--actor", "room-1/leader"])
        .args(["--reason", "r", "--legal-basis", "b"])
        .arg("--db")
        .arg(&db)
        .arg("--master-key-file")
        .arg(&key));
    assert!(
        stderr.contains("is not the key of the key store"),
        "{stderr}"
    );

    let written = files(dir.path());
    assert!(written.len() >= 8, "{written:?}");
    for file in written {
        let bytes = std::fs::read(&file).expect("read");
        assert!(
            !contains(&bytes, PHONE) && !contains(&bytes, NAME),
            "{} holds a reporter's contact in clear",
            file.display()
        );
    }
}

#[test]
fn master_key_new_writes_a_key_file_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("m.key");
    let out = ok(caseflow().args(["master-key", "new", "--out"]).arg(&key));
    assert!(out.contains("fingerprint"), "{out}");
    let text = std::fs::read_to_string(&key).expect("key file");
    assert_eq!(text.trim().len(), 64);
    let stderr = err(caseflow().args(["master-key", "new", "--out"]).arg(&key));
    assert!(stderr.contains("m.key"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&key).expect("key file"), text);
}
