//! Catch-up-then-live subscriptions on `$all`, with re-subscription across leader changes.
//!
//! The server does the catch-up and the switch to live delivery (`subscribe_to_all` with the
//! store's stream-prefix filter), in `$all` order. KurrentDB subscriptions start *after* the
//! given position, so an inclusive start (`from` = an event's position) first reads that one
//! event. When the subscription drops (connection lost, leader change, server restart), it is
//! re-opened after the last event delivered, so no event is skipped or repeated; events
//! become visible to readers only once a quorum has them, so a new leader never lacks an
//! event an old leader delivered. After `subscription_retries` consecutive failures the
//! subscription yields the error and ends; the caller resubscribes from its checkpoint + 1.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use kurrentdb::{Position, StreamPosition, SubscribeToAllOptions, SubscriptionEvent};

use super::Inner;
use super::codec::{self, RawRecord, ReadFrom};
use super::error_map::{is_transient, map_read_error};
use crate::error::StoreError;
use crate::store::Subscription;
use crate::types::RecordedEvent;

struct State {
    inner: Arc<Inner>,
    subscription: Option<kurrentdb::Subscription>,
    /// Log position of the last event delivered (or skipped as foreign); `None` = the start.
    resume_after: Option<u64>,
    pending: VecDeque<RecordedEvent>,
    consecutive_failures: u32,
    delay: Duration,
    finished: bool,
}

pub(super) async fn subscribe(
    inner: Arc<Inner>,
    from: ReadFrom,
) -> Result<Subscription, StoreError> {
    let mut pending = VecDeque::new();
    let resume_after = match from {
        ReadFrom::Start => None,
        ReadFrom::AfterLog(l) => Some(l),
        ReadFrom::AtLog(l) => {
            // Deliver the event at `l` itself, if there is one, then follow after it.
            let first = inner.read_all_records(ReadFrom::AtLog(l), 1).await?;
            if let Some(event) = first.into_iter().next() {
                if codec::log_position_of(event.position) == Some(l) {
                    pending.push_back(event);
                }
            }
            Some(l)
        }
    };
    let delay = inner.config.retry_delay_initial;
    let state = State {
        inner,
        subscription: None,
        resume_after,
        pending,
        consecutive_failures: 0,
        delay,
        finished: false,
    };
    let stream = futures::stream::unfold(state, |mut st| async move {
        if st.finished {
            return None;
        }
        let item = next_item(&mut st).await;
        if item.is_err() {
            st.finished = true;
        }
        Some((item, st))
    });
    Ok(Subscription::from_stream(Box::pin(stream)))
}

async fn open(inner: Arc<Inner>, resume_after: Option<u64>) -> kurrentdb::Subscription {
    let position = match resume_after {
        None => StreamPosition::Start,
        Some(l) => StreamPosition::Position(Position {
            commit: l,
            prepare: l,
        }),
    };
    let options = SubscribeToAllOptions::default()
        .position(position)
        .filter(inner.all_filter())
        .requires_leader(inner.config.reads_require_leader);
    // `subscribe_to_all` only builds the request; it connects on the first `next`.
    inner.client.subscribe_to_all(&options).await
}

async fn next_item(st: &mut State) -> Result<RecordedEvent, StoreError> {
    loop {
        if let Some(event) = st.pending.pop_front() {
            return Ok(event);
        }
        if st.subscription.is_none() {
            st.subscription = Some(open(st.inner.clone(), st.resume_after).await);
        }
        let Some(subscription) = st.subscription.as_mut() else {
            continue;
        };
        match subscription.next_subscription_event().await {
            Ok(SubscriptionEvent::EventAppeared(resolved)) => {
                let Some(event) = resolved.event.as_ref() else {
                    continue;
                };
                let raw = RawRecord::from_client(event);
                let log = raw.log_position()?;
                if already_delivered(st.resume_after, log) {
                    // Already delivered before a re-subscription.
                    continue;
                }
                st.resume_after = Some(log);
                st.consecutive_failures = 0;
                st.delay = st.inner.config.retry_delay_initial;
                if st.inner.config.stream_id_of(&raw.stream_name).is_none() {
                    continue;
                }
                return codec::decode_event(st.inner.config.namespace(), &raw);
            }
            Ok(_) => continue,
            Err(err)
                if is_transient(&err)
                    && st.consecutive_failures < st.inner.config.subscription_retries =>
            {
                st.consecutive_failures += 1;
                tracing::warn!(
                    error = %err,
                    attempt = st.consecutive_failures,
                    "KurrentDB subscription dropped; re-subscribing after {:?}",
                    st.delay
                );
                st.subscription = None;
                tokio::time::sleep(st.delay).await;
                st.delay = (st.delay * 2).min(st.inner.config.retry_delay_max);
            }
            Err(err) => return Err(map_read_error("subscription to $all", err)),
        }
    }
}

/// Whether an event at log position `log` was already delivered (or skipped) before a
/// re-subscription that resumed after `resume_after`.
pub(super) fn already_delivered(resume_after: Option<u64>, log: u64) -> bool {
    resume_after.is_some_and(|r| log <= r)
}
