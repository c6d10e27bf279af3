//! The workbench over HTTP: signing in and out, CSRF on every form, the pages each person
//! may open, and a command issued from a form.

mod support;

use caseflow::domain::{Role, Stage};
use support::TestServer;

/// The value of a cookie a response sets.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.strip_prefix(&format!("{name}="))?
                .split(';')
                .next()
                .map(str::to_owned)
        })
}

/// The `value` of the first hidden input called `name` in a page.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in the page"))
        + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// Signs in through the form; returns the session cookie.
async fn sign_in(s: &TestServer, user: &str, password: &str) -> Option<String> {
    let login = s.http.get(s.url("/login")).send().await.unwrap();
    let pre = set_cookie(&login, "cf_login").unwrap();
    let page = login.text().await.unwrap();
    let csrf = hidden(&page, "csrf");
    let r = s
        .http
        .post(s.url("/login"))
        .header("cookie", format!("cf_login={pre}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("next", "/todo"),
            ("username", user),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    set_cookie(&r, "cf_session").filter(|v| !v.is_empty())
}

fn add_person(s: &TestServer, name: &str, unit: &str, role: Role) {
    let access = caseflow_server::users::Access::Staff {
        actor: caseflow::domain::Actor::new(unit, role),
    };
    s.users
        .add(
            &caseflow_server::users::NewUser {
                username: name.into(),
                display_name: "王信息员".into(),
                access,
                password: Some("correct horse battery".into()),
            },
            &s.engine.district().org,
            support::start(),
        )
        .unwrap();
}

#[tokio::test]
async fn signing_in_needs_the_right_password_and_the_forms_token() {
    let s = TestServer::start().await;
    add_person(&s, "wang", "vil-renmin", Role::InformationOfficer);
    assert!(sign_in(&s, "wang", "wrong password!").await.is_none());
    // A sign-in post without the token from the form is refused.
    let r = s
        .http
        .post(s.url("/login"))
        .form(&[
            ("csrf", "forged"),
            ("username", "wang"),
            ("password", "correct horse battery"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let session = sign_in(&s, "wang", "correct horse battery")
        .await
        .expect("a session");
    let page = s
        .http
        .get(s.url("/todo"))
        .header("cookie", format!("cf_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("人民社区") || html.contains("我的待办"),
        "{}",
        &html[..html.len().min(500)]
    );
    // Without a session a page sends the browser to sign in, and comes back afterwards.
    let r = s.http.get(s.url("/todo")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/login?next=%2Ftodo");
    // Signing out needs the session's token, and ends the session.
    let no_token = s
        .http
        .post(s.url("/logout"))
        .header("cookie", format!("cf_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 403);
    let csrf = hidden(&html, "csrf");
    let out = s
        .http
        .post(s.url("/logout"))
        .header("cookie", format!("cf_session={session}"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let after = s
        .http
        .get(s.url("/todo"))
        .header("cookie", format!("cf_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 303, "the session ended");
}

#[tokio::test]
async fn a_form_issues_exactly_its_command_once_and_a_cookie_without_the_token_issues_nothing() {
    let s = TestServer::start().await;
    add_person(&s, "zhou", "loc-zhongshan", Role::Leader);
    let session = sign_in(&s, "zhou", "correct horse battery").await.unwrap();
    let cookie = format!("cf_session={session}");
    let officer = s.staff("loc-zhongshan", Role::CaseOfficer);
    let case = s
        .report(&officer, "loc-zhongshan", Some("vil-renmin"))
        .await;
    let page = s
        .http
        .get(s.url("/todo"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("受理决定"),
        "the intake decision is on the list"
    );
    assert!(page.contains(&format!("action=\"/cases/{case}/act\"")));
    let csrf = hidden(&page, "csrf");
    let command_id = uuid::Uuid::new_v4().to_string();
    let form = [
        ("csrf", csrf.as_str()),
        ("command_id", command_id.as_str()),
        ("kind", "AcceptCase"),
        ("variant", ""),
        ("return_to", "/todo"),
    ];
    // Without the token: refused, nothing written.
    let forged: Vec<(&str, &str)> = form.iter().filter(|(k, _)| *k != "csrf").copied().collect();
    let r = s
        .http
        .post(s.url(&format!("/cases/{case}/act")))
        .header("cookie", &cookie)
        .form(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(s.state(case).await.stage(), Stage::Intake);
    // The JSON API with only the cookie is refused too.
    let api = s
        .http
        .post(s.url(&format!("/api/v1/cases/{case}/commands")))
        .header("cookie", &cookie)
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .json(&serde_json::json!({ "type": "AcceptCase", "case_id": case.to_string() }))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 403);
    // With it: accepted, and a resent form writes nothing more.
    for _ in 0..2 {
        let r = s
            .http
            .post(s.url(&format!("/cases/{case}/act")))
            .header("cookie", &cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        assert!(
            r.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/todo?done=")
        );
    }
    assert_eq!(s.state(case).await.stage(), Stage::Classification);
    assert_eq!(s.state(case).await.version(), 2);
}

#[tokio::test]
async fn each_page_opens_for_those_who_may_see_it() {
    let s = TestServer::start().await;
    add_person(&s, "li", "room-1", Role::Leader);
    add_person(&s, "wang", "vil-dongyuan", Role::InformationOfficer);
    let officer = s.staff("loc-zhongshan", Role::CaseOfficer);
    let case = s
        .report(&officer, "loc-zhongshan", Some("vil-renmin"))
        .await;
    let leader = format!(
        "cf_session={}",
        sign_in(&s, "li", "correct horse battery").await.unwrap()
    );
    let village = format!(
        "cf_session={}",
        sign_in(&s, "wang", "correct horse battery").await.unwrap()
    );
    let get = |path: String, cookie: String| {
        let req = s.http.get(s.url(&path)).header("cookie", cookie);
        async move { req.send().await.unwrap() }
    };
    let case_page = format!("/cases/{case}");
    for (path, cookie, status) in [
        ("/todo".to_owned(), leader.clone(), 200),
        ("/overview".to_owned(), leader.clone(), 200),
        (case_page.clone(), leader.clone(), 200),
        ("/report".to_owned(), leader.clone(), 200),
        ("/audit".to_owned(), leader.clone(), 403),
        ("/overview".to_owned(), village.clone(), 403),
        (case_page.clone(), village.clone(), 403),
        ("/cases/not-a-case".to_owned(), leader.clone(), 404),
    ] {
        let r = get(path.clone(), cookie).await;
        assert_eq!(r.status(), status, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path} answers with a page"
        );
    }
    let page = get(case_page, leader.clone()).await.text().await.unwrap();
    for text in [
        "小区垃圾清运不及时",
        "中山街道纪工委",
        "办理记录",
        "各阶段用时",
        "+08:00",
    ] {
        assert!(page.contains(text), "the case page shows {text}");
    }
    assert!(
        !page.contains("13800000000"),
        "the case page shows no contact"
    );
    let en = s
        .http
        .get(s.url("/lang/en?next=/todo"))
        .send()
        .await
        .unwrap();
    assert_eq!(en.status(), 303);
    let lang = set_cookie(&en, "cf_lang").unwrap();
    let english = s
        .http
        .get(s.url("/todo"))
        .header("cookie", format!("{leader}; cf_lang={lang}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(english.contains("My to-do list") && english.contains("decide intake"));
}

/// Every shipped scenario runs on the served district from the simulation page and shows its
/// charts (the scenarios name their district file relative to a checkout, which a deployed
/// server does not have).
#[tokio::test]
async fn the_simulation_page_runs_every_shipped_scenario_with_its_charts() {
    let s = TestServer::start().await;
    add_person(&s, "li", "room-1", Role::Leader);
    let leader = format!(
        "cf_session={}",
        sign_in(&s, "li", "correct horse battery").await.unwrap()
    );
    for (name, _) in caseflow_server::web::SCENARIOS {
        let r = s
            .http
            .get(s.url(&format!("/simulation?scenario={name}&seed=7")))
            .header("cookie", &leader)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{name}");
        let page = r.text().await.unwrap();
        assert!(page.contains("<svg"), "{name} shows charts");
        assert!(page.contains("seed 7"), "{name} ran with the chosen seed");
    }
    let unknown = s
        .http
        .get(s.url("/simulation?scenario=nonesuch"))
        .header("cookie", &leader)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

/// The first room of a case's collaboration zone (its leader and case officers may reveal
/// the reporter's contact before the case is routed).
async fn zone_room(s: &TestServer, case: caseflow::domain::CaseId) -> String {
    let state = s.state(case).await;
    let zone = state.case().unwrap().zone.clone();
    s.engine.district().org.zone(&zone).unwrap().rooms[0].to_string()
}

#[tokio::test]
async fn revealing_a_reporter_contact_is_recorded_allowed_by_the_rule_only_and_shown_nowhere_else()
{
    const PHONE: &str = "13800000000";
    const NAME: &str = "张三";
    let s = TestServer::start().await;
    let officer = s.staff("loc-zhongshan", Role::CaseOfficer);
    let case = s
        .report(&officer, "loc-zhongshan", Some("vil-renmin"))
        .await;
    let room = zone_room(&s, case).await;
    let path = format!("/api/v1/cases/{case}/reporter-contact/reveal");
    let reveal = |token: String, reason: &'static str| {
        let s = &s;
        let path = path.clone();
        async move {
            s.post_json(
                &token,
                &path,
                None,
                &serde_json::json!({ "reason": reason }),
            )
            .await
        }
    };

    // Refused by the rule (a village's information officer): 403, the typed problem, and
    // nothing written.
    let before = s.state(case).await.version();
    let refused = reveal(s.staff("vil-renmin", Role::InformationOfficer), "curious").await;
    assert_eq!(refused.status(), 403);
    let problem: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(problem["type"], "/problems/forbidden");
    assert_eq!(s.state(case).await.version(), before);
    // No reason: 422, nothing written.
    let no_reason = reveal(s.staff(&room, Role::CaseOfficer), "  ").await;
    assert_eq!(no_reason.status(), 422);
    assert_eq!(s.state(case).await.version(), before);

    // Allowed (a case officer of the zone's room): the contact, not cached, and exactly one
    // reveal event naming who and why.
    let allowed = reveal(
        s.staff(&room, Role::CaseOfficer),
        "call back about the report",
    )
    .await;
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.headers()["cache-control"], "no-store");
    let shown: serde_json::Value = allowed.json().await.unwrap();
    assert_eq!(
        (shown["name"].as_str(), shown["phone"].as_str()),
        (Some(NAME), Some(PHONE))
    );
    let state = s.state(case).await;
    assert_eq!(state.version(), before + 1);
    assert_eq!(state.case().unwrap().contact_reveals, 1);

    // The workbench: the form shows for a leader of the room and not for the village; it
    // needs the session's token; posted with it, the contact is on a page of its own.
    add_person(&s, "li", &room, Role::Leader);
    add_person(&s, "wang", "vil-renmin", Role::InformationOfficer);
    let cookie = format!(
        "cf_session={}",
        sign_in(&s, "li", "correct horse battery").await.unwrap()
    );
    let page = |cookie: String, path: String| {
        let s = &s;
        async move {
            s.http
                .get(s.url(&path))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let case_page = page(cookie.clone(), format!("/cases/{case}")).await;
    let action = format!("action=\"/cases/{case}/reveal\"");
    assert!(
        case_page.contains(&action),
        "the leader sees the reveal form"
    );
    let village = format!(
        "cf_session={}",
        sign_in(&s, "wang", "correct horse battery").await.unwrap()
    );
    assert!(
        !page(village, format!("/cases/{case}"))
            .await
            .contains(&action)
    );
    let post = |form: Vec<(&'static str, String)>| {
        let s = &s;
        let cookie = cookie.clone();
        async move {
            s.http
                .post(s.url(&format!("/cases/{case}/reveal")))
                .header("cookie", cookie)
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    let forged = post(vec![("reason", "no token".to_owned())]).await;
    assert_eq!(forged.status(), 403);
    assert_eq!(s.state(case).await.version(), before + 1);
    let csrf = hidden(&case_page, "csrf");
    let shown = post(vec![
        ("csrf", csrf),
        ("reason", "plan the visit".to_owned()),
    ])
    .await;
    assert_eq!(shown.status(), 200);
    assert_eq!(shown.headers()["cache-control"], "no-store");
    let shown = shown.text().await.unwrap();
    assert!(shown.contains(PHONE) && shown.contains(NAME));
    assert_eq!(s.state(case).await.version(), before + 2);

    // Nowhere else: no other response or page, for the revealer, an auditor or the
    // reporting officer, holds the name or the phone.
    let auditor = s.auditor();
    let leader = s.staff(&room, Role::Leader);
    let api_paths = [
        format!("/api/v1/cases/{case}"),
        format!("/api/v1/cases/{case}/timeline"),
        format!("/api/v1/cases/{case}/as-of?version=1"),
        format!("/api/v1/cases/{case}/audit"),
        format!("/api/v1/cases/{case}/next"),
        "/api/v1/audit?from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z".to_owned(),
        "/api/v1/export/xes".to_owned(),
        "/api/v1/export/ocel".to_owned(),
        "/api/v1/stats".to_owned(),
        "/api/v1/verify".to_owned(),
        "/api/v1/todo/mine".to_owned(),
        format!("/api/v1/todo/units/{room}"),
        "/metrics".to_owned(),
        "/open311/v2/requests.json".to_owned(),
    ];
    for token in [&leader, &auditor, &officer] {
        for path in &api_paths {
            let body = s.get(Some(token), path).await.text().await.unwrap();
            assert!(
                !body.contains(PHONE) && !body.contains(NAME),
                "{path} shows the contact"
            );
        }
    }
    for path in [
        format!("/cases/{case}"),
        "/todo".to_owned(),
        "/overview".to_owned(),
        "/audit".to_owned(),
    ] {
        let body = page(cookie.clone(), path.clone()).await;
        assert!(
            !body.contains(PHONE) && !body.contains(NAME),
            "{path} shows the contact"
        );
    }
}
