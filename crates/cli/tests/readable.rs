//! What people read, pinned: the to-do table in zh-CN and English and the audit report in
//! Markdown, for a small store written with a fixed clock and seeded ids (so the output is
//! the same on every run), printed by the `caseflow` binary as a user runs it.

use std::path::Path;
use std::sync::Arc;

use assert_cmd::Command as Bin;
use caseflow::domain::chrono::{DateTime, Duration, TimeZone, Utc};
use caseflow::domain::uuid::Uuid;
use caseflow::domain::*;
use caseflow::{CommandEnvelope, District, Engine, EngineConfig, ManualClock, SeededIds};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).unwrap()
}

fn case_id(n: u128) -> CaseId {
    CaseId::new(Uuid::from_u128(
        0x0190_0000_0000_7000_8000_0000_0000_0000 + n,
    ))
}

fn report(n: u128, kind: CaseKind, village: &str, locality: &str, summary: &str) -> ReportCase {
    ReportCase {
        case_id: case_id(n),
        channel: Channel::PettyPowerMiniProgram,
        kind,
        summary: summary.into(),
        locality: UnitId::new(locality),
        village: Some(UnitId::new(village)),
        subject: "村（居）委会".into(),
        focus_area: FocusArea::LivingEnvironment,
        reporter: Reporter::Anonymous,
        reporter_handle: ReporterHandle(Uuid::from_u128(n)),
        source_department: None,
    }
}

/// Executes a command at `at`, as `actor`.
async fn run(engine: &Engine, clock: &ManualClock, at: DateTime<Utc>, actor: Actor, c: Command) {
    clock.set(at);
    let name = c.name();
    engine
        .execute(CommandEnvelope::new(engine.new_id(), actor, at, c))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
}

/// Moves a case on along the domain's suggestions, one working hour a step, `steps` times.
async fn walk(
    engine: &Engine,
    clock: &ManualClock,
    id: CaseId,
    mut at: DateTime<Utc>,
    steps: usize,
) {
    for _ in 0..steps {
        at += Duration::hours(1);
        let state = engine.case_state(id).await.expect("state");
        let d = engine.district();
        let next = NextContext::new(&d.org, &d.calendar, &d.policies, at).with_note("已办理");
        let Some(m) = walk::next_move(&state, &next, walk::Style::Forward, &mut walk::First) else {
            return;
        };
        run(engine, clock, at, m.actor, m.command).await;
    }
}

/// Three cases of 朝阳街道: one just reported, one at classification, one in rectification.
async fn write_store(path: &Path) {
    let clock = Arc::new(ManualClock::new(t0()));
    let config = EngineConfig::sqlite(path, District::sample().expect("sample"))
        .clock(clock.clone())
        .ids(Arc::new(SeededIds::new(11)));
    let engine = Engine::open(config).await.expect("engine");
    let officer = Actor::new("vil-dongyuan", Role::InformationOfficer);
    let cases = [
        (
            1,
            CaseKind::Complaint,
            "花园小区路灯损坏，多次反映无人修，居民夜间出行不便",
            0,
        ),
        (
            2,
            CaseKind::Suggestion,
            "建议在社区服务站公开低保评定名单和评定程序",
            2,
        ),
        (3, CaseKind::ProblemClue, "村干部在低保评定中优亲厚友", 6),
    ];
    for (n, kind, summary, steps) in cases {
        let at = t0() + Duration::hours(n as i64);
        let c = report(n, kind, "vil-dongyuan", "loc-chaoyang", summary);
        run(&engine, &clock, at, officer.clone(), c.into()).await;
        walk(&engine, &clock, case_id(n), at, steps).await;
    }
}

fn caseflow(db: &Path, args: &[&str]) -> String {
    let out = Bin::cargo_bin("caseflow")
        .expect("the caseflow binary")
        .args(args)
        .arg("--db")
        .arg(db)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn store() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("readable.db");
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(write_store(&db));
    (dir, db)
}

#[test]
fn to_do_tables_read_right_in_chinese_and_in_english() {
    let (_dir, db) = store();
    let at = ["--now", "2026-03-09T10:00:00+08:00"];
    let zh = caseflow(
        &db,
        &[&["todo", "--unit", "loc-chaoyang"][..], &at[..]].concat(),
    );
    insta::assert_snapshot!("todo_loc_chaoyang_zh", zh);
    let en = caseflow(
        &db,
        &[
            &["todo", "--unit", "loc-chaoyang", "--lang", "en"][..],
            &at[..],
        ]
        .concat(),
    );
    insta::assert_snapshot!("todo_loc_chaoyang_en", en);
    let rooms = caseflow(&db, &[&["todo", "--level", "room"][..], &at[..]].concat());
    insta::assert_snapshot!("todo_rooms_zh", rooms);
}

#[test]
fn the_audit_report_in_markdown_shows_what_was_decided_by_whom_when_with_both_hashes() {
    let (_dir, db) = store();
    let md = caseflow(
        &db,
        &[
            "audit",
            "--case",
            &case_id(3).to_string(),
            "--format",
            "md",
            "--now",
            "2026-03-09T10:00:00+08:00",
        ],
    );
    insta::assert_snapshot!("audit_case_3_md", md);
    for column in ["issued", "recorded", "decided", "command", "prev hash"] {
        assert!(md.contains(column), "the Markdown shows {column}");
    }
}

