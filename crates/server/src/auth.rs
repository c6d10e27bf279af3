//! Who is asking: an API token (`Authorization: Bearer cf_...`) for services, a session
//! cookie for people. Unsafe requests made with a session cookie must carry the session's
//! CSRF token (the `X-CSRF-Token` header for the JSON API, a `csrf` form field for the
//! workbench's forms); the cookie is also `SameSite=Strict` and `HttpOnly`. Every
//! authenticated request counts against its token's or user's rate limit.

use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use governor::clock::DefaultClock;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use serde::de::DeserializeOwned;

use crate::problem::{ApiError, ProblemType};
use crate::state::App;
use crate::users::{Access, User};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "cf_session";
/// The header carrying the CSRF token on cookie-authenticated API calls.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A keyed rate limiter (GCRA).
pub type KeyedLimiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

/// A limiter allowing `per_minute` requests a minute with bursts of `burst`.
pub fn limiter(per_minute: u32, burst: u32) -> KeyedLimiter {
    let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst))
}

/// How the request was authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// An API token (its id).
    Token(i64),
    /// A session cookie, with the session's CSRF token.
    Session {
        /// The session's CSRF token.
        csrf: String,
    },
}

/// The authenticated user of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user.
    pub user: User,
    /// How.
    pub via: Via,
}

impl Principal {
    /// What the user may do.
    pub fn access(&self) -> &Access {
        &self.user.access
    }

    /// The session's CSRF token (empty for token requests, which need none).
    pub fn csrf(&self) -> &str {
        match &self.via {
            Via::Session { csrf } => csrf,
            Via::Token(_) => "",
        }
    }

    /// Checks a submitted CSRF token against the session's (token requests need none).
    pub fn check_csrf(&self, submitted: Option<&str>) -> Result<(), ApiError> {
        match &self.via {
            Via::Token(_) => Ok(()),
            Via::Session { csrf } if submitted.is_some_and(|s| constant_time_eq(s, csrf)) => Ok(()),
            Via::Session { .. } => Err(ApiError::bare(ProblemType::CsrfRejected)),
        }
    }

    fn rate_key(&self) -> String {
        match &self.via {
            Via::Token(id) => format!("token:{id}"),
            Via::Session { .. } => format!("user:{}", self.user.id),
        }
    }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

async fn lookup_token(app: &App, token: &str) -> Result<Principal, ApiError> {
    let now = app.engine.now();
    let users = Arc::clone(&app.users);
    let token = token.to_owned();
    let found = tokio::task::spawn_blocking(move || users.user_for_token(&token, now))
        .await
        .map_err(|_| ApiError::new(ProblemType::Internal, "token check failed"))?
        .map_err(user_db_error)?;
    let (user, id) = found.ok_or_else(ApiError::unauthenticated)?;
    Ok(Principal {
        user,
        via: Via::Token(id),
    })
}

/// The principal of an API token (401 when it is not a live token of an enabled user),
/// counted against the token's rate.
pub async fn token_principal(app: &App, token: &str) -> Result<Principal, ApiError> {
    let principal = lookup_token(app, token).await?;
    check_rate(app, &principal)?;
    Ok(principal)
}

/// Finds the principal of a request, or `None` when it carries no valid credential. A
/// request with a bad bearer token is refused even if it also has a cookie.
pub async fn authenticate(app: &App, parts: &Parts) -> Result<Option<Principal>, ApiError> {
    if let Some(token) = bearer(&parts.headers) {
        return lookup_token(app, token).await.map(Some);
    }
    let now = app.engine.now();
    let users = Arc::clone(&app.users);
    let jar = CookieJar::from_headers(&parts.headers);
    let Some(cookie) = jar.get(SESSION_COOKIE) else {
        return Ok(None);
    };
    let id = cookie.value().to_owned();
    let session = tokio::task::spawn_blocking(move || users.session(&id, now))
        .await
        .map_err(|_| ApiError::new(ProblemType::Internal, "session check failed"))?
        .map_err(user_db_error)?;
    Ok(session.map(|s| Principal {
        user: s.user,
        via: Via::Session { csrf: s.csrf },
    }))
}

/// A users-database failure as a problem (logged; the client learns only that it failed).
pub fn user_db_error(error: crate::users::UserError) -> ApiError {
    tracing::error!(%error, "users database");
    ApiError::new(ProblemType::Unavailable, "the users database failed").retry_after(1)
}

fn check_rate(app: &App, principal: &Principal) -> Result<(), ApiError> {
    app.limiter
        .check_key(&principal.rate_key())
        .map_err(|not_until| {
            let wait =
                not_until.wait_time_from(governor::clock::Clock::now(&DefaultClock::default()));
            metrics::counter!("caseflow_http_rate_limited_total").increment(1);
            ApiError::bare(ProblemType::RateLimited).retry_after(wait.as_secs().max(1))
        })
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The principal of an API request: 401 without a valid credential, 403 for a
/// cookie-authenticated unsafe request without the CSRF header, 429 over the rate.
impl FromRequestParts<App> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let principal = authenticate(app, parts)
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        if is_unsafe(&parts.method) {
            let header = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            principal.check_csrf(header)?;
        }
        check_rate(app, &principal)?;
        Ok(principal)
    }
}

