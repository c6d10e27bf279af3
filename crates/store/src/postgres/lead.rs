//! Leadership through a session-level advisory lock on a connection of its own.
//!
//! The lock lasts as long as the connection: if the holding process dies (even by kill -9)
//! the server ends its session and releases the lock, and another process's next
//! [`crate::EventStore::try_lead`] gets it. A watchdog pings the connection and reports the
//! loss through [`Leadership::lost`], so the holder stops acting as leader at once.

use tokio::sync::watch;
use tokio_postgres::NoTls;

use crate::error::StoreError;
use crate::store::Leadership;

use super::Shared;
use super::error_map::map_err;
use super::schema::lock_key;

pub(crate) async fn try_lead(
    shared: &Shared,
    role: &str,
) -> Result<Option<Leadership>, StoreError> {
    let (client, connection) = shared
        .options
        .connection_config()
        .connect(NoTls)
        .await
        .map_err(|e| match map_err(e) {
            StoreError::Unavailable { reason } => StoreError::Unavailable {
                reason: format!("{}: {reason}", shared.options.redacted),
            },
            other => other,
        })?;
    let (held_tx, held) = watch::channel(true);
    let driver = tokio::spawn(async move {
        // Ends when the connection fails or the client is dropped.
        let _ = connection.await;
    });
    let key = lock_key(role, &shared.options.schema);
    let row = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await
        .map_err(map_err)?;
    if !row.get::<_, bool>(0) {
        driver.abort();
        return Ok(None);
    }
    let interval = shared.options.poll_interval;
    let watchdog = tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            if client.simple_query("SELECT 1").await.is_err() || driver.is_finished() {
                let _ = held_tx.send(false);
                return;
            }
        }
    });
    Ok(Some(Leadership::new(held, Box::new(AbortOnDrop(watchdog)))))
}

/// Dropping the lease stops the watchdog, which drops the connection and so the lock.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
