//! The web workbench: server-rendered HTML (maud), Chinese first with an English switch,
//! unit names instead of ids, times in district time, usable on a phone. The only script
//! (`/static/app.js`) reloads an open list when the live feed says it changed.

mod admin;
mod case;
mod forms;
mod intake;
mod reveal;
mod todo;

/// The scenarios the simulation page offers.
pub use admin::SCENARIOS;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use caseflow::domain::{Label, Lang};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;

use crate::auth::{
    CsrfField, CsrfForm, Principal, WebUser, cleared_session_cookie, session_cookie,
};
use crate::problem::ProblemType;
use crate::state::App;
use crate::users::Access;

/// The language cookie's name.
const LANG_COOKIE: &str = "cf_lang";

/// The workbench's routes.
pub fn router() -> Router<App> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/lang/{tag}", get(set_lang))
        .route("/static/app.css", get(stylesheet))
        .route("/static/app.js", get(script))
        .route("/todo", get(todo::my_list))
        .route("/overview", get(todo::overview))
        .route("/cases/{case_id}", get(case::case_page))
        .route("/cases/{case_id}/act", post(case::act))
        .route("/cases/{case_id}/reveal", post(reveal::reveal))
        .route("/report", get(intake::form).post(intake::submit))
        .route("/audit", get(admin::audit))
        .route("/simulation", get(admin::simulation))
}

/// A text in the page's language.
pub fn tr(lang: Lang, zh: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::ZhCn => zh,
        Lang::En => en,
    }
}

/// The language of a workbench request: the cookie, else the server's default.
pub fn page_lang(app: &App, headers: &HeaderMap) -> Lang {
    CookieJar::from_headers(headers)
        .get(LANG_COOKIE)
        .and_then(|c| Lang::parse(c.value()))
        .unwrap_or(app.lang)
}

/// What every page's frame needs.
pub struct Frame<'a> {
    /// The language.
    pub lang: Lang,
    /// The signed-in person, if any.
    pub user: Option<&'a Principal>,
    /// The page's path (for the language switch to come back to).
    pub path: &'a str,
    /// The signed-in staff member's unit's name.
    pub unit_name: Option<&'a str>,
    /// Whether the overview is for this reader.
    pub may_overview: bool,
}

/// A whole page.
pub fn page(frame: &Frame<'_>, title: &str, body: Markup) -> Markup {
    let lang = frame.lang;
    html! {
        (DOCTYPE)
        html lang=(lang.tag()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (tr(lang, "案件流转工作台", "Caseflow workbench")) }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { (tr(lang, "案件流转工作台", "Caseflow workbench")) }
                    @if let Some(user) = frame.user { (nav(frame, user)) }
                    (lang_switch(frame))
                }
                main { (body) }
            }
        }
    }
}

fn nav(frame: &Frame<'_>, user: &Principal) -> Markup {
    let lang = frame.lang;
    let org_name = match &user.user.access {
        Access::Staff { actor } => format!(
            "{} · {}",
            frame.unit_name.unwrap_or(actor.unit.as_str()),
            actor.role.label(lang)
        ),
        Access::Auditor => tr(lang, "审计", "auditor").to_owned(),
        Access::Admin => tr(lang, "管理员", "administrator").to_owned(),
    };
    html! {
        nav {
            @if user.access().actor().is_some() {
                a href="/todo" { (tr(lang, "我的待办", "My to-do")) }
                a href="/report" { (tr(lang, "登记", "Report")) }
            }
            @if frame.may_overview { a href="/overview" { (tr(lang, "总览", "Overview")) } }
            @if crate::access::may_verify(user.access()) { a href="/audit" { (tr(lang, "审计", "Audit")) } }
            @if !matches!(user.access(), Access::Admin) { a href="/simulation" { (tr(lang, "仿真", "Simulation")) } }
        }
        div.who {
            span.name { (user.user.display_name) }
            span.role { (org_name) }
            form.inline method="post" action="/logout" {
                input type="hidden" name="csrf" value=(user.csrf());
                button.link type="submit" { (tr(lang, "退出", "Sign out")) }
            }
        }
    }
}