/// The signed-in person of a workbench page; without a session the browser is sent to the
/// sign-in page (and back afterwards).
#[derive(Debug, Clone)]
pub struct WebUser(pub Principal);

/// Why a workbench request was not served.
pub enum WebRejection {
    /// Not signed in: go to the sign-in page.
    SignIn(String),
    /// Anything else, as the problem it is.
    Problem(ApiError),
}

impl IntoResponse for WebRejection {
    fn into_response(self) -> Response {
        match self {
            WebRejection::SignIn(next) => {
                let target = format!("/login?next={}", urlencode(&next));
                Redirect::to(&target).into_response()
            }
            WebRejection::Problem(e) => e.into_response(),
        }
    }
}

/// Percent-encodes a path for a query parameter.
pub fn urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|s| s.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

impl FromRequestParts<App> for WebUser {
    type Rejection = WebRejection;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let next = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned());
        match authenticate(app, parts).await {
            Ok(Some(principal)) => {
                check_rate(app, &principal).map_err(WebRejection::Problem)?;
                Ok(WebUser(principal))
            }
            Ok(None)
            | Err(ApiError {
                kind: ProblemType::NotAuthenticated,
                ..
            }) => Err(WebRejection::SignIn(next)),
            Err(e) => Err(WebRejection::Problem(e)),
        }
    }
}

/// A form every field of which is checked only after its `csrf` field matched the session.
pub trait CsrfField {
    /// The submitted token.
    fn csrf(&self) -> Option<&str>;
}

/// A workbench form post: the signed-in person and the form, CSRF-checked.
pub struct CsrfForm<T> {
    /// Who posted it.
    pub user: Principal,
    /// The form.
    pub form: T,
}

impl<T> FromRequest<App> for CsrfForm<T>
where
    T: DeserializeOwned + CsrfField + Send,
{
    type Rejection = WebRejection;

    async fn from_request(request: Request, app: &App) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let WebUser(user) = WebUser::from_request_parts(&mut parts, app).await?;
        let is_form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            // No form, so no token either.
            return Err(WebRejection::Problem(ApiError::bare(
                ProblemType::CsrfRejected,
            )));
        }
        let request = Request::from_parts(parts, body);
        let axum::Form(form) = axum::Form::<T>::from_request(request, app)
            .await
            .map_err(|e| {
                WebRejection::Problem(ApiError::new(ProblemType::BadRequest, e.body_text()))
            })?;
        user.check_csrf(form.csrf())
            .map_err(WebRejection::Problem)?;
        Ok(CsrfForm { user, form })
    }
}

/// The session cookie for a new session.
pub fn session_cookie(id: String, hours: u32, secure: bool) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, id))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path("/")
        .max_age(time_hours(hours))
        .build()
}

fn time_hours(hours: u32) -> time::Duration {
    time::Duration::hours(i64::from(hours))
}

/// A cookie that removes the session cookie.
pub fn cleared_session_cookie() -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, "")).path("/").build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_comparison_needs_the_exact_token() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
