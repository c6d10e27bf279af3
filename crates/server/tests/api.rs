//! The JSON API against a server on a random local port: every endpoint, every error class,
//! idempotent retries, and the query and command rules per role.

mod support;

use caseflow::domain::{Role, Stage};
use serde_json::{Value, json};
use support::{TestServer, report_body, test_config};
use uuid::Uuid;

fn problem_type(v: &Value) -> &str {
    v["type"].as_str().unwrap_or_default()
}

async fn read(r: reqwest::Response) -> (u16, Value, String) {
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, r.json().await.unwrap_or(Value::Null), ct)
}

fn expect(r: (u16, Value, String), status: u16, kind: &str) {
    assert_eq!(r.0, status, "{kind}: {}", r.1);
    assert_eq!(problem_type(&r.1), format!("/problems/{kind}"), "{}", r.1);
    assert!(
        r.2.starts_with("application/problem+json"),
        "{kind}: {}",
        r.2
    );
}

#[tokio::test]
async fn a_report_retried_with_the_same_key_writes_once_and_returns_the_same_case() {
    let s = TestServer::start().await;
    let officer = s.staff("loc-zhongshan", Role::CaseOfficer);
    let key = Uuid::new_v4();
    let body = report_body("loc-zhongshan", Some("vil-renmin"));
    let first = s
        .post_json(&officer, "/api/v1/cases", Some(key), &body)
        .await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["replayed"], false);
    assert_eq!(first["events"], json!(["CaseReported"]));
    let head = s.engine.store().head_position().await.unwrap();
    let again = s
        .post_json(&officer, "/api/v1/cases", Some(key), &body)
        .await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["replayed"], true);
    assert_eq!(again["case_id"], first["case_id"]);
    assert_eq!(
        s.engine.store().head_position().await.unwrap(),
        head,
        "the retry wrote nothing"
    );
}

#[tokio::test]
async fn a_command_retried_with_the_same_key_is_a_replay_and_a_reused_key_on_another_case_is_refused()
 {
    let s = TestServer::start().await;
    let officer = s.staff("loc-zhongshan", Role::CaseOfficer);
    let case = s
        .report(&officer, "loc-zhongshan", Some("vil-renmin"))
        .await;
    let other = s.report(&officer, "loc-zhongshan", None).await;
    let key = Uuid::new_v4();
    let accept = json!({ "type": "AcceptCase", "case_id": case.to_string() });
    let path = format!("/api/v1/cases/{case}/commands");
    let r: Value = s
        .post_json(&officer, &path, Some(key), &accept)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["replayed"], false);
    assert_eq!(r["stage"], "classification");
    let r: Value = s
        .post_json(&officer, &path, Some(key), &accept)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["replayed"], true);
    assert_eq!(s.state(case).await.version(), 2);
    let reuse = json!({ "type": "AcceptCase", "case_id": other.to_string() });
    let r = s
        .post_json(
            &officer,
            &format!("/api/v1/cases/{other}/commands"),
            Some(key),
            &reuse,
        )
        .await;
    expect(read(r).await, 422, "idempotency-key-reused");
}

