//! The live feed (server-sent events), Open311 intake, and the layers that guard every
//! request (panics, timeouts, graceful shutdown).

mod support;

use std::time::Duration;

use caseflow::domain::{Channel, Reporter, Role};
use futures::StreamExt;
use serde_json::Value;
use support::{TestServer, test_config};
use uuid::Uuid;

/// Reads server-sent events until one `change` arrives; bounded so a missing event fails
/// instead of hanging.
async fn next_change(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buffer: &mut String,
) -> Value {
    let read = async {
        loop {
            if let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                if block.lines().any(|l| l == "event: change") {
                    let data = block
                        .lines()
                        .find_map(|l| l.strip_prefix("data: "))
                        .unwrap();
                    return serde_json::from_str(data).unwrap();
                }
                continue;
            }
            let chunk = stream.next().await.expect("the feed ended").unwrap();
            buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("no change arrived")
}

#[tokio::test]
async fn the_live_feed_tells_each_reader_of_the_changes_they_may_see() {
    let s = TestServer::start().await;
    let zone2 = s.staff("room-3", Role::Leader);
    let zone1_officer = s.staff("loc-zhongshan", Role::CaseOfficer);
    let zone2_officer = s.staff("loc-chengdong", Role::CaseOfficer);
    let auditor = s.auditor();
    let open = |token: String| {
        let http = s.http.clone();
        let url = s.url("/api/v1/events");
        async move {
            let r = http.get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["content-type"], "text/event-stream");
            r.bytes_stream()
        }
    };
    let mut room3 = Box::pin(open(zone2.clone()).await);
    let mut audit = Box::pin(open(auditor).await);
    let (mut b1, mut b2) = (String::new(), String::new());
    let first = s.report(&zone1_officer, "loc-zhongshan", None).await;
    let second = s.report(&zone2_officer, "loc-chengdong", None).await;
    // The auditor sees both, in order; room-3 (zone 2) sees only the zone-2 case.
    let a1 = next_change(&mut audit, &mut b2).await;
    let a2 = next_change(&mut audit, &mut b2).await;
    assert_eq!(a1["case_id"], first.to_string());
    assert_eq!(a2["case_id"], second.to_string());
    assert_eq!(a1["event_type"], "CaseReported");
    let r = next_change(&mut room3, &mut b1).await;
    assert_eq!(
        r["case_id"],
        second.to_string(),
        "room-3 must not see zone 1's case"
    );
    assert!(
        r["units"]
            .as_array()
            .unwrap()
            .contains(&Value::from("room-3"))
    );
    // Admins have no feed.
    assert_eq!(
        s.get(Some(&s.admin()), "/api/v1/events").await.status(),
        403
    );
}

