//! The case page (facts, deadlines, who holds it, my next commands, timeline and stage
//! durations) and the handler every command form posts to.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use caseflow::audit::human_duration;
use caseflow::domain::{CaseId, Label, Lang, NextContext, Reporter, Role};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::forms::{FormContext, command_form, command_from_form, variant_of};
use super::todo::{flash, live_banner};
use super::{frame_of, local_path, page, tr};
use crate::api::{ApiPath, LoadedCase, execute, load_case, mine};
use crate::auth::{CsrfField, CsrfForm, WebRejection, WebUser};
use crate::problem::ApiError;
use crate::state::App;
use crate::views::{assignee_name, local_time, unit_name};

/// The result of the last action.
#[derive(Debug, Deserialize)]
pub struct CaseParams {
    done: Option<String>,
    error: Option<String>,
}

/// What an event means, to read.
pub fn event_label(event_type: &str, lang: Lang) -> &str {
    let (zh, en) = match event_type {
        "CaseReported" => ("登记", "reported"),
        "CaseAccepted" => ("受理", "accepted"),
        "CaseDeclined" => ("不予受理", "declined"),
        "CaseMerged" => ("合并", "merged"),
        "CaseTransferred" => ("移交", "transferred"),
        "CaseClassified" => ("分类研判", "classified"),
        "JointConsultationRecorded" => ("联席会商", "joint consultation"),
        "CaseRouted" => ("分级交办", "routed"),
        "DispositionChosen" => ("确定处置方式", "disposition chosen"),
        "VerificationTeamFormed" => ("组建核查组", "verification team formed"),
        "FindingsRecorded" => ("认定核查结果", "findings recorded"),
        "DisciplineRecorded" => ("处理处分", "discipline recorded"),
        "ConsultationAnswered" => ("答复咨询", "consultation answered"),
        "RectificationOrdered" => ("下达整改", "rectification ordered"),
        "RectificationPlanSubmitted" => ("报送整改方案", "plan submitted"),
        "RectificationProgressReported" => ("整改进展", "progress reported"),
        "RectificationCompleted" => ("整改完成", "rectification completed"),
        "CaseUrged" => ("督办", "urged"),
        "FollowUpVisitScheduled" => ("安排回访", "visit scheduled"),
        "FollowUpVisitRecorded" => ("记录回访", "visit recorded"),
        "SatisfactionRecorded" => ("满意度", "satisfaction recorded"),
        "CaseReopened" => ("重新办理", "reopened"),
        "CaseClosed" => ("办结", "closed"),
        "ReporterContactRevealed" => ("查阅反映人联系方式", "reporter contact revealed"),
        "ReporterContactErased" => ("删除反映人联系方式", "reporter contact erased"),
        other => (other, other),
    };
    tr_dyn(lang, zh, en)
}

fn tr_dyn<'a>(lang: Lang, zh: &'a str, en: &'a str) -> &'a str {
    match lang {
        Lang::ZhCn => zh,
        Lang::En => en,
    }
}

fn role_label(role: &str, lang: Lang) -> String {
    let role = match role {
        "leader" => Some(Role::Leader),
        "case_officer" => Some(Role::CaseOfficer),
        "information_officer" => Some(Role::InformationOfficer),
        "watcher" => Some(Role::Watcher),
        _ => None,
    };
    role.map_or_else(String::new, |r| r.label(lang).to_owned())
}

/// A case's page.
pub async fn page_handler(
    user: WebUser,
    app: &App,
    headers: &HeaderMap,
    case_id: Uuid,
    params: CaseParams,
) -> Result<Response, ApiError> {
    let path = format!("/cases/{case_id}");
    let frame = frame_of(app, headers, &user, &path);
    let lang = frame.lang;
    let now = app.engine.now();
    let loaded = load_case(app, user.0.access(), CaseId::new(case_id), now).await?;
    let Some(case) = loaded.state.case() else {
        return Err(ApiError::not_found("no such case"));
    };
    let district = app.engine.district();
    let ctx = NextContext::new(&district.org, &district.calendar, &district.policies, now);
    let fc = FormContext {
        state: &loaded.state,
        ctx,
        district,
        lang,
        csrf: user.0.csrf(),
        return_to: &path,
    };
    let title = case.summary.clone();
    let body = html! {
        (flash(lang, params.done.as_deref(), params.error.as_deref()))
        (live_banner(lang, Some(case.id)))
        h1 { (title) }
        div.summary {
            span.badge.stage { (case.stage.label(lang)) }
            span.badge { (case.kind.label(lang)) }
            span.badge { (case.channel.label(lang)) }
        }
        (facts(app, &loaded, lang))
        @let my = mine(&user.0, &loaded.next);
        @if !my.is_empty() {
            section.card {
                h2 { (tr(lang, "我可办理", "What I can do")) }
                div.actions { @for n in my { (command_form(n, &fc)) } }
            }
        }
        (super::reveal::reveal_card(app, &loaded.state, &user.0, lang))
        (holders(app, &loaded, lang))
        (stages(&loaded, lang))
        (timeline(app, &loaded, lang))
    };
    Ok(page(&frame, &title, body).into_response())
}

