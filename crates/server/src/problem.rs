//! Errors as RFC 9457 problem details (`application/problem+json`) with stable types.
//!
//! Every error a client can see has one [`ProblemType`]: its `type` URI (`/problems/<slug>`,
//! served as a short page explaining it), its HTTP status and its title never change, so
//! clients branch on the type, not on the text. The `detail` says what was wrong with this
//! request; 401 and 403 carry no detail at all, so a refusal tells nothing about what exists.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use caseflow::EngineError;
use caseflow::domain::DomainError;
use caseflow::store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

macro_rules! problem_types {
    ($($variant:ident => ($slug:literal, $status:ident, $title:literal, $why:literal)),* $(,)?) => {
        /// The stable kinds of problem the server answers with.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ProblemType {
            $(#[doc = $why] $variant,)*
        }

        impl ProblemType {
            /// Every problem type.
            pub const ALL: &'static [ProblemType] = &[$(ProblemType::$variant),*];

            /// The last part of the type URI.
            pub fn slug(self) -> &'static str {
                match self { $(ProblemType::$variant => $slug,)* }
            }

            /// The HTTP status.
            pub fn status(self) -> StatusCode {
                match self { $(ProblemType::$variant => StatusCode::$status,)* }
            }

            /// The fixed title.
            pub fn title(self) -> &'static str {
                match self { $(ProblemType::$variant => $title,)* }
            }

            /// What it means and what the client should do.
            pub fn explanation(self) -> &'static str {
                match self { $(ProblemType::$variant => $why,)* }
            }
        }
    };
}

problem_types! {
    NotAuthenticated => ("not-authenticated", UNAUTHORIZED, "Not authenticated",
        "Caller error: no valid token or session came with the request. Sign in, or send `Authorization: Bearer <token>`."),
    Forbidden => ("forbidden", FORBIDDEN, "Forbidden",
        "Caller error: the signed-in user may not do this (the query rules or the domain's authority rules refuse it). Nothing was read or written."),
    CsrfRejected => ("csrf-rejected", FORBIDDEN, "Form token missing or wrong",
        "Caller error: a form or cookie-authenticated request did not carry the session's CSRF token. Reload the page and send the form again."),
    NotFound => ("not-found", NOT_FOUND, "Not found",
        "Caller error: no such resource (path, case, unit, zone, department or version)."),
    MethodNotAllowed => ("method-not-allowed", METHOD_NOT_ALLOWED, "Method not allowed",
        "Caller error: the path exists but not with this method."),
    BadRequest => ("bad-request", BAD_REQUEST, "Bad request",
        "Caller error: the request could not be read (malformed JSON, form or query, wrong field type). Fix it and send it again."),
    UnsupportedMediaType => ("unsupported-media-type", UNSUPPORTED_MEDIA_TYPE, "Unsupported media type",
        "Caller error: the body must be `application/json` (or a form where the endpoint takes one)."),
    IdempotencyKeyMissing => ("idempotency-key-missing", BAD_REQUEST, "Idempotency key missing",
        "Caller error: every command needs an `Idempotency-Key` header holding a UUID (the command id). Make one per intent and resend it on retry."),
    IdempotencyKeyReused => ("idempotency-key-reused", UNPROCESSABLE_ENTITY, "Idempotency key reused",
        "Caller error: this idempotency key was already used for a command on another case. Use a fresh key for a new command."),
    InvalidInput => ("invalid-input", UNPROCESSABLE_ENTITY, "Invalid input",
        "Caller error: the request is well-formed but a value is not acceptable (an unknown unit, an empty field, a date out of range)."),
    CommandRejected => ("command-rejected", CONFLICT, "Command rejected",
        "Caller error: the domain refused the command for this case now (wrong stage, a prerequisite missing, a time limit not passed). Read the case's next commands; nothing was written."),
    BodyTooLarge => ("body-too-large", PAYLOAD_TOO_LARGE, "Request body too large",
        "Caller error: the body is larger than the server accepts."),
    RateLimited => ("rate-limited", TOO_MANY_REQUESTS, "Too many requests",
        "Retry: this token or user sent more requests than its rate allows. Wait for the `Retry-After` seconds."),
    Contention => ("contention", SERVICE_UNAVAILABLE, "Case busy",
        "Retry: the case kept changing under the command. Resend the same request with the same idempotency key."),
    Unavailable => ("unavailable", SERVICE_UNAVAILABLE, "Temporarily unavailable",
        "Retry: the store is busy or the outcome of a write is unknown. Resend the same request with the same idempotency key; it writes at most once."),
    Timeout => ("timeout", SERVICE_UNAVAILABLE, "Request timed out",
        "Retry: the request took longer than the server allows. A command may have been written: resend it with the same idempotency key."),
    NotReady => ("not-ready", SERVICE_UNAVAILABLE, "Not ready",
        "Retry: the read models have not caught up with the log yet."),
    Internal => ("internal", INTERNAL_SERVER_ERROR, "Internal error",
        "Fatal: the server failed (stored data that does not decode, a broken store, a bug). It was logged with the request id; an operator must look."),
}

impl ProblemType {
    /// The `type` URI, relative to the server (`/problems/<slug>`).
    pub fn uri(self) -> String {
        format!("/problems/{}", self.slug())
    }

