//! The report form of the intake desks (受理登记): a new case from any channel.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use caseflow::domain::{CaseKind, Channel, Command, CommandKind, FocusArea, Label, Level};
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use super::{frame_of, page, tr};
use crate::api::{ReportRequest, ReporterInput, execute};
use crate::auth::{CsrfField, CsrfForm, WebRejection, WebUser};
use crate::problem::ApiError;
use crate::state::App;
use crate::views::{machine_name, unit_name};

/// The last attempt's error.
#[derive(Debug, Deserialize)]
pub struct FormParams {
    error: Option<String>,
}

/// The report form.
pub async fn form(
    user: WebUser,
    State(app): State<App>,
    headers: HeaderMap,
    Query(params): Query<FormParams>,
) -> Result<Response, ApiError> {
    let Some(actor) = user.0.access().actor().cloned() else {
        return Err(ApiError::forbidden());
    };
    let frame = frame_of(&app, &headers, &user, "/report");
    let lang = frame.lang;
    let org = app.org();
    let mine =
        |place: &str| place == actor.unit.as_str() || place.ends_with(&format!("/{}", actor.unit));
    let title = tr(lang, "登记来信来访", "Report a case");
    let body = html! {
        h1 { (title) }
        @if let Some(e) = &params.error { p.flash.bad role="alert" { (e) } }
        section.card {
            form method="post" action="/report" {
                input type="hidden" name="csrf" value=(user.0.csrf());
                input type="hidden" name="command_id" value=(Uuid::new_v4().to_string());
                label { (tr(lang, "来源渠道", "Channel")) select name="channel" {
                    @for c in Channel::ALL { option value=(machine_name(&c)) { (c.label(lang)) } }
                } }
                label { (tr(lang, "类型", "Kind")) select name="kind" {
                    @for k in CaseKind::ALL { option value=(machine_name(&k)) { (k.label(lang)) } }
                } }
                label { (tr(lang, "反映内容", "Summary")) textarea name="summary" rows="3" required {} }
                label { (tr(lang, "地点（镇街 / 村社区）", "Place (locality / village)")) select name="place" {
                    @for l in org.units_at(Level::Locality) {
                        optgroup label=(l.name) {
                            option value=(l.id) selected[mine(l.id.as_str())] { (l.name) " " (tr(lang, "（本级）", "(itself)")) }
                            @for v in org.villages_of(&l.id) {
                                @let value = format!("{}/{}", l.id, v.id);
                                option value=(value) selected[mine(&value)] { (unit_name(org, &v.id)) }
                            }
                        }
                    }
                } }
                label { (tr(lang, "反映对象", "About whom")) input name="subject" required; }
                label { (tr(lang, "重点领域", "Focus area")) select name="focus_area" {
                    @for a in FocusArea::ALL { option value=(machine_name(&a)) { (a.label(lang)) } }
                } }
                label { (tr(lang, "移送部门（部门移送时）", "Transferring department (department transfers)")) select name="source_department" {
                    option value="" { "—" }
                    @for d in org.departments() { option value=(d.id) { (d.name) } }
                } }
                fieldset {
                    legend { (tr(lang, "反映人", "Reporter")) }
                    label.check { input type="radio" name="reporter" value="anonymous" checked; (tr(lang, "匿名", "Anonymous")) }
                    label.check { input type="radio" name="reporter" value="named"; (tr(lang, "实名（联系方式受保护，仅经授权查看）", "Named (contact protected; shown only to those entitled)")) }
                    label { (tr(lang, "姓名", "Name")) input name="reporter_name" autocomplete="off"; }
                    label { (tr(lang, "电话", "Phone")) input name="reporter_phone" type="tel" autocomplete="off"; }
                }
                button.primary type="submit" { (tr(lang, "登记", "Report")) }
            }
        }
    };
    Ok(page(&frame, title, body).into_response())
}

/// The report form as posted.
#[derive(Debug, Deserialize)]
pub struct ReportForm {
    csrf: Option<String>,
    command_id: Option<String>,
    channel: Channel,
    kind: CaseKind,
    summary: String,
    place: String,
    subject: String,
    focus_area: FocusArea,
    source_department: Option<String>,
    reporter: String,
    reporter_name: Option<String>,
    reporter_phone: Option<String>,
}

impl CsrfField for ReportForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// Registers the case and shows it.
pub async fn submit(
    State(app): State<App>,
    CsrfForm { user, form }: CsrfForm<ReportForm>,
) -> Result<Response, WebRejection> {
    let (locality, village) = match form.place.split_once('/') {
        Some((l, v)) => (l.to_owned(), Some(v.to_owned())),
        None => (form.place.clone(), None),
    };
    let reporter = if form.reporter == "named" {
        ReporterInput::Named {
            name: form.reporter_name.unwrap_or_default(),
            phone: form.reporter_phone.unwrap_or_default(),
        }
    } else {
        ReporterInput::Anonymous
    };
    let request = ReportRequest {
        channel: form.channel,
        kind: form.kind,
        summary: form.summary,
        locality,
        village,
        subject: form.subject,
        focus_area: form.focus_area,
        reporter,
        source_department: form.source_department,
    };
    let command_id = form
        .command_id
        .as_deref()
        .and_then(|c| Uuid::parse_str(c).ok())
        .unwrap_or_else(Uuid::new_v4);
    let command = Command::ReportCase(request.into_command(command_id));
    match execute(&app, &user, command_id, command).await {
        Ok(result) => {
            let done = crate::auth::urlencode(CommandKind::ReportCase.label(app.lang));
            Ok(Redirect::to(&format!("/cases/{}?done={done}", result.case_id)).into_response())
        }
        Err(e) => Ok(Redirect::to(&format!(
            "/report?error={}",
            crate::auth::urlencode(&e.to_string())
        ))
        .into_response()),
    }
}