#[tokio::test]
async fn open311_lists_services_files_a_request_and_reports_its_status() {
    let s = TestServer::start().await;
    let services: Vec<Value> = s
        .get(None, "/open311/v2/services.json")
        .await
        .json()
        .await
        .unwrap();
    let codes: Vec<&str> = services
        .iter()
        .map(|v| v["service_code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["complaint", "consultation", "suggestion", "problem_clue"]
    );
    assert_eq!(services[0]["service_name"], "投诉");
    let def: Value = s
        .get(None, "/open311/v2/services/complaint.json")
        .await
        .json()
        .await
        .unwrap();
    let village = &def["attributes"][0];
    assert_eq!(village["code"], "village");
    assert_eq!(village["required"], true);
    assert_eq!(village["values"].as_array().unwrap().len(), 103);

    let app = s.staff("loc-zhongshan", Role::CaseOfficer);
    let form = [
        ("api_key", app.as_str()),
        ("service_code", "complaint"),
        ("description", "路灯坏了一个月没人修"),
        ("address_string", "人民路 12 号"),
        ("first_name", "三"),
        ("last_name", "张"),
        ("phone", "13800000000"),
        ("attribute[village]", "vil-renmin"),
        ("attribute[focus_area]", "living_environment"),
    ];
    let r = s
        .http
        .post(s.url("/open311/v2/requests.json"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let created: Vec<Value> = r.json().await.unwrap();
    let id = created[0]["service_request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let case = s
        .state(caseflow::domain::CaseId::new(Uuid::parse_str(&id).unwrap()))
        .await;
    let c = case.case().unwrap();
    assert_eq!(c.channel, Channel::PettyPowerMiniProgram);
    assert_eq!(c.locality.as_str(), "loc-zhongshan");
    assert!(c.summary.contains("人民路 12 号"));
    // The contact is sealed before it is stored; a zone room's officer may read it back.
    assert!(matches!(&c.reporter, Reporter::Sealed(_)));
    let room = s
        .engine
        .district()
        .org
        .zone(&c.zone)
        .and_then(|z| z.rooms.first().cloned())
        .unwrap();
    let contact = s
        .engine
        .reveal_reporter_contact(
            c.id,
            caseflow::domain::Actor::new(room, Role::CaseOfficer),
            "call back",
        )
        .await
        .unwrap();
    assert_eq!(contact.expose_phone(), "13800000000");

    let status: Vec<Value> = s
        .get(None, &format!("/open311/v2/requests/{id}.json"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(status[0]["status"], "open");
    assert_eq!(status[0]["status_notes"], "受理");
    let text = s
        .get(None, &format!("/open311/v2/requests/{id}.json"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !text.contains("13800000000") && !text.contains("路灯"),
        "status shows no contact and no summary"
    );
    let many: Vec<Value> = s
        .get(
            None,
            &format!(
                "/open311/v2/requests.json?service_request_id={id},{}",
                Uuid::new_v4()
            ),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(many.len(), 1);
}

#[tokio::test]
async fn open311_errors_use_the_standards_format() {
    let s = TestServer::start().await;
    let app = s.staff("loc-zhongshan", Role::CaseOfficer);
    let post = |form: Vec<(&'static str, String)>| {
        let req = s.http.post(s.url("/open311/v2/requests.json")).form(&form);
        async move { req.send().await.unwrap() }
    };
    let cases = [
        (
            vec![
                ("service_code", "complaint".to_owned()),
                ("description", "x".to_owned()),
                ("attribute[village]", "vil-renmin".to_owned()),
            ],
            401,
        ),
        (
            vec![
                ("api_key", "cf_wrong".to_owned()),
                ("service_code", "complaint".to_owned()),
            ],
            401,
        ),
        (
            vec![
                ("api_key", app.clone()),
                ("service_code", "parking".to_owned()),
                ("description", "x".to_owned()),
            ],
            404,
        ),
        (
            vec![
                ("api_key", app.clone()),
                ("service_code", "complaint".to_owned()),
                ("description", "x".to_owned()),
                ("attribute[village]", "room-1".to_owned()),
            ],
            422,
        ),
        (
            vec![
                ("api_key", app.clone()),
                ("service_code", "complaint".to_owned()),
                ("attribute[village]", "vil-renmin".to_owned()),
            ],
            422,
        ),
        (
            vec![
                ("api_key", app.clone()),
                ("jurisdiction_id", "elsewhere".to_owned()),
                ("service_code", "complaint".to_owned()),
            ],
            404,
        ),
        // A village officer of another village may not report for this one: the domain says no.
        (
            vec![
                ("api_key", s.staff("vil-dongyuan", Role::InformationOfficer)),
                ("service_code", "complaint".to_owned()),
                ("description", "x".to_owned()),
                ("attribute[village]", "vil-renmin".to_owned()),
            ],
            403,
        ),
    ];
    for (form, status) in cases {
        let shown = format!("{form:?}");
        let r = post(form).await;
        assert_eq!(r.status(), status, "{shown}");
        let body: Vec<Value> = r.json().await.unwrap();
        assert_eq!(body[0]["code"], status, "{shown}");
        assert!(body[0]["description"].is_string());
    }
    for path in [
        "/open311/v2/nothing.json",
        "/open311/v2/services/complaint.xml",
        "/open311/v2/requests.json",
    ] {
        let r = s.get(None, path).await;
        assert!(r.status().is_client_error(), "{path}");
        let body: Vec<Value> = r.json().await.unwrap();
        assert!(body[0]["code"].is_u64(), "{path}");
    }
}

async fn boom() -> &'static str {
    panic!("boom")
}

#[tokio::test]
async fn a_panicking_handler_becomes_a_500_problem_and_a_slow_one_a_503_timeout() {
    use axum::routing::get;
    let mut config = test_config();
    config.request_timeout_seconds = 1;
    let s = TestServer::with_config(config.clone()).await;
    let server = caseflow_server::Server::new(
        s.engine.clone(),
        caseflow_server::users::UserStore::in_memory().unwrap(),
        config,
    );
    let router = axum::Router::new()
        .route("/api/boom", get(boom))
        .route("/api/slow", get(std::future::pending::<&'static str>));
    let router = caseflow_server::ops::layers(router, server.app());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let boom = s
        .http
        .get(format!("http://{addr}/api/boom"))
        .send()
        .await
        .unwrap();
    assert_eq!(boom.status(), 500);
    let v: Value = boom.json().await.unwrap();
    assert_eq!(v["type"], "/problems/internal");
    assert!(
        !v.to_string().contains("boom"),
        "the panic message stays in the log"
    );
    let slow = s
        .http
        .get(format!("http://{addr}/api/slow"))
        .send()
        .await
        .unwrap();
    assert_eq!(slow.status(), 503);
    let v: Value = slow.json().await.unwrap();
    assert_eq!(v["type"], "/problems/timeout");
}

#[tokio::test]
async fn shutdown_finishes_in_flight_commands_and_loses_nothing_acknowledged() {
    let mut s = TestServer::start().await;
    let officer = s.staff("loc-zhongshan", Role::CaseOfficer);
    let mut requests = Vec::new();
    for _ in 0..20 {
        let http = s.http.clone();
        let url = s.url("/api/v1/cases");
        let token = officer.clone();
        requests.push(tokio::spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", Uuid::new_v4().to_string())
                .json(&support::report_body("loc-zhongshan", None))
                .send()
                .await
        }));
    }
    let (stop, task) = s.take_shutdown();
    stop.send(()).unwrap();
    let mut acknowledged = Vec::new();
    for r in requests {
        if let Ok(response) = r.await.unwrap() {
            let status = response.status().as_u16();
            assert!(status == 201 || status == 503, "{status}");
            if status == 201 {
                let v: Value = response.json().await.unwrap();
                acknowledged.push(v["case_id"].as_str().unwrap().to_owned());
            }
        }
    }
    task.await.unwrap().unwrap();
    for id in acknowledged {
        let case = caseflow::domain::CaseId::new(Uuid::parse_str(&id).unwrap());
        assert!(
            s.engine.case_state(case).await.is_ok(),
            "acknowledged case {id} is in the store"
        );
    }
}