#[test]
fn a_range_report_says_the_stage_at_the_end_of_the_range_and_now() {
    let (_dir, db) = store();
    let md = caseflow(
        &db,
        &[
            "audit",
            "--from",
            "2026-03-02T09:00:00+08:00",
            "--to",
            "2026-03-02T12:30:00+08:00",
        ],
    );
    assert!(md.contains("- Stage at the end of the range: "), "{md}");
    assert!(md.contains("- Stage now: "), "{md}");
}

#[test]
fn a_case_asked_for_before_it_existed_says_so() {
    let (_dir, db) = store();
    let out = Bin::cargo_bin("caseflow")
        .expect("the caseflow binary")
        .args(["case", &case_id(3).to_string(), "--as-of", "2026-03-01"])
        .arg("--db")
        .arg(&db)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("did not exist yet"), "{err}");
}

fn caseflow_with_input(db: &Path, args: &[&str], input: &str) -> (Option<i32>, String, String) {
    let out = Bin::cargo_bin("caseflow")
        .expect("the caseflow binary")
        .args(args)
        .arg("--db")
        .arg(db)
        .write_stdin(input)
        .output()
        .expect("runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_operator_lists_what_may_happen_and_issues_it_once_even_when_retrying() {
    let (_dir, db) = store();
    let id = case_id(1).to_string();
    let next: serde_json::Value = serde_json::from_str(&caseflow(
        &db,
        &["next", &id, "--actor", "room-2/case_officer"],
    ))
    .expect("next JSON");
    let accept = next["next"]
        .as_array()
        .expect("a list")
        .iter()
        .find(|n| n["command"] == "AcceptCase")
        .expect("room 2 may accept the reported case");
    assert_eq!(accept["label"], "受理");
    let draft = accept["draft"].to_string();
    let args = [
        "command",
        "--actor",
        "room-2/case_officer",
        "--command-id",
        "0191b0a0-0000-7000-8000-0000000000aa",
    ];
    let (code, first, _) = caseflow_with_input(&db, &args, &draft);
    assert_eq!(code, Some(0), "{first}");
    let first: serde_json::Value = serde_json::from_str(&first).expect("outcome");
    assert_eq!(first["events"], serde_json::json!(["CaseAccepted"]));
    assert_eq!(first["replayed"], false);
    // The same command id again: the first result, nothing written.
    let (code, again, _) = caseflow_with_input(&db, &args, &draft);
    assert_eq!(code, Some(0));
    let again: serde_json::Value = serde_json::from_str(&again).expect("outcome");
    assert_eq!(again["replayed"], true);
    assert_eq!(again["version"], first["version"]);
    // A refused command is a caller error (exit 3) with its reason, and writes nothing.
    let (code, refused, stderr) = caseflow_with_input(
        &db,
        &["command", "--actor", "vil-dongyuan/information_officer"],
        &draft,
    );
    assert_eq!(code, Some(3), "{stderr}");
    let refused: serde_json::Value = serde_json::from_str(&refused).expect("error JSON");
    assert_eq!(refused["error"], "caller");
    // Not an actor, not a command: usage errors (exit 2), never a panic.
    let (code, _, stderr) = caseflow_with_input(&db, &["command", "--actor", "room-2"], &draft);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("is not an actor"), "{stderr}");
    let (code, _, stderr) = caseflow_with_input(
        &db,
        &["command", "--actor", "room-2/leader"],
        "{\"type\":\"Nope\"}",
    );
    assert_eq!(code, Some(2));
    assert!(stderr.contains("is not a command"), "{stderr}");
}

#[test]
fn cases_are_numbered_per_year_in_log_order_and_the_numbers_survive_a_restart() {
    let (_dir, db) = store();
    let by_number: serde_json::Value =
        serde_json::from_str(&caseflow(&db, &["case", "2026-0002", "--json"])).expect("case JSON");
    assert_eq!(by_number["case_id"], case_id(2).to_string());
    assert_eq!(by_number["case_number"], "2026-0002");
    // A report after a restart continues the year's sequence; a report whose district date
    // is already the next year (16:30 UTC on 31 December is 00:30 in China) starts it.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let clock = Arc::new(ManualClock::new(t0() + Duration::days(2)));
        let config = EngineConfig::sqlite(&db, District::sample().expect("sample"))
            .clock(clock.clone())
            .ids(Arc::new(SeededIds::new(12)));
        let engine = Engine::open(config).await.expect("engine");
        let officer = Actor::new("vil-dongyuan", Role::InformationOfficer);
        let at = t0() + Duration::days(2);
        let c = report(
            4,
            CaseKind::Complaint,
            "vil-dongyuan",
            "loc-chaoyang",
            "又一件",
        );
        run(&engine, &clock, at, officer.clone(), c.into()).await;
        let new_year = Utc.with_ymd_and_hms(2026, 12, 31, 16, 30, 0).unwrap();
        let c = report(
            5,
            CaseKind::Complaint,
            "vil-dongyuan",
            "loc-chaoyang",
            "新年第一件",
        );
        run(&engine, &clock, new_year, officer, c.into()).await;
        let numbers = engine
            .case_numbers(&[case_id(4), case_id(5)])
            .await
            .expect("numbers");
        assert_eq!(numbers[&case_id(4)].to_string(), "2026-0004");
        assert_eq!(numbers[&case_id(5)].to_string(), "2027-0001");
    });
    let err = Bin::cargo_bin("caseflow")
        .expect("binary")
        .args(["case", "2026-0999", "--db"])
        .arg(&db)
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&err.stderr).contains("no case is numbered 2026-0999"));
}
