//! Revealing a reporter's contact: the one path through which a contact ever leaves the
//! server. `POST /api/v1/cases/{id}/reporter-contact/reveal` (JSON, a reason) and the
//! workbench's form (`POST /cases/{id}/reveal`) both go through
//! [`caseflow::Engine::reveal_reporter_contact`], which records the reveal (who, when, why)
//! before it decrypts; the domain's rule decides who may (docs/domain.md, "Who may read a
//! reporter's contact"). A refused actor gets 403 and nothing is written. The contact is
//! sent only in that one response, marked `Cache-Control: no-store`, and never logged.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use caseflow::EngineError;
use caseflow::domain::{
    Actor, CaseId, CaseState, Command, Context, ProtectedContact, RevealReporterContact, decide,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::{ApiJson, ApiPath, load_case};
use crate::auth::Principal;
use crate::problem::{ApiError, Problem, ProblemType};
use crate::state::App;

/// Longest reason accepted (the reason is stored in the log).
pub const REASON_MAX_CHARS: usize = 500;

/// Why the contact is needed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevealRequest {
    /// Why this person needs the reporter's contact now (recorded in the case's history).
    pub reason: String,
}

/// A reporter's contact, shown to the one who revealed it.
#[derive(Serialize, ToSchema)]
pub struct RevealedContact {
    /// The case.
    pub case_id: String,
    /// The reporter's name.
    pub name: String,
    /// The reporter's phone.
    pub phone: String,
    /// Who revealed it (`unit/role`), as the reveal event records.
    pub revealed_by: String,
    /// Why, as recorded.
    pub reason: String,
}

impl std::fmt::Debug for RevealedContact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevealedContact")
            .field("case_id", &self.case_id)
            .finish_non_exhaustive()
    }
}

/// Whether `actor` may reveal the case's reporter contact now: the domain's own decision on
/// the reveal command (nothing is written; the rule is not restated here).
pub fn may_reveal(app: &App, state: &CaseState, actor: &Actor) -> bool {
    let Some(case) = state.case() else {
        return false;
    };
    let district = app.engine.district();
    let context = Context::new(
        actor,
        app.engine.now(),
        &district.org,
        &district.calendar,
        &district.policies,
    );
    let command = Command::RevealReporterContact(RevealReporterContact {
        case_id: case.id,
        reason: "may this actor reveal?".to_owned(),
    });
    decide(state, &command, &context).is_ok()
}

/// The checked reason: trimmed, not empty, not too long.
pub fn checked_reason(reason: &str) -> Result<String, ApiError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ApiError::new(
            ProblemType::InvalidInput,
            "a reveal needs a reason (it is recorded in the case's history)",
        ));
    }
    if reason.chars().count() > REASON_MAX_CHARS {
        return Err(ApiError::new(
            ProblemType::InvalidInput,
            format!("the reason is longer than {REASON_MAX_CHARS} characters"),
        ));
    }
    Ok(reason.to_owned())
}

/// Reveals the contact for a principal: the case must be one they may read (404/403 as for
/// any case), they must be staff, and the domain must allow the reveal.
pub async fn reveal_for(
    app: &App,
    principal: &Principal,
    case_id: CaseId,
    reason: &str,
) -> Result<(Actor, String, ProtectedContact), ApiError> {
    let reason = checked_reason(reason)?;
    load_case(app, principal.access(), case_id, app.engine.now()).await?;
    let actor = principal
        .access()
        .actor()
        .cloned()
        .ok_or_else(ApiError::forbidden)?;
    let result = app
        .engine
        .reveal_reporter_contact(case_id, actor.clone(), reason.clone())
        .await;
    let outcome = match &result {
        Ok(_) => "revealed",
        Err(e) if e.is_caller_error() => "refused",
        Err(_) => "failed",
    };
    metrics::counter!("caseflow_contact_reveals_total", "outcome" => outcome).increment(1);
    // Who and why are in the log already; the contact is never logged.
    tracing::info!(%case_id, actor = %actor, outcome, "reporter contact reveal");
    match result {
        Ok(contact) => Ok((actor, reason, contact)),
        Err(e @ (EngineError::ContactErased { .. } | EngineError::NoContact(_))) => {
            Err(ApiError::new(ProblemType::CommandRejected, e.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Reveals a case's reporter contact to the signed-in staff member, if the district's rule
/// lets them (the leader or a case officer of the unit that needs to know, while the case
/// is open). The reveal is recorded first (`ReporterContactRevealed`: who, when, why) and
/// is in the case's history, exports and audit reports; the contact itself is only in this
/// response. Refused: 403 and nothing is written. Erased or anonymous: 409.
#[utoipa::path(post, path = "/api/v1/cases/{case_id}/reporter-contact/reveal", tag = "cases",
    params(("case_id" = Uuid, Path, description = "The case")),
    request_body = RevealRequest,
    responses((status = 200, body = RevealedContact, description = "The contact (not cached)"),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem, description = "This user may not reveal it now (nothing was written), or the CSRF header is missing"),
        (status = 404, body = Problem), (status = 409, body = Problem, description = "Erased, anonymous, or the case is closed"),
        (status = 413, body = Problem), (status = 415, body = Problem),
        (status = 422, body = Problem), (status = 429, body = Problem), (status = 503, body = Problem)))]
pub async fn reveal_contact(
    principal: Principal,
    State(app): State<App>,
    ApiPath(case_id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<RevealRequest>,
) -> Result<Response, ApiError> {
    let case_id = CaseId::new(case_id);
    let (actor, reason, contact) = reveal_for(&app, &principal, case_id, &body.reason).await?;
    let view = RevealedContact {
        case_id: case_id.to_string(),
        name: contact.expose_name().to_owned(),
        phone: contact.expose_phone().to_owned(),
        revealed_by: actor.to_string(),
        reason,
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], ApiJson(view)).into_response())
}
