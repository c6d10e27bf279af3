//! # caseflow-server: `caseflow serve`
//!
//! The service a district deploys on top of the engine: a JSON API (`/api/v1`, documented
//! by a generated OpenAPI 3.1 document at `/api/openapi.json`), Open311 GeoReport v2 intake
//! (`/open311/v2`), and the server-rendered web workbench for the staff of the four levels,
//! all in one binary over one SQLite store. See docs/server.md.
//!
//! - [`config`]: file + environment configuration and `--check-config`.
//! - [`users`]: users (unit + role, argon2id passwords), API tokens and sessions.
//! - [`auth`], [`access`]: who is asking and what they may read; commands are authorised by
//!   the domain.
//! - [`api`], [`api_audit`], [`feed`]: the JSON API and the live feed.
//! - [`open311`]: the GeoReport v2 mapping.
//! - [`web`]: the workbench.
//! - [`ops`]: problems, limits, health, metrics, logs, shutdown.

pub mod access;
pub mod api;
pub mod api_audit;
pub mod auth;
pub mod config;
pub mod feed;
pub mod open311;
pub mod ops;
pub mod problem;
pub mod reveal;
pub mod state;
pub mod users;
pub mod views;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use caseflow::domain::Lang;
use caseflow::store::SqliteOptions;
use caseflow::{District, Engine, EngineConfig, EngineError, StoreConfig};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, broadcast, watch};
use utoipa::OpenApi;

use crate::config::{Durability, ServerConfig};
use crate::state::{App, AppState};
use crate::users::{UserError, UserStore};

/// What can stop the server from starting or serving. All are the operator's to fix
/// (fatal for this start); `Engine` carries the engine's own classification.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The store or district could not be opened.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The users database could not be opened.
    #[error("users database {path}: {source}")]
    Users {
        /// The file.
        path: PathBuf,
        /// Why.
        source: UserError,
    },
    /// The listening socket failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The OpenAPI document's frame; the paths come from the routers.
