//! The workbench's reveal: a form on the case page for those the domain lets reveal the
//! reporter's contact, and the page that shows it once (not cached) after the reveal was
//! recorded. The rule and the recording are [`crate::reveal`]'s and the engine's.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use caseflow::domain::{CaseId, CaseState, Lang};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::{frame_of, page, tr};
use crate::api::ApiPath;
use crate::auth::{CsrfField, CsrfForm, Principal, WebRejection, WebUser};
use crate::reveal::{REASON_MAX_CHARS, may_reveal, reveal_for};
use crate::state::App;

/// The reveal form as posted.
#[derive(Debug, Deserialize)]
pub struct RevealForm {
    csrf: Option<String>,
    reason: Option<String>,
}

impl CsrfField for RevealForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// The reveal card of the case page: a reason and a button, for a reader the domain lets
/// reveal now; nothing for anyone else.
pub fn reveal_card(app: &App, state: &CaseState, user: &Principal, lang: Lang) -> Markup {
    let (Some(case), Some(actor)) = (state.case(), user.access().actor()) else {
        return html! {};
    };
    if !may_reveal(app, state, actor) {
        return html! {};
    }
    html! {
        section.card {
            h2 { (tr(lang, "反映人联系方式", "Reporter's contact")) }
            p.meta { (tr(lang,
                "仅限有必要知悉的人员查阅；每次查阅都会连同查阅人和理由记入本案办理记录。",
                "Only for those who need to know; every look is recorded in the case's history with who and why.")) }
            form method="post" action=(format!("/cases/{}/reveal", case.id)) {
                input type="hidden" name="csrf" value=(user.csrf());
                label { (tr(lang, "查阅理由", "Reason")) " "
                    input type="text" name="reason" required maxlength=(REASON_MAX_CHARS);
                }
                button type="submit" data-command="RevealReporterContact" {
                    (tr(lang, "查阅联系方式", "Reveal the contact"))
                }
            }
        }
    }
}

/// The handler behind `POST /cases/{id}/reveal`: records the reveal, then shows the contact
/// on a page of its own that is never cached. A refusal is the problem it is (403 for an
/// actor the rule does not allow; nothing is written).
pub async fn reveal(
    State(app): State<App>,
    ApiPath(case_id): ApiPath<Uuid>,
    headers: HeaderMap,
    CsrfForm { user, form }: CsrfForm<RevealForm>,
) -> Result<Response, WebRejection> {
    let case_id = CaseId::new(case_id);
    let reason = form.reason.unwrap_or_default();
    let (_, reason, contact) = reveal_for(&app, &user, case_id, &reason)
        .await
        .map_err(WebRejection::Problem)?;
    let user = WebUser(user);
    let path = format!("/cases/{case_id}");
    let frame = frame_of(&app, &headers, &user, &path);
    let lang = frame.lang;
    let title = tr(lang, "反映人联系方式", "Reporter's contact");
    let body = html! {
        h1 { (title) }
        section.card {
            dl.facts {
                dt { (tr(lang, "姓名", "Name")) } dd { (contact.expose_name()) }
                dt { (tr(lang, "电话", "Phone")) } dd { (contact.expose_phone()) }
                dt { (tr(lang, "查阅理由", "Reason")) } dd { (reason) }
            }
            p.meta { (tr(lang,
                "本次查阅已记入办理记录。请勿抄录或转告无关人员。",
                "This look was recorded in the case's history. Do not copy it or pass it on.")) }
            a href=(path) { (tr(lang, "返回案件", "Back to the case")) }
        }
    };
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        page(&frame, title, body),
    )
        .into_response())
}
