//! The live feed: one task follows the store's log and publishes, per appended event, the
//! case, the event type, its stage and the units that held the case before or after the
//! event; every `GET /api/v1/events` connection (server-sent events) filters that by the
//! reader's query rules, so an open to-do page learns that its list changed. Thousands of
//! connections share one subscription to the store.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use caseflow::Engine;
use caseflow::domain::{Assignee, CaseId, Organisation, UnitId, ZoneId};
use caseflow::projections::case_id_of_stream;
use futures::{FutureExt, Stream};
use serde::Serialize;
use tokio::sync::broadcast;

use crate::access;
use crate::auth::Principal;
use crate::problem::{ApiError, Problem};
use crate::state::App;

/// One change on the feed (shared by every connection).
pub type FeedEvent = Arc<Change>;

/// What changed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Change {
    /// Global log position (the SSE event id).
    pub position: u64,
    /// The case.
    pub case_id: String,
    /// The event type, e.g. `CaseAccepted`.
    pub event_type: String,
    /// The case's stage after it (machine name; empty when the case waits on nobody).
    pub stage: String,
    /// The case's zone.
    #[serde(skip)]
    pub zone: ZoneId,
    /// The units that held the case on their lists before or after the change.
    pub units: Vec<String>,
}

/// Events a connection may fall behind before it is told to reload.
pub const FEED_BUFFER: usize = 4096;

/// Most records handled in one batch (one read-model catch-up per batch).
const BATCH_MAX: usize = 512;

/// Follows the log from its current head and publishes every change until the store's
/// subscription ends. Run it in its own task.
pub async fn follow(engine: Engine, tx: broadcast::Sender<FeedEvent>) {
    let head = match engine.store().head_position().await {
        Ok(h) => h,
        Err(error) => {
            tracing::error!(%error, "live feed cannot read the log's head");
            return;
        }
    };
    let mut subscription = match engine.store().subscribe(head + 1).await {
        Ok(s) => s,
        Err(error) => {
            tracing::error!(%error, "live feed cannot subscribe to the log");
            return;
        }
    };
    let mut known: HashMap<CaseId, (ZoneId, Vec<UnitId>)> = HashMap::new();
    while let Some(first) = subscription.next().await {
        let mut batch = vec![first];
        while batch.len() < BATCH_MAX {
            match subscription.next().now_or_never() {
                Some(Some(record)) => batch.push(record),
                _ => break,
            }
        }
        for record in batch {
            let record = match record {
                Ok(r) => r,
                Err(error) => {
                    tracing::warn!(%error, "live feed: the subscription failed");
                    return;
                }
            };
            let Some(case_id) = case_id_of_stream(&record.stream_id) else {
                continue;
            };
            let change = describe(
                &engine,
                &mut known,
                case_id,
                record.position,
                &record.event_type,
            )
            .await;
            // No receiver is fine: nobody is watching.
            let _ = tx.send(Arc::new(change));
        }
    }
}

async fn describe(
    engine: &Engine,
    known: &mut HashMap<CaseId, (ZoneId, Vec<UnitId>)>,
    case_id: CaseId,
    position: u64,
    event_type: &str,
) -> Change {
    let holders = engine.case_holders(case_id).await.ok().flatten();
    let (zone, before) = known
        .remove(&case_id)
        .unwrap_or_else(|| (ZoneId::new(""), Vec::new()));
    let (zone, stage, now_units) = match &holders {
        Some(h) => (
            h.card.place.zone.clone(),
            h.card.stage.as_str().to_owned(),
            h.obligations
                .iter()
                .filter_map(|o| match &o.assignee {
                    Assignee::Unit(u) => Some(u.clone()),
                    Assignee::Department(d) => engine.district().org.team_stationed_in(d).cloned(),
                })
                .collect::<Vec<_>>(),
        ),
        None => (zone, String::new(), Vec::new()),
    };
    let mut units: Vec<UnitId> = before
        .into_iter()
        .chain(now_units.iter().cloned())
        .collect();
    units.sort();
    units.dedup();
    if holders.is_some() {
        known.insert(case_id, (zone.clone(), now_units));
    }
    Change {
        position,
        case_id: case_id.to_string(),
        event_type: event_type.to_owned(),
        stage,
        zone,
        units: units.iter().map(ToString::to_string).collect(),
    }
}

fn visible(access: &crate::users::Access, change: &Change, org: &Organisation) -> bool {
    let units: Vec<UnitId> = change
        .units
        .iter()
        .map(|u| UnitId::from(u.as_str()))
        .collect();
    access::may_follow(access, &change.zone, &units, org)
}

/// Server-sent events: `event: change` with the change as JSON (id = log position) for
/// every case the reader may see; `event: resync` when the connection fell behind and the
/// page should reload. A comment every 15 s keeps proxies from closing it.
#[utoipa::path(get, path = "/api/v1/events", tag = "live",
    responses((status = 200, description = "text/event-stream of changes", content_type = "text/event-stream", body = String),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 429, body = Problem)))]
pub async fn events(
    principal: Principal,
    State(app): State<App>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    if matches!(principal.access(), crate::users::Access::Admin) {
        return Err(ApiError::forbidden());
    }
    let rx = app.feed.subscribe();
    metrics::gauge!("caseflow_feed_connections").increment(1.0);
    let guard = ConnectionGauge;
    let access = principal.user.access.clone();
    let app2 = app.clone();
    let stream = futures::stream::unfold((rx, guard), move |(mut rx, guard)| {
        let access = access.clone();
        let app = app2.clone();
        async move {
            loop {
                match rx.recv().await {
                    Ok(change) if visible(&access, &change, app.org()) => {
                        let event = Event::default()
                            .event("change")
                            .id(change.position.to_string())
                            .json_data(change.as_ref())
                            .unwrap_or_else(|_| Event::default().event("change"));
                        return Some((Ok(event), (rx, guard)));
                    }
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        return Some((
                            Ok(Event::default().event("resync").data("reload")),
                            (rx, guard),
                        ));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    let stream = futures::StreamExt::fuse(stream);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Counts open feed connections down when one closes.
struct ConnectionGauge;

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        metrics::gauge!("caseflow_feed_connections").decrement(1.0);
    }
}