#[tokio::test]
async fn every_error_class_is_a_problem_document_with_its_stable_type() {
    let mut config = test_config();
    config.body_limit_bytes = 4096;
    let s = TestServer::with_config(config).await;
    let officer = s.staff("loc-zhongshan", Role::CaseOfficer);
    let village = s.staff("vil-renmin", Role::InformationOfficer);
    let case = s
        .report(&officer, "loc-zhongshan", Some("vil-renmin"))
        .await;
    let commands = format!("/api/v1/cases/{case}/commands");
    let accept = json!({ "type": "AcceptCase", "case_id": case.to_string() });
    let key = || Some(Uuid::new_v4());

    // 401: no credential, and a bad token.
    expect(
        read(s.get(None, "/api/v1/todo/mine").await).await,
        401,
        "not-authenticated",
    );
    expect(
        read(s.get(Some("cf_nope"), "/api/v1/me").await).await,
        401,
        "not-authenticated",
    );
    // 403 from the domain (a village officer does not decide intake) and from a query rule.
    expect(
        read(s.post_json(&village, &commands, key(), &accept).await).await,
        403,
        "forbidden",
    );
    expect(
        read(s.get(Some(&village), "/api/v1/todo/units/room-1").await).await,
        403,
        "forbidden",
    );
    // 404: unknown path, unknown case, malformed case id, unknown unit.
    expect(
        read(s.get(Some(&officer), "/api/v1/nothing-here").await).await,
        404,
        "not-found",
    );
    let missing = Uuid::new_v4();
    expect(
        read(
            s.get(Some(&officer), &format!("/api/v1/cases/{missing}"))
                .await,
        )
        .await,
        404,
        "not-found",
    );
    expect(
        read(s.get(Some(&officer), "/api/v1/cases/not-a-uuid").await).await,
        404,
        "not-found",
    );
    expect(
        read(s.get(Some(&officer), "/api/v1/todo/units/room-99").await).await,
        404,
        "not-found",
    );
    // 405.
    let delete = s
        .http
        .delete(s.url("/api/v1/me"))
        .bearer_auth(&officer)
        .send()
        .await
        .unwrap();
    expect(read(delete).await, 405, "method-not-allowed");
    // 400: malformed JSON, a missing or malformed idempotency key, a bad query.
    let raw = s
        .http
        .post(s.url(&commands))
        .bearer_auth(&officer)
        .header("content-type", "application/json")
        .header("Idempotency-Key", Uuid::new_v4().to_string())
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect(read(raw).await, 400, "bad-request");
    expect(
        read(s.post_json(&officer, &commands, None, &accept).await).await,
        400,
        "idempotency-key-missing",
    );
    let bad_key = s
        .http
        .post(s.url(&commands))
        .bearer_auth(&officer)
        .header("Idempotency-Key", "twelve")
        .json(&accept)
        .send()
        .await
        .unwrap();
    expect(read(bad_key).await, 400, "idempotency-key-missing");
    expect(
        read(s.get(Some(&officer), "/api/v1/todo/mine?limit=many").await).await,
        400,
        "bad-request",
    );
    // 415: not JSON.
    let text = s
        .http
        .post(s.url(&commands))
        .bearer_auth(&officer)
        .header("content-type", "text/plain")
        .header("Idempotency-Key", Uuid::new_v4().to_string())
        .body("AcceptCase")
        .send()
        .await
        .unwrap();
    expect(read(text).await, 415, "unsupported-media-type");
    // 413: over the body limit.
    let mut big = report_body("loc-zhongshan", None);
    big["summary"] = Value::String("长".repeat(5000));
    expect(
        read(s.post_json(&officer, "/api/v1/cases", key(), &big).await).await,
        413,
        "body-too-large",
    );
    // 422: a value the domain does not accept, and a body that is not a command.
    let mut unknown = report_body("loc-nowhere", None);
    unknown["village"] = Value::Null;
    expect(
        read(
            s.post_json(&officer, "/api/v1/cases", key(), &unknown)
                .await,
        )
        .await,
        422,
        "invalid-input",
    );
    expect(
        read(
            s.post_json(&officer, &commands, key(), &json!({"type": "Dance"}))
                .await,
        )
        .await,
        422,
        "invalid-input",
    );
    let elsewhere = json!({ "type": "AcceptCase", "case_id": Uuid::new_v4().to_string() });
    expect(
        read(s.post_json(&officer, &commands, key(), &elsewhere).await).await,
        422,
        "invalid-input",
    );
    // 409: the domain refuses a command in the wrong stage.
    let close = json!({ "type": "CloseCase", "case_id": case.to_string(), "outcome": "answered", "summary": "x" });
    let leader = s.staff("room-1", Role::Leader);
    expect(
        read(s.post_json(&leader, &commands, key(), &close).await).await,
        409,
        "command-rejected",
    );
    // Nothing of the refused requests was written.
    assert_eq!(s.state(case).await.version(), 1);
}

#[tokio::test]
async fn refusals_say_nothing_but_their_type() {
    let s = TestServer::start().await;
    let village = s.staff("vil-renmin", Role::InformationOfficer);
    for path in [
        "/api/v1/todo/units/room-1",
        "/api/v1/todo/zones/zone-1",
        "/api/v1/verify",
        "/api/v1/export/xes",
    ] {
        let r = s.get(Some(&village), path).await;
        assert_eq!(r.status(), 403, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v.as_object().unwrap().len(),
            3,
            "only type, title and status: {v}"
        );
    }
    let v: Value = s.get(None, "/api/v1/stats").await.json().await.unwrap();
    assert_eq!(v.as_object().unwrap().len(), 3, "{v}");
}