/// The handler behind `GET /cases/{id}`.
pub async fn case_page(
    user: WebUser,
    State(app): State<App>,
    headers: HeaderMap,
    ApiPath(case_id): ApiPath<Uuid>,
    axum::extract::Query(params): axum::extract::Query<CaseParams>,
) -> Result<Response, ApiError> {
    page_handler(user, &app, &headers, case_id, params).await
}

fn facts(app: &App, loaded: &LoadedCase, lang: Lang) -> Markup {
    let district = app.engine.district();
    let org = &district.org;
    let Some(case) = loaded.state.case() else {
        return html! {};
    };
    let reporter = match (&case.reporter, &case.contact_erased) {
        (Reporter::Anonymous, _) => tr(lang, "匿名", "anonymous"),
        (_, Some(_)) => tr(lang, "实名（联系方式已删除）", "named (contact erased)"),
        _ => tr(lang, "实名（联系方式受保护）", "named (contact protected)"),
    };
    html! {
        section.card {
            dl.facts {
                dt { (tr(lang, "案件编号", "Case number")) } dd {
                    @match loaded.number {
                        Some(n) => { b.number { (n) } " · " }
                        None => {}
                    }
                    code { (case.id) }
                }
                dt { (tr(lang, "地点", "Place")) } dd {
                    (unit_name(org, &case.locality))
                    @if let Some(v) = &case.village { " · " (unit_name(org, v)) }
                }
                dt { (tr(lang, "反映对象", "About")) } dd { (case.subject) }
                dt { (tr(lang, "重点领域", "Focus area")) } dd { (case.focus_area.label(lang)) }
                dt { (tr(lang, "登记时间", "Reported")) } dd { (local_time(district, case.reported_at)) }
                dt { (tr(lang, "反映人", "Reporter")) } dd { (reporter) " · " code { (case.reporter_handle) } }
                @if let Some(c) = &case.classification {
                    dt { (tr(lang, "分类", "Category")) } dd { (c.category.label(lang)) " · " (c.severity.label(lang)) }
                }
                @if let Some(lead) = case.lead_unit() {
                    dt { (tr(lang, "牵头单位", "Lead unit")) } dd { (unit_name(org, lead)) }
                }
                @for d in case.deadlines.values() {
                    dt { (d.kind.label(lang)) }
                    dd {
                        (local_time(district, d.due_at))
                        @if d.is_overdue(app.engine.now()) { " " span.badge.bad { (tr(lang, "超期", "overdue")) } }
                        @if d.urged.is_some() { " " span.badge.warn { (tr(lang, "已督办", "urged")) } }
                        @if d.escalated.is_some() { " " span.badge.warn { (tr(lang, "已升级督办", "escalated")) } }
                    }
                }
            }
        }
    }
}

fn holders(app: &App, loaded: &LoadedCase, lang: Lang) -> Markup {
    let district = app.engine.district();
    html! {
        section.card {
            h2 { (tr(lang, "当前在办", "Who holds it now")) }
            @if loaded.holders.is_empty() {
                p.empty { (tr(lang, "无人在办（已结束）。", "Nobody: the case has ended.")) }
            } @else {
                ul { @for o in &loaded.holders {
                    li {
                        b { (assignee_name(&district.org, &o.assignee)) } "：" (o.action.label(lang))
                        @if let Some(due) = o.due_at { " · " (tr(lang, "期限 ", "due ")) (local_time(district, due)) }
                    }
                } }
            }
        }
    }
}

