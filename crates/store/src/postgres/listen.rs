//! The listener: one connection per store that LISTENs on the store's channel and raises
//! the known head, with polling as the fallback (notifications are lost while the
//! connection is down, and a listener that reconnects reads the head at once).

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use super::Shared;

pub(crate) fn spawn_listener(shared: Arc<Shared>) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        loop {
            if let Err(reason) = listen(&shared).await {
                tracing::debug!(%reason, "store listener lost its connection; reconnecting");
            }
            // Poll while the listener is down, then try to listen again.
            tokio::time::sleep(shared.options.poll_interval).await;
            poll_head(&shared).await;
        }
    })
    .abort_handle()
}

/// One listening session: returns when its connection fails.
async fn listen(shared: &Shared) -> Result<(), String> {
    let (client, mut connection) = shared
        .options
        .connection_config()
        .connect(NoTls)
        .await
        .map_err(|e| e.to_string())?;
    let (tx, mut notifications) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if let Ok(position) = n.payload().parse::<u64>() {
                        if tx.send(position).is_err() {
                            break;
                        }
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    let result = async {
        client
            .batch_execute(&format!("LISTEN {}", shared.channel))
            .await
            .map_err(|e| e.to_string())?;
        // Anything committed before LISTEN took effect is picked up by this read.
        read_head(&client, shared).await?;
        let mut poll = tokio::time::interval(shared.options.poll_interval);
        loop {
            tokio::select! {
                position = notifications.recv() => match position {
                    Some(position) => shared.raise_head(position),
                    None => return Err("the listening connection closed".to_owned()),
                },
                _ = poll.tick() => read_head(&client, shared).await?,
            }
        }
    }
    .await;
    driver.abort();
    result
}

async fn read_head(client: &tokio_postgres::Client, shared: &Shared) -> Result<(), String> {
    let row = client
        .query_one("SELECT position FROM log_head", &[])
        .await
        .map_err(|e| e.to_string())?;
    let head: i64 = row.get(0);
    shared.raise_head(u64::try_from(head).unwrap_or(0));
    Ok(())
}

async fn poll_head(shared: &Shared) {
    if let Ok(client) = shared.pool.get().await {
        let _ = read_head(&client, shared).await;
    }
}