fn lang_switch(frame: &Frame<'_>) -> Markup {
    let next = crate::auth::urlencode(frame.path);
    html! {
        div.lang {
            @if frame.lang == Lang::ZhCn {
                a href={ "/lang/en?next=" (next) } hreflang="en" { "English" }
            } @else {
                a href={ "/lang/zh-CN?next=" (next) } hreflang="zh-CN" { "中文" }
            }
        }
    }
}

/// An error as a workbench page (the same status as the API's problem).
pub fn error_page(kind: ProblemType, detail: Option<&str>) -> Response {
    let lang = Lang::ZhCn;
    let frame = Frame {
        lang,
        user: None,
        path: "/",
        unit_name: None,
        may_overview: false,
    };
    let title = match kind {
        ProblemType::NotAuthenticated => "请先登录 / Please sign in",
        ProblemType::Forbidden => "无权查看或办理 / Not allowed",
        ProblemType::NotFound => "未找到 / Not found",
        ProblemType::CsrfRejected => {
            "表单已过期，请刷新后重试 / The form expired: reload and send it again"
        }
        _ => kind.title(),
    };
    let silent = matches!(
        kind.status(),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
    );
    let body = html! {
        section.card.error {
            h1 { (title) }
            @if let (false, Some(d)) = (silent, detail) { p { (d) } }
            p { a href="/" { "返回首页 / Home" } }
        }
    };
    (kind.status(), page(&frame, title, body)).into_response()
}

/// The page a problem type URI points at.
pub fn problem_doc_page(kind: ProblemType) -> Response {
    let frame = Frame {
        lang: Lang::En,
        user: None,
        path: "/",
        unit_name: None,
        may_overview: false,
    };
    let body = html! {
        section.card {
            h1 { (kind.title()) }
            p { code { (kind.uri()) } " · HTTP " (kind.status().as_u16()) }
            p { (kind.explanation()) }
        }
    };
    page(&frame, kind.title(), body).into_response()
}

async fn home(State(app): State<App>, headers: HeaderMap) -> Redirect {
    let signed_in = CookieJar::from_headers(&headers)
        .get(crate::auth::SESSION_COOKIE)
        .is_some();
    let _ = app;
    Redirect::to(if signed_in { "/todo" } else { "/login" })
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
    failed: Option<String>,
}

/// A local path to go back to (never another site).
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_owned(),
        _ => "/todo".to_owned(),
    }
}