fn stages(loaded: &LoadedCase, lang: Lang) -> Markup {
    let spans = &loaded.timeline.spans;
    let longest = spans
        .iter()
        .map(|s| s.duration.num_seconds())
        .max()
        .unwrap_or(1)
        .max(1);
    html! {
        section.card {
            h2 { (tr(lang, "各阶段用时", "Time in each stage")) }
            div.scroll { table {
                thead { tr { th { (tr(lang, "阶段", "Stage")) } th.num { (tr(lang, "用时", "Time")) } th { "" } } }
                tbody { @for s in spans {
                    @let width = (s.duration.num_seconds() * 100 / longest).clamp(1, 100);
                    tr {
                        td { (s.stage.label(lang)) @if s.left_at.is_none() { " " span.badge { (tr(lang, "当前", "now")) } } }
                        td.num { (human_duration(s.duration.num_seconds())) }
                        td.barcell { progress max="100" value=(width) { (width) "%" } }
                    }
                } }
            } }
        }
    }
}

fn timeline(app: &App, loaded: &LoadedCase, lang: Lang) -> Markup {
    let district = app.engine.district();
    let org = &district.org;
    html! {
        section.card {
            h2 { (tr(lang, "办理记录", "Timeline")) }
            div.scroll { table {
                thead { tr {
                    th { (tr(lang, "时间", "When")) } th { (tr(lang, "事项", "What")) }
                    th { (tr(lang, "办理单位", "By")) } th { (tr(lang, "阶段", "Stage")) }
                } }
                tbody { @for e in &loaded.timeline.entries {
                    @let (unit, role) = e.actor.split_once('/').unwrap_or((&e.actor, ""));
                    tr {
                        td.due { (local_time(district, e.at)) }
                        td { (event_label(&e.event_type, lang)) }
                        td { (unit_name(org, &unit.into())) " " span.meta { (role_label(role, lang)) } }
                        td { (e.stage_after.label(lang)) }
                    }
                } }
            } }
        }
    }
}

/// A command form as posted.
pub struct ActForm {
    pairs: Vec<(String, String)>,
}

impl ActForm {
    fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl<'de> Deserialize<'de> for ActForm {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ActForm {
            pairs: Vec::deserialize(d)?,
        })
    }
}

impl CsrfField for ActForm {
    fn csrf(&self) -> Option<&str> {
        self.get("csrf")
    }
}

fn back(return_to: &str, key: &str, message: &str) -> Response {
    let path = return_to.split('?').next().unwrap_or("/todo");
    let target = format!("{path}?{key}={}", crate::auth::urlencode(message));
    Redirect::to(&target).into_response()
}

/// Executes the command a form asks for: the domain's draft for the signed-in actor with
/// the form's fields set, under the form's command id (a resent form writes once).
pub async fn act(
    State(app): State<App>,
    ApiPath(case_id): ApiPath<Uuid>,
    CsrfForm { user, form }: CsrfForm<ActForm>,
) -> Result<Response, WebRejection> {
    let return_to = local_path(form.get("return_to"));
    let lang = app.lang;
    let now = app.engine.now();
    let loaded = load_case(&app, user.access(), CaseId::new(case_id), now)
        .await
        .map_err(WebRejection::Problem)?;
    let command_id = form
        .get("command_id")
        .and_then(|c| Uuid::parse_str(c).ok())
        .unwrap_or_else(Uuid::new_v4);
    let kind = form.get("kind").unwrap_or_default();
    // A form sent again (a double click, a reload) was already done: say so, write nothing.
    let done_before = app
        .engine
        .store()
        .command_outcome(command_id)
        .await
        .ok()
        .flatten()
        .is_some();
    if done_before {
        let label = caseflow::domain::CommandKind::ALL
            .iter()
            .find(|k| k.name() == kind)
            .map_or(kind, |k| k.label(lang));
        return Ok(back(&return_to, "done", label));
    }
    let variant = form.get("variant").unwrap_or_default();
    let Some(next) = mine(&user, &loaded.next)
        .into_iter()
        .find(|n| n.kind.name() == kind && variant_of(n) == variant)
    else {
        return Ok(back(
            &return_to,
            "error",
            tr(
                lang,
                "该事项已不可办理（可能已被他人办理）",
                "this is no longer possible (someone may have done it)",
            ),
        ));
    };
    let district = app.engine.district();
    let ctx = NextContext::new(&district.org, &district.calendar, &district.policies, now);
    let command = match command_from_form(next, &loaded.state, &ctx, district, &form.pairs) {
        Ok(c) => c,
        Err(e) => return Ok(back(&return_to, "error", &e.0)),
    };
    let label = next.kind.label(lang);
    match execute(&app, &user, command_id, command).await {
        Ok(_) => Ok(back(&return_to, "done", label)),
        Err(e) => Ok(back(&return_to, "error", &e.to_string())),
    }
}