#[derive(OpenApi)]
#[openapi(
    info(title = "Caseflow", description = "Case workflow of a district discipline-inspection commission: to-do lists, cases, commands, audit, Open311 intake."),
    components(schemas(problem::Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "to-do", description = "The to-do lists of units, levels, zones and departments"),
        (name = "cases", description = "Reporting cases, issuing commands, reading a case"),
        (name = "audit", description = "Statistics, verify, audit reports, exports"),
        (name = "live", description = "The live feed"),
        (name = "users", description = "Who is signed in"),
        (name = "open311", description = "Open311 GeoReport v2 intake"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

/// The server: shared state and the router.
pub struct Server {
    app: App,
    router: Router,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

/// Opens the engine a configuration names (SQLite, system clock, random ids).
pub async fn open_engine(config: &ServerConfig) -> Result<Engine, ServerError> {
    let district = match &config.district {
        Some(path) => District::from_path(path)?,
        None => District::sample()?,
    };
    let mut options = SqliteOptions::default();
    if config.durability == Durability::Normal {
        options = SqliteOptions::normal();
    }
    let store = StoreConfig::Sqlite {
        path: config.store_path().to_path_buf(),
        options,
    };
    // Reporters' contacts are sealed under the operator's master key, from the
    // CASEFLOW_MASTER_KEY or CASEFLOW_MASTER_KEY_FILE variable (docs/design.md).
    let master = caseflow::MasterKey::from_env().map_err(EngineError::Keys)?;
    Ok(Engine::open(EngineConfig::with_store(store, district).master_key_opt(master)).await?)
}

/// Opens the users database a configuration names.
pub fn open_users(config: &ServerConfig) -> Result<UserStore, ServerError> {
    let path = config.users_path();
    UserStore::open(&path).map_err(|source| ServerError::Users { path, source })
}

impl Server {
    /// Opens the store, the district and the users database of `config`.
    pub async fn open(config: ServerConfig) -> Result<Server, ServerError> {
        config.validate()?;
        let engine = open_engine(&config).await?;
        let users = open_users(&config)?;
        Ok(Server::new(engine, users, config))
    }

    /// A server over an opened engine and users database (tests embed it this way).
    pub fn new(engine: Engine, users: UserStore, config: ServerConfig) -> Server {
        let lang = config
            .language
            .as_deref()
            .and_then(Lang::parse)
            .unwrap_or(engine.district().org.info().language);
        let (feed, _) = broadcast::channel(feed::FEED_BUFFER);
        let (stop, stopping) = watch::channel(false);
        let app: App = Arc::new(AppState {
            limiter: auth::limiter(config.rate_limit_per_minute, config.rate_limit_burst),
            login_limiter: auth::limiter(10, 5),
            engine,
            users: Arc::new(users),
            lang,
            feed,
            metrics: ops::metrics_handle(),
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            simulations: Semaphore::new(1),
            stopping,
            config,
        });
        let router = build_router(&app);
        Server { app, router, stop }
    }

    /// The shared state.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// The OpenAPI document.
    pub fn openapi() -> utoipa::openapi::OpenApi {
        routes().1
    }

    /// Serves on `listener` until `shutdown` completes, then stops taking connections,
    /// ends the live feeds, lets in-flight requests (commands) finish and returns.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let tasks = self.start_background();
        self.app.engine.refresh().await?;
        self.app.ready.store(true, Ordering::Release);
        tracing::info!(%addr, "serving");
        let app = Arc::clone(&self.app);
        let stop = self.stop.clone();
        let graceful = async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            app.draining.store(true, Ordering::Release);
            let _ = stop.send(true);
        };
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(listener, service)
            .with_graceful_shutdown(graceful)
            .await;
        let _ = self.stop.send(true);
        for task in tasks {
            task.abort();
        }
        served.map_err(|source| ServerError::Listen { addr, source })
    }

    /// The live feed, the deadline watcher and the lag gauge.
    fn start_background(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let app = &self.app;
        let mut tasks = vec![
            tokio::spawn(feed::follow(app.engine.clone(), app.feed.clone())),
            tokio::spawn(ops::publish_lag(Arc::clone(app))),
        ];
        if app.config.watcher_interval_seconds > 0 {
            let interval = Duration::from_secs(app.config.watcher_interval_seconds);
            tasks.push(tokio::spawn(ops::run_watcher(Arc::clone(app), interval)));
        }
        tasks
    }
}

/// Every documented route: the JSON API, Open311 and the operations endpoints.
fn routes() -> (Router<App>, utoipa::openapi::OpenApi) {
    let (router, doc) = utoipa_axum::router::OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(api::router())
        .merge(open311::router())
        .merge(ops::router())
        .split_for_parts();
    (router, problems_as_problem_json(doc))
}

/// utoipa documents every body as `application/json`; problem documents are served as
/// `application/problem+json`, so the document says so.
fn problems_as_problem_json(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::{RefOr, Schema};
    let is_problem = |schema: &RefOr<Schema>| matches!(schema, RefOr::Ref(r) if r.ref_location.ends_with("/Problem"));
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            for response in operation.responses.responses.values_mut() {
                let RefOr::T(response) = response else {
                    continue;
                };
                let Some(json) = response.content.get("application/json") else {
                    continue;
                };
                if json.schema.as_ref().is_some_and(is_problem) {
                    let content = response.content.swap_remove("application/json");
                    if let Some(content) = content {
                        response
                            .content
                            .insert(problem::PROBLEM_JSON.to_owned(), content);
                    }
                }
            }
        }
    }
    doc
}

fn build_router(app: &App) -> Router {
    let (documented, doc) = routes();
    let doc = Arc::new(doc);
    let router = documented
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let doc = Arc::clone(&doc);
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .merge(web::router())
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .with_state(Arc::clone(app));
    ops::layers(router, app)
}