async fn login_page(
    State(app): State<App>,
    headers: HeaderMap,
    Query(q): Query<NextQuery>,
) -> Response {
    let lang = page_lang(&app, &headers);
    let frame = Frame {
        lang,
        user: None,
        path: "/login",
        unit_name: None,
        may_overview: false,
    };
    // Sign-in CSRF: a random token in a short-lived cookie that the form must echo.
    let token = crate::users::random_hex(16);
    let cookie = Cookie::build(("cf_login", token.clone()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/login")
        .build();
    let body = html! {
        section.card.narrow {
            h1 { (tr(lang, "登录", "Sign in")) }
            @if q.failed.is_some() {
                p.flash.bad { (tr(lang, "用户名或密码不正确。", "The user name or password is wrong.")) }
            }
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(token);
                input type="hidden" name="next" value=(local_path(q.next.as_deref()));
                label { (tr(lang, "用户名", "User name")) input name="username" autocomplete="username" required; }
                label { (tr(lang, "密码", "Password")) input name="password" type="password" autocomplete="current-password" required; }
                button.primary type="submit" { (tr(lang, "登录", "Sign in")) }
            }
        }
    };
    (
        CookieJar::new().add(cookie),
        page(&frame, tr(lang, "登录", "Sign in"), body),
    )
        .into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: String,
    next: Option<String>,
    username: String,
    password: String,
}

async fn login(
    State(app): State<App>,
    jar: CookieJar,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let expected = jar
        .get("cf_login")
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    if expected.is_empty() || expected != form.csrf {
        return error_page(ProblemType::CsrfRejected, None);
    }
    let username = form.username.trim().to_owned();
    if app
        .login_limiter
        .check_key(&format!("login:{username}"))
        .is_err()
    {
        return error_page(
            ProblemType::RateLimited,
            Some("too many sign-in attempts; wait a minute"),
        );
    }
    let users = std::sync::Arc::clone(&app.users);
    let password = form.password;
    let name = username.clone();
    let checked = tokio::task::spawn_blocking(move || users.check_password(&name, &password)).await;
    let next = local_path(form.next.as_deref());
    let user = match checked {
        Ok(Ok(Some(user))) => user,
        Ok(Ok(None)) => {
            tracing::info!(%username, "sign-in refused");
            let target = format!("/login?failed=1&next={}", crate::auth::urlencode(&next));
            return Redirect::to(&target).into_response();
        }
        _ => return error_page(ProblemType::Unavailable, None),
    };
    let lifetime = chrono::Duration::hours(i64::from(app.config.session_hours));
    let users = std::sync::Arc::clone(&app.users);
    let now = app.engine.now();
    let created =
        tokio::task::spawn_blocking(move || users.create_session(&user, now, lifetime)).await;
    let Ok(Ok((id, _))) = created else {
        return error_page(ProblemType::Unavailable, None);
    };
    tracing::info!(%username, "signed in");
    let jar = jar
        .remove(Cookie::build("cf_login").path("/login"))
        .add(session_cookie(
            id,
            app.config.session_hours,
            app.config.secure_cookies,
        ));
    (jar, Redirect::to(&next)).into_response()
}

/// A form that carries only the CSRF token.
#[derive(Deserialize)]
pub struct PlainForm {
    csrf: Option<String>,
}

impl CsrfField for PlainForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

async fn logout(State(app): State<App>, jar: CookieJar, form: CsrfForm<PlainForm>) -> Response {
    if let Some(cookie) = jar.get(crate::auth::SESSION_COOKIE) {
        let id = cookie.value().to_owned();
        let users = std::sync::Arc::clone(&app.users);
        let _ = tokio::task::spawn_blocking(move || users.end_session(&id)).await;
    }
    tracing::info!(username = %form.user.user.username, "signed out");
    (jar.add(cleared_session_cookie()), Redirect::to("/login")).into_response()
}

async fn set_lang(Path(tag): Path<String>, Query(q): Query<NextQuery>, jar: CookieJar) -> Response {
    let lang = Lang::parse(&tag).unwrap_or_default();
    let cookie = Cookie::build((LANG_COOKIE, lang.tag()))
        .path("/")
        .same_site(SameSite::Lax)
        .max_age(time::Duration::days(365))
        .build();
    (
        jar.add(cookie),
        Redirect::to(&local_path(q.next.as_deref())),
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("app.css"),
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("app.js"),
    )
        .into_response()
}

/// A signed-in page's frame and language.
pub fn frame_of<'a>(
    app: &'a App,
    headers: &HeaderMap,
    user: &'a WebUser,
    path: &'a str,
) -> Frame<'a> {
    let unit_name = user
        .0
        .access()
        .actor()
        .and_then(|a| app.org().unit(&a.unit))
        .map(|u| u.name.as_str());
    let may_overview = crate::access::may_read_stats(user.0.access(), app.org());
    Frame {
        lang: page_lang(app, headers),
        user: Some(&user.0),
        path,
        unit_name,
        may_overview,
    }
}

/// An already escaped fragment (SVG charts the simulator drew).
pub fn raw(text: String) -> PreEscaped<String> {
    PreEscaped(text)
}
