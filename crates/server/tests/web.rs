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
