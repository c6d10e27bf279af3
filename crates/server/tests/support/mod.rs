//! A server on a random local port over an in-memory engine with a manual clock, and the
//! users the tests act as.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use caseflow::domain::{Actor, CaseId, CaseState, NextContext, Role, next_commands};
use caseflow::{District, Engine, EngineConfig, ManualClock};
use caseflow_server::Server;
use caseflow_server::config::ServerConfig;
use caseflow_server::users::{Access, NewUser, UserStore};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use uuid::Uuid;

/// Monday 2 March 2026, 09:00 district time.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).unwrap()
}

/// A running server.
pub struct TestServer {
    pub base: String,
    pub addr: SocketAddr,
    pub engine: Engine,
    pub clock: Arc<ManualClock>,
    pub users: Arc<UserStore>,
    pub http: reqwest::Client,
    tokens: Mutex<HashMap<String, String>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), caseflow_server::ServerError>>>,
}

/// A configuration for tests (the store is memory; the path is never opened).
pub fn test_config() -> ServerConfig {
    ServerConfig {
        store: Some("unused.db".into()),
        watcher_interval_seconds: 0,
        rate_limit_per_minute: 100_000,
        rate_limit_burst: 10_000,
        ..ServerConfig::default()
    }
}

impl TestServer {
    /// A server with the default test configuration.
    pub async fn start() -> TestServer {
        Self::with_config(test_config()).await
    }

    /// A server with `config` (over memory; `config.store` is not opened).
    pub async fn with_config(config: ServerConfig) -> TestServer {
        let clock = Arc::new(ManualClock::new(start()));
        let engine =
            Engine::open(EngineConfig::memory(District::sample().unwrap()).clock(clock.clone()))
                .await
                .unwrap();
        let server = Server::new(engine.clone(), UserStore::in_memory().unwrap(), config);
        let users = Arc::clone(&server.app().users);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(listener, async move {
            let _ = stopped.await;
        }));
        let ts = TestServer {
            base: format!("http://{addr}"),
            addr,
            engine,
            clock,
            users,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            tokens: Mutex::new(HashMap::new()),
            stop: Some(stop),
            task: Some(task),
        };
        ts.wait_ready().await;
        ts
    }

    /// Waits until `/readyz` answers 200 (the server sets it once its read models caught up).
    async fn wait_ready(&self) {
        for _ in 0..2000 {
            if let Ok(r) = self.http.get(self.url("/readyz")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::task::yield_now().await;
        }
        panic!("the test server never became ready");
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    /// The shutdown trigger and the serving task, for tests of shutdown itself.
    pub fn take_shutdown(
        &mut self,
    ) -> (
        oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<(), caseflow_server::ServerError>>,
    ) {
        (self.stop.take().unwrap(), self.task.take().unwrap())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A token of a user with `access`, made once per access.
    pub fn token(&self, access: &Access) -> String {
        let key = format!("{access:?}");
        let mut tokens = self.tokens.lock().unwrap();
        if let Some(t) = tokens.get(&key) {
            return t.clone();
        }
        let name = format!("u{}", tokens.len() + 1);
        let org = &self.engine.district().org;
        self.users
            .add(
                &NewUser {
                    username: name.clone(),
                    display_name: name.clone(),
                    access: access.clone(),
                    password: Some("correct horse battery".into()),
                },
                org,
                start(),
            )
            .unwrap();
        let (token, _) = self
            .users
            .create_token(&name, "test", None, start())
            .unwrap();
        tokens.insert(key, token.clone());
        token
    }

    /// A staff member's token.
    pub fn staff(&self, unit: &str, role: Role) -> String {
        self.token(&Access::Staff {
            actor: Actor::new(unit, role),
        })
    }

    pub fn auditor(&self) -> String {
        self.token(&Access::Auditor)
    }

    pub fn admin(&self) -> String {
        self.token(&Access::Admin)
    }

    pub async fn get(&self, token: Option<&str>, path: &str) -> reqwest::Response {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    pub async fn post_json(
        &self,
        token: &str,
        path: &str,
        key: Option<Uuid>,
        body: &Value,
    ) -> reqwest::Response {
        let mut req = self.http.post(self.url(path)).bearer_auth(token).json(body);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k.to_string());
        }
        req.send().await.unwrap()
    }

    /// Reports a case in `locality`/`village` as `token`; returns the case id.
    pub async fn report(&self, token: &str, locality: &str, village: Option<&str>) -> CaseId {
        let r = self
            .post_json(
                token,
                "/api/v1/cases",
                Some(Uuid::new_v4()),
                &report_body(locality, village),
            )
            .await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let v: Value = r.json().await.unwrap();
        CaseId::new(Uuid::parse_str(v["case_id"].as_str().unwrap()).unwrap())
    }

    /// The case's state, straight from the engine.
    pub async fn state(&self, case: CaseId) -> CaseState {
        self.engine.case_state(case).await.unwrap()
    }

    /// Issues, over HTTP, the first listed next command of `kind` (by name) as its first
    /// issuer; returns the response status and body.
    pub async fn issue_next(&self, case: CaseId, kind: &str) -> (u16, Value) {
        let state = self.state(case).await;
        let d = self.engine.district();
        let ctx = NextContext::new(&d.org, &d.calendar, &d.policies, self.clock_now());
        let next = next_commands(&state, &ctx)
            .into_iter()
            .find(|n| n.kind.name() == kind)
            .unwrap_or_else(|| panic!("{kind} is not a next command in stage {:?}", state.stage()));
        let actor = next.issuers[0].clone();
        let token = self.staff(actor.unit.as_str(), actor.role);
        let body = serde_json::to_value(next.draft.unwrap()).unwrap();
        let r = self
            .post_json(
                &token,
                &format!("/api/v1/cases/{case}/commands"),
                Some(Uuid::new_v4()),
                &body,
            )
            .await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub fn clock_now(&self) -> DateTime<Utc> {
        caseflow::Clock::now(self.clock.as_ref())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A report body.
pub fn report_body(locality: &str, village: Option<&str>) -> Value {
    json!({
        "channel": "hotline",
        "kind": "complaint",
        "summary": "小区垃圾清运不及时，居民反映多次未果",
        "locality": locality,
        "village": village,
        "subject": "物业公司",
        "focus_area": "living_environment",
        "reporter": { "type": "named", "name": "张三", "phone": "13800000000" },
    })
}