#[tokio::test]
async fn a_rate_limited_token_gets_429_with_retry_after() {
    let mut config = test_config();
    config.rate_limit_per_minute = 1;
    config.rate_limit_burst = 3;
    let s = TestServer::with_config(config).await;
    let token = s.auditor();
    let other = s.admin();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(s.get(Some(&token), "/api/v1/me").await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    let r = s.get(Some(&token), "/api/v1/me").await;
    assert!(r.headers().get("retry-after").is_some());
    expect(read(r).await, 429, "rate-limited");
    // The limit is per token.
    assert_eq!(s.get(Some(&other), "/api/v1/me").await.status(), 200);
}

/// Who may read what: the table of docs/server.md, for every role and endpoint.
#[tokio::test]
async fn the_query_rules_per_role_and_endpoint() {
    let s = TestServer::start().await;
    let officer = s.staff("loc-zhongshan", Role::CaseOfficer);
    let case = s
        .report(&officer, "loc-zhongshan", Some("vil-renmin"))
        .await;
    let roles: [(&str, String); 9] = [
        ("room-1 leader (zone-1)", s.staff("room-1", Role::Leader)),
        ("room-1 officer", s.staff("room-1", Role::CaseOfficer)),
        ("room-3 leader (zone-2)", s.staff("room-3", Role::Leader)),
        ("team-1 officer", s.staff("team-1", Role::CaseOfficer)),
        ("zhongshan officer", officer.clone()),
        (
            "renmin village officer",
            s.staff("vil-renmin", Role::InformationOfficer),
        ),
        (
            "other village officer",
            s.staff("vil-dongyuan", Role::InformationOfficer),
        ),
        ("auditor", s.auditor()),
        ("admin", s.admin()),
    ];
    let dept = s
        .engine
        .district()
        .org
        .departments()
        .find(|d| d.team.as_ref().map(|t| t.as_str()) == Some("team-1"))
        .map(|d| d.id.to_string())
        .expect("team-1 is stationed in a department");
    let range = "/api/v1/audit?from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z";
    #[rustfmt::skip]
    let table: Vec<(String, [u16; 9])> = vec![
        ("/api/v1/me".into(),                             [200, 200, 200, 200, 200, 200, 200, 200, 200]),
        ("/api/v1/todo/mine".into(),                      [200, 200, 200, 200, 200, 200, 200, 403, 403]),
        ("/api/v1/todo/units/room-1".into(),              [200, 200, 403, 403, 403, 403, 403, 200, 403]),
        ("/api/v1/todo/units/loc-zhongshan".into(),       [200, 403, 403, 403, 200, 403, 403, 200, 403]),
        ("/api/v1/todo/zones/zone-1".into(),              [200, 403, 403, 403, 403, 403, 403, 200, 403]),
        ("/api/v1/todo/levels/village".into(),            [200, 403, 200, 403, 403, 403, 403, 200, 403]),
        (format!("/api/v1/todo/departments/{dept}"),      [200, 403, 403, 200, 403, 403, 403, 200, 403]),
        // A case in intake: any room or team may decide it, so they read it too; a village
        // other than the case's may not.
        (format!("/api/v1/cases/{case}"),                 [200, 200, 200, 200, 200, 200, 403, 200, 403]),
        (format!("/api/v1/cases/{case}/next"),            [200, 200, 200, 200, 200, 200, 403, 200, 403]),
        (format!("/api/v1/cases/{case}/timeline"),        [200, 200, 200, 200, 200, 200, 403, 200, 403]),
        (format!("/api/v1/cases/{case}/audit"),           [200, 200, 200, 200, 200, 200, 403, 200, 403]),
        (format!("/api/v1/cases/{case}/as-of?version=1"), [200, 200, 200, 200, 200, 200, 403, 200, 403]),
        ("/api/v1/stats".into(),                          [200, 200, 200, 403, 403, 403, 403, 200, 403]),
        ("/api/v1/verify".into(),                         [403, 403, 403, 403, 403, 403, 403, 200, 200]),
        ("/api/v1/export/ocel".into(),                    [403, 403, 403, 403, 403, 403, 403, 200, 403]),
        (range.into(),                                    [403, 403, 403, 403, 403, 403, 403, 200, 403]),
        ("/metrics".into(),                               [403, 403, 403, 403, 403, 403, 403, 200, 200]),
    ];
    let mut wrong = Vec::new();
    for (path, expected) in &table {
        for ((who, token), want) in roles.iter().zip(expected) {
            let got = s.get(Some(token), path).await.status().as_u16();
            if got != *want {
                wrong.push(format!("{who} GET {path}: {got}, expected {want}"));
            }
        }
        assert_eq!(
            s.get(None, path).await.status(),
            401,
            "anonymous GET {path}"
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Who may issue what: the domain's authority rules (docs/reference.md) reach the API with
/// the signed-in user's unit and role, and auditors and admins issue nothing. Each cell
/// reports a case of its own, so one role's command never changes another's case.
#[tokio::test]
async fn the_command_rules_per_role_and_endpoint() {
    let s = TestServer::start().await;
    let desk = s.staff("loc-zhongshan", Role::CaseOfficer);
    let roles: [(&str, String); 9] = [
        ("room-1 leader (zone-1)", s.staff("room-1", Role::Leader)),
        ("room-1 officer", s.staff("room-1", Role::CaseOfficer)),
        ("room-3 leader (zone-2)", s.staff("room-3", Role::Leader)),
        ("team-1 officer", s.staff("team-1", Role::CaseOfficer)),
        ("zhongshan officer", desk.clone()),
        (
            "renmin village officer",
            s.staff("vil-renmin", Role::InformationOfficer),
        ),
        (
            "other village officer",
            s.staff("vil-dongyuan", Role::InformationOfficer),
        ),
        ("auditor", s.auditor()),
        ("admin", s.admin()),
    ];
    // ReportCase: anyone, but a village officer only for its own village; AcceptCase: any
    // room or team, or the case's own locality, and no village officer.
    let report = [201, 201, 201, 201, 201, 201, 403, 403, 403];
    let accept = [200, 200, 200, 200, 200, 403, 403, 403, 403];
    let mut wrong = Vec::new();
    for (((who, token), want_report), want_accept) in roles.iter().zip(report).zip(accept) {
        let body = report_body("loc-zhongshan", Some("vil-renmin"));
        let r = s
            .post_json(token, "/api/v1/cases", Some(Uuid::new_v4()), &body)
            .await;
        if r.status().as_u16() != want_report {
            wrong.push(format!(
                "{who} POST /api/v1/cases: {}, expected {want_report}",
                r.status()
            ));
        }
        let case = s.report(&desk, "loc-zhongshan", Some("vil-renmin")).await;
        let head = s.engine.store().head_position().await.unwrap();
        let r = s
            .post_json(
                token,
                &format!("/api/v1/cases/{case}/commands"),
                Some(Uuid::new_v4()),
                &json!({ "type": "AcceptCase", "case_id": case.to_string() }),
            )
            .await;
        let got = r.status().as_u16();
        if got != want_accept {
            wrong.push(format!("{who} AcceptCase: {got}, expected {want_accept}"));
        }
        if got == 403 {
            let (_, problem, _) = read(r).await;
            assert_eq!(problem_type(&problem), "/problems/forbidden", "{who}");
            assert_eq!(
                s.engine.store().head_position().await.unwrap(),
                head,
                "{who}: a refused command wrote nothing"
            );
        }
    }
    let case = s.report(&desk, "loc-zhongshan", Some("vil-renmin")).await;
    for path in [
        "/api/v1/cases".to_owned(),
        format!("/api/v1/cases/{case}/commands"),
    ] {
        let r = s
            .http
            .post(s.url(&path))
            .header("idempotency-key", Uuid::new_v4().to_string())
            .json(&json!({ "type": "AcceptCase", "case_id": case.to_string() }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "anonymous POST {path}");
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn no_view_shows_the_reporters_contact() {
    let s = TestServer::start().await;
    let officer = s.staff("loc-zhongshan", Role::CaseOfficer);
    let case = s
        .report(&officer, "loc-zhongshan", Some("vil-renmin"))
        .await;
    let auditor = s.auditor();
    for path in [
        format!("/api/v1/cases/{case}"),
        format!("/api/v1/cases/{case}/timeline"),
        format!("/api/v1/cases/{case}/as-of?version=1"),
        format!("/api/v1/cases/{case}/audit"),
        format!("/api/v1/cases/{case}/audit?format=md"),
        "/api/v1/todo/levels/locality".to_owned(),
        "/api/v1/export/ocel".to_owned(),
        "/api/v1/export/xes".to_owned(),
        "/api/v1/audit?from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z".to_owned(),
    ] {
        let r = s.get(Some(&auditor), &path).await;
        assert_eq!(r.status(), 200, "{path}");
        let text = r.text().await.unwrap();
        assert!(
            !text.contains("13800000000") && !text.contains("张三"),
            "{path} shows the contact"
        );
    }
    let v: Value = s
        .get(Some(&auditor), &format!("/api/v1/cases/{case}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["reporter_named"], true);
    assert_eq!(v["case"]["reporter"]["contact"], "withheld");
}

#[tokio::test]
async fn a_case_walks_from_report_to_close_through_the_api_with_the_drafts_it_offers() {
    let s = TestServer::start().await;
    let officer = s.staff("loc-zhongshan", Role::CaseOfficer);
    let case = s
        .report(&officer, "loc-zhongshan", Some("vil-renmin"))
        .await;
    let mut steps = 0;
    while s.state(case).await.stage().is_open() && steps < 30 {
        let state = s.state(case).await;
        let d = s.engine.district();
        let ctx =
            caseflow::domain::NextContext::new(&d.org, &d.calendar, &d.policies, s.clock_now());
        let next = caseflow::domain::next_commands(&state, &ctx);
        // Forward: the first command that discharges a duty, and not one that ends the case
        // early.
        let pick = next
            .iter()
            .filter(|n| n.draft.is_some() && !n.discharges.is_empty())
            .map(|n| n.kind.name())
            .find(|k| {
                !matches!(
                    *k,
                    "UrgeOverdue" | "DeclineCase" | "TransferCase" | "MergeCase" | "ReopenCase"
                )
            })
            .expect("a forward step");
        let (status, body) = s.issue_next(case, pick).await;
        assert_eq!(status, 200, "{pick}: {body}");
        s.clock.advance(chrono::Duration::hours(2));
        steps += 1;
    }
    assert_eq!(
        s.state(case).await.stage(),
        Stage::Closed,
        "closed in {steps} steps"
    );
}

#[tokio::test]
async fn a_case_view_lists_exactly_the_commands_the_reader_may_issue() {
    let s = TestServer::start().await;
    let officer = s.staff("loc-zhongshan", Role::CaseOfficer);
    let case = s
        .report(&officer, "loc-zhongshan", Some("vil-renmin"))
        .await;
    let d = s.engine.district();
    let ctx = caseflow::domain::NextContext::new(&d.org, &d.calendar, &d.policies, s.clock_now());
    let next = caseflow::domain::next_commands(&s.state(case).await, &ctx);
    for (unit, role) in [
        ("room-1", Role::Leader),
        ("loc-zhongshan", Role::CaseOfficer),
        ("vil-renmin", Role::InformationOfficer),
    ] {
        let actor = caseflow::domain::Actor::new(unit, role);
        let expected: Vec<&str> = next
            .iter()
            .filter(|n| n.may_issue(&actor))
            .map(|n| n.kind.name())
            .collect();
        let token = s.staff(unit, role);
        let v: Value = s
            .get(Some(&token), &format!("/api/v1/cases/{case}"))
            .await
            .json()
            .await
            .unwrap();
        let listed: Vec<&str> = v["next_commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["kind"].as_str().unwrap())
            .collect();
        assert_eq!(listed, expected, "{unit}/{role}");
        let with_options: Vec<Value> = s
            .get(Some(&token), &format!("/api/v1/cases/{case}/next"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(with_options.len(), expected.len());
    }
}

#[tokio::test]
async fn lists_page_judge_overdue_at_the_given_time_and_the_as_of_view_replays_history() {
    let s = TestServer::start().await;
    let officer = s.staff("loc-zhongshan", Role::CaseOfficer);
    for _ in 0..3 {
        s.report(&officer, "loc-zhongshan", None).await;
    }
    let page: Value = s
        .get(Some(&officer), "/api/v1/todo/mine?limit=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 3);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["overdue"], 0);
    assert_eq!(page["items"][0]["action"], "decide_intake");
    assert_eq!(page["items"][0]["locality_name"], "中山街道纪工委");
    // Human numbers, one per report of the district year.
    let whole: Value = s
        .get(Some(&officer), "/api/v1/todo/mine")
        .await
        .json()
        .await
        .unwrap();
    let mut numbers: Vec<&str> = whole["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["case_number"].as_str().unwrap())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, ["2026-0001", "2026-0002", "2026-0003"]);
    let late: Value = s
        .get(
            Some(&officer),
            "/api/v1/todo/mine?now=2027-01-01T00:00:00Z&offset=2",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(late["overdue"], 3);
    assert_eq!(late["items"].as_array().unwrap().len(), 1);
    let en: Value = s
        .get(Some(&officer), "/api/v1/todo/mine?lang=en&limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(en["items"][0]["action_label"], "decide intake");
    let case = page["items"][0]["case_id"].as_str().unwrap().to_owned();
    let v0: Value = s
        .get(
            Some(&officer),
            &format!("/api/v1/cases/{case}/as-of?version=0"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v0["case"], Value::Null);
    let now: Value = s
        .get(Some(&officer), &format!("/api/v1/cases/{case}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now["case_number"], page["items"][0]["case_number"]);
    let t: Value = s
        .get(
            Some(&officer),
            &format!("/api/v1/cases/{case}/as-of?time=2026-03-02T01:00:00Z"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(t["version"], 1);
    // Before the report the case did not exist: 404, not a server error.
    let before = s
        .get(
            Some(&officer),
            &format!("/api/v1/cases/{case}/as-of?time=2000-01-01T00:00:00Z"),
        )
        .await;
    expect(read(before).await, 404, "not-found");
    let both = s
        .get(
            Some(&officer),
            &format!("/api/v1/cases/{case}/as-of?version=1&time=2026-03-02T01:00:00Z"),
        )
        .await;
    assert_eq!(both.status(), 400);
    let beyond = s
        .get(
            Some(&officer),
            &format!("/api/v1/cases/{case}/as-of?version=9"),
        )
        .await;
    assert_eq!(beyond.status(), 404);
}

#[tokio::test]
async fn exports_stream_whole_documents_and_verify_holds() {
    let s = TestServer::start().await;
    let officer = s.staff("loc-zhongshan", Role::CaseOfficer);
    for _ in 0..5 {
        s.report(&officer, "loc-zhongshan", None).await;
    }
    let auditor = s.auditor();
    let xes = s.get(Some(&auditor), "/api/v1/export/xes").await;
    assert_eq!(xes.headers()["content-type"], "application/xml");
    let text = xes.text().await.unwrap();
    assert_eq!(
        text.matches("<trace>").count(),
        5,
        "{}",
        &text[..text.len().min(400)]
    );
    let ocel: Value = s
        .get(Some(&auditor), "/api/v1/export/ocel")
        .await
        .json()
        .await
        .unwrap();
    assert!(ocel["events"].as_array().unwrap().len() >= 5);
    let v: Value = s
        .get(Some(&auditor), "/api/v1/verify")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["events_checked"], 5);
    let md = s
        .get(
            Some(&auditor),
            "/api/v1/audit?from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z&format=md",
        )
        .await;
    assert!(
        md.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/markdown")
    );
    let stats: Value = s
        .get(Some(&auditor), "/api/v1/stats")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stats["cases"], 5);
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_documents_every_api_route() {
    let s = TestServer::start().await;
    let doc: Value = s.get(None, "/api/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for p in [
        "/api/v1/me",
        "/api/v1/todo/mine",
        "/api/v1/todo/units/{unit}",
        "/api/v1/todo/levels/{level}",
        "/api/v1/todo/zones/{zone}",
        "/api/v1/todo/departments/{department}",
        "/api/v1/cases",
        "/api/v1/cases/{case_id}",
        "/api/v1/cases/{case_id}/commands",
        "/api/v1/cases/{case_id}/next",
        "/api/v1/cases/{case_id}/timeline",
        "/api/v1/cases/{case_id}/as-of",
        "/api/v1/cases/{case_id}/audit",
        "/api/v1/stats",
        "/api/v1/verify",
        "/api/v1/audit",
        "/api/v1/export/xes",
        "/api/v1/export/ocel",
        "/api/v1/events",
        "/open311/v2/services.json",
        "/open311/v2/requests.json",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains(&p), "{p} is not documented");
    }
    let page = s.get(None, "/problems/forbidden").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Forbidden"));
}

#[tokio::test]
async fn liveness_readiness_and_metrics() {
    let s = TestServer::start().await;
    let officer = s.staff("loc-zhongshan", Role::CaseOfficer);
    s.report(&officer, "loc-zhongshan", None).await;
    assert_eq!(s.get(None, "/healthz").await.status(), 200);
    let ready: Value = s.get(None, "/readyz").await.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    let text = s
        .get(Some(&s.admin()), "/metrics")
        .await
        .text()
        .await
        .unwrap();
    for metric in [
        "caseflow_commands_total",
        "caseflow_http_request_duration_seconds",
        "caseflow_store_append_events",
    ] {
        assert!(text.contains(metric), "{metric} missing from\n{text}");
    }
    assert!(text.contains("outcome=\"written\""));
}
