//! Operating the server: the tower layers (request ids, tracing, panics, timeouts, body
//! limits, compression, security headers, problem documents for every error), liveness and
//! readiness, Prometheus metrics, the background watcher and the projection-lag gauge.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Serialize;
use tower::ServiceBuilder;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth;
use crate::problem::{ApiError, PROBLEM_JSON, Problem, ProblemType};
use crate::state::App;
use crate::users::Access;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The process's Prometheus recorder (installed on first use; `None` if another recorder
/// was installed before).
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let latency = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ];
            let sizes = [
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
            ];
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &latency)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_events".to_owned()), &sizes)
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Suffix("_requests".to_owned()), &sizes)
                })
                .ok()?
                .install_recorder()
                .ok()
        })
        .clone()
}

/// Applies the layers every route shares (outermost last).
pub fn layers(router: Router, app: &App) -> Router {
    let timeout = Duration::from_secs(app.config.request_timeout_seconds);
    let limit = app.config.body_limit_bytes;
    let security = ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'"),
        ));
    router
        .layer(DefaultBodyLimit::max(limit))
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout))
        .layer(middleware::from_fn(problems_for_every_error))
        .layer(CompressionLayer::new())
        .layer(security)
        .layer(middleware::from_fn(record_http_metrics))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<Body>| {
                let id = request
                    .extensions()
                    .get::<RequestId>()
                    .and_then(|id| id.header_value().to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path())
            })
            // One line per request (status, latency) in its span, so with its request id.
            .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Micros)),
        )
        .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION, header::COOKIE]))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = message, "a request handler panicked");
    metrics::counter!("caseflow_http_panics_total").increment(1);
    ApiError::new(ProblemType::Internal, "the server failed; see its log").into_response()
}

async fn record_http_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("caseflow_http_request_duration_seconds", "method" => method.clone(), "route" => route.clone(), "status" => status.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("caseflow_http_requests_total", "method" => method, "route" => route, "status" => status).increment(1);
    response
}

/// Which error format a path answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Surface {
    Api,
    Open311,
    Web,
}

fn surface(path: &str) -> Surface {
    if path.starts_with("/open311/") {
        Surface::Open311
    } else if path.starts_with("/api/")
        || path == "/metrics"
        || path == "/healthz"
        || path == "/readyz"
    {
        Surface::Api
    } else {
        Surface::Web
    }
}

fn problem_type_of(status: StatusCode) -> ProblemType {
    match status {
        StatusCode::UNAUTHORIZED => ProblemType::NotAuthenticated,
        StatusCode::FORBIDDEN => ProblemType::Forbidden,
        StatusCode::NOT_FOUND => ProblemType::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ProblemType::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ProblemType::BodyTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ProblemType::UnsupportedMediaType,
        StatusCode::UNPROCESSABLE_ENTITY => ProblemType::InvalidInput,
        StatusCode::TOO_MANY_REQUESTS => ProblemType::RateLimited,
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT => ProblemType::Timeout,
        s if s.is_server_error() => ProblemType::Internal,
        _ => ProblemType::BadRequest,
    }
}

/// Turns every error response into the surface's format: a problem document for the API
/// (also for errors made by layers: body limits, timeouts, unknown paths), the Open311 error
/// list for Open311, an HTML page for the workbench.
async fn problems_for_every_error(request: Request, next: Next) -> Response {
    let surface = surface(request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let is_problem = content_type.starts_with(PROBLEM_JSON);
    match surface {
        Surface::Api if is_problem => response,
        Surface::Open311 if content_type.starts_with("application/json") => response,
        Surface::Web if content_type.starts_with("text/html") => response,
        _ => {
            let kind = response
                .extensions()
                .get::<ProblemType>()
                .copied()
                .unwrap_or_else(|| problem_type_of(status));
            let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
            let detail = if is_problem {
                problem_detail(response).await
            } else {
                None
            };
            let mut rendered = match surface {
                Surface::Api => ApiError {
                    kind,
                    detail,
                    retry_after: None,
                }
                .into_response(),
                Surface::Open311 => crate::open311::error_response(
                    status,
                    detail.as_deref().unwrap_or(kind.title()),
                ),
                Surface::Web => crate::web::error_page(kind, detail.as_deref()),
            };
            *rendered.status_mut() = status;
            if let Some(r) = retry_after {
                rendered.headers_mut().insert(header::RETRY_AFTER, r);
            }
            rendered
        }
    }
}

async fn problem_detail(response: Response) -> Option<String> {
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .ok()?;
    serde_json::from_slice::<Problem>(&bytes).ok()?.detail
}

/// 404 for every unknown path.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such path")
}