    /// Finds a type by its slug.
    pub fn from_slug(slug: &str) -> Option<ProblemType> {
        ProblemType::ALL.iter().copied().find(|t| t.slug() == slug)
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct Problem {
    /// The stable type URI, e.g. `/problems/forbidden`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// The type's fixed title.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What was wrong with this request (absent on 401 and 403).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// An error a handler returns; rendered as a problem document.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// Which kind.
    pub kind: ProblemType,
    /// The detail for the client (dropped for 401/403).
    pub detail: Option<String>,
    /// Seconds for `Retry-After`, when retrying later makes sense.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A problem of `kind` with a detail.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        ApiError {
            kind,
            detail: Some(detail.into()),
            retry_after: None,
        }
    }

    /// A problem of `kind` without a detail.
    pub fn bare(kind: ProblemType) -> Self {
        ApiError {
            kind,
            detail: None,
            retry_after: None,
        }
    }

    /// 401 with nothing else.
    pub fn unauthenticated() -> Self {
        ApiError::bare(ProblemType::NotAuthenticated)
    }

    /// 403 with nothing else.
    pub fn forbidden() -> Self {
        ApiError::bare(ProblemType::Forbidden)
    }

    /// 404 naming what was not found.
    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::new(ProblemType::NotFound, what)
    }

    /// Sets `Retry-After`.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The problem document.
    pub fn problem(&self) -> Problem {
        let silent = matches!(
            self.kind.status(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        );
        Problem {
            type_uri: self.kind.uri(),
            title: self.kind.title().to_owned(),
            status: self.kind.status().as_u16(),
            detail: if silent { None } else { self.detail.clone() },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.detail {
            Some(d) => write!(f, "{}: {d}", self.kind.title()),
            None => f.write_str(self.kind.title()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.kind.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.kind == ProblemType::NotAuthenticated {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"caseflow\""),
            );
        }
        response.extensions_mut().insert(self.kind);
        response
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::Rejected { source, .. } => from_domain(&source),
            EngineError::MergeTargetNotOpen { .. } => {
                ApiError::new(ProblemType::CommandRejected, error.to_string())
            }
            // A case, number, list or point of history that does not exist (yet).
            EngineError::CaseNotFound(_)
            | EngineError::VersionOutOfRange { .. }
            | EngineError::NotYetReported { .. }
            | EngineError::NoCaseNumbered(_)
            | EngineError::UnknownListOwner(_) => ApiError::not_found(error.to_string()),
            EngineError::Contention { .. } => {
                ApiError::new(ProblemType::Contention, error.to_string()).retry_after(1)
            }
            EngineError::Store(StoreError::CommandIdReused { .. }) => {
                ApiError::new(ProblemType::IdempotencyKeyReused, error.to_string())
            }
            ref e if e.is_retryable() => {
                ApiError::new(ProblemType::Unavailable, error.to_string()).retry_after(1)
            }
            ref e if e.is_caller_error() => {
                ApiError::new(ProblemType::InvalidInput, error.to_string())
            }
            other => {
                tracing::error!(error = %other, "engine failure");
                ApiError::new(ProblemType::Internal, "the server failed; see its log")
            }
        }
    }
}

/// A domain refusal: 403 when the actor may not, 422 when a value is wrong, 409 otherwise
/// (the case is not in a state that allows the command).
fn from_domain(source: &DomainError) -> ApiError {
    match source {
        DomainError::NotAuthorized { .. } | DomainError::RoleNotValidForLevel { .. } => {
            ApiError::forbidden()
        }
        DomainError::UnknownUnit { .. }
        | DomainError::UnknownDepartment { .. }
        | DomainError::InvalidInput { .. }
        | DomainError::VillageNotInLocality { .. }
        | DomainError::WrongLevel { .. }
        | DomainError::OutsideZone { .. }
        | DomainError::CrossInspectionViolated { .. }
        | DomainError::RouteViolatesRule { .. }
        | DomainError::TimeLimitOutOfRange { .. }
        | DomainError::DateOutOfRange { .. }
        | DomainError::CaseMismatch { .. }
        | DomainError::OutcomeMismatch { .. } => {
            ApiError::new(ProblemType::InvalidInput, source.to_string())
        }
        _ => ApiError::new(ProblemType::CommandRejected, source.to_string()),
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
        use axum::extract::rejection::JsonRejection as J;
        let kind = match &rejection {
            J::MissingJsonContentType(_) => ProblemType::UnsupportedMediaType,
            J::JsonDataError(_) => ProblemType::InvalidInput,
            J::BytesRejection(_) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ProblemType::BodyTooLarge
            }
            _ => ProblemType::BadRequest,
        };
        ApiError::new(kind, rejection.body_text())
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::new(ProblemType::BadRequest, rejection.body_text())
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        ApiError::new(ProblemType::NotFound, rejection.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_type_has_a_unique_slug_an_error_status_and_round_trips() {
        let mut slugs = std::collections::BTreeSet::new();
        for kind in ProblemType::ALL {
            assert!(slugs.insert(kind.slug()), "slug {} twice", kind.slug());
            assert!(kind.status().is_client_error() || kind.status().is_server_error());
            assert_eq!(ProblemType::from_slug(kind.slug()), Some(*kind));
            assert!(!kind.explanation().is_empty());
        }
    }

    #[test]
    fn refusals_carry_no_detail() {
        let p =
            ApiError::new(ProblemType::Forbidden, "room-2 may not read room-1's list").problem();
        assert_eq!(p.detail, None);
        assert_eq!(p.status, 403);
        let p = ApiError::new(ProblemType::NotAuthenticated, "bad token abc").problem();
        assert_eq!(p.detail, None);
        let p = ApiError::new(ProblemType::InvalidInput, "unknown unit `x`").problem();
        assert_eq!(p.detail.as_deref(), Some("unknown unit `x`"));
    }
}
