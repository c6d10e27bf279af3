//! What every request handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use caseflow::Engine;
use caseflow::domain::{Lang, Organisation};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::{Semaphore, broadcast, watch};

use crate::auth::KeyedLimiter;
use crate::config::ServerConfig;
use crate::feed::FeedEvent;
use crate::users::UserStore;

/// The shared state (cheap to clone).
pub type App = Arc<AppState>;

/// The server's shared state.
pub struct AppState {
    /// The engine.
    pub engine: Engine,
    /// Users, tokens and sessions.
    pub users: Arc<UserStore>,
    /// The configuration.
    pub config: ServerConfig,
    /// The workbench's default language.
    pub lang: Lang,
    /// Per token or user request rate.
    pub limiter: KeyedLimiter,
    /// Sign-in attempts per user name and per client.
    pub login_limiter: KeyedLimiter,
    /// Changes for the live feed.
    pub feed: broadcast::Sender<FeedEvent>,
    /// Renders the Prometheus metrics (`None` when another recorder was installed first).
    pub metrics: Option<PrometheusHandle>,
    /// Set once the read models have caught up with the log at startup.
    pub ready: AtomicBool,
    /// Set when shutdown began: readiness goes false so a proxy stops sending.
    pub draining: AtomicBool,
    /// One simulation at a time (they take a core for a second or two).
    pub simulations: Semaphore,
    /// Turns true when the server shuts down (live feeds and the watcher end).
    pub stopping: watch::Receiver<bool>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    /// The district's organisation.
    pub fn org(&self) -> &Organisation {
        &self.engine.district().org
    }

    /// Whether the server takes traffic.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.draining.load(Ordering::Acquire)
    }
}