/// 405 for a known path with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::bare(ProblemType::MethodNotAllowed)
}

/// The operations routes.
pub fn router() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics_endpoint))
        .route("/problems/{slug}", axum::routing::get(problem_page))
}

/// Liveness or readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `alive`, `ready` or `not ready`.
    pub status: String,
    /// The log's last position the read models know of.
    pub head: u64,
    /// The largest number of records a read model is behind (0 when caught up).
    pub lag: u64,
}

/// Liveness: the process serves requests.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, body = Health)))]
async fn healthz() -> axum::Json<Health> {
    axum::Json(Health {
        status: "alive".to_owned(),
        head: 0,
        lag: 0,
    })
}

/// Readiness: 200 once the read models caught up with the log at startup (and until
/// shutdown begins), 503 before and after.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses((status = 200, body = Health), (status = 503, body = Problem)))]
async fn readyz(State(app): State<App>) -> Result<axum::Json<Health>, ApiError> {
    let progress = app.engine.read_model_progress().await?;
    let stopped = progress.projections.iter().find_map(|p| p.stopped.clone());
    if let Some(reason) = stopped {
        return Err(ApiError::new(
            ProblemType::NotReady,
            format!("a read model stopped: {reason}"),
        ));
    }
    if !app.is_ready() {
        return Err(ApiError::bare(ProblemType::NotReady).retry_after(1));
    }
    Ok(axum::Json(Health {
        status: "ready".to_owned(),
        head: progress.head,
        lag: progress
            .projections
            .iter()
            .map(|p| p.lag)
            .max()
            .unwrap_or(0),
    }))
}

/// Prometheus metrics: HTTP latency and counts per route, commands by outcome, events per
/// append, store commit batch sizes, projection lag, watcher passes and urgings, feed
/// connections. Public only when `metrics_public` is set; otherwise an admin's or auditor's
/// token.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn metrics_endpoint(State(app): State<App>, request: Request) -> Result<Response, ApiError> {
    if !app.config.metrics_public {
        let (parts, _) = request.into_parts();
        let principal = auth::authenticate(&app, &parts)
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        if matches!(principal.user.access, Access::Staff { .. }) {
            return Err(ApiError::forbidden());
        }
    }
    let text = app
        .metrics
        .as_ref()
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

async fn problem_page(axum::extract::Path(slug): axum::extract::Path<String>) -> Response {
    match ProblemType::from_slug(&slug) {
        Some(kind) => crate::web::problem_doc_page(kind),
        None => ApiError::not_found("no such problem type").into_response(),
    }
}

/// Publishes each read model's lag every few seconds.
pub async fn publish_lag(app: App) {
    let mut stopping = app.stopping.clone();
    loop {
        if let Ok(progress) = app.engine.read_model_progress().await {
            for p in &progress.projections {
                metrics::gauge!("caseflow_projection_lag", "projection" => p.name)
                    .set(p.lag as f64);
            }
            metrics::gauge!("caseflow_log_head").set(progress.head as f64);
        }
        tokio::select! {
            _ = stopping.wait_for(|s| *s) => return,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

/// The deadline watcher inside `serve`. Every server process runs it, and the store's
/// leadership lets exactly one of them urge at a time (on PostgreSQL an advisory lock;
/// another server takes over when the watcher's dies).
pub async fn run_watcher(app: App, interval: Duration) {
    let mut stopping = app.stopping.clone();
    let mut lease = None;
    loop {
        match app.engine.watch_if_leader(&mut lease).await {
            Ok(None) => {}
            Ok(Some(report)) => {
                metrics::counter!("caseflow_watcher_passes_total").increment(1);
                metrics::counter!("caseflow_watcher_urgings_total")
                    .increment(report.issued.len() as u64);
                metrics::counter!("caseflow_watcher_refused_total")
                    .increment(report.refused.len() as u64);
                if !report.issued.is_empty() {
                    tracing::info!(issued = report.issued.len(), "deadline watcher urged");
                }
            }
            Err(error) => {
                lease = None;
                tracing::error!(%error, "deadline watcher pass failed");
            }
        }
        tokio::select! {
            _ = stopping.wait_for(|s| *s) => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
